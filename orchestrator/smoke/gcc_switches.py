"""Hardening evidence from ``-frecord-gcc-switches``: the ``.GCC.command.line`` section (issue 20).

What the section really holds (checked with GCC 12, x86-64 and the aarch64 cross compiler): one
NUL-terminated *producer string* per compilation unit (GCC >= 11), e.g. ``GNU C17 12.2.0
-mtune=generic -march=x86-64 -O2 -fstack-protector-strong -fPIC``; the section is SHF_MERGE|STRINGS
and non-alloc, so the linker concatenates the units and keeps one copy of identical strings, and
``strip`` (``--strip-unneeded`` and plain) keeps it. So each string is one unit (or several
identical ones), and "every recorded unit has the flag" is decidable, with the last occurrence of
contradicting options winning. Limits, each making a verdict ``unknown`` rather than a pass:

* no section: the file was not compiled with the switch (or it was removed);
* strings that are not producer strings (GCC < 11 recorded one *option* per string, which the
  linker's merging then deduplicates across units): units cannot be delimited;
* LTO: the ``GNU GIMPLE`` units of a ``-flto`` link record the *link-time* command line, while each
  function keeps the codegen options it was compiled with (checked: compiled
  ``-fno-stack-protector`` and linked ``-fstack-protector-strong`` records the latter, has no canary;
  the same for ``-fstack-clash-protection`` and aarch64 ``-mbranch-protection``). Only x86-64
  ``-fcf-protection`` is merged into the link and trusted there;
* objects compiled without ``-frecord-gcc-switches`` (crt files, static libraries built apart)
  leave no string: "every recorded unit" cannot see them.

clang (profiles.*.toolchain clang) records one string per unit too, the driver's command line
(``/usr/lib/llvm-19/bin/clang -c -O3 -fstack-protector-strong ...``, ``-D`` options included):
a string whose first word is a clang driver is a unit as a GNU producer string is.

GCC never records ``-D``/``-U``/``-Wp,`` options, so ``_FORTIFY_SOURCE`` is not in the section;
the fortify rule below is there for a toolchain that records it, in practice fortify stays judged
by the ``__*_chk`` imports.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from elftools.elf.elffile import ELFFile

SECTION = ".GCC.command.line"
SWITCH_PROPERTIES = ("stack-clash", "frame-pointers", "cf-protection")  # compiled-with properties
Verdict = Literal["yes", "no", "unknown"]
Rule = Callable[[Sequence[str], str], bool]  # (one unit's options, e_machine) -> has it
_OPT = re.compile(r"-O(\d*|s|z|g|fast)")
_BRANCH = frozenset({"standard", "pac-ret", "bti"})


def _last(opts: Sequence[str], match: Callable[[str], bool]) -> str | None:
    return next((o for o in reversed(opts) if match(o)), None)


def _stack_protector(opts: Sequence[str], _machine: str) -> bool:
    last = _last(opts, lambda o: o.startswith("-fstack-protector") or o == "-fno-stack-protector")
    return last in {"-fstack-protector", "-fstack-protector-strong", "-fstack-protector-all"}


def _fortify(opts: Sequence[str], _machine: str) -> bool:
    last = _last(opts, lambda o: o.startswith(("-D_FORTIFY_SOURCE", "-U_FORTIFY_SOURCE")))
    level = last.partition("=")[2] if last and last.startswith("-D") else ""
    return level in {"2", "3"} and _last(opts, lambda o: _OPT.fullmatch(o) is not None) not in {None, "-O0"}


def _stack_clash(opts: Sequence[str], _machine: str) -> bool:
    last = _last(opts, lambda o: o in {"-fstack-clash-protection", "-fno-stack-clash-protection"})
    return last == "-fstack-clash-protection"


def _frame_pointers(opts: Sequence[str], _machine: str) -> bool:
    return _last(opts, lambda o: o.endswith("omit-frame-pointer")) == "-fno-omit-frame-pointer"


def _cf_protection(opts: Sequence[str], machine: str) -> bool:
    if machine == "EM_X86_64":
        last = _last(opts, lambda o: o.startswith("-fcf-protection"))
        return last in {"-fcf-protection", "-fcf-protection=full", "-fcf-protection=branch",
                        "-fcf-protection=return"}
    value = (_last(opts, lambda o: o.startswith("-mbranch-protection=")) or "=none").partition("=")[2]
    return bool(set(value.split("+")) & _BRANCH)  # "none" and unset: not protected


RULES: dict[str, tuple[Rule, str]] = {  # property -> (unit rule, what it looks for)
    "stack-protector": (_stack_protector, "-fstack-protector-strong, -all or -fstack-protector"),
    "fortify": (_fortify, "-D_FORTIFY_SOURCE=2 or 3 with -O1 or more"),
    "stack-clash": (_stack_clash, "-fstack-clash-protection"),
    "frame-pointers": (_frame_pointers, "-fno-omit-frame-pointer"),
    "cf-protection": (_cf_protection, "-fcf-protection (x86-64) or -mbranch-protection=standard, "
                                      "pac-ret or bti (aarch64)"),
}
_LTO_TRUSTED = frozenset({("cf-protection", "EM_X86_64")})  # global options lto-wrapper merges


_CLANG_DRIVER = re.compile(r"(?:\S*/)?clang(?:\+\+)?(?:-\d+)?")


def is_unit(s: str) -> bool:
    """A per-unit record: a GNU producer string or a clang driver's command line."""
    return s.startswith("GNU ") or _CLANG_DRIVER.fullmatch(s.split(maxsplit=1)[0]) is not None


def _options(unit: str) -> tuple[str, ...]:
    return tuple(t for t in unit.split() if t.startswith("-"))


@dataclass(frozen=True)
class Switches:
    """The recorded switches of one ELF file: ``strings`` are the section's NUL-separated strings."""

    section: bool = False  # whether .GCC.command.line exists
    strings: tuple[str, ...] = ()

    @property
    def options(self) -> frozenset[str]:
        """Every option seen in any unit (``-O2``, ``-fstack-protector-strong``, ...)."""
        return frozenset(o for s in self.strings for o in _options(s))

    @property
    def units(self) -> tuple[str, ...]:
        """Producer strings of compiled units (LTO link units excluded)."""
        return tuple(s for s in self.strings if is_unit(s) and not self.is_lto(s))

    @property
    def lto_units(self) -> tuple[str, ...]:
        return tuple(s for s in self.strings if self.is_lto(s))

    @property
    def unparsed(self) -> tuple[str, ...]:
        return tuple(s for s in self.strings if not is_unit(s))

    @staticmethod
    def is_lto(unit: str) -> bool:
        return unit.startswith("GNU GIMPLE ")

    def verdict(self, prop: str, machine: str) -> tuple[Verdict, str]:
        """Whether every recorded unit was compiled with ``prop`` (a key of RULES), and why."""
        rule, wanted = RULES[prop]
        if not self.section:
            return "unknown", f"no {SECTION} section to show {wanted} (compile with -frecord-gcc-switches)"
        trusted_lto = (prop, machine) in _LTO_TRUSTED
        judged = self.units + (self.lto_units if trusted_lto else ())
        if lacking := [u for u in judged if not rule(_options(u), machine)]:
            shown = lacking[0] if len(lacking[0]) <= 160 else lacking[0][:157] + "..."
            return "no", f"{len(lacking)} of {len(judged)} recorded units lack {wanted}: {shown!r}"
        if self.unparsed:
            return "unknown", (f"{SECTION} holds {len(self.unparsed)} strings that are not per-unit "
                               f"producer strings (GCC < 11?): units cannot be delimited")
        if self.lto_units and not trusted_lto:
            return "unknown", (f"{len(self.lto_units)} LTO units (GNU GIMPLE) record the link-time "
                               f"options, not those each function was compiled with")
        if not judged:
            return "unknown", f"{SECTION} is empty"
        return "yes", f"all {len(judged)} recorded units have {wanted}"


NO_SWITCHES = Switches()


def parse_switches(data: bytes | None) -> Switches:
    """``data``: the section's contents, None when the file has no such section."""
    if data is None:
        return NO_SWITCHES
    strings = (s.decode("utf-8", "replace").strip() for s in data.split(b"\0"))
    return Switches(section=True, strings=tuple(dict.fromkeys(s for s in strings if s)))


def read_switches(elf: ELFFile) -> Switches:
    section = elf.get_section_by_name(SECTION)
    return parse_switches(None if section is None else section.data())

"""The ``interpreter-hardening`` smoke check (issue 20): the hardening ELF files visibly carry.

pyelftools reads the files, nothing runs in the image (``files_from_tar`` takes the tar stream of
``container.get_archive``/``export``). pie: ET_EXEC vs ET_DYN with DF_1_PIE (or PT_INTERP and no
DT_SONAME, for old linkers). stack-protector: imports __stack_chk_fail or __stack_chk_guard (strong
vs plain is invisible), or every unit recorded by -frecord-gcc-switches has -fstack-protector
(-strong: a function without arrays or address-taken locals gets no canary, so small modules
legitimately import neither). fortify: imports some __*_chk (or __open_2-style), or recorded
-D_FORTIFY_SOURCE (GCC does not record -D); without either, ``missing`` if it imports an
ALWAYS_FORTIFIED function, else ``none-fortifiable`` (memcpy, strcpy, read... stay plain under
FORTIFY when the size is unknown). relro: PT_GNU_RELRO; bind-now: DT_BIND_NOW, DF_BIND_NOW or
DF_1_NOW (both: full RELRO). ibt/shstk (x86-64), bti/pac (aarch64): FEATURE_1_AND bits of the GNU
property note in PT_NOTE. stack-clash, frame-pointers: leave no trace in the ELF file, so only the
recorded switches show them (no section: ``unknown``, never a pass). cf-protection ("compiled with
-fcf-protection / -mbranch-protection"): the note's bits or the recorded switches (Debian 12's crt
files carry no note, so the linker drops the bits). See hardening_switches for what the record
can and cannot show (LTO, GCC < 11).
"""

from __future__ import annotations

import fnmatch
import functools
import io
import operator
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, cast

from elftools.common.exceptions import ELFError
from elftools.construct import ConstructError
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection
from elftools.elf.segments import NoteSegment

from orchestrator.smoke.gcc_switches import (
    NO_SWITCHES,
    RULES,
    SWITCH_PROPERTIES,
    Switches,
    Verdict,
    read_switches,
)

ELF_MAGIC = b"\x7fELF"
PROPERTIES = ("pie", "stack-protector", "fortify", "relro", "bind-now", "ibt", "shstk", "bti", "pac",
              *SWITCH_PROPERTIES)
DEFAULT_REQUIRED = frozenset({"stack-protector", "fortify", "relro", "bind-now"})
# Policy(required=DEFAULT_REQUIRED | SWITCH_REQUIRED): every file then needs -frecord-gcc-switches.
SWITCH_REQUIRED = frozenset(SWITCH_PROPERTIES)
# e_machine: (summary key, GNU property type, {bit: property}); the linker ANDs it over all inputs.
_FEATURES = {"EM_X86_64": ("cet", "GNU_PROPERTY_X86_FEATURE_1_AND", {1: "ibt", 2: "shstk"}),
             "EM_AARCH64": ("branch-protection", "GNU_PROPERTY_AARCH64_FEATURE_1_AND", {1: "bti", 2: "pac"})}
_CHK = re.compile(r"__\w+_chk|__(open|open64|openat|openat64|mq_open)_2")
# glibc's FORTIFY (level >= 2) calls these as __*_chk whatever the buffer size; GCC folds them back
# only for formats without conversions (or just "%s" for the sprintf family).
ALWAYS_FORTIFIED = frozenset({
    "printf", "fprintf", "vprintf", "vfprintf", "dprintf", "vdprintf", "sprintf", "vsprintf", "snprintf",
    "vsnprintf", "asprintf", "vasprintf", "syslog", "vsyslog", "wprintf", "fwprintf", "vwprintf",
    "vfwprintf", "swprintf", "vswprintf"})
_LAYOUT = re.compile(r"bin/python3\.\d+t?|lib/libpython[^/]*\.so[^/]*"
                     r"|lib/python3\.\d+t?/lib-dynload/[^/]+\.so")

Kind = Literal["exec", "pie", "shared"]
Fortify = Literal["fortified", "missing", "none-fortifiable"]
Status = Literal["yes", "no", "unknown", "n/a"]


@dataclass(frozen=True)
class ElfReport:
    path: str
    machine: str  # e_machine as pyelftools names it: EM_X86_64, EM_AARCH64, ...
    kind: Kind
    stack_protector: bool  # imports __stack_chk_fail/__stack_chk_guard (has() also reads switches)
    fortify: Fortify  # from the imports alone
    chk_functions: tuple[str, ...]  # the __*_chk imports
    unfortified: tuple[str, ...]  # plain imports of ALWAYS_FORTIFIED functions
    relro: bool
    bind_now: bool
    features: frozenset[str]  # ibt/shstk or bti/pac from the GNU property note
    switches: Switches = NO_SWITCHES  # .GCC.command.line: .section (exists), .options, .verdict()

    @property
    def relro_level(self) -> Literal["full", "partial", "none"]:
        return "none" if not self.relro else "full" if self.bind_now else "partial"

    def recorded(self, prop: str) -> tuple[Verdict, str]:
        """What the recorded switches say of ``prop`` (stack-protector, fortify, SWITCH_PROPERTIES)."""
        return self.switches.verdict(prop, self.machine)

    def status(self, prop: str) -> Status:
        """``prop`` (one of PROPERTIES): yes; no; unknown (only the absent or undecidable record could
        show it); n/a (pie of a shared object, CPU features of another architecture)."""
        if prop == "pie":
            return "n/a" if self.kind == "shared" else "yes" if self.kind == "pie" else "no"
        if prop in {"ibt", "shstk", "bti", "pac"}:
            applies = prop in _FEATURES.get(self.machine, ("", "", {}))[2].values()
            return "n/a" if not applies else "yes" if prop in self.features else "no"
        if prop == "cf-protection" and self.machine not in _FEATURES:
            return "n/a"
        if prop in SWITCH_PROPERTIES:
            note = prop == "cf-protection" and bool(self.features)  # the linker ANDs the inputs' bits
            return "yes" if note else self.recorded(prop)[0]
        direct = {"stack-protector": self.stack_protector, "fortify": self.fortify != "missing",
                  "relro": self.relro, "bind-now": self.bind_now}[prop]
        evidence = prop in {"stack-protector", "fortify"} and self.recorded(prop)[0] == "yes"
        return "yes" if direct or evidence else "no"

    def has(self, prop: str) -> bool | None:
        """Whether the file is shown to have ``prop``; None when it does not apply. False covers both
        "no" and "unknown" (a required property nothing shows is missing); status() tells which."""
        status = self.status(prop)
        return None if status == "n/a" else status == "yes"

    def why_not(self, prop: str) -> str:
        have = "+".join(sorted(self.features)) or "none"
        switches = self.recorded(prop)[1] if prop in RULES else ""
        return {
            "pie": "ET_EXEC: linked -no-pie",
            "stack-protector": f"imports neither __stack_chk_fail nor __stack_chk_guard, and {switches}",
            "fortify": f"no __*_chk imports, but calls {', '.join(self.unfortified[:5])}",  # -D unrecorded
            "relro": "no PT_GNU_RELRO segment",
            "bind-now": "no DT_BIND_NOW, DF_BIND_NOW or DF_1_NOW: lazy binding, partial RELRO at best",
            "stack-clash": f"{self.status(prop)}: {switches}",
            "frame-pointers": f"{self.status(prop)}: {switches}",
            "cf-protection": f"{self.status(prop)}: GNU property note has no bits, and {switches}",
        }.get(prop, f"GNU property note lacks {prop} (has: {have})")

    def describe(self) -> str:
        extra = [f"{p}={self.status(p)}" for p in SWITCH_PROPERTIES if self.status(p) != "n/a"]
        return " ".join([
            f"{self.path}: {self.machine} {self.kind} relro={self.relro_level} stack-protector="
            f"{'yes' if self.has('stack-protector') else 'no'} fortify={self.fortify} features="
            + ("+".join(sorted(self.features)) or "none"),
            f"switches={'recorded' if self.switches.section else 'none'}", *extra])


def analyze(data: bytes, path: str = "<bytes>") -> ElfReport:
    """Read one ELF file (the whole file's bytes). Raises ValueError when it is not one we judge."""
    try:
        return _analyze(ELFFile(io.BytesIO(data)), path)
    except (ELFError, ConstructError) as exc:
        raise ValueError(f"{path}: not a readable ELF file: {exc}") from exc


def analyze_file(path: Path) -> ElfReport:
    return analyze(path.read_bytes(), str(path))


def _analyze(elf: ELFFile, path: str) -> ElfReport:
    e_type = elf.header["e_type"]
    if e_type not in {"ET_EXEC", "ET_DYN"}:
        raise ValueError(f"{path}: ELF type {e_type}, expected ET_EXEC or ET_DYN")
    tags = _dynamic_tags(elf)
    flags, flags_1 = tags.get("DT_FLAGS", 0), tags.get("DT_FLAGS_1", 0)
    interp = any(True for _ in elf.iter_segments("PT_INTERP")) and "DT_SONAME" not in tags
    kind: Kind = "exec" if e_type == "ET_EXEC" else "pie" if flags_1 & 0x08000000 or interp else "shared"
    imports = _imports(elf)
    chk = tuple(sorted(n for n in imports if _CHK.fullmatch(n)))
    plain = tuple(sorted(imports & ALWAYS_FORTIFIED))
    fortify: Fortify = "fortified" if chk else "missing" if plain else "none-fortifiable"
    machine = str(elf.header["e_machine"])
    return ElfReport(path=path, machine=machine, kind=kind,
        stack_protector=bool(imports & {"__stack_chk_fail", "__stack_chk_guard"}),
        fortify=fortify, chk_functions=chk, unfortified=plain,
        relro=any(True for _ in elf.iter_segments("PT_GNU_RELRO")),
        bind_now="DT_BIND_NOW" in tags or bool(flags & 0x8) or bool(flags_1 & 0x1),
        features=_features(elf, machine), switches=read_switches(elf))


def _dynamic_tags(elf: ELFFile) -> dict[str, int]:
    """d_tag name -> d_val of the PT_DYNAMIC segment (works on files without section headers)."""
    segs = [s for s in elf.iter_segments("PT_DYNAMIC") if isinstance(s, DynamicSegment)]
    return {str(t.entry.d_tag): int(t.entry.d_val) for s in segs for t in s.iter_tags()}


def _imports(elf: ELFFile) -> frozenset[str]:
    """Undefined dynamic symbols (.dynsym, else PT_DYNAMIC); statically linked: all .symtab names."""
    table = elf.get_section_by_name(".dynsym")
    segs = [s for s in elf.iter_segments("PT_DYNAMIC") if isinstance(s, DynamicSegment)]
    if isinstance(table, SymbolTableSection) or segs:
        symbols = table.iter_symbols() if isinstance(table, SymbolTableSection) else segs[0].iter_symbols()
        return frozenset(s.name for s in symbols if s.name and s["st_shndx"] == "SHN_UNDEF")
    symtab = elf.get_section_by_name(".symtab")
    static = symtab.iter_symbols() if isinstance(symtab, SymbolTableSection) else iter(())
    return frozenset(s.name for s in static if s.name)


def _features(elf: ELFFile, machine: str) -> frozenset[str]:
    if machine not in _FEATURES:
        return frozenset()
    _, pr_type, bits = _FEATURES[machine]
    notes = [n for seg in elf.iter_segments("PT_NOTE") if isinstance(seg, NoteSegment)
             for n in seg.iter_notes() if n["n_type"] == "NT_GNU_PROPERTY_TYPE_0" and n["n_name"] == "GNU"]
    values = [int(p["pr_data"]) for n in notes for p in n["n_desc"] if p["pr_type"] == pr_type]
    value = functools.reduce(operator.and_, values) if values else 0
    return frozenset(name for bit, name in bits.items() if value & bit)


@dataclass(frozen=True)
class Waiver:
    """A required property a set of files may lack, with the reason a reviewer reads."""

    property: str
    reason: str
    files: str = "*"  # fnmatch pattern on the path as passed to check_tree

    def __post_init__(self) -> None:
        if self.property not in PROPERTIES or not self.reason.strip():
            raise ValueError(f"waiver of {self.property!r} for {self.files!r}: needs a reason and one "
                             f"of {PROPERTIES}")

    def covers(self, path: str, prop: str) -> bool:
        return prop == self.property and fnmatch.fnmatchcase(path, self.files)


@dataclass(frozen=True)
class Policy:
    """Properties each file must have where they apply (pie: executables; ibt/shstk/bti/pac: arch;
    cf-protection: x86-64, aarch64). Requiring SWITCH_REQUIRED (``DEFAULT_REQUIRED | SWITCH_REQUIRED``
    or a part of it) needs files compiled with -frecord-gcc-switches: without the record they fail."""

    required: frozenset[str] = DEFAULT_REQUIRED
    waivers: tuple[Waiver, ...] = ()

    def __post_init__(self) -> None:
        if unknown := sorted(set(self.required) - set(PROPERTIES)):
            raise ValueError(f"unknown hardening properties {unknown}; known: {PROPERTIES}")


@dataclass(frozen=True)
class Failure:
    path: str
    property: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.property} missing ({self.detail})"


@dataclass(frozen=True)
class TreeResult:
    reports: tuple[ElfReport, ...]
    failures: tuple[Failure, ...]
    summary: str  # for the image label

    @property
    def ok(self) -> bool:
        return not self.failures


def check_report(report: ElfReport, policy: Policy) -> list[Failure]:
    return [Failure(report.path, prop, report.why_not(prop)) for prop in PROPERTIES
            if prop in policy.required and report.has(prop) is False
            and not any(w.covers(report.path, prop) for w in policy.waivers)]


def check_tree(files: Iterable[tuple[str, bytes]], policy: Policy | None = None) -> TreeResult:
    """Judge every (path, bytes); an empty tree fails (a wrong prefix must not pass silently)."""
    policy = policy or Policy()
    reports: list[ElfReport] = []
    failures: list[Failure] = []
    for path, data in files:
        try:
            report = analyze(data, path)
        except ValueError as exc:
            failures.append(Failure(path, "readable-elf", str(exc)))
        else:
            reports.append(report)
            failures += check_report(report, policy)
    if not reports and not failures:
        failures.append(Failure("<tree>", "elf-files", "no ELF files found under the Python prefix"))
    return TreeResult(tuple(reports), tuple(failures), summarize(reports))


def summarize(reports: Iterable[ElfReport]) -> str:
    """A label: weakest RELRO, the loader's AND of CPU features, counts, e.g. ``files=42 pie=no
    relro=full stack-protector=all fortify=30/42 fortify-none-fortifiable=12 cet=ibt+shstk
    switches=all stack-clash=all frame-pointers=40/42 cf-protection=unknown``. Counts are of files
    shown to have it; ``unknown``: no file could show it (switches: files with the record)."""
    reps = list(reports)
    n = len(reps)
    parts = [f"files={n}"]
    if pies := {r.kind == "pie" for r in reps if r.kind != "shared"}:
        parts.append("pie=" + ("mixed" if len(pies) > 1 else "yes" if True in pies else "no"))
    if reps:
        parts.append("relro=" + min((r.relro_level for r in reps), key=("none", "partial", "full").index))
        for key, k in (("stack-protector", sum(bool(r.has("stack-protector")) for r in reps)),
                       ("fortify", sum(r.fortify == "fortified" for r in reps))):
            parts.append(f"{key}=" + ("all" if k == n else f"{k}/{n}"))
        if unneeded := sum(r.fortify == "none-fortifiable" for r in reps):
            parts.append(f"fortify-none-fortifiable={unneeded}")
    for machine, (key, _, _) in _FEATURES.items():
        if sets := [r.features for r in reps if r.machine == machine]:
            parts.append(f"{key}=" + ("+".join(sorted(frozenset.intersection(*sets))) or "none"))
    if reps:
        k = sum(r.switches.section for r in reps)
        parts.append("switches=" + ("all" if k == n else "none" if not k else f"{k}/{n}"))
    for prop in SWITCH_PROPERTIES:
        if statuses := [s for r in reps if (s := r.status(prop)) != "n/a"]:
            k, m = statuses.count("yes"), len(statuses)
            value = "all" if k == m else "unknown" if statuses.count("unknown") == m else f"{k}/{m}"
            parts.append(f"{prop}={value}")
    return " ".join(parts)


class _Chunks:
    """read() over an iterable of byte chunks: all that tarfile's stream mode ("r|*") calls."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks, self._buf = iter(chunks), bytearray()

    def read(self, size: int) -> bytes:
        while len(self._buf) < size and (chunk := next(self._chunks, None)) is not None:
            self._buf += chunk
        out = bytes(self._buf[:size])
        del self._buf[:size]
        return out


def files_from_tar(stream: IO[bytes] | Iterable[bytes], prefix: str) -> Iterator[tuple[str, bytes]]:
    """Yield (path relative to the Python prefix, bytes) for the ELF files of the checked layout:
    ``bin/python3.X``, ``lib/libpython*.so*``, ``lib/python3.X/lib-dynload/*.so``.

    ``stream``: a tar stream (file object or iterable of chunks), read once front to back. ``prefix``:
    where the Python prefix sits in the archive: the image path for ``container.export()``
    (``/opt/org/python/3.13``), its last component for ``get_archive("/opt/org/python/3.13")``
    (``3.13``), ``""`` for an archive of its contents. ELF by magic bytes; symlinks are skipped
    (their targets are checked); hard links yield their target's bytes.
    """
    fileobj = cast("IO[bytes]", stream if hasattr(stream, "read") else _Chunks(stream))
    root = prefix.strip("/")
    elves: dict[str, bytes] = {}  # archive name -> bytes, for hard links later in the stream
    with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
        for member in tar:
            name = _norm(member.name)
            rel = name if not root else name[len(root) + 1:] if name.startswith(root + "/") else None
            if rel is None or not (member.isreg() or member.islnk()):
                continue
            if member.islnk():
                data = elves.get(_norm(member.linkname), b"")
            else:
                handle = tar.extractfile(member)
                head = handle.read(4) if handle else b""
                data = head + handle.read() if handle and head == ELF_MAGIC else b""
                elves.update({name: data} if data else {})
            if data and _LAYOUT.fullmatch(rel):
                yield rel, data


def _norm(name: str) -> str:
    return (name[2:] if name.startswith("./") else name).lstrip("/")

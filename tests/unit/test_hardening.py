"""interpreter-hardening: each property is read from real ELF files that the host's gcc (and, when
installed, aarch64-linux-gnu-gcc) compiles at test time with and without the hardening flags."""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.smoke import elf
from orchestrator.smoke.elf import (
    SWITCH_REQUIRED,
    Failure,
    Policy,
    Waiver,
    analyze,
    check_report,
    check_tree,
    files_from_tar,
)
from orchestrator.smoke.gcc_switches import Switches, parse_switches
from tests import require
from tests.require import require_tool

# A stack array (stack protector), a printf and a strcpy into a known-size buffer (FORTIFY).
PROG = r"""
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
  char buf[64]; strcpy(buf, argv[0]); printf("%s %d\n", buf, argc); return 0; }
"""
LIB = r"""
#include <stdio.h>
#include <string.h>
int spam_format(char *out, int x) { char buf[32]; snprintf(buf, sizeof buf, "%d-%d", x, x); strcpy(out, buf);
                                    return printf("%s %d\n", buf, x); }
"""
# memcpy of an unknown size stays memcpy under FORTIFY: nothing to fortify, nothing to protect.
COPY_ONLY = r"""
#include <string.h>
void spam_copy(char *d, const char *s, unsigned long n) { memcpy(d, s, n); }
"""
COMPILE_HARDENED = ["-O2", "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2"]
HARDENED = COMPILE_HARDENED + ["-Wl,-z,relro,-z,now", "-fcf-protection"]
ARM_HARDENED = COMPILE_HARDENED + ["-Wl,-z,relro,-z,now", "-mbranch-protection=standard"]
ARM_PLAIN = ["-O2", "-fno-stack-protector", "-U_FORTIFY_SOURCE", "-Wl,-z,norelro,-z,lazy"]
PLAIN = ARM_PLAIN + ["-fcf-protection=none"]
EXE_PIE, EXE_NO_PIE, SHARED = ["-fPIE", "-pie"], ["-fno-pie", "-no-pie"], ["-fPIC", "-shared"]
DYNLOAD = "lib/python3.13/lib-dynload/_spam.cpython-313-x86_64-linux-gnu.so"

Compile = Callable[[str, list[str]], bytes]


def _compiler(cc: str, tmp: Path) -> Compile:
    def compile_(source: str, flags: list[str]) -> bytes:
        n = len(list(tmp.iterdir()))
        src, out = tmp / f"s{n}.c", tmp / f"o{n}"
        src.write_text(source)
        subprocess.run([cc, *flags, str(src), "-o", str(out)], check=True, capture_output=True, timeout=60)
        return out.read_bytes()
    return compile_


def _run(*cmd: str | Path) -> None:
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True, timeout=60)


def _link(cc: str, tmp: Path, units: list[tuple[str, list[str]]], flags: list[str]) -> bytes:
    """Compile each (source, flags) to an object, link them with ``flags``, strip --strip-unneeded."""
    n = len(list(tmp.iterdir()))
    objs = []
    for i, (source, unit_flags) in enumerate(units):
        src, obj = tmp / f"u{n}_{i}.c", tmp / f"u{n}_{i}.o"
        src.write_text(source)
        _run(cc, *unit_flags, "-c", src, "-o", obj)
        objs.append(obj)
    out = tmp / f"l{n}.so"
    _run(cc, *flags, *objs, "-o", out)
    _run(cc.replace("gcc", "strip"), "--strip-unneeded", out)
    return out.read_bytes()


@pytest.fixture(scope="module")
def gcc(tmp_path_factory: pytest.TempPathFactory) -> Compile:
    require_tool("gcc", require.GCC)
    return _compiler("gcc", tmp_path_factory.mktemp("gcc"))


@pytest.fixture(scope="module")
def arm_gcc(tmp_path_factory: pytest.TempPathFactory) -> Compile:
    require_tool("aarch64-linux-gnu-gcc", require.ARM64_GCC)
    return _compiler("aarch64-linux-gnu-gcc", tmp_path_factory.mktemp("arm"))


@pytest.mark.spawns("gcc")
def test_hardened_pie_has_every_property(gcc: Compile) -> None:
    r = analyze(gcc(PROG, HARDENED + EXE_PIE), "bin/python3.13")
    assert (r.machine, r.kind, r.stack_protector, r.fortify) == ("EM_X86_64", "pie", True, "fortified")
    assert {"__printf_chk", "__strcpy_chk"} <= set(r.chk_functions) and not r.unfortified
    assert (r.relro, r.bind_now, r.relro_level) == (True, True, "full")
    assert all(r.has(p) for p in ("pie", "stack-protector", "fortify", "relro", "bind-now"))
    assert r.has("bti") is None and r.has("pac") is None  # not an aarch64 file


@pytest.mark.spawns("gcc")
def test_unhardened_executable_lacks_each_property(gcc: Compile) -> None:
    r = analyze(gcc(PROG, PLAIN + EXE_NO_PIE), "bin/python3.13")
    assert (r.kind, r.stack_protector, r.fortify, r.chk_functions) == ("exec", False, "missing", ())
    assert "printf" in r.unfortified
    assert (r.relro, r.bind_now, r.relro_level, r.features) == (False, False, "none", frozenset())
    assert [p for p in elf.PROPERTIES if r.has(p) is False] == [
        "pie", "stack-protector", "fortify", "relro", "bind-now", "ibt", "shstk", "stack-clash",
        "frame-pointers", "cf-protection"]
    assert r.switches == Switches() and r.status("stack-clash") == "unknown"  # no record: not "no"


@pytest.mark.spawns("gcc")
def test_lazy_binding_is_partial_relro(gcc: Compile) -> None:
    r = analyze(gcc(LIB, COMPILE_HARDENED + ["-Wl,-z,relro,-z,lazy"] + SHARED))
    assert (r.kind, r.relro, r.bind_now, r.relro_level) == ("shared", True, False, "partial")
    assert r.has("pie") is None  # shared objects are position-independent by construction
    assert "DF_1_NOW" in r.why_not("bind-now")


@pytest.mark.spawns("gcc")
def test_nothing_fortifiable_is_not_missing(gcc: Compile) -> None:
    for flags in (HARDENED, PLAIN):
        r = analyze(gcc(COPY_ONLY, flags + SHARED))
        assert (r.fortify, r.has("fortify"), r.stack_protector) == ("none-fortifiable", True, False)


@pytest.mark.spawns("gcc")
@pytest.mark.parametrize(("mode", "features"), [
    ("full", {"ibt", "shstk"}), ("branch", {"ibt"}), ("return", {"shstk"}), ("none", set())])
def test_cet_bits_from_the_gnu_property_note(gcc: Compile, mode: str, features: set[str]) -> None:
    # -nostartfiles: Debian 12's crti.o/crtn.o carry no property note, so with them the linker
    # (rightly) drops IBT/SHSTK from every output; without them every input is marked.
    r = analyze(gcc(COPY_ONLY, ["-O2", f"-fcf-protection={mode}", "-nostartfiles"] + SHARED))
    assert r.features == features
    assert r.has("ibt") is ("ibt" in features) and r.has("shstk") is ("shstk" in features)


def _tree(exe: bytes, so: bytes) -> list[tuple[str, bytes]]:
    return [("bin/python3.13", exe), (DYNLOAD, so)]


@pytest.mark.spawns("gcc")
def test_tree_fails_naming_the_unhardened_extension_and_each_property(gcc: Compile) -> None:
    result = check_tree(_tree(gcc(PROG, HARDENED + EXE_PIE), gcc(LIB, PLAIN + SHARED)))
    assert not result.ok
    assert [(f.path, f.property) for f in result.failures] == [
        (DYNLOAD, "stack-protector"), (DYNLOAD, "fortify"), (DYNLOAD, "relro"), (DYNLOAD, "bind-now")]
    assert str(result.failures[1]) == (
        f"{DYNLOAD}: fortify missing (no __*_chk imports, but calls printf, snprintf)")
    assert result.summary.startswith("files=2 pie=yes relro=none stack-protector=1/2 fortify=1/2 ")


@pytest.mark.spawns("gcc")
def test_tree_passes_when_hardened(gcc: Compile) -> None:
    cet = ["-nostartfiles"]  # see test_cet_bits_from_the_gnu_property_note
    result = check_tree(_tree(gcc(PROG, HARDENED + EXE_PIE), gcc(LIB, HARDENED + SHARED + cet)),
                        Policy(required=elf.DEFAULT_REQUIRED | {"pie"}))
    assert result.ok, result.failures
    assert result.summary == (  # the PIE's crt1.o has no CET note; the .so's is cf-protection's proof
        "files=2 pie=yes relro=full stack-protector=all fortify=all cet=none switches=none "
        "stack-clash=unknown frame-pointers=unknown cf-protection=1/2")
    cet_only = check_tree([(DYNLOAD, gcc(LIB, HARDENED + SHARED + cet))],
                          Policy(required=frozenset({"ibt", "shstk"})))
    assert cet_only.ok and " cet=ibt+shstk " in cet_only.summary


@pytest.mark.spawns("gcc")
def test_policy_pie_applies_to_executables_and_waivers_need_a_reason(gcc: Compile) -> None:
    tree = _tree(gcc(PROG, HARDENED + EXE_NO_PIE), gcc(COPY_ONLY, PLAIN + SHARED))
    result = check_tree(tree, Policy(required=frozenset({"pie", "stack-protector"})))
    assert [str(f) for f in result.failures] == [
        "bin/python3.13: pie missing (ET_EXEC: linked -no-pie)",
        f"{DYNLOAD}: stack-protector missing (imports neither __stack_chk_fail nor __stack_chk_guard, "
        "and no .GCC.command.line section to show -fstack-protector-strong, -all or -fstack-protector "
        "(compile with -frecord-gcc-switches))"]
    waived = Policy(required=frozenset({"pie", "stack-protector"}), waivers=(
        Waiver("pie", "start-up time: build.pie is false"),
        Waiver("stack-protector", "one memcpy, no stack buffer", files="*/lib-dynload/_spam.*.so")))
    assert check_tree(tree, waived).ok
    with pytest.raises(ValueError, match="needs a reason"):
        Waiver("pie", " ")
    with pytest.raises(ValueError, match="unknown hardening properties"):
        Policy(required=frozenset({"stack-smashing"}))


def test_unreadable_files_and_an_empty_tree_fail() -> None:
    bad = check_tree([("bin/python3.13", b"\x7fELF\x02\x01garbage")])
    assert [(f.path, f.property) for f in bad.failures] == [("bin/python3.13", "readable-elf")]
    empty = check_tree([])
    assert [f.property for f in empty.failures] == ["elf-files"]


def _tar(members: dict[str, bytes | str], hardlinks: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
        for name, target in hardlinks.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.LNKTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def _chunks(data: bytes, size: int = 777) -> Iterator[bytes]:
    return (data[i:i + size] for i in range(0, len(data), size))


@pytest.mark.spawns("gcc")
@pytest.mark.parametrize(("root", "prefix"), [
    ("opt/org/python/3.13/", "/opt/org/python/3.13"),  # container.export()
    ("3.13/", "3.13"),  # container.get_archive("/opt/org/python/3.13")
    ("./", ""),  # an archive of the prefix's contents
])
def test_files_from_tar_yields_the_layout_by_magic(gcc: Compile, root: str, prefix: str) -> None:
    exe, so = gcc(PROG, HARDENED + EXE_PIE), gcc(COPY_ONLY, HARDENED + SHARED)
    dynload = "lib/python3.13/lib-dynload/"
    members: dict[str, bytes | str] = {
        "usr/bin/python3.11": exe,  # outside the prefix (export case)
        root + "bin/python3.13": exe, root + "bin/python3": "python3.13", root + "bin/pip3": b"#!/bin/sh\n",
        root + "lib/libpython3.13.so.1.0": so, root + "lib/libpython3.13.so": "libpython3.13.so.1.0",
        root + dynload + "_ssl.cpython-313-x86_64-linux-gnu.so": so,
        root + dynload + "notes.so": b"not an ELF file",
        root + "lib/python3.13/site-packages/x.so": so,  # not part of the checked layout
    }
    if root == "./":
        del members["usr/bin/python3.11"]
    ssl = root + dynload + "_ssl.cpython-313-x86_64-linux-gnu.so"
    data = _tar(members, {root + dynload + "_hard.so": ssl})  # a hard link, after its target
    for stream in (io.BytesIO(data), _chunks(data)):
        got = dict(files_from_tar(stream, prefix))
        assert sorted(got) == ["bin/python3.13", "lib/libpython3.13.so.1.0", dynload + "_hard.so",
                               dynload + "_ssl.cpython-313-x86_64-linux-gnu.so"]
        assert got["bin/python3.13"] == exe and got[dynload + "_hard.so"] == so


@pytest.mark.spawns("aarch64-linux-gnu-gcc")
def test_arm64_stack_protector_and_branch_protection(arm_gcc: Compile) -> None:
    r = analyze(arm_gcc(PROG, ARM_HARDENED + EXE_PIE))
    assert (r.machine, r.kind, r.stack_protector, r.fortify, r.relro_level) == (
        "EM_AARCH64", "pie", True, "fortified", "full")
    assert r.has("ibt") is None
    lib = analyze(arm_gcc(LIB, ARM_HARDENED + ["-nostartfiles"] + SHARED))
    assert lib.features == {"bti", "pac"} and lib.stack_protector
    plain = arm_gcc(LIB, ARM_PLAIN + ["-mbranch-protection=none"] + SHARED)
    assert analyze(plain).features == frozenset()
    result = check_tree([(DYNLOAD, plain)], Policy(required=elf.DEFAULT_REQUIRED | {"bti"}))
    assert [f.property for f in result.failures] == ["stack-protector", "fortify", "relro", "bind-now", "bti"]
    assert " branch-protection=none " in result.summary


def test_debian_python311_is_non_pie_with_stack_protector_and_fortify() -> None:
    exe = Path("/usr/bin/python3.11")
    if not exe.is_file():
        require.unavailable(f"no {exe} on this host", "Debian 12's python3: apt-get install python3.11")
    r = elf.analyze_file(exe)
    assert (r.kind, r.stack_protector, r.fortify, r.relro_level) == ("exec", True, "fortified", "partial")
    assert len(r.chk_functions) >= 10
    failures = check_tree([("bin/python3.11", exe.read_bytes())]).failures
    assert failures == (Failure("bin/python3.11", "bind-now", r.why_not("bind-now")),)



# -frecord-gcc-switches (.GCC.command.line): what the record shows, on files strip --strip-unneeded.
ADD = "int spam_add(int a, int b) { return a + b; }\n"  # no array, no address taken: no canary
VLA = "extern void use(char *);\nint spam_vla(int n) { char b[n]; use(b); return b[0]; }\n"
RECORD = ["-frecord-gcc-switches"]
NOW = ["-Wl,-z,relro,-z,now"]
Link = Callable[[list[tuple[str, list[str]]], list[str]], bytes]


def _linker(cc: str, tmp_path_factory: pytest.TempPathFactory) -> Link:
    require_tool(cc, require.GCC if cc == "gcc" else require.ARM64_GCC)
    tmp = tmp_path_factory.mktemp(cc)
    return lambda units, flags: _link(cc, tmp, units, flags)


@pytest.fixture(scope="module")
def link(tmp_path_factory: pytest.TempPathFactory) -> Link:
    return _linker("gcc", tmp_path_factory)


@pytest.fixture(scope="module")
def arm_link(tmp_path_factory: pytest.TempPathFactory) -> Link:
    return _linker("aarch64-linux-gnu-gcc", tmp_path_factory)


@pytest.mark.spawns("gcc", "strip")
def test_record_survives_strip_one_string_per_unit_identical_ones_merged(link: Link) -> None:
    hard = ["-O2", "-fPIC", "-fstack-protector-strong", "-fstack-clash-protection", *RECORD]
    soft = ["-O0", "-fPIC", "-fno-stack-protector", *RECORD]
    r = analyze(link([(ADD, hard), (COPY_ONLY, soft), (LIB, hard)], SHARED))
    assert r.switches.section and len(r.switches.strings) == 2  # the two hard units: one string
    assert all(s.startswith("GNU C17 ") for s in r.switches.strings)
    assert r.switches.units == r.switches.strings and not r.switches.lto_units
    assert {"-O2", "-O0", "-fstack-clash-protection", "-fno-stack-protector"} <= r.switches.options
    assert r.status("stack-clash") == "no"  # per unit, not "seen somewhere"
    assert r.why_not("stack-clash").startswith(
        "no: 1 of 2 recorded units lack -fstack-clash-protection: 'GNU C17 ")
    assert r.stack_protector and r.recorded("stack-protector")[0] == "no"  # LIB: import; -O0 unit: -fno-


@pytest.mark.spawns("gcc", "strip")
def test_small_module_without_arrays_passes_stack_protector_only_with_the_record(link: Link) -> None:
    flags = ["-O2", "-fPIC", "-fstack-protector-strong"]
    recorded = link([(ADD, flags + RECORD)], SHARED + NOW)
    r = analyze(recorded, DYNLOAD)
    assert not r.stack_protector and r.has("stack-protector")  # no import, but every unit recorded -strong
    assert r.fortify == "none-fortifiable" and check_tree([(DYNLOAD, recorded)]).ok
    bare = analyze(link([(ADD, flags)], SHARED + NOW), DYNLOAD)
    assert bare.switches == Switches() and bare.has("stack-protector") is False
    assert [str(f) for f in check_report(bare, Policy())] == [
        f"{DYNLOAD}: stack-protector missing (imports neither __stack_chk_fail nor __stack_chk_guard, and "
        "no .GCC.command.line section to show -fstack-protector-strong, -all or -fstack-protector "
        "(compile with -frecord-gcc-switches))"]


@pytest.mark.spawns("gcc", "strip")
@pytest.mark.parametrize(("flags", "prop", "status"), [
    (["-fstack-protector"], "stack-protector", "yes"),
    (["-fstack-protector-all", "-fno-stack-protector"], "stack-protector", "no"),  # last one wins
    (["-fstack-protector-explicit"], "stack-protector", "no"),
    (["-fstack-clash-protection"], "stack-clash", "yes"),
    (["-fstack-clash-protection", "-fno-stack-clash-protection"], "stack-clash", "no"),
    ([], "stack-clash", "no"),
    (["-fno-omit-frame-pointer"], "frame-pointers", "yes"),
    (["-fno-omit-frame-pointer", "-fomit-frame-pointer"], "frame-pointers", "no"),
    (["-fcf-protection"], "cf-protection", "yes"),  # recorded as =full
    (["-fcf-protection=return"], "cf-protection", "yes"),  # crt files: no note bits, the record shows it
    (["-fcf-protection=none"], "cf-protection", "no"),
])
def test_each_recorded_flag_on_x86_64(link: Link, flags: list[str], prop: str, status: str) -> None:
    r = analyze(link([(COPY_ONLY, ["-O2", "-fPIC", *flags, *RECORD])], SHARED))
    assert (r.status(prop), r.features) == (status, frozenset())
    unrecorded = analyze(link([(COPY_ONLY, ["-O2", "-fPIC", *flags])], SHARED))
    assert unrecorded.status(prop) == ("no" if prop == "stack-protector" else "unknown")
    assert unrecorded.has(prop) is False  # unknown is never a pass


@pytest.mark.spawns("gcc", "strip")
def test_gcc_records_no_fortify_define_so_fortify_stays_import_based(link: Link) -> None:
    r = analyze(link([(LIB, ["-O2", "-fPIC", "-D_FORTIFY_SOURCE=2", *RECORD])], SHARED))
    assert not any("FORTIFY" in o for o in r.switches.options) and r.switches.section
    assert (r.fortify, r.recorded("fortify")[0]) == ("fortified", "no")


@pytest.mark.parametrize(("unit", "fortify"), [
    ("-O2 -D_FORTIFY_SOURCE=2", "yes"), ("-Og -D_FORTIFY_SOURCE=3", "yes"), ("-D_FORTIFY_SOURCE=2", "no"),
    ("-O2 -O0 -D_FORTIFY_SOURCE=2", "no"), ("-O2 -D_FORTIFY_SOURCE=1", "no"),
    ("-O2 -D_FORTIFY_SOURCE=2 -U_FORTIFY_SOURCE", "no"),
])
def test_fortify_rule_for_a_toolchain_that_records_defines(unit: str, fortify: str) -> None:
    assert parse_switches(f"GNU C17 12.2.0 {unit}\0".encode()).verdict("fortify", "EM_X86_64")[0] == fortify


def test_undelimitable_or_link_time_records_are_unknown_never_a_pass() -> None:
    old = parse_switches(b"-O2\0-fstack-clash-protection\0")  # GCC < 11: one option a string, merged
    assert old.verdict("stack-clash", "EM_X86_64")[0] == "unknown" and old.unparsed
    assert parse_switches(b"").verdict("stack-clash", "EM_X86_64")[0] == "unknown"
    lto = parse_switches(b"GNU GIMPLE 12.2.0 -O2 -fstack-clash-protection -fcf-protection=full -fltrans\0")
    assert lto.verdict("stack-clash", "EM_X86_64")[0] == "unknown"
    assert lto.verdict("cf-protection", "EM_X86_64")[0] == "yes"  # merged by lto-wrapper: trusted
    mixed = parse_switches(b"GNU C17 12.2.0 -O2\0GNU GIMPLE 12.2.0 -O2 -fstack-clash-protection\0")
    assert mixed.verdict("stack-clash", "EM_X86_64")[0] == "no"


@pytest.mark.spawns("gcc", "strip")
def test_lto_records_the_link_time_options_not_the_functions_own(link: Link) -> None:
    lto = ["-O2", "-fPIC", "-flto", *RECORD]
    data = link([(PROG.replace("main", "spam_main"), lto + ["-fno-stack-protector"])],
                SHARED + lto + ["-fstack-protector-strong"])
    r = analyze(data)
    assert not r.stack_protector  # compiled without: no canary, although the link line had -strong
    assert "-fstack-protector-strong" in r.switches.options and r.switches.lto_units
    assert r.has("stack-protector") is False and "link-time" in r.why_not("stack-protector")


@pytest.mark.spawns("gcc", "strip")
def test_policy_requires_the_recorded_properties(link: Link) -> None:
    full = ["-O2", "-fPIC", "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2", "-fstack-clash-protection",
            "-fno-omit-frame-pointer", "-fcf-protection"]
    policy = Policy(required=elf.DEFAULT_REQUIRED | SWITCH_REQUIRED)
    hardened = check_tree([(DYNLOAD, link([(ADD, full + RECORD), (VLA, full + RECORD)], SHARED + NOW))],
                          policy)
    assert hardened.ok, hardened.failures
    assert hardened.summary.endswith(
        " cet=none switches=all stack-clash=all frame-pointers=all cf-protection=all")
    bare = check_tree([(DYNLOAD, link([(ADD, full), (VLA, full)], SHARED + NOW))], policy)
    assert [(f.property, f.detail.split(":")[0]) for f in bare.failures] == [
        ("stack-clash", "unknown"), ("frame-pointers", "unknown"), ("cf-protection", "unknown")]
    assert "no .GCC.command.line section to show -fstack-clash-protection" in bare.failures[0].detail
    assert check_tree([(DYNLOAD, link([(ADD, full), (VLA, full)], SHARED + NOW))]).ok  # default policy
    assert bare.summary.endswith(" switches=none stack-clash=unknown frame-pointers=unknown "
                                 "cf-protection=unknown")


@pytest.mark.spawns("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-strip")
def test_arm64_recorded_branch_protection_stack_clash_and_frame_pointers(arm_link: Link) -> None:
    flags = ["-O2", "-fPIC", "-fstack-clash-protection", "-fno-omit-frame-pointer", *RECORD]
    r = analyze(arm_link([(ADD, flags + ["-mbranch-protection=standard"])], SHARED + NOW))
    assert r.machine == "EM_AARCH64" and r.switches.section
    assert [r.status(p) for p in ("stack-clash", "frame-pointers", "cf-protection")] == ["yes"] * 3
    assert r.has("bti") is False  # Debian 12's aarch64 crt files carry no note either
    for branch, status in (("pac-ret+leaf", "yes"), ("bti", "yes"), ("none", "no")):
        other = analyze(arm_link([(ADD, flags + [f"-mbranch-protection={branch}"])], SHARED))
        assert other.status("cf-protection") == status, branch
    bare = analyze(arm_link([(ADD, ["-O2", "-fPIC", "-mbranch-protection=standard"])], SHARED))
    assert bare.status("cf-protection") == "unknown" and bare.has("cf-protection") is False
    assert r.has("ibt") is None and analyze(arm_link([(ADD, flags)], SHARED)).status("cf-protection") == "no"

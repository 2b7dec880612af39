"""The clang toolchain option (issue 33 item 3): profiles.*.toolchain clang with ThinLTO, PGO
through llvm-profdata, bolt, tail_call and jit; what validation refuses (one line each, all of
them), what the Dockerfiles get (a build-deps-clang stage picked by a build arg, the options per
minor, cross compiles untouched), the optimizations label, the JIT smoke check, clang's
-frecord-gcc-switches records, and scripts/pgo-check-clang.sh run on a stand-in build tree."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest

from orchestrator import naming, render
from orchestrator.config import loader
from orchestrator.config.build import llvm_for
from orchestrator.config.matrix import Cell
from orchestrator.config.model import Loaded
from orchestrator.errors import ConfigError
from orchestrator.lock.lockfile import Lock
from orchestrator.planning import plan
from orchestrator.smoke import gcc_switches, suite
from tests.unit.helpers import REPO, TODAY, edit, run_cli
from tests.unit.test_render import _copy_repo, _render_repo_with

RELEASE = "  release: {pgo: true, lto: true}      # what gets published\n"
CLANG_PROFILES = (RELEASE + "  clang-fast: {pgo: false, lto: false, toolchain: clang, tail_call: "
                  "true, jit: yes-off}\n  clang-release: {pgo: true, lto: true, toolchain: clang, "
                  "bolt: true}\n")
CHECK = REPO / "stages" / "scripts" / "pgo-check-clang.sh"


def _config(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    cfg = _copy_repo(tmp_path)
    text = cfg.read_text()
    for old, new in edits:
        text = edit(text, old, new)
    cfg.write_text(text)
    return cfg


def _problems(tmp_path: Path, *edits: tuple[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        loader.load(_config(tmp_path, *edits), today=TODAY)
    return str(info.value)


# ------------------------------------------------------------------------ validation


def test_clang_profiles_validate_and_warn_which_minors_lack_the_314_options(tmp_path: Path) -> None:
    loaded = loader.load(_config(tmp_path, (RELEASE, CLANG_PROFILES)), today=TODAY)
    prof = loaded.config.profiles["clang-fast"]
    assert (prof.toolchain, prof.tail_call, prof.jit, prof.bolt) == ("clang", True, "yes-off", False)
    assert any("profiles.clang-fast.tail_call" in w and "3.12, 3.13 are compiled without it" in w
               for w in loaded.warnings), loaded.warnings
    assert llvm_for(loaded.config.build, "bookworm") == 19


def test_every_toolchain_problem_is_reported_one_line_each(tmp_path: Path) -> None:
    bad = (RELEASE + "  gcc-bolt: {pgo: true, lto: true, bolt: true}\n"
           "  clang-jit: {pgo: false, lto: false, toolchain: clang, jit: yes-off, bolt: true}\n")
    text = _problems(tmp_path, (RELEASE, bad),
                     ("  output_dir: generated\n", "  output_dir: generated\n  native_platform: "
                      "linux/arm64\n  llvm: {trixie: 16, noble: null, sid: 19}\n"))
    lines = text.splitlines()
    for key, words in (
            ("profiles.gcc-bolt.bolt", "needs the clang toolchain"),
            ("profiles.clang-jit.jit", "needs LLVM 19 and trixie's archive has LLVM 16"),
            ("profiles.clang-jit.toolchain", "no LLVM version is known for noble's archive"),
            ("profiles.clang-jit.bolt", "x86-64 only"),
            ("build.llvm.sid", 'unknown distro "sid"')):
        hits = [x for x in lines if key in x and words in x]
        assert len(hits) == 1, (key, text)
        assert "images.yaml" in hits[0] and ":" in hits[0]


def test_tail_call_on_no_314_compile_and_clang_without_a_compile_are_refused(
        tmp_path: Path) -> None:
    text = _problems(tmp_path, (RELEASE, CLANG_PROFILES),
                     ("exclude:\n", 'exclude:\n  - {python: "3.14", method: source}\n'))
    assert "profiles.clang-fast.tail_call" in text and "every source compile here is of 3.12, 3.13" in text
    assert "profiles.clang-fast.jit" in text
    other = tmp_path / "other"
    other.mkdir()
    text = _problems(other, (RELEASE, CLANG_PROFILES),
                     ("exclude:\n", "exclude:\n  - {method: source}\n"))
    assert "profiles.clang-fast.toolchain" in text and "deadsnakes installs the PPA's own build" in text


def test_the_cli_exits_2_naming_file_key_and_fix(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path, (RELEASE, RELEASE + "  t: {pgo: false, lto: false, tail_call: true}\n"))
    code, _out, err = run_cli(["validate", "--config", str(cfg)], capsys)
    assert code == 2
    assert re.search(r"images\.yaml:\d+: profiles\.t\.tail_call: .*needs the clang toolchain.*"
                     r"add toolchain: clang to profiles\.t", err), err


# ------------------------------------------------------------------------ rendering


def test_without_a_clang_profile_nothing_of_clang_is_rendered(tmp_path: Path) -> None:
    _loaded, _lock, files = _render_repo_with(tmp_path)
    text = b"".join(files.values()).decode()
    assert "build-deps-clang" not in text and "PYTHON_CLANG" not in text
    assert not [p for p in files if p.name in naming.CLANG_SCRIPTS]


def test_clang_profiles_render_the_clang_stage_and_the_options_per_minor(tmp_path: Path) -> None:
    loaded, _lock, files = _render_repo_with(tmp_path, (RELEASE, CLANG_PROFILES))
    bookworm = files[Path("bookworm/Dockerfile")].decode()
    assert bookworm.index('ARG PYTHON_BUILD_DEPS="build-deps"') < bookworm.index("\nFROM ")
    stage = bookworm[bookworm.index("AS build-deps-clang"):]
    stage = stage[:stage.index("\nFROM ")]
    # python3: the JIT's build script (Tools/jit/build.py) needs a whole stdlib, not
    # python3-minimal's (a real clang-fast build failed on "No module named 'shlex'")
    assert re.findall(r"\b(clang-19|llvm-19|lld-19|bolt-19|python3) \\", stage) == [
        "clang-19", "llvm-19", "lld-19", "bolt-19", "python3"]
    compiles = {name: parent for parent, name in
                re.findall(r"^FROM (\S+) AS (python-3\.1\dt?-source)$", bookworm, re.M)}
    assert set(compiles) == {"python-3.12-source", "python-3.13-source", "python-3.14-source"}
    assert set(compiles.values()) == {"${PYTHON_BUILD_DEPS}"}
    for minor in ("3.12", "3.13", "3.14"):
        body = bookworm[bookworm.index(f"AS python-{minor}-source\n"):]
        body = body[:body.index("\nFROM ")]
        assert "ARG PYTHON_CLANG=" in body and ". /usr/src/scripts/clang-toolchain.sh" in body
        assert ("ARG PYTHON_TAIL_CALL=" in body) == (minor == "3.14")
        assert ("ARG PYTHON_JIT=" in body) == (minor == "3.14")
        assert "${TOOLCHAIN_CONFIGURE}" in body and "${PYTHON_LTO:+--with-lto}" not in body
        assert "pgo-check-clang.sh" in body
    cross = bookworm[bookworm.index("AS python-3.14-source-cross-arm64"):]
    cross = cross[:cross.index("\nFROM ")]
    assert "FROM build-deps-cross-arm64 AS" in bookworm and "clang" not in cross
    assert "${PYTHON_LTO:+--with-lto}" in cross
    assert {p.name for p in files if p.parts[0] == "bookworm" and p.name in naming.CLANG_SCRIPTS} \
        == set(naming.CLANG_SCRIPTS)
    args = render.profile_args(loaded.config, "clang-release")
    assert {k: args[k] for k in args if k.startswith("PYTHON_") and k not in (
        "PYTHON_PGO", "PYTHON_LTO", "PYTHON_EXTRA_CFLAGS", "PYTHON_PROFILE_CONFIGURE")} == {
        "PYTHON_BUILD_DEPS": "build-deps-clang", "PYTHON_CLANG": "1", "PYTHON_BOLT": "1",
        "PYTHON_TAIL_CALL": "", "PYTHON_JIT": ""}
    assert render.profile_args(loaded.config, "release")["PYTHON_BUILD_DEPS"] == "build-deps"


def test_profile_args_are_unchanged_without_clang(repo_loaded: Loaded) -> None:
    assert set(render.profile_args(repo_loaded.config, "release")) == {
        "PYTHON_PGO", "PYTHON_LTO", "PYTHON_EXTRA_CFLAGS", "PYTHON_PROFILE_CONFIGURE"}


# ------------------------------------------------------------------------ label, smoke


def test_the_optimizations_label_says_toolchain_and_options_per_platform(tmp_path: Path) -> None:
    loaded = loader.load(_config(tmp_path, (RELEASE, CLANG_PROFILES)), today=TODAY)
    c = loaded.config

    def opts(cell: str, profile: str) -> dict[str, str] | None:
        minor, method, distro, variant = cell.split("/")
        return plan.optimizations_for(c, Cell(minor, method, distro, variant), profile)

    assert opts("3.14/source/bookworm/runtime", "clang-release") == {
        "linux/amd64": "clang+pgo+thinlto+bolt", "linux/arm64": "lto"}
    assert opts("3.14/source/bookworm/runtime", "clang-fast") == {
        "linux/amd64": "clang+tail-call+jit-yes-off", "linux/arm64": "none"}
    assert opts("3.13/source/bookworm/runtime", "clang-fast")["linux/amd64"] == "clang"  # type: ignore[index]
    assert opts("3.13/python-build/bookworm/runtime", "clang-release") == {"linux/amd64": "pgo+lto"}
    assert opts("3.14/source/bookworm/runtime", "release") == {
        "linux/amd64": "pgo+lto", "linux/arm64": "lto"}
    assert opts("3.14t/source/bookworm/runtime", "clang-fast")["linux/amd64"] == "clang+tail-call"  # type: ignore[index]


def test_the_jit_check_runs_where_the_label_says_jit(repo_loaded: Loaded,
                                                    repo_lock: Lock) -> None:
    img = next(i for i in plan.build(repo_loaded, repo_lock, today=TODAY).images
               if i.method == "source" and i.variant == "runtime")
    jit = dataclasses.replace(img, platforms=("linux/amd64", "linux/arm64"), optimizations={
        "linux/amd64": "clang+pgo+thinlto+jit-yes-off", "linux/arm64": "lto"})

    def names(i: plan.PlannedImage, platform: str | None) -> list[str]:
        return [c.name for c in suite.checks_for(i, uid=10001, prefix="/opt/org/python/3.14",
                                                 tls_host="pypi.org", platform=platform)]

    assert "jit" in names(jit, "linux/amd64") and "jit" in names(jit, None)
    assert "jit" not in names(jit, "linux/arm64") and "jit" not in names(img, "linux/amd64")
    (check,) = [c for c in suite.checks_for(jit, uid=10001, prefix="/p", tls_host="pypi.org")
                if c.name == "jit"]
    assert check.argv[:2] == ["python3", "-c"] and '"PYTHON_JIT": "1"' in check.argv[2]


def test_clang_records_are_units_for_the_hardening_check() -> None:
    rec = (b"/usr/lib/llvm-19/bin/clang -c -O3 -fstack-protector-strong -fstack-clash-protection"
           b" -fcf-protection -D_FORTIFY_SOURCE=2 -o Objects/a.o Objects/a.c\0"
           b"clang-19 -c -O3 -fstack-protector-strong -o b.o b.c\0")
    sw = gcc_switches.parse_switches(rec)
    assert len(sw.units) == 2 and not sw.unparsed
    assert sw.verdict("stack-protector", "EM_X86_64")[0] == "yes"
    assert sw.verdict("stack-clash", "EM_X86_64")[0] == "no"


# ------------------------------------------------------------------------ pgo-check-clang.sh

LISTING = """Counters:
  _PyEval_EvalFrameDefault:
    Hash: 0x1
    Counters: 900
    Function count: {eval}
  PyObject_GetAttr:
    Hash: 0x2
    Counters: 4
    Function count: 5000
  _PyPegen_run_parser:
    Hash: 0x3
    Counters: 9
    Function count: 12
Instrumentation level: Front-end
Functions shown: 3
Total functions: 3
Maximum function count: 5000
"""


def _tree(tmp_path: Path, *, eval_count: int = 77, status: str = "0\n", log_extra: str = "",
          profile: bool = True) -> list[str]:
    build = tmp_path / "build"
    build.mkdir()
    if profile:
        (build / "code.profclangd").write_bytes(b"\xffprofdata")
        (build / "code-12.profclangr").write_bytes(b"raw")
    listing = tmp_path / "listing.txt"
    listing.write_text(LISTING.format(eval=eval_count))
    tool = tmp_path / "llvm-profdata"
    tool.write_text(f'#!/bin/sh\n[ "$1" = show ] && [ "$2" = --all-functions ] && cat {listing}\n')
    tool.chmod(0o755)
    (tmp_path / "status").write_text(status)
    (tmp_path / "make.log").write_text(
        "Rebuilding with profile guided optimizations:\n" + log_extra)
    return [str(tmp_path / "status"), str(tmp_path / "make.log"), str(build), str(tool)]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(CHECK), *args], capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.mark.spawns("sh")
def test_clang_check_passes_a_profile_covering_the_core(tmp_path: Path) -> None:
    done = _run(_tree(tmp_path, log_extra='warning: no profile data available for file '
                      '"Programs/_testembed.c" [-Wprofile-instr-unprofiled]\n'))
    assert done.returncode == 0, done.stderr
    assert "3 functions in" in done.stdout and "1 raw profiles" in done.stdout
    assert "none for (not the interpreter core): Programs/_testembed.c" in done.stdout


@pytest.mark.spawns("sh")
@pytest.mark.parametrize(("kw", "words"), [
    ({"status": "2\n"}, "exited with status 2"),
    ({"profile": False}, "no merged profile"),
    ({"eval_count": 0}, "no count for _PyEval_EvalFrameDefault"),
    ({"log_extra": 'x.c: warning: no profile data available for file "Objects/listobject.c" '
                   '[-Wprofile-instr-unprofiled]\n'}, "core file(s): Objects/listobject.c"),
])
def test_clang_check_fails_a_partial_profile(tmp_path: Path, kw: dict[str, object],
                                             words: str) -> None:
    done = _run(_tree(tmp_path, **kw))  # type: ignore[arg-type]
    assert done.returncode == 1 and words in done.stderr, done.stderr


def test_the_clang_stage_has_the_whole_python3_only_when_a_profile_builds_the_jit(
        tmp_path: Path) -> None:
    no_jit = RELEASE + "  clang-release: {pgo: true, lto: true, toolchain: clang}\n"
    _loaded, _lock, files = _render_repo_with(tmp_path, (RELEASE, no_jit))
    bookworm = files[Path("bookworm/Dockerfile")].decode()
    stage = bookworm[bookworm.index("AS build-deps-clang"):]
    stage = stage[:stage.index("\nFROM ")]
    assert "clang-19" in stage and "python3" not in stage

"""The files the smoke checks run inside an image (orchestrator/smoke/checks/): each one named by
the check table, shipped as package data and given its parameters as arguments, never spliced
into its text; and each run here, on the host's shell and interpreter, where that means
something without an image (a broken script fails here, not in the first release after)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config.model import Loaded
from orchestrator.lock.lockfile import Lock
from orchestrator.planning import plan
from orchestrator.smoke import suite
from tests import require
from tests.require import require_tool
from tests.unit.helpers import REPO, TODAY

SNIPPETS = REPO / "orchestrator" / "smoke" / "checks"
PREFIX = "/opt/org/python/3.13"


def _files() -> set[str]:
    return {p.name for p in SNIPPETS.iterdir() if p.is_file() and p.name != "__init__.py"}


def _source_image(repo_loaded: Loaded, repo_lock: Lock, variant: str = "runtime",
                  **changes: Any) -> plan.PlannedImage:
    img = next(i for i in plan.build(repo_loaded, repo_lock, today=TODAY).images
               if i.method == "source" and i.variant == "runtime")
    return dataclasses.replace(img, variant=variant, **changes)


def _variety(repo_loaded: Loaded, repo_lock: Lock) -> list[plan.PlannedImage]:
    """The repository's images, and a source image of each variant with every option the
    table's rows depend on (frozen modules, build.pie either way, free-threaded)."""
    images = list(plan.build(repo_loaded, repo_lock, today=TODAY).images)
    return images + [_source_image(repo_loaded, repo_lock, variant, frozen_modules=("os",),
                                   pie=pie, freethreaded=True)
                     for variant in suite.VARIANTS for pie in (True, False)] + [
        _source_image(repo_loaded, repo_lock, variant, platforms=("linux/amd64",),
                      optimizations={"linux/amd64": "clang+pgo+thinlto+jit-yes-off"})
        for variant in suite.VARIANTS]


def _check(img: plan.PlannedImage, name: str, *, uid: int = 10001, prefix: str = PREFIX,
           emulated: bool = False) -> suite.Check:
    (check,) = [c for c in suite.checks_for(img, uid=uid, prefix=prefix, tls_host="pypi.org",
                                            emulated=emulated) if c.name == name]
    return check


# --------------------------------------------------------------------------- the files


def test_the_table_names_every_file_of_the_directory_and_only_existing_ones() -> None:
    assert suite.snippet_files() == _files()
    for row in suite.CHECK_TABLE:  # a file of smoke_checks/, or a command (no path, no script)
        assert row.run in _files() or (" " in row.run and "/" not in row.run), row
    assert {row.run.rsplit(".", 1)[-1] for row in suite.CHECK_TABLE
            if row.run in _files()} == {"sh", "py"}


def test_each_file_reaches_a_check_as_it_is_and_nothing_else_is_a_script(
        repo_loaded: Loaded, repo_lock: Lock) -> None:
    """Every argument of every check that holds a line break is one of the files, verbatim:
    the paths, modules, uid and host they vary by are arguments of their own."""
    texts = {suite.snippet(name): name for name in _files()}
    used: set[str] = set()
    for img in _variety(repo_loaded, repo_lock):
        for emulated in (False, True):
            for check in suite.checks_for(img, uid=10001, prefix=PREFIX, tls_host="pypi.org",
                                          emulated=emulated):
                scripts = [a for a in check.argv if "\n" in a]
                assert (scripts and all(a in texts for a in scripts)) or check.argv in (
                    ["python3", "--version"], ["--version"], ["id", "-u"]), check.name
                used |= {texts[a] for a in scripts}
    assert used == _files()


def test_the_files_are_read_as_package_data_and_shipped_in_the_wheel() -> None:
    for name in _files():
        assert suite.snippet(name) == (SNIPPETS / name).read_text(encoding="utf-8"), name
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert (SNIPPETS / "__init__.py").exists()  # a package: packages.find takes its .py files
    assert any(fnmatch("orchestrator.smoke.checks", p) for p in setuptools["packages"]["find"]["include"])
    data = setuptools["package-data"]["orchestrator.smoke.checks"]
    for name in _files() - {n for n in _files() if n.endswith(".py")}:
        assert any(fnmatch(name, glob) for glob in data), name


def test_a_minimal_image_runs_only_python_given_to_its_entrypoint(
        repo_loaded: Loaded, repo_lock: Lock) -> None:
    for row in suite.CHECK_TABLE:
        if "minimal" in row.variants:
            assert row.run.endswith(".py") or row.run.startswith("python3 "), row.name
    minimal = _source_image(repo_loaded, repo_lock, "minimal")
    assert _check(minimal, "dpkg-status").argv == ["-c", suite.snippet("dpkg_status.py")]
    with pytest.raises(ValueError, match="without a shell"):
        suite._py_args(["/bin/sh", "-ec", "true"])


@pytest.mark.spawns("sh", "shellcheck")
def test_the_shell_files_parse_and_pass_shellcheck() -> None:
    scripts = sorted(SNIPPETS.glob("*.sh"))
    for script in scripts:
        out = subprocess.run(["/bin/sh", "-n", str(script)], capture_output=True, text=True,
                             check=False, timeout=60)
        assert out.returncode == 0, (script.name, out.stderr)
    shellcheck = require_tool("shellcheck", require.DEV_EXTRA,
                              path=Path(sys.executable).with_name("shellcheck"))
    out = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True,
                         check=False, timeout=120)
    assert out.returncode == 0, out.stdout


def test_the_python_files_compile() -> None:
    for script in sorted(SNIPPETS.glob("*.py")):
        compile(script.read_text(encoding="utf-8"), script.name, "exec")


# --------------------------------------------------------------------------- run here


@dataclasses.dataclass
class Outcome:
    code: int
    output: str  # stdout and stderr, as a container's log has them
    problem: str | None  # the check's verdict


class Host:
    """Runs a check's argv here: python3 (and python) are this interpreter, in ``bin``."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.bin = tmp / "bin"
        self.bin.mkdir()
        for name in ("python3", "python"):
            (self.bin / name).symlink_to(sys.executable)

    def run(self, check: suite.Check, *extra: str, path: str | None = None,
            python: str = sys.executable) -> Outcome:
        argv = check.argv
        if argv[0] == "python3":
            argv = [python, *argv[1:]]
        elif argv[0] == "-c":  # a minimal image's: python3 is its entrypoint
            argv = [python, *argv]
        env = {"PATH": path or f"{self.bin}:/usr/bin:/bin", "HOME": str(self.tmp),
               "PYTHONUTF8": "1"}
        proc = subprocess.run([*argv, *extra], capture_output=True, text=True, env=env,
                              check=False, timeout=300)
        output = proc.stdout + proc.stderr
        return Outcome(proc.returncode, output, check.expect(proc.returncode, output))


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


@pytest.fixture
def runtime(repo_loaded: Loaded, repo_lock: Lock) -> plan.PlannedImage:
    return _source_image(repo_loaded, repo_lock)


@pytest.mark.spawns("sh")
def test_on_path_finds_each_program_it_is_given(host: Host, runtime: plan.PlannedImage) -> None:
    ok = host.run(_check(runtime, "on-path"), path=str(host.bin))
    assert ok.problem is None and ok.output.split() == [str(host.bin / "python3"),
                                                        str(host.bin / "python")]
    dev = dataclasses.replace(runtime, variant="dev")  # dev: pip too, which bin/ lacks
    assert host.run(_check(dev, "on-path"), path=str(host.bin)).problem is not None


# extension modules of this interpreter and a library each links (Debian's python3 has zlib
# built in, python.org's and pyenv's builds load it from lib-dynload)
LINKED = (("zlib", b"libz.so.1"), ("_bz2", b"libbz2.so.1.0"), ("_lzma", b"liblzma.so.5"),
          ("_ctypes", b"libffi.so.8"))


def linked_module() -> tuple[Path, bytes]:
    """A lib-dynload module of this interpreter and a library it links (DT_NEEDED)."""
    dynload = Path(sys.base_exec_prefix, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}",
                   "lib-dynload")
    for name, lib in LINKED:
        for module in sorted(dynload.glob(f"{name}.*.so")):
            if lib in module.read_bytes():
                return module, lib
    require.unavailable(f"no extension module in {dynload} links one of "
                        f"{', '.join(lib.decode() for _, lib in LINKED)}",
                        "a CPython with lib-dynload modules: Debian's python3 (libpython3-stdlib)")


@pytest.mark.spawns("sh")
def test_ldd_resolves_names_the_file_with_a_library_not_found(
        host: Host, runtime: plan.PlannedImage, tmp_path: Path) -> None:
    """A copy of one of this interpreter's extension modules links its library (libz.so.1,
    say); a copy whose DT_NEEDED names liqz.so.1 instead does not load. Both are in the tree
    the check is given."""
    require_tool("ldd", "apt-get install libc-bin")
    module, lib = linked_module()
    missing = lib.replace(b"lib", b"liq", 1)  # as long as the name it replaces
    tree = tmp_path / "tree"
    (tree / "lib").mkdir(parents=True)
    shutil.copy(module, tree / "lib" / module.name)
    (tree / "bin").mkdir()
    (tree / "bin" / "script").write_text("#!/bin/sh\n")  # executable, not ELF: not looked at
    (tree / "bin" / "script").chmod(0o755)
    check = _check(runtime, "ldd-resolves", prefix=str(tree))
    assert host.run(check).problem is None
    broken = tree / "lib" / "broken.so"
    broken.write_bytes(module.read_bytes().replace(lib, missing))
    out = host.run(check)
    assert out.problem == "exit code 1"
    assert f"{broken}:" in out.output and f"{missing.decode()} => not found" in out.output


@pytest.mark.spawns("sh")
@pytest.mark.parametrize("layout", ["missing", "no-elf"])
def test_ldd_resolves_does_not_pass_on_nothing(host: Host, runtime: plan.PlannedImage,
                                               tmp_path: Path, layout: str) -> None:
    """A prefix that is not there, or holds no ELF file, is a failure, not a vacuous pass."""
    tree = tmp_path / "tree"
    if layout == "no-elf":
        (tree / "bin").mkdir(parents=True)
        (tree / "bin" / "script").write_text("#!/bin/sh\n")
        (tree / "bin" / "script").chmod(0o755)
    out = host.run(_check(runtime, "ldd-resolves", prefix=str(tree)))
    assert out.problem == "exit code 1"
    assert ("no such file" if layout == "missing" else "no ELF file") in out.output


@pytest.mark.spawns("sh")
def test_python_tree_read_only_fails_on_a_missing_prefix(
        host: Host, runtime: plan.PlannedImage, tmp_path: Path) -> None:
    out = host.run(_check(runtime, "python-tree-read-only", prefix=str(tmp_path / "absent")))
    assert out.problem == "exit code 1" and "no such file" in out.output


@pytest.mark.spawns("sh")
def test_python_tree_read_only_names_a_writable_file(
        host: Host, runtime: plan.PlannedImage, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "python3").write_text("x")
    check = _check(runtime, "python-tree-read-only", prefix=str(tree))
    out = host.run(check)
    assert out.problem == "exit code 1" and f"writable: {tree}" in out.output
    if os.getuid() != 0:  # root may write anything
        for path, mode in ((tree / "bin" / "python3", 0o444), (tree / "bin", 0o555), (tree, 0o555)):
            path.chmod(mode)
        try:
            assert host.run(check).problem is None
        finally:
            tree.chmod(0o755)
            (tree / "bin").chmod(0o755)


@pytest.mark.spawns("sh")
def test_no_compilers_finds_a_program_or_a_package(host: Host, runtime: plan.PlannedImage,
                                                   tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    grep = shutil.which("grep")
    assert grep
    (tools / "grep").symlink_to(grep)
    check = _check(runtime, "no-compilers")
    assert host.run(check, path=str(tools)).problem is None
    dpkg_query = tools / "dpkg-query"  # dpkg-query -W -f '${Status}' <package>
    dpkg_query.write_text('#!/bin/sh\n[ "$4" = libc6-dev ] && printf "install ok installed"\n')
    dpkg_query.chmod(0o755)
    out = host.run(check, path=str(tools))
    assert out.problem == "exit code 1" and "package libc6-dev installed" in out.output
    (tools / "gcc").write_text("#!/bin/sh\n")
    (tools / "gcc").chmod(0o755)
    out = host.run(check, path=str(tools))
    assert out.problem == "exit code 1" and "found gcc" in out.output


@pytest.mark.spawns("sh")
def test_no_package_caches_finds_a_cached_file_but_not_a_lock(
        host: Host, runtime: plan.PlannedImage, tmp_path: Path) -> None:
    root = tmp_path / "root"
    check = _check(runtime, "no-package-caches")
    assert check.argv[3:] == ["no_package_caches.sh"]  # in the image: no argument, /
    assert host.run(check, str(root)).problem is None  # none of the directories
    for lock in ("var/lib/apt/lists/lock", "var/cache/apt/archives/lock"):
        (root / lock).parent.mkdir(parents=True)
        (root / lock).write_text("")
    assert host.run(check, str(root)).problem is None
    cached = root / "home" / "app" / ".cache" / "pip" / "http" / "x"
    cached.parent.mkdir(parents=True)
    cached.write_text("x")
    assert host.run(check, str(root)).problem == "exit code 1"
    cached.unlink()
    (root / "root" / ".cache").mkdir(parents=True)
    (root / "root" / ".cache" / "link").symlink_to("/nonexistent")
    assert host.run(check, str(root)).problem == "exit code 1"
    (root / "root" / ".cache" / "link").unlink()
    listed = root / "var" / "lib" / "apt" / "lists" / "deb.debian.org_Packages"
    listed.write_text("x")
    out = host.run(check, str(root))
    assert out.problem == "exit code 1" and str(listed) in out.output


@pytest.mark.spawns("sh")
def test_the_venv_checks_make_a_venv_here(host: Host, runtime: plan.PlannedImage) -> None:
    """venv (runtime, without pip) and venv-with-pip as run under emulation (this interpreter's
    pip serves the new venv); natively venv-with-pip runs ensurepip, left to the e2e tests."""
    assert host.run(_check(runtime, "venv")).problem is None
    dev = dataclasses.replace(runtime, variant="dev")
    out = host.run(_check(dev, "venv-with-pip", emulated=True))
    assert out.problem is None, out.output


@pytest.mark.spawns("python")
def test_stdlib_imports_imports_each_module_it_is_given(runtime: plan.PlannedImage,
                                                        host: Host) -> None:
    dev = _check(dataclasses.replace(runtime, variant="dev"), "stdlib-imports")
    assert dev.argv[3:] == suite.STDLIB + suite.DEV_STDLIB
    out = host.run(dev)
    assert out.problem is None and out.output.startswith("ok "), out.output
    out = host.run(dev, "no_such_module_here")
    assert out.problem == "exit code 1" and "no_such_module_here" in out.output


def test_tls_verify_is_given_the_index_host(runtime: plan.PlannedImage) -> None:
    """Not run here: it needs the network (the e2e tests run it)."""
    check = suite.checks_for(runtime, uid=1, prefix=PREFIX, tls_host="pypi.example.org")
    (tls,) = [c for c in check if c.name == "tls-verify"]
    assert tls.argv == ["python3", "-c", suite.snippet("tls_verify.py"), "pypi.example.org"]


@pytest.mark.spawns("python")
def test_pip_only_in_dev_names_an_importable_module(runtime: plan.PlannedImage, host: Host) -> None:
    check = _check(runtime, "pip-only-in-dev")
    out = host.run(check)  # this venv has pip (and the stdlib, ensurepip)
    assert out.problem == "exit code 1" and "importable in the runtime: pip at " in out.output
    absent = dataclasses.replace(check, argv=[*check.argv[:3], "no_such_module_here"])
    assert host.run(absent).problem is None


@pytest.mark.spawns("python")
def test_startup_modules_frozen_tells_frozen_from_disk(runtime: plan.PlannedImage,
                                                       host: Host) -> None:
    frozen = _check(dataclasses.replace(runtime, frozen_modules=("os", "codecs")),
                    "startup-modules-frozen")
    assert frozen.argv[3:] == ["os", "codecs"]
    assert host.run(frozen).problem is None
    out = host.run(_check(dataclasses.replace(runtime, frozen_modules=("os", "json")),
                          "startup-modules-frozen"))
    assert out.problem == "exit code 1" and "not frozen: json from " in out.output


@pytest.mark.spawns("python")
def test_interpreter_link_compares_the_elf_type(runtime: plan.PlannedImage, host: Host) -> None:
    with Path(sys.executable).resolve().open("rb") as f:
        e_type = f.read(18)[16]
    assert e_type in (2, 3)
    pie = e_type == 3
    assert host.run(_check(dataclasses.replace(runtime, pie=pie), "interpreter-link")).problem is None
    out = host.run(_check(dataclasses.replace(runtime, pie=not pie), "interpreter-link"))
    assert out.problem == "exit code 1"
    assert f"ELF type {e_type}, expected {5 - e_type} (build.pie: {str(not pie).lower()})" in out.output


@pytest.mark.spawns("python")
def test_free_threaded_tells_the_build(runtime: plan.PlannedImage, host: Host) -> None:
    out = host.run(_check(dataclasses.replace(runtime, freethreaded=True), "free-threaded"))
    if sys.version_info >= (3, 13) and not sys._is_gil_enabled():  # type: ignore[attr-defined,unused-ignore]
        assert out.problem is None, out.output
    else:
        assert out.problem == "exit code 1" and "not a --disable-gil build" in out.output


@pytest.mark.spawns("python")
def test_the_minimal_checks_pass_or_fail_here_as_they_should(
        runtime: plan.PlannedImage, host: Host) -> None:
    minimal = dataclasses.replace(runtime, variant="minimal")
    base = Path(sys.base_exec_prefix, "bin", f"python{sys.version_info[0]}.{sys.version_info[1]}")
    if base.exists():  # a venv's sysconfig looks for lib-dynload in the venv
        out = host.run(_check(minimal, "extensions-load"), python=str(base))
        assert out.problem is None and " extension modules" in out.output, out.output
    assert host.run(_check(minimal, "runs-as-non-root", uid=os.getuid())).problem is None
    assert host.run(_check(minimal, "runs-as-non-root", uid=os.getuid() + 1)).problem is not None
    out = host.run(_check(minimal, "no-shell"))  # this host has a shell
    assert out.problem == "exit code 1" and "found: /bin/sh" in out.output
    status = Path("/var/lib/dpkg/status")
    if status.exists() and "Package: ca-certificates\n" in status.read_text():
        out = host.run(_check(minimal, "dpkg-status"))
        assert out.problem is None and " packages: " in out.output

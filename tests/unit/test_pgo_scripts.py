"""PGO that pays, checked in the build (issue 33 item 1): stages/scripts/pgo-train.py keeps the
training run's exit status (CPython's Makefile runs it with ``|| true``) and
stages/scripts/pgo-check.sh fails the compile unless the training passed and every interpreter
core object has its profile data. Both scripts are run here for real, on stand-ins: a fake
``test`` package for the training, a fake build tree of .o/.gcda files for the check; and the
rendered compile steps are checked to run them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import render
from orchestrator.config import loader
from orchestrator.lock import lockfile
from tests.unit.helpers import REPO, TODAY
from tests.unit.test_render import _render_repo_with

SCRIPTS = REPO / "stages" / "scripts"
TRAIN = SCRIPTS / "pgo-train.py"
CHECK = SCRIPTS / "pgo-check.sh"


def _train(tmp_path: Path, main_body: str, *args: str, status: bool = True) -> tuple[int, str]:
    """Run pgo-train.py with a stand-in ``test`` package whose __main__ is ``main_body``;
    returns the exit status and what the status file says ('' when it was not written)."""
    pkg = tmp_path / "fake" / "test"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(main_body)
    status_file = tmp_path / "pgo-status"
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(tmp_path / "fake")}
    if status:
        env["ORCH_PGO_STATUS"] = str(status_file)
    done = subprocess.run([sys.executable, str(TRAIN), *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    return done.returncode, status_file.read_text() if status_file.exists() else ""


@pytest.mark.spawns("python")
def test_training_passes_libregrtest_the_pgo_options_and_keeps_status_0(tmp_path: Path) -> None:
    body = ("import sys\n"
            "assert sys.argv[1:] == ['--pgo', '--timeout=1200'], sys.argv\n"
            "sys.exit(0)\n")
    assert _train(tmp_path, body) == (0, "0\n")


@pytest.mark.spawns("python")
def test_a_failed_training_is_kept_in_the_status_file(tmp_path: Path) -> None:
    body = "import sys\nsys.exit(2)\n"  # libregrtest's exit status when tests failed
    assert _train(tmp_path, body) == (2, "2\n")


@pytest.mark.spawns("python")
def test_a_training_that_dies_of_an_exception_is_status_1(tmp_path: Path) -> None:
    body = "raise RuntimeError('the test package could not start')\n"
    assert _train(tmp_path, body) == (1, "1\n")


@pytest.mark.spawns("python")
def test_a_training_that_falls_off_the_end_is_status_0(tmp_path: Path) -> None:
    assert _train(tmp_path, "x = 1\n") == (0, "0\n")


@pytest.mark.spawns("python")
def test_arguments_replace_the_default_options(tmp_path: Path) -> None:
    body = "import sys\nsys.exit(0 if sys.argv[1:] == ['-v', 'test_json'] else 9)\n"
    assert _train(tmp_path, body, "-v", "test_json") == (0, "0\n")


@pytest.mark.spawns("python")
def test_no_status_file_named_is_an_error(tmp_path: Path) -> None:
    assert _train(tmp_path, "import sys\nsys.exit(0)\n", status=False) == (2, "")


REBUILD = "Rebuilding with profile guided optimizations:\n"


def _warning(build: Path, rel: str) -> str:
    """gcc's -Wmissing-profile warning for the file whose profile would be ``rel``.gcda."""
    return (f"./{rel}.c:12:1: warning: '{build}/{rel}.gcda' profile count data file not found "
            "[-Wmissing-profile]\n")


def _tree(tmp_path: Path, status: str | None = "0\n", *, unprofiled: tuple[str, ...] = (),
          rebuilt: bool = True) -> tuple[Path, Path, Path]:
    """A build tree with three profile files and the make output of its profile-use build,
    in which gcc warns about each of ``unprofiled``."""
    build = tmp_path / "build"
    for stem in ("Python/ceval", "Objects/listobject", "Parser/parser"):
        (build / stem).parent.mkdir(parents=True, exist_ok=True)
        (build / f"{stem}.o").write_bytes(b"\x7fELF")
        (build / f"{stem}.gcda").write_bytes(b"adcg")
    # data-only or other-build files: no functions, no profile, and gcc does not miss one
    (build / "Python" / "pyctype.o").write_bytes(b"\x7fELF")
    (build / "Python" / "gc_free_threading.o").write_bytes(b"\x7fELF")
    log = tmp_path / "make.log"
    log.write_text("Running code to generate profile data (this can take a while):\n"
                   + (REBUILD if rebuilt else "")
                   + "".join(_warning(build, rel) for rel in unprofiled))
    status_file = tmp_path / "pgo-status"
    if status is not None:
        status_file.write_text(status)
    return status_file, log, build


def _check(status_file: Path, log: Path, build: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(CHECK), str(status_file), str(log), str(build)],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.spawns("sh")
def test_check_passes_a_full_profile_and_says_what_it_covered(tmp_path: Path) -> None:
    done = _check(*_tree(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ("pgo-check: training exit status 0; gcc found profile data for every "
                           "interpreter core file; 3 profile files in all\n")


@pytest.mark.spawns("sh")
def test_check_lists_unprofiled_files_outside_the_core_without_failing(tmp_path: Path) -> None:
    """Programs/_testembed (a test program the training never runs: 3.14.4's real build warns
    about it) and an extension module nobody imported are not the interpreter core."""
    done = _check(*_tree(tmp_path, unprofiled=("Programs/_testembed", "Modules/_cursesmodule")))
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith(
        "; none for (not the interpreter core): Modules/_cursesmodule.gcda Programs/_testembed.gcda")


@pytest.mark.spawns("sh")
def test_check_fails_when_the_training_did_not_finish(tmp_path: Path) -> None:
    done = _check(*_tree(tmp_path, status=None))
    assert done.returncode == 1
    assert "did not run to its end" in done.stderr


@pytest.mark.spawns("sh")
def test_check_fails_when_the_training_failed(tmp_path: Path) -> None:
    done = _check(*_tree(tmp_path, status="2\n"))
    assert done.returncode == 1
    assert "exited with status 2" in done.stderr


@pytest.mark.spawns("sh")
def test_check_fails_and_names_core_files_gcc_found_no_profile_for(tmp_path: Path) -> None:
    done = _check(*_tree(tmp_path, unprofiled=("Objects/mimalloc/heap", "Python/ceval",
                                               "Programs/_testembed")))
    assert done.returncode == 1
    assert ("gcc found no profile data for interpreter core file(s): "
            "Objects/mimalloc/heap.gcda Python/ceval.gcda (-Wmissing-profile in") in done.stderr


@pytest.mark.spawns("sh")
def test_check_refuses_a_log_without_the_profile_use_build(tmp_path: Path) -> None:
    done = _check(*_tree(tmp_path, rebuilt=False))
    assert done.returncode == 1
    assert "holds no profile-use build" in done.stderr


def _native_compile_runs(text: str) -> dict[str, str]:
    """stage name -> its compile RUN, for the native compiles (not -cross-, not tarball-)."""
    out = {}
    for m in re.finditer(r"^FROM \S+ AS (python-\S+)\n(.*?)(?=^FROM |\Z)", text, re.M | re.S):
        name, body = m.group(1), m.group(2)
        if "-cross-" in name or ("./configure" not in body and "python-build " not in body):
            continue
        run = body[body.index("RUN "):]
        out[name] = run
    return out


def test_every_native_compile_runs_the_training_check() -> None:
    """The org matrix: every native compile (source and python-build) runs the training through
    pgo-train.py and pgo-check.sh after it, both only when PYTHON_PGO is on; cross compiles
    (no PGO) have neither."""
    loaded = loader.load(REPO / "images.yaml", today=TODAY)
    files = render.render_all(loaded, lockfile.read(loaded))
    seen = 0
    for rel, data in files.items():
        if rel.name != "Dockerfile":
            continue
        text = data.decode()
        for name, run in _native_compile_runs(text).items():
            seen += 1
            assert "target=/usr/src/scripts/pgo-train.py" in run, name
            assert "target=/usr/src/scripts/pgo-check.sh" in run, name
            assert "ORCH_PGO_STATUS=/usr/src/pgo-status" in run, name
            assert "PROFILE_TASK=/usr/src/scripts/pgo-train.py" in run, name
            assert re.search(r'\{ \[ -z "\$PYTHON_PGO" \] \|\| sh /usr/src/scripts/pgo-check.sh '
                             r"/usr/src/pgo-status (/usr/src/pgo-make.log /usr/src/python|"
                             r"/tmp/python-build\.\*\.log \\\n +/usr/src/python-build/Python-[\d.]+); \}",
                             run), name
            if "./configure" in run:  # make's output, where gcc's -Wmissing-profile goes
                assert "2>&1 | tee /usr/src/pgo-make.log" in run, name
            # the check runs after the compile and before the build tree is removed
            assert run.index("pgo-check.sh /usr/src") < run.index("rm -rf /usr/src/"), name
        for m in re.finditer(r"^FROM \S+ AS (python-\S+-cross-\S+)\n(.*?)(?=^FROM |\Z)", text,
                             re.M | re.S):
            assert "pgo-" not in m.group(2), m.group(1)
        assert (rel.parent / "scripts" / "pgo-check.sh") in files
    assert seen >= 4


def test_no_profile_with_pgo_renders_no_training_check(tmp_path: Path) -> None:
    _, _, files = _render_repo_with(tmp_path, ("release: {pgo: true, lto: true}",
                                               "release: {pgo: false, lto: true}"))
    texts = [d.decode() for r, d in files.items() if r.name == "Dockerfile"]
    assert texts and not any("pgo-" in t or "PROFILE_TASK" in t for t in texts)

"""Issue 34, item 6: `make demo` then `make test` pass on one machine: rendered output (the
git-ignored tests/e2e/generated/ that `orchestrator render --config tests/e2e/images.yaml` or an
older demo writes, with the build scripts it copies) is never linted or type-checked.

The e2e matrix is locked (the real `lock` code against fakes, no network) and rendered, its output
copied into tests/e2e/generated/, and then the lint target itself runs (`make lint`: ruff, mypy
--strict, validate, render --check, hadolint, shellcheck; about 5 s with mypy's cache warm, 15 s
cold), which must pass. The same rendered script handed to mypy by name is an error, so the check
can fail: only the exclusion keeps it out."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.require import require_tool
from tests.unit.helpers import REPO
from tests.unit.test_add_python_deadsnakes import MIRROR, MIRROR_RELEASES, Mirror, _write_lock

E2E = REPO / "tests" / "e2e"
VENV = REPO / ".venv" / "bin"


def _run(argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    """The e2e matrix, locked and rendered, in a fresh directory under tests/e2e/generated/
    (a directory of its own: a real render of the e2e matrix there is left alone)."""
    shutil.copy(E2E / "images.yaml", tmp_path / "images.yaml")
    _write_lock(tmp_path / "images.yaml", Mirror(MIRROR, dict(MIRROR_RELEASES)))
    out = E2E / "generated" / f"lint-scope-{uuid.uuid4().hex[:8]}"
    shutil.copytree(tmp_path / "generated", out)
    return out


@pytest.mark.spawns("make", "python")
@pytest.mark.timeout(300)
def test_rendered_e2e_output_is_outside_make_lint(rendered: Path) -> None:
    make = require_tool("make", "apt-get install make")
    for tool in ("hadolint", "shellcheck"):  # what `make lint` runs from .venv/bin
        require_tool(tool, "make install", path=VENV / tool)
    try:
        scripts = sorted(rendered.glob("*/scripts/*.py"))
        assert len({p.parent.parent.name for p in scripts}) >= 2, scripts  # one tree per distro
        # mypy given a rendered script by name: errors (the one demo-then-test showed among them)
        mypy = _run([sys.executable, "-m", "mypy", "--no-incremental",
                     *(str(p.relative_to(REPO)) for p in scripts)])
        assert mypy.returncode != 0 and str(rendered.relative_to(REPO)) in mypy.stdout, mypy.stdout
        # the lint target with the rendered tree in the way: green, and silent about it
        lint = _run([make, "lint", f"PY={sys.executable}"], timeout=600)
        assert lint.returncode == 0, lint.stdout[-4000:] + lint.stderr[-4000:]
        assert rendered.name not in lint.stdout + lint.stderr
    finally:
        shutil.rmtree(rendered)


@pytest.mark.spawns("python")
def test_a_rendered_script_outside_generated_is_a_ruff_error() -> None:
    """The exclusion is by path: the build script the render copies, next to the tests, is linted
    (and fails: it is written for the image's interpreter, not to this project's rules)."""
    script = REPO / "stages" / "scripts" / "freeze_modules.py"
    probe = E2E / f"lint_scope_probe_{os.getpid()}_{uuid.uuid4().hex[:8]}.py"
    probe.write_text(script.read_text(encoding="utf-8"), encoding="utf-8")
    try:
        ruff = _run([sys.executable, "-m", "ruff", "check", str(probe.relative_to(REPO))])
        assert ruff.returncode != 0 and probe.name in ruff.stdout, ruff.stdout
    finally:
        probe.unlink()

"""Issue 34, item 6: `make demo` then `make test` pass on one machine: rendered output (the
git-ignored tests/e2e/generated/ an e2e run or an older demo writes, with the build scripts it
copies) is never linted or type-checked by `make lint`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid

from tests.unit.helpers import REPO

BROKEN = "import freeze_modules  # only importable inside a build\nx: int = 'not an int'\nimport os\n"


def test_rendered_output_is_outside_ruff_and_mypy() -> None:
    out = REPO / "tests" / "e2e" / "generated" / f"lint-scope-{uuid.uuid4().hex[:8]}"
    (out / "scripts").mkdir(parents=True)
    try:
        (out / "scripts" / "freeze_modules_copy.py").write_text(BROKEN)
        ruff = subprocess.run([sys.executable, "-m", "ruff", "check", "tests/e2e"], cwd=REPO,
                              capture_output=True, text=True, timeout=300, check=False)
        assert ruff.returncode == 0, ruff.stdout + ruff.stderr
        # the files the project's mypy config selects, with the rendered tree in the way
        mypy = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "tests/e2e"], cwd=REPO,
                              capture_output=True, text=True, timeout=600, check=False)
        assert mypy.returncode == 0, mypy.stdout + mypy.stderr
        assert out.name not in mypy.stdout
        # and the same file outside generated/ is an error for both (the check can fail)
        probe = REPO / "tests" / "e2e" / f"lint_scope_probe_{out.name[-8:]}.py"
        probe.write_text(BROKEN)
        try:
            ruff = subprocess.run([sys.executable, "-m", "ruff", "check", str(probe)], cwd=REPO,
                                  capture_output=True, text=True, timeout=300, check=False)
            assert ruff.returncode != 0
        finally:
            probe.unlink()
    finally:
        shutil.rmtree(out)

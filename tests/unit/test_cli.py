"""Smoke tests of the real command line (`python -m orchestrator`) on the repository's files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from orchestrator.config import loader
from tests.unit.helpers import REPO, run_cli

ENV = {**os.environ, "ORCH_DATE": "20261121", "ORCH_LOG_FORMAT": "json"}
ENV.pop("CI", None)


def orchestrator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=REPO, env=ENV,
                          capture_output=True, text=True, check=False, timeout=120)


@pytest.mark.spawns("python")
def test_help() -> None:
    proc = orchestrator("--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: orchestrator ")
    for command in ("validate", "schema", "plan", "lock", "render"):
        assert command in proc.stdout


@pytest.mark.spawns("python")
def test_validate() -> None:
    proc = orchestrator("validate")
    assert proc.returncode == 0, proc.stderr
    # The count includes the lock's warnings: 3 base digests and pyenv's sha256 are not pinned.
    # 3 base digests + pyenv's sha256 unpinned here, and the python-build cell stays amd64
    assert proc.stdout == "images.yaml: OK (30 images, 6 warnings)\n"
    assert "Traceback" not in proc.stderr
    # Warnings (digests that could not be pinned) are JSON log lines with --log-format json.
    for line in proc.stderr.splitlines():
        assert json.loads(line)["level"] == "warning"


@pytest.mark.spawns("python")
def test_plan_json() -> None:
    proc = orchestrator("plan", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert len(data["images"]) == 30
    assert len(data["builds"]) == 25  # 13 native compiles, 12 cross compiles for linux/arm64
    assert data["date"] == "2026-11-21"


def test_schema_command_prints_the_committed_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["schema"], capsys)
    assert code == 0
    assert out == loader.json_schema() == (REPO / "images.schema.json").read_text()


@pytest.mark.spawns("python")
def test_unknown_command_is_a_usage_error() -> None:
    proc = orchestrator("frobnicate")
    assert proc.returncode == 2
    assert "invalid choice: 'frobnicate'" in proc.stderr
    assert "Traceback" not in proc.stderr

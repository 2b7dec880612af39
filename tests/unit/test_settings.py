"""The environment is read once (orchestrator.settings); bad values are one-line usage errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest

from orchestrator import settings
from orchestrator.errors import ExitCode, UsageError
from orchestrator.release import state


def test_candidate_prefix_defaults_and_is_used_for_candidate_refs() -> None:
    st = settings.Settings.from_environ({})
    assert st.candidate_prefix == "orchestrator-candidate"
    unused = cast(Any, None)  # a run's candidate refs read only its settings
    run = state.Run(unused, unused, unused, unused, Path(), unused,
                    settings=settings.Settings.from_environ({"ORCH_CANDIDATE_PREFIX": "ci-job-42/cand"}))
    assert run.candidate_ref("3.13-source-bookworm-runtime") == (
        "ci-job-42/cand/3.13-source-bookworm-runtime:latest")
    assert run.unlabelled_ref("3.13-source-bookworm-dev") == (
        "ci-job-42/cand/3.13-source-bookworm-dev:unlabelled")


@pytest.mark.parametrize("bad", ["Upper/case", "has space", "trailing/", "-dash", "a//b"])
def test_bad_candidate_prefix_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError) as info:
        settings.Settings.from_environ({"ORCH_CANDIDATE_PREFIX": bad})
    assert str(info.value) == (
        f"environment: ORCH_CANDIDATE_PREFIX={bad!r} is not a repository name; use lowercase "
        "letters, digits, '.', '_', '-' and '/' (e.g. ci-job-1234/candidate)")


@pytest.mark.parametrize(("var", "value", "message"), [
    ("ORCH_DATE", "2026-11-21",
     "error: environment: ORCH_DATE='2026-11-21' is not a date; set it as YYYYMMDD "
     "(e.g. 20261121) or unset it"),
    ("ORCH_CANDIDATE_PREFIX", "Bad",
     "error: environment: ORCH_CANDIDATE_PREFIX='Bad' is not a repository name; use lowercase "
     "letters, digits, '.', '_', '-' and '/' (e.g. ci-job-1234/candidate)"),
])
def test_bad_environment_exits_2_with_one_line(var: str, value: str, message: str) -> None:
    env = {**os.environ, "ORCH_LOG_FORMAT": "console", var: value}
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "validate"], env=env,
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == ExitCode.BAD_INPUT
    assert proc.stderr.strip() == message
    assert "Traceback" not in proc.stderr

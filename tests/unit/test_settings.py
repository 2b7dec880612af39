"""The environment is read once (orchestrator.settings); bad values are one-line usage errors."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
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


def test_the_work_dir_is_the_one_the_settings_given_read() -> None:
    loaded = cast(Any, SimpleNamespace(root=Path("/srv/cfg")))  # work_dir reads only its root
    relative = settings.Settings.from_environ({"ORCH_WORK_DIR": "out/work"})
    assert state.work_dir(loaded, relative) == Path("/srv/cfg/out/work")  # next to images.yaml
    absolute = settings.Settings.from_environ({"ORCH_WORK_DIR": "/var/tmp/orch"})
    assert state.work_dir(loaded, absolute) == Path("/var/tmp/orch")
    assert state.work_dir(loaded, settings.Settings.from_environ({})) == Path(
        "/srv/cfg/.orchestrator")


@pytest.mark.parametrize("bad", ["Upper/case", "has space", "trailing/", "-dash", "a//b"])
def test_bad_candidate_prefix_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError) as info:
        settings.Settings.from_environ({"ORCH_CANDIDATE_PREFIX": bad})
    assert str(info.value) == (
        f"environment: ORCH_CANDIDATE_PREFIX={bad!r} is not a repository name; use lowercase "
        "letters, digits, '.', '_', '-' and '/' (e.g. ci-job-1234/candidate)")


@pytest.mark.spawns("python")
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


PACKAGE = Path(__file__).resolve().parents[2] / "orchestrator"


def _takes_the_settings_module(path: Path) -> bool:
    """Whether ``path`` imports orchestrator.settings itself (whose get() is the process's
    snapshot of the environment) or its get/override, not only the Settings type."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import) and any(a.name == "orchestrator.settings"
                                                for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and any(
                (node.module, a.name) in (("orchestrator", "settings"),
                                          ("orchestrator.settings", "get"),
                                          ("orchestrator.settings", "override"))
                for a in node.names):
            return True
    return False


def test_below_the_cli_the_settings_are_given_not_fetched() -> None:
    """Only the CLI calls settings.get() (the environment, read once): the release phases
    (Run.settings), the registry client, the work dir, cosign and syft are given the Settings
    or the values they need."""
    fetchers = {str(p.relative_to(PACKAGE)) for p in sorted(PACKAGE.rglob("*.py"))
                if _takes_the_settings_module(p)}
    assert fetchers and all(f.startswith("cli/") for f in fetchers), fetchers


def test_the_settings_check_sees_a_module_that_fetches_them(tmp_path: Path) -> None:
    for text in ("from orchestrator import log, settings\n", "import orchestrator.settings\n",
                 "from orchestrator.settings import get\n"):
        (tmp_path / "m.py").write_text(text)
        assert _takes_the_settings_module(tmp_path / "m.py"), text
    (tmp_path / "m.py").write_text("from orchestrator.settings import Settings\n")
    assert not _takes_the_settings_module(tmp_path / "m.py")

"""tests/require.py: a missing tool skips a developer's test and fails CI's, with the hint."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.require import in_ci, require_tool, unavailable

CI, DEV = {"CI": "true"}, {"CI": "false"}


def test_ci_is_any_value_but_empty_0_false_no() -> None:
    assert in_ci({"CI": "true"}) and in_ci({"CI": "1"}) and in_ci({"CI": "yes"})
    assert not any(in_ci(e) for e in ({}, {"CI": ""}, {"CI": "0"}, {"CI": "False"}, {"CI": "no"}))


def test_a_missing_program_skips_locally_and_fails_in_ci() -> None:
    name = "no-such-tool-for-the-orchestrator-tests"
    with pytest.raises(pytest.skip.Exception, match=rf"no {name} on this host \(apt-get install it\)"):
        require_tool(name, "apt-get install it", environ=DEV)
    with pytest.raises(pytest.fail.Exception,
                       match=rf"no {name} on this host \(CI is set: this test must run; apt-get install"):
        require_tool(name, "apt-get install it", environ=CI)


def test_a_missing_or_non_executable_file_is_missing(tmp_path: Path) -> None:
    plain = tmp_path / "shellcheck"
    plain.write_text("#!/bin/sh\n")  # not executable
    for path in (tmp_path / "absent", plain):
        with pytest.raises(pytest.fail.Exception, match=f"no shellcheck at {path}"):
            require_tool("shellcheck", "make install", path=path, environ=CI)


def test_a_present_tool_is_returned_under_ci_too() -> None:
    assert require_tool("sh", "-", environ=CI).endswith("/sh")
    assert require_tool("python", "-", path=Path(sys.executable), environ=CI) == sys.executable


def test_unavailable_never_returns() -> None:
    with pytest.raises(pytest.skip.Exception, match=r"^the mirror \(make provision\)$"):
        unavailable("the mirror", "make provision", DEV)
    with pytest.raises(pytest.fail.Exception, match=r"^the mirror \(CI is set"):
        unavailable("the mirror", "make provision", CI)

"""Helpers shared by the unit tests (imported, not fixtures)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from pathlib import Path

import pytest

from orchestrator import cli, settings

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOLDEN = REPO / "tests" / "golden"
TODAY = dt.date(2026, 11, 21)


def edit(text: str, old: str, new: str) -> str:
    """Replace the one occurrence of ``old``; fail loudly when the fixture no longer has it."""
    count = text.count(old)
    assert count == 1, f"expected exactly one {old!r} in the fixture, found {count}"
    return text.replace(old, new)


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based number of the line holding the ``nth`` occurrence of ``needle``."""
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == nth:
                return number
    raise AssertionError(f"{needle!r} (occurrence {nth}) not in the text")


def write_config(directory: Path, text: str, name: str = "images.yaml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``python -m orchestrator ARGV`` in-process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def fake_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def with_env(**env: str) -> None:
    """Add variables to the environment the settings read (the autouse fixture restores it)."""
    st = settings.get()
    settings.override(dataclasses.replace(st, environ={**st.environ, **env}))

"""The oracle's pipe (tests/renovate/renovate.py Renovate.ask) with stand-ins for oracle.js run by
the venv's node: an answer comes back, a stall is an error within the timeout (the process
killed), an exit is an error. No Renovate needed: these run with the unit tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.renovate import renovate
from tests.renovate.renovate import Renovate

ANSWERS = """
const readline = require('node:readline');
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const q = JSON.parse(line);
  console.log('renovate logs a line');
  console.log('@@ ' + JSON.stringify(q.op === 'bad' ? { error: 'no such op' } : { ok: q.n + 1 }));
});
"""
STALLS = """
require('node:readline').createInterface({ input: process.stdin }).on('line', () => {});
"""
EXITS = "process.exit(3);\n"


@pytest.fixture
def oracle() -> Iterator[list[Renovate]]:
    """Stand-in oracles made here; each one is closed afterwards."""
    made: list[Renovate] = []
    yield made
    for o in made:
        if o.proc.poll() is None:
            o.close()


def start(made: list[Renovate], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str,
          timeout: float = 30) -> Renovate:
    js = tmp_path / f"oracle{len(made)}.js"
    js.write_text(script)
    monkeypatch.setattr(renovate, "ORACLE", js)
    made.append(Renovate(tmp_path, timeout=timeout))
    return made[-1]


def test_an_answer_comes_back_past_renovate_logging(
        oracle: list[Renovate], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    o = start(oracle, tmp_path, monkeypatch, ANSWERS)
    assert o.ask("add", n=1) == 2 and o.ask("add", n=41) == 42
    with pytest.raises(RuntimeError, match="renovate bad: no such op"):
        o.ask("bad")


def test_a_stalled_oracle_is_an_error_within_the_timeout_and_is_killed(
        oracle: list[Renovate], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    o = start(oracle, tmp_path, monkeypatch, STALLS, timeout=1)
    begin = time.monotonic()
    with pytest.raises(RuntimeError, match=r"renovate lookup: no answer from oracle\.js within 1 s"):
        o.ask("lookup", n=1)
    assert time.monotonic() - begin < 10
    assert o.proc.wait(timeout=10) != 0  # killed


def test_an_oracle_that_exits_is_an_error(
        oracle: list[Renovate], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    o = start(oracle, tmp_path, monkeypatch, EXITS)
    with pytest.raises(RuntimeError, match=r"renovate rules: oracle\.js exited \(3\)"):
        o.ask("rules", n=1)

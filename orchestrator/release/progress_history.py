"""How long each cell and phase took in the runs before: the estimate of the time left.

A run records, per phase, the seconds of each cell that finished well (ok or unchanged: a
failed cell's time says nothing about the next run) and the phase's overhead (its time outside
any cell). They are merged into one JSON file in the work dir's state directory, written
atomically; a cell that did not run keeps what an earlier run recorded. The estimate is a pure
function of that history and of the work left.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

VERSION = 1
FILE_NAME = "progress-history.json"  # beside the cells' <cell id>.json (no cell has this id)


@dataclass
class History:
    """``cells``: phase -> cell id -> seconds; ``overhead``: phase -> seconds outside cells."""

    cells: dict[str, dict[str, float]] = field(default_factory=dict)
    overhead: dict[str, float] = field(default_factory=dict)

    def merged(self, newer: History) -> History:
        """This history updated with ``newer``'s cells and overheads."""
        cells = {ph: dict(times) for ph, times in self.cells.items()}
        for ph, times in newer.cells.items():
            cells.setdefault(ph, {}).update(times)
        return History(cells, {**self.overhead, **newer.overhead})

    def to_dict(self) -> dict[str, object]:
        return {"version": VERSION, "cells": self.cells, "overhead": self.overhead}


def history_path(state_dir: Path) -> Path:
    return state_dir / FILE_NAME


def read(path: Path) -> tuple[History | None, str]:
    """The history in ``path``: (None, "") when there is none yet; (None, why) when it cannot
    be read or is not one (the caller says so; the run goes on without an estimate)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, ""
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, f"{path}: not a progress history ({exc})"
    try:
        return _parse(raw), ""
    except (TypeError, ValueError, AttributeError) as exc:
        return None, f"{path}: not a progress history ({exc})"


def _parse(raw: object) -> History:
    if not isinstance(raw, dict) or raw.get("version") != VERSION:
        raise ValueError(f"expected an object with version {VERSION}")
    cells = {str(ph): {str(c): _seconds(s) for c, s in times.items()}
             for ph, times in raw["cells"].items()}
    overhead = {str(ph): _seconds(s) for ph, s in raw["overhead"].items()}
    return History(cells, overhead)


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{value!r} is not a number of seconds")
    return float(value)


def write(path: Path, history: History) -> None:
    """Atomically: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(history.to_dict(), f, indent=2, sort_keys=True)
            f.write("\n")
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cell_estimate(history: History, phase: str, cell: str) -> float | None:
    """What ``cell`` took in ``phase`` last time; a cell new to the history: the phase's mean;
    None when the history has no cell of that phase."""
    times = history.cells.get(phase, {})
    if cell in times:
        return times[cell]
    return sum(times.values()) / len(times) if times else None


def remaining(history: History, work: Sequence[tuple[str, Sequence[str]]], *,
              running: float = 0.0) -> float | None:
    """Seconds left: ``work`` is the phases still to run, the current one first, each with
    the cells it has still to do; the first of the current phase's cells has been running for
    ``running`` seconds (its estimate shrinks by that, not below zero). Each phase after the
    current one adds its recorded overhead. None when a phase with cells to do has no history."""
    total = 0.0
    for n, (phase, cells) in enumerate(work):
        for k, cell in enumerate(cells):
            est = cell_estimate(history, phase, cell)
            if est is None:
                return None
            total += max(0.0, est - running) if n == 0 and k == 0 else est
        if n > 0 and cells:
            total += history.overhead.get(phase, 0.0)
    return total


def recorded(cells: Mapping[str, Mapping[str, float]],
             overhead: Mapping[str, float]) -> History:
    """A run's own history (rounded to tenths of a second)."""
    return History({ph: {c: round(s, 1) for c, s in times.items()} for ph, times in cells.items()},
                   {ph: round(max(0.0, s), 1) for ph, s in overhead.items()})

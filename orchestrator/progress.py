"""How far a long command is, on stderr, for a person and for CI.

One line per finished cell, with its place in the phase, its own time and the time since the
command started (and, in the build phase, how many of the planned CPython compiles ran)::

    build 3/14: 3.14-source-bookworm-runtime ok in 6m52s (elapsed 23m05s, compiles 2/7)
    test 4/14: 3.14-source-bookworm-dev failed in 41s (elapsed 31m10s): check venv failed: ...

Each phase opens with a header and closes with a count; with ``sections`` (CI: GitLab's job
log) the phase is a collapsible section (``section_start``/``section_end`` markers). These are
plain lines beside the log: the structured (JSON) log and the JSON report are not touched.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from orchestrator.report import CellResult, Status, duration, why

Clock = Callable[[], float]
_ESC = "\x1b[0K"  # erase to the end of the line: GitLab's markers hide behind it
_NOT_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def section_start(name: str, header: str, unix_time: int) -> str:
    """GitLab's marker that opens a collapsible section of the job log, titled ``header``."""
    return f"{_ESC}section_start:{unix_time}:{name}\r{_ESC}{header}"


def section_end(name: str, unix_time: int) -> str:
    return f"{_ESC}section_end:{unix_time}:{name}\r{_ESC}"


class Progress:
    """The progress of one command (``release``, ``nightly``, ...). ``stream`` None: silent."""

    def __init__(self, stream: TextIO | None = None, *, command: str = "", sections: bool = False,
                 clock: Clock = time.monotonic, wall: Clock = time.time) -> None:
        self.stream, self.command, self.sections = stream, command, sections
        self.clock, self.wall = clock, wall
        self.started = clock()

    def elapsed(self) -> float:
        return self.clock() - self.started

    def say(self, line: str) -> None:
        if self.stream is not None:
            print(line, file=self.stream, flush=True)

    def section_name(self, phase: str) -> str:
        return _NOT_NAME.sub("_", f"orchestrator_{self.command}_{phase}".replace("__", "_"))

    @contextmanager
    def phase(self, name: str, total: int, *, compiles: int = 0) -> Iterator[Phase]:
        """A phase of ``total`` cells (``compiles``: the CPython compiles it may run). Nothing
        is printed when it has no cell. An exception leaves the section open, as the job ends."""
        ph = Phase(self, name, total, compiles)
        if total == 0:
            yield ph
            return
        planned = f", {compiles} CPython compile(s) planned" if compiles else ""
        header = f"{name}: {total} cell(s){planned}"
        section = self.section_name(name)
        self.say(section_start(section, header, int(self.wall())) if self.sections else header)
        yield ph
        self.say(ph.summary())
        if self.sections:
            self.say(section_end(section, int(self.wall())))


class Phase:
    """The cells of one phase: ``with phase.cell(res): ...`` prints its line once it is done."""

    def __init__(self, progress: Progress, name: str, total: int, compiles: int) -> None:
        self.progress, self.name, self.total, self.compiles = progress, name, total, compiles
        self.done = 0
        self.compiled: set[str] = set()
        self.statuses: dict[str, int] = {}
        self.started = progress.clock()

    @contextmanager
    def cell(self, res: CellResult) -> Iterator[None]:
        """Times the block; afterwards one line with the cell's status (no line when the
        block raises: the error ends the command)."""
        start = self.progress.clock()
        yield
        self.finished(res, self.progress.clock() - start)

    def finished(self, res: CellResult, seconds: float) -> None:
        self.done += 1
        self.compiled |= set(res.compiled)
        status = res.status.value
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.progress.say(self.line(res, seconds))

    def line(self, res: CellResult, seconds: float) -> str:
        extra = [f"elapsed {duration(self.progress.elapsed())}"]
        if self.compiles:
            extra.append(f"compiles {len(self.compiled)}/{self.compiles}")
        # a pushed image: new, updated or unchanged, as the registry had it
        word = res.publish if res.status is Status.OK and res.publish else res.status.value
        text = (f"{self.name} {self.done}/{self.total}: {res.id} {word} "
                f"in {duration(seconds)} ({', '.join(extra)})")
        bad = res.status in (Status.FAILED, Status.ABORTED)
        reason = why(res, with_phase=False) if bad else ""
        return f"{text}: {reason}" if reason else text

    def summary(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(self.statuses.items()))
        took = duration(self.progress.clock() - self.started)
        return f"{self.name}: {self.done}/{self.total} cell(s) in {took} ({counts or 'none done'})"

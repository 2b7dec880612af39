"""How far a long command is, on stderr, for a person and for CI.

One line per finished cell, with its place in the phase, its own time and the time since the
command started (and, in the build phase, how many of the planned CPython compiles ran)::

    build 3/14: 3.14-source-bookworm-runtime ok in 6m52s (elapsed 23m05s, compiles 2/7)
    test 4/14: 3.14-source-bookworm-dev failed in 41s (elapsed 31m10s): check venv failed: ...

Each phase opens with a header and closes with a count; with ``sections`` (CI: GitLab's job
log) the phase is a collapsible section (``section_start``/``section_end`` markers). These are
plain lines beside the log: the structured (JSON) log and the JSON report are not touched.

With ``live`` (stderr is a terminal, progress_live.py) a status line below them says the phase,
cells and compiles done, the elapsed time and an estimate of the time left from the durations
the runs before recorded (progress_history.py, in ``history``: the work dir's state directory).
Every run that has a ``history`` file records its own durations there (``save``), live or not.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from orchestrator import log
from orchestrator.release import progress_history
from orchestrator.release.progress_live import LiveStatus, Snapshot
from orchestrator.release.report import CellResult, Status, duration, why
from orchestrator.settings import Settings

Clock = Callable[[], float]
_ESC = "\x1b[0K"  # erase to the end of the line: GitLab's markers hide behind it
_NOT_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
_GOOD = (Status.OK, Status.UNCHANGED)  # a cell whose time is worth recording
_log = log.get("progress")


def section_start(name: str, header: str, unix_time: int) -> str:
    """GitLab's marker that opens a collapsible section of the job log, titled ``header``."""
    return f"{_ESC}section_start:{unix_time}:{name}\r{_ESC}{header}"


def section_end(name: str, unix_time: int) -> str:
    return f"{_ESC}section_end:{unix_time}:{name}\r{_ESC}"


class Lines:
    """Progress lines on ``stream`` (None: silent), above the live status while one is shown,
    and the time since they started by ``clock``: what Progress here and the benchmarks'
    (bench/common.py) print alike."""

    def __init__(self, stream: TextIO | None, clock: Clock) -> None:
        self.stream, self.clock = stream, clock
        self.started = clock()
        self._status: LiveStatus | None = None

    def elapsed(self) -> float:
        return self.clock() - self.started

    def say(self, line: str) -> None:
        if self._status is not None:
            self._status.print(line)
        elif self.stream is not None:
            print(line, file=self.stream, flush=True)

    def redraw(self) -> None:
        if self._status is not None:
            self._status.update()

    def show_status(self, snapshot: Callable[[], Snapshot], refresh: float) -> None:
        """The live status below the lines (``stream``: a terminal), redrawn ``refresh`` times
        a second (0: only on ``redraw``) from ``snapshot``."""
        if self.stream is not None:
            self._status = LiveStatus(self.stream, snapshot, refresh=refresh)
            self._status.start()

    def hide_status(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


class Progress(Lines):
    """The progress of one command (``release``, ``nightly``, ...). ``stream`` None: silent.
    ``live``: a live status on ``stream`` (a terminal), redrawn ``refresh`` times a second (0:
    only as cells start and end); ``history``: the file of the durations runs recorded."""

    def __init__(self, stream: TextIO | None = None, *, command: str = "", sections: bool = False,
                 clock: Clock = time.monotonic, wall: Clock = time.time, live: bool = False,
                 history: Path | None = None, refresh: float = 1.0) -> None:
        super().__init__(stream, clock)
        self.command, self.sections, self.wall = command, sections, wall
        self.live, self.history, self.refresh = live and stream is not None, history, refresh
        # what the runs before recorded (live only)
        self.past: progress_history.History | None = None
        if self.live and history is not None:
            self.past, problem = progress_history.read(history)
            if problem:
                _log.warning("no estimate of the time left", problem=problem)
        self.current: Phase | None = None
        self.upcoming: tuple[Sequence[str], Sequence[str]] = ((), ())
        self.times: dict[str, dict[str, float]] = {}  # this run's: phase -> cell -> seconds
        self.overhead: dict[str, float] = {}

    @classmethod
    def for_command(cls, command: str, state: Path, st: Settings) -> Progress:
        """The progress of ``command`` on stderr, as every long command shows it: a line per
        finished cell, GitLab sections in CI, the live status on a terminal (unless turned
        off), the durations recorded in ``state`` (the work dir's state directory); ``st``:
        whether it runs in CI, whether the live status is wanted."""
        return cls(sys.stderr, command=command, sections=st.ci,
                   live=st.live_progress and sys.stderr.isatty(),
                   history=progress_history.history_path(state))

    def expect(self, phases: Sequence[str], cells: Sequence[str]) -> None:
        """The phases this command will run, in order, and the cells it runs them on (the
        estimate counts the phases after the current one with these cells)."""
        self.upcoming = (tuple(phases), tuple(cells))

    def eta(self) -> float | None:
        """Seconds left by the runs before's durations (None: no history to tell)."""
        ph = self.current
        if self.past is None or ph is None:
            return None
        todo = ph.todo()
        work: list[tuple[str, Sequence[str]]] = [(ph.name, todo)]
        phases, cells = self.upcoming
        if ph.name in phases:
            work += [(p, cells) for p in phases[phases.index(ph.name) + 1:]]
        running = self.clock() - ph.running_since if ph.running else 0.0
        return progress_history.remaining(self.past, work, running=running)

    def snapshot(self) -> Snapshot:
        ph = self.current
        if ph is None:
            return Snapshot(self.command, "", 0, 0, self.elapsed(), None)
        return Snapshot(self.command, ph.name, ph.done, ph.total, self.elapsed(), self.eta(),
                        len(ph.compiled), ph.compiles, ph.running)

    def save(self) -> None:
        """Merge this run's durations into the history file (nothing when no cell finished well
        or there is no file to keep them in); a file that cannot be written is a warning."""
        if self.history is None or not (self.times or self.overhead):
            return
        mine = progress_history.recorded(self.times, self.overhead)
        before, _ = progress_history.read(self.history)
        try:
            progress_history.write(self.history, (before or progress_history.History()).merged(mine))
        except OSError as exc:
            _log.warning("progress history not saved", file=str(self.history), error=str(exc))

    def section_name(self, phase: str) -> str:
        return _NOT_NAME.sub("_", f"orchestrator_{self.command}_{phase}".replace("__", "_"))

    @contextmanager
    def phase(self, name: str, total: int, *, compiles: int = 0,
              cells: Sequence[str] = ()) -> Iterator[Phase]:
        """A phase of ``total`` cells (``cells``: their ids, in order; ``compiles``: the CPython
        compiles it may run). Nothing is printed when it has no cell. An exception leaves the
        section open, as the job ends (and takes the live status away)."""
        ph = Phase(self, name, total, compiles, cells)
        if total == 0:
            yield ph
            return
        planned = f", {compiles} CPython compile(s) planned" if compiles else ""
        header = f"{name}: {total} cell(s){planned}"
        section = self.section_name(name)
        self.say(section_start(section, header, int(self.wall())) if self.sections else header)
        self.current = ph
        if self.live:
            self.show_status(self.snapshot, self.refresh)
        try:
            yield ph
            self.say(ph.summary())
        finally:
            self.hide_status()
            self.current = None
        spent = self.clock() - ph.started
        self.overhead[name] = spent - sum(ph.seconds.values())
        good = {c: s for c, s in ph.seconds.items() if ph.outcome[c] in _GOOD}
        if good:
            self.times.setdefault(name, {}).update(good)
        if self.sections:
            self.say(section_end(section, int(self.wall())))


class Phase:
    """The cells of one phase: ``with phase.cell(res): ...`` prints its line once it is done."""

    def __init__(self, progress: Progress, name: str, total: int, compiles: int,
                 cells: Sequence[str] = ()) -> None:
        self.progress, self.name, self.total, self.compiles = progress, name, total, compiles
        self.cells = tuple(cells)
        self.done = 0
        self.compiled: set[str] = set()
        self.statuses: dict[str, int] = {}
        self.started = progress.clock()
        self.seconds: dict[str, float] = {}  # cell -> its time in this phase
        self.outcome: dict[str, Status] = {}
        self.running, self.running_since = "", 0.0

    def todo(self) -> list[str]:
        """The cells still to finish, the running one first (ids unknown: placeholders)."""
        if not self.cells:
            n = self.total - self.done
            return [self.running or "?"] + ["?"] * (n - 1) if n > 0 else []
        left = [c for c in self.cells if c not in self.seconds]
        return sorted(left, key=lambda c: c != self.running)

    @contextmanager
    def cell(self, res: CellResult) -> Iterator[None]:
        """Times the block; afterwards one line with the cell's status (no line when the
        block raises: the error ends the command)."""
        start = self.progress.clock()
        self.running, self.running_since = res.id, start
        self.progress.redraw()
        yield
        self.running = ""
        self.finished(res, self.progress.clock() - start)

    def finished(self, res: CellResult, seconds: float) -> None:
        self.done += 1
        self.compiled |= set(res.compiled)
        self.seconds[res.id], self.outcome[res.id] = seconds, res.status
        status = res.status.value
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.progress.say(self.line(res, seconds))
        self.progress.redraw()

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

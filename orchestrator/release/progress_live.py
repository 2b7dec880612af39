"""The live status line of a long command on a terminal (rich's Live), below the lines it prints.

While a phase runs, the bottom line of the terminal says where the command is and redraws every
second::

    ⠋ release: build 3/15, compiles 3/8, elapsed 22m55s, about 27m10s left (3.14-source-trixie-dev)

Whatever else writes to stderr meanwhile (the log, -v's BuildKit lines, the progress lines)
goes through rich's redirection and appears above it, whole lines, never mixed into it. The
status is gone (transient) when the phase ends. Only on a terminal: progress.py does not make
one otherwise, so the output of CI and pipes is the same lines as without it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from orchestrator.release.report import duration


@dataclass(frozen=True)
class Snapshot:
    """Where a command is: its phase, cells and compiles done, time since it started, and the
    estimate of the time left (None: no history of a run before to make one from)."""

    command: str
    phase: str
    done: int
    total: int
    elapsed: float
    eta: float | None
    compiled: int = 0
    compiles: int = 0
    cell: str = ""  # the cell running now


def status_text(s: Snapshot) -> str:
    parts = [f"{s.phase} {s.done}/{s.total}" if s.total else s.phase]  # 0: nothing to count
    if s.compiles:
        parts.append(f"compiles {s.compiled}/{s.compiles}")
    parts.append(f"elapsed {duration(s.elapsed)}")
    if s.eta is None:
        parts.append("no estimate yet")
    elif s.eta < 1:
        parts.append("taking longer than last time")
    else:
        parts.append(f"about {duration(s.eta)} left")
    text = f"{s.command}: " if s.command else ""
    text += ", ".join(parts)
    return f"{text} ({s.cell})" if s.cell else text


class LiveStatus:
    """rich's Live over ``stream`` (a terminal), showing ``snapshot()`` at each refresh.
    ``refresh``: redraws per second (0: only when ``update`` is called)."""

    def __init__(self, stream: TextIO, snapshot: Callable[[], Snapshot], *,
                 refresh: float = 1.0) -> None:
        self.console = Console(file=stream, force_terminal=True, highlight=False, emoji=False)
        self.snapshot = snapshot
        self.spinner = Spinner("dots")
        self.live = Live(console=self.console, get_renderable=self._render,
                         auto_refresh=refresh > 0, refresh_per_second=refresh or 1.0,
                         transient=True, redirect_stderr=True,
                         redirect_stdout=sys.stdout.isatty())

    def _render(self) -> Spinner:
        self.spinner.update(text=Text(status_text(self.snapshot()), no_wrap=True,
                                      overflow="ellipsis"))
        return self.spinner

    def start(self) -> None:
        self.live.start(refresh=True)

    def stop(self) -> None:
        self.live.stop()

    def update(self) -> None:
        self.live.refresh()

    def print(self, line: str) -> None:
        """``line`` above the status, as it is (no markup, no wrapping)."""
        self.console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)

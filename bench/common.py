"""Shared helpers for the benchmarks: progress output, machine load, subprocesses, docker.

Every timing recorded by the benchmarks carries the machine's load average
(``os.getloadavg()``) from before and after it: this machine is shared (2 cores, other
builds on the same dockerd), so figures are only comparable together with their load.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from orchestrator import runner, settings
from orchestrator.release import progress_history as hist
from orchestrator.release.progress import Lines, section_end, section_start
from orchestrator.release.progress_live import Snapshot
from orchestrator.release.report import duration

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
PY = sys.executable
REGISTRY = "127.0.0.1:5000"
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_T0 = time.monotonic()


def log(msg: str) -> None:
    """One progress line on stderr: elapsed time, 1-min load, message."""
    elapsed = time.monotonic() - _T0
    load = os.getloadavg()[0]
    print(f"[bench {elapsed:7.1f}s load {load:4.2f}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@dataclass
class Timing:
    """A wall-clock measurement with the load average before and after it."""

    seconds: float = 0.0
    load_before: list[float] = field(default_factory=list)
    load_after: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 2), "loadavg_before": self.load_before,
                "loadavg_after": self.load_after}


class Timer:
    """``with Timer() as t: ...``; then ``t.timing``."""

    def __init__(self) -> None:
        self.timing = Timing()
        self._start = 0.0

    def __enter__(self) -> Timer:
        self.timing.load_before = loadavg()
        self._start = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timing.seconds = time.monotonic() - self._start
        self.timing.load_after = loadavg()


class CommandFailed(RuntimeError):
    def __init__(self, argv: Sequence[str], code: int, tail: str) -> None:
        super().__init__(f"{' '.join(argv)[:300]} exited {code}:\n{tail}")
        self.code = code


def run(argv: Sequence[str], *, input_text: str | None = None, env: dict[str, str] | None = None,
        cwd: Path | None = None, check: bool = True, timeout: float | None = None) -> str:
    """Run a short command; returns stdout. Raises CommandFailed (with stderr) on failure."""
    done = runner.run(argv, input=input_text, env={**os.environ, **(env or {})}, cwd=cwd,
                      timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise CommandFailed(argv, done.returncode, (done.stderr or done.stdout)[-3000:])
    return done.stdout


def run_retry(argv: Sequence[str], *, attempts: int = 6, delay: float = 10.0,
              timeout: float | None = None) -> str:
    """``run`` with retries: for pushes to the local registry, which other jobs on this
    machine stop and restart (their registry-outage tests)."""
    for attempt in range(1, attempts + 1):
        try:
            return run(argv, timeout=timeout)
        except CommandFailed as exc:
            if attempt == attempts:
                raise
            log(f"retry {attempt}/{attempts - 1} in {delay:.0f}s: {str(exc).splitlines()[0][:160]}")
            time.sleep(delay)
    raise AssertionError("unreachable")


def stream(argv: Sequence[str], *, log_path: Path, prefix: str, env: dict[str, str] | None = None,
           cwd: Path | None = None, show: Callable[[str], bool] | None = None,
           heartbeat: float = 60.0) -> tuple[int, Timing]:
    """Run a long command, teeing its output to ``log_path``.

    Lines for which ``show`` is true (all lines when it is None) are echoed to stderr with
    ``prefix``; otherwise the latest line is echoed every ``heartbeat`` seconds, so long
    builds always report progress. Returns the exit code and the timing.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    last_echo = time.monotonic()

    def on_line(line: str) -> None:
        nonlocal last_echo
        fh.write(line + "\n")
        now = time.monotonic()
        if show is None or show(line) or now - last_echo > heartbeat:
            print(f"  [{prefix}] {line.rstrip()[:200]}", file=sys.stderr, flush=True)
            last_echo = now

    with Timer() as t, log_path.open("w") as fh:
        done = runner.run(argv, env={**os.environ, **(env or {})}, cwd=cwd, check=False,
                          on_line=on_line)
    return done.returncode, t.timing


# --------------------------------------------------------------------------- progress

Clock = Callable[[], float]


class Progress(Lines):
    """How far a bench run is, on ``stream`` (stderr), as the orchestrator's long commands show
    it (orchestrator/release/progress.py, whose lines and live status (``Lines``), GitLab
    markers and history file this reuses): a line per finished section with its place among
    the run's sections, its time and the time since the run started; inside a section that
    counts its items (``Section.expect``), a line per finished item::

        bench 5/6: speed
        speed 3/20: reference (round 1/5) in 40s (elapsed 1h42m)
        ...
        bench 5/6: speed done in 8m31s (elapsed 1h50m)

    ``sections`` (CI): each section is a collapsible section of GitLab's job log. ``live`` (a
    terminal): a status line below says the section, items done, elapsed time and, from the
    durations of earlier runs of the same ``mode`` kept in ``history``, the time left. Every
    run with a ``history`` file records there the time of each section that did not fail."""

    def __init__(self, stream: TextIO | None, names: Sequence[str], *, mode: str = "full",
                 sections: bool = False, live: bool = False, history: Path | None = None,
                 clock: Clock = time.monotonic, wall: Clock = time.time,
                 refresh: float = 1.0) -> None:
        super().__init__(stream, clock)
        self.names, self.mode, self.wall = tuple(names), mode, wall
        self.sections, self.history, self.refresh = sections, history, refresh
        self.live = live and stream is not None
        self.times: dict[str, float] = {}  # this run's: section -> seconds (those that did not fail)
        self.past: dict[str, float] | None = None
        if self.live and history is not None:
            past, problem = hist.read(history)
            if problem:
                log(f"no estimate of the time left: {problem}")
            self.past = past.cells.get(mode) if past else None
        self.current: Section | None = None

    @classmethod
    def for_run(cls, names: Sequence[str], *, mode: str, history: Path) -> Progress:
        """On stderr: GitLab sections in CI, the live status on a terminal (unless turned off
        as for the orchestrator: ORCH_PROGRESS=0, TERM=dumb)."""
        st = settings.Settings.from_environ()
        return cls(sys.stderr, names, mode=mode, sections=st.ci,
                   live=st.live_progress and sys.stderr.isatty(), history=history)

    def eta(self) -> float | None:
        """Seconds left by the earlier runs' section times: what is left of the running
        section (nothing once it runs longer than last time) and every section after it;
        None when one of them has no recorded time."""
        sec = self.current
        if self.past is None or sec is None:
            return None
        todo = self.names[self.names.index(sec.name):]
        if any(name not in self.past for name in todo):
            return None
        running = self.clock() - sec.started
        return max(0.0, self.past[sec.name] - running) + sum(self.past[n] for n in todo[1:])

    def snapshot(self) -> Snapshot:
        sec = self.current
        if sec is None:
            return Snapshot("bench", "", 0, 0, self.elapsed(), None)
        return Snapshot(f"bench {sec.index}/{len(self.names)}", sec.name, sec.done, sec.total,
                        self.elapsed(), self.eta(), cell=sec.running)

    def save(self) -> None:
        """Merge this run's section times into the history file (a file that cannot be
        written costs the next run its estimate, not this one its results)."""
        if self.history is None or not self.times:
            return
        before, _ = hist.read(self.history)
        try:
            hist.write(self.history, (before or hist.History()).merged(
                hist.recorded({self.mode: self.times}, {})))
        except OSError as exc:
            log(f"progress history not saved to {self.history}: {exc}")

    @contextmanager
    def section(self, name: str) -> Iterator[Section]:
        """One of the run's sections (``names``): a header, then on the way out its time,
        or, when the block raises, FAILED with where and why (the exception goes on)."""
        sec = Section(self, name, self.names.index(name) + 1)
        head = f"bench {sec.index}/{len(self.names)}: {name}"
        marker = f"bench_{name}"
        self.say(section_start(marker, head, int(self.wall())) if self.sections else head)
        self.current = sec
        if self.live:
            self.show_status(self.snapshot, self.refresh)
        try:
            yield sec
        except Exception as exc:
            at = f" at {sec.place()} {sec.running}" if sec.running else ""
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            self.say(f"{head} FAILED in {duration(self.clock() - sec.started)} "
                     f"(elapsed {duration(self.elapsed())}){at}: {type(exc).__name__}: {first}")
            raise
        else:
            self.times[name] = self.clock() - sec.started
            self.say(f"{head} done in {duration(self.times[name])} (elapsed {duration(self.elapsed())})")
        finally:
            self.hide_status()
            self.current = None
            if self.sections:
                self.say(section_end(marker, int(self.wall())))


class Section:
    """The items of one section: ``expect(n)``, then ``with section.item(label) as it: ...``
    prints ``<section> k/n: <label> in <time> (elapsed <total>)`` once the block is done, and
    ``: <it.note>`` when the block set one. ``Section.quiet()``: counts, prints nothing."""

    def __init__(self, progress: Progress | None, name: str, index: int) -> None:
        self.progress, self.name, self.index = progress, name, index
        self.total = self.done = 0
        self.running = ""
        self.started = progress.clock() if progress else time.monotonic()

    @classmethod
    def quiet(cls, name: str = "") -> Section:
        return cls(None, name, 0)

    def expect(self, total: int) -> None:
        self.total = total
        if self.progress is not None:
            self.progress.redraw()

    def place(self, k: int | None = None) -> str:
        k = self.done + 1 if k is None else k
        return f"{k}/{self.total}" if self.total else str(k)

    @contextmanager
    def item(self, label: str) -> Iterator[Item]:
        """Times the block; no line when it raises (the section's FAILED line names it)."""
        it = Item(label)
        clock = self.progress.clock if self.progress else time.monotonic
        start = clock()
        self.running = label
        if self.progress is not None:
            self.progress.redraw()
        yield it
        self.running = ""
        self.done += 1
        if self.progress is not None:
            took = duration(clock() - start)
            line = (f"{self.name} {self.place(self.done)}: {label} in {took} "
                    f"(elapsed {duration(self.progress.elapsed())})")
            self.progress.say(f"{line}: {it.note}" if it.note else line)
            self.progress.redraw()


@dataclass
class Item:
    """What an item's line says after its time (``note``: e.g. its exit code or its result)."""

    label: str
    note: str = ""


# --------------------------------------------------------------------------- docker


def inspect(ref: str) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(run(["docker", "image", "inspect", ref]))
    return data[0]


def image_exists(ref: str) -> bool:
    return runner.run(["docker", "image", "inspect", ref], check=False).returncode == 0


def tag(image: str, ref: str) -> None:
    run(["docker", "tag", image, ref])


def diff_ids(ref: str) -> list[str]:
    return list(inspect(ref).get("RootFS", {}).get("Layers", []))


def docker_version() -> dict[str, str]:
    server = run(["docker", "version", "--format", "{{.Server.Version}}"]).strip()
    buildx = run(["docker", "buildx", "version"]).strip()
    return {"dockerd": server, "buildx": buildx}


def container(image: str, script: str, *, user: str | None = None, read_only: bool = False,
              network: str = "none", mounts: Sequence[str] = (), env: dict[str, str] | None = None,
              timeout: float = 900) -> str:
    """Run ``/bin/sh -c script`` in a throwaway container; returns its stdout."""
    argv = ["docker", "run", "--rm", "--network", network, "--entrypoint", "/bin/sh"]
    if user is not None:
        argv += ["--user", user]
    if read_only:
        argv += ["--read-only"]
    for m in mounts:
        argv += ["--mount", m]
    for k, v in (env or {}).items():
        argv += ["-e", f"{k}={v}"]
    argv += [image, "-c", script]
    return run(argv, timeout=timeout)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)


def mb(n: float | None) -> str:
    return "-" if n is None else f"{n / 1e6:.1f}"

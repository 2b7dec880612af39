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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import runner

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

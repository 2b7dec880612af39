"""One measurement: the candidate and the published image run the same workloads under the
same pyperf, in interleaved rounds, on the build host's native platform.

Each run is a fresh container of the image: its own interpreter (``naming.interpreter``: the
entrypoint, so a minimal image without a shell runs it too) runs ``runner.py`` from the
read-only bind-mounted workloads directory with the read-only pyperf copy on its path, as the
images' non-root uid, without network, its root file system read-only. The first round runs
the candidate first, the second the published image first, and so on, so neither always
meets a warmer or a busier host. Both images must return the same checksum per
workload: the same work was timed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from orchestrator.config.publish import WORKLOADS, Perf
from orchestrator.engine import Engine, Mount
from orchestrator.errors import EngineError, PerfError

PYPERF_MOUNT = "/pyperf"  # on PYTHONPATH, which pyperf passes on to its workers; runner.py adds it too
WORKLOADS_MOUNT = "/perf"
RESULT = "BENCH-RESULT "
CANDIDATE, PUBLISHED = "candidate", "published"


def workloads_dir() -> Path:
    """The shipped workloads and runner.py (package data: a directory on disk)."""
    return Path(str(resources.files("orchestrator.perf.workloads")))


def names(perf: Perf) -> tuple[str, ...]:
    return perf.workloads or WORKLOADS


def pyperf_args(perf: Perf) -> list[str]:
    """What runner.py is given: pyperf's options and the workloads."""
    return ["--processes", str(perf.processes), "--values", str(perf.values), "--warmups", "1",
            "--loops", "1", "--quiet", "--workloads", ",".join(names(perf))]


@dataclass(frozen=True)
class RunResult:
    """One run of every workload in one image."""

    image: str  # candidate | published
    round: int  # from 1
    python: str  # the interpreter's version, as it says
    pyperf: str
    values: dict[str, tuple[float, ...]]  # workload -> seconds per call
    checksums: dict[str, str]
    seconds: float


@dataclass(frozen=True)
class Subject:
    role: str  # candidate | published
    ref: str  # the local candidate, or the pulled published image (host/repo@sha256:...)


def parse(output: str, role: str, round_: int, seconds: float) -> RunResult:
    """runner.py's BENCH-RESULT line (PerfError when there is none, or it is not JSON)."""
    for line in output.splitlines():
        if line.startswith(RESULT):
            try:
                data: dict[str, Any] = json.loads(line.removeprefix(RESULT))
                results: dict[str, Any] = data["results"]
                return RunResult(role, round_, str(data["python"]), str(data["pyperf"]),
                                 {n: tuple(float(v) for v in r["values"])
                                  for n, r in results.items()},
                                 {n: str(r["checksum"]) for n, r in results.items()}, seconds)
            except (ValueError, KeyError, TypeError) as exc:
                raise PerfError(f"the {role} image's workloads printed an unreadable result "
                                f"({exc}): {line[:200]}") from None
    raise PerfError(f"the {role} image's workloads printed no result: "
                    f"{output.strip()[-800:] or 'no output'}")


@dataclass
class Measurement:
    runs: list[RunResult] = field(default_factory=list)

    def values(self, role: str) -> dict[str, list[float]]:
        """workload -> every value of ``role``'s runs, all rounds pooled."""
        out: dict[str, list[float]] = {}
        for r in self.runs:
            if r.image == role:
                for name, vals in r.values.items():
                    out.setdefault(name, []).extend(vals)
        return out

    def rounds(self) -> list[tuple[dict[str, list[float]], dict[str, list[float]]]]:
        """(candidate values, published values) of each round both images ran in."""
        out = []
        for n in sorted({r.round for r in self.runs}):
            got = {r.image: {k: list(v) for k, v in r.values.items()}
                   for r in self.runs if r.round == n}
            if CANDIDATE in got and PUBLISHED in got:
                out.append((got[CANDIDATE], got[PUBLISHED]))
        return out

    def first(self, role: str) -> RunResult | None:
        return next((r for r in self.runs if r.image == role), None)


def run_once(engine: Engine, subject: Subject, round_: int, *, interpreter: str,
             pyperf_dir: Path, perf: Perf, uid: int, platform: str,
             timeout: float) -> RunResult:
    argv = [interpreter, f"{WORKLOADS_MOUNT}/runner.py", *pyperf_args(perf)]
    try:
        out = engine.run_program(
            subject.ref, argv, mounts=(Mount(workloads_dir(), WORKLOADS_MOUNT),
                                       Mount(pyperf_dir, PYPERF_MOUNT)),
            user=str(uid), network="none", timeout=timeout, platform=platform,
            env={"HOME": "/tmp", "PYTHONPATH": PYPERF_MOUNT, "PYTHONDONTWRITEBYTECODE": "1"})
    except EngineError as exc:
        raise PerfError(f"the {subject.role} image could not run its workloads: {exc}") from None
    if out.exit_code != 0:
        raise PerfError(f"the {subject.role} image's workloads failed (exit {out.exit_code}): "
                        f"{out.output.strip()[-800:]}")
    return parse(out.output, subject.role, round_, out.seconds)


def check_same_work(m: Measurement, wanted: Sequence[str]) -> None:
    """Every wanted workload ran in every run, and returned the same checksum everywhere."""
    seen: dict[str, tuple[str, str]] = {}
    for r in m.runs:
        missing = [n for n in wanted if n not in r.values]
        if missing:
            raise PerfError(f"the {r.image} image did not run {', '.join(missing)} "
                            f"(round {r.round})")
        for name, checksum in r.checksums.items():
            first = seen.setdefault(name, (checksum, r.image))
            if first[0] != checksum:
                raise PerfError(f"workload {name} returned {checksum} in the {r.image} image "
                                f"and {first[0]} in the {first[1]} one: they did different work")


def measure(engine: Engine, candidate: Subject, published: Subject | None, *,
            interpreter: str, pyperf_dir: Path, perf: Perf, uid: int, platform: str,
            timeout: float = 900, on_run: Callable[[RunResult], None] | None = None
            ) -> Measurement:
    """``perf.rounds`` interleaved rounds (``published`` None, a first publish: the candidate
    alone, the same number of times)."""
    m = Measurement()
    for n in range(1, perf.rounds + 1):
        order = [candidate] if published is None else \
            [candidate, published] if n % 2 else [published, candidate]
        for subject in order:
            result = run_once(engine, subject, n, interpreter=interpreter,
                              pyperf_dir=pyperf_dir, perf=perf, uid=uid, platform=platform,
                              timeout=timeout)
            m.runs.append(result)
            if on_run is not None:
                on_run(result)
    check_same_work(m, names(perf))
    return m

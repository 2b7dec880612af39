"""Runs the workloads in this directory with pyperf, inside the image under test.

    python3 runner.py [--workloads nbody,dict_str] [pyperf options, e.g. --processes 4
                      --values 3 --loops 1]

Every workload unless ``--workloads`` names some (by their NAME, the file's name). pyperf
itself is imported from /pyperf: bind-mounted read-only by bench/speed.py (pip-installed
there) and by the release's performance record (orchestrator/perf/pyperf_dir.py: the
orchestrator's own pyperf, copied). pyperf spawns fresh worker processes for the values
(with the same arguments); the parent prints one line ``BENCH-RESULT {json}``: per
workload, its values (seconds per call) and a checksum of what the workload returned
(every image must do the same work).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, os.environ.get("BENCH_PYPERF", "/pyperf"))
sys.path.insert(0, str(HERE))


def workloads(only: str = "") -> list[Any]:
    """The workload modules, sorted by name; ``only``: a comma-separated selection."""
    names = sorted(p.stem for p in HERE.glob("*.py") if p.stem not in ("runner", "__init__"))
    wanted = [n for n in only.split(",") if n]
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise SystemExit(f"runner.py: no workload {', '.join(unknown)} (known: {', '.join(names)})")
    return [importlib.import_module(n) for n in names if not wanted or n in wanted]


def checksum(value: object) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def main() -> None:
    pyperf: Any = importlib.import_module("pyperf")
    # the worker processes pyperf spawns get the selection too (pyperf passes on only its own
    # options): each must run the same list, in the same order, as the parent
    runner = pyperf.Runner(add_cmdline_args=lambda cmd, args: cmd.extend(
        ("--workloads", args.workloads)))
    runner.argparser.add_argument("--workloads", default="",
                                  help="comma-separated workload names (default: all)")
    args = runner.parse_args()
    results: dict[str, Any] = {}
    for mod in workloads(args.workloads):
        bench = runner.bench_func(mod.NAME, mod.bench)
        if bench is not None:  # None in worker processes
            results[mod.NAME] = {"values": list(bench.get_values()),
                                 "checksum": checksum(mod.bench())}
    if runner.args.worker:
        return
    info = {"python": platform.python_version(), "implementation": sys.version,
            "executable": sys.executable, "pyperf": pyperf.__version__, "results": results}
    print("BENCH-RESULT " + json.dumps(info), flush=True)


if __name__ == "__main__":
    main()

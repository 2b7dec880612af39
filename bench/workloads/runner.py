"""Runs every workload in this directory with pyperf, inside the image under test.

    python3 runner.py [pyperf options, e.g. --processes 4 --values 3 --loops 1]

pyperf itself is imported from /pyperf (bench/speed.py installs it there with pip and
bind-mounts it read-only). pyperf spawns fresh worker processes for the values; the
parent prints one line ``BENCH-RESULT {json}``: per workload, its values (seconds per
call) and a checksum of what the workload returned (bench/speed.py checks that every
image did the same work).
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


def workloads() -> list[Any]:
    names = sorted(p.stem for p in HERE.glob("*.py") if p.stem not in ("runner", "__init__"))
    return [importlib.import_module(n) for n in names]


def checksum(value: object) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def main() -> None:
    pyperf: Any = importlib.import_module("pyperf")
    runner = pyperf.Runner()
    results: dict[str, Any] = {}
    for mod in workloads():
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

"""``python -m orchestrator``, except that candidate images are tagged ``bench-candidate/...``.

The orchestrator tags what it builds ``orchestrator-candidate/<cell-id>`` (pipeline.CANDIDATE),
one namespace per Docker engine. Other pipelines (e2e tests, demos) build the same cell ids on
this engine at the same time; with the default name our builds would re-point their
candidate tags between their build and test phases (and theirs ours). Only that name
changes here: the commands, their arguments, the builds and the reports are the
orchestrator's own.

    python bench/orch.py build --config DIR/images.yaml --report FILE [...]
"""

from __future__ import annotations

import os
import sys

from orchestrator import pipeline
from orchestrator.cli import main

if __name__ == "__main__":
    pipeline.CANDIDATE = os.environ.get("BENCH_CANDIDATE", "bench-candidate")
    raise SystemExit(main(sys.argv[1:]))

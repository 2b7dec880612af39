"""An orchestrator-like process for the kill -9 test: one push run (release.push.do_push with the
fake engine's synthetic candidates), exactly as tests.fakes.publish_harness makes it in-process.

    python -m tests.integration.publish_child SPEC.json

SPEC: {"config", "host", "work", "seed", "report"}; exit code: the report's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from orchestrator.release.push import do_push
from tests.fakes.publish_harness import Publisher


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    pub = Publisher(Path(spec["config"]), spec["host"], Path(spec["work"]))
    run = pub.run(seed=spec["seed"])
    do_push(run, all_or_nothing=False)
    run.report.write_json(Path(spec["report"]))
    return run.report.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

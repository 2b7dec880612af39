"""A fake syft for unit tests: stands in for ``runner.run`` in ``orchestrator.supplychain.sbom.scan`` and
writes the SBOMs recorded from a real image (tests/unit/fixtures/sbom) where ``--output`` says."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator import runner

SBOMS = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "sbom"
Edit = Callable[[dict[str, Any]], dict[str, Any]]


class FakeSyft:
    """Stands in for runner.run: records the argv and writes the recorded documents."""

    def __init__(self, edit: Edit | None = None) -> None:
        self.calls: list[tuple[list[str], dict[str, str]]] = []
        self.edit = edit

    def __call__(self, argv: list[str], **kw: Any) -> runner.Completed:
        self.calls.append((argv, kw["env"]))
        for i, arg in enumerate(argv):
            if arg == "--output":
                fmt, _, path = argv[i + 1].partition("=")
                src = SBOMS / ("syft-runtime-amd64.spdx.json" if fmt == "spdx-json"
                               else "syft-runtime-amd64.cdx.json")
                doc = json.loads(src.read_text())
                Path(path).write_text(json.dumps(self.edit(doc) if self.edit else doc))
        return runner.Completed(argv, 0, "", "", 0.1)

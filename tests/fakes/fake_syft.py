"""A fake syft for unit tests: stands in for ``runner.run`` in ``orchestrator.supplychain.sbom.scan`` and
writes the SBOMs recorded from a real image (tests/unit/fixtures/sbom) where ``--output`` says.
``install(dir)`` puts a stand-in ``dir/bin/syft`` where sbom.syft_path looks (the unit tests'
Settings.tools_dir), so a signing run finds "the pinned syft" on a machine without one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator import runner
from orchestrator.supplychain import sbom

SBOMS = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "sbom"
Edit = Callable[[dict[str, Any]], dict[str, Any]]
# what install() writes: only FakeSyft runs in the unit tests, so running this is a test's bug
STAND_IN = ("#!/bin/sh\necho 'stand-in syft (tests/fakes/fake_syft.py): the unit tests run FakeSyft"
            " in its place' >&2\nexit 99\n")


def install(tools_dir: Path) -> Path:
    """The stand-in ``tools_dir/bin/syft`` (executable), as scripts/install-go-tools.sh links
    the pinned one."""
    path = tools_dir / "bin" / "syft"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STAND_IN)
    path.chmod(0o755)
    return path


class FakeSyft:
    """Stands in for runner.run: records the argv and writes the recorded documents."""

    def __init__(self, edit: Edit | None = None) -> None:
        self.calls: list[tuple[list[str], dict[str, str]]] = []
        self.edit = edit

    def tool(self, binary: str = "/tools/bin/syft") -> sbom.Syft:
        """This fake as the syft sbom.image_sboms and attest.attach are given."""
        return sbom.Syft(binary, self)

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

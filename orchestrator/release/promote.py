"""Promote: move the public tags of the images that `--stage-only` runs pushed by digest
(e.g. one run per CI shard), as their reports say; never those of a failed cell, nor (with
signing.required) of a digest whose signature, SBOM or provenance does not verify."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator import imageref
from orchestrator.errors import OrchestratorError, RegistryAuthError, UsageError
from orchestrator.registry import Registry, fingerprint
from orchestrator.release.report import CellResult, Report, Status
from orchestrator.supplychain.verify import Gate

StagedCell = dict[str, Any]  # one cell of a JSON report written by a staging run
# (repository, digest, cell id, public tags) -> why the digest may not take those tags, or None
ScanGate = Callable[[str, str, str, tuple[str, ...]], str | None]
_clock = time.monotonic  # each promoted cell's time (the summary's TIME), a test's to set
_PROMOTED = ("promote", "verify", "scan")  # the phases of a cell whose tags promote tried to move


def read_staged(paths: list[str]) -> list[StagedCell]:
    """The cells of the staging runs' reports."""
    cells: list[StagedCell] = []
    for path in paths:
        try:
            cells += json.loads(Path(path).read_text())["cells"]
        except (OSError, ValueError, KeyError) as exc:
            raise UsageError(f"{path}: not a report written by --report ({exc})") from None
    return cells


def _promote_cell(res: CellResult, c: StagedCell, registry: Registry, bad: list[str],
                  all_or_nothing: bool, gate: Gate | None, scan: ScanGate | None) -> None:
    if c["status"] in (Status.FAILED, Status.ABORTED):
        res.status, res.message = Status(c["status"]), c.get("message", "")
    elif c.get("phase") != "staged":
        res.status, res.message = Status.SKIPPED, f"nothing staged ({c['status']})"
    elif all_or_nothing and bad:
        res.status = Status.SKIPPED
        res.message = f"--all-or-nothing: {len(bad)} cell(s) failed ({bad[0]}...), no tag moved"
    else:
        repo = imageref.parse(c["repository"]).repository
        try:
            refused = gate(repo, c["digest"]) if gate else None
            if refused:
                res.fail("verify", f"refused: {refused}")
                return
            refused = scan(repo, c["digest"], c["id"], tuple(c["tags"])) if scan else None
            if refused:
                res.fail("scan", refused)
                return
            res.tags_moved = fingerprint.move_tags(registry, repo, c["digest"], tuple(c["tags"]))
            res.status, res.phase = Status.OK, "promote"
        except RegistryAuthError:
            raise  # refused credentials: exit 4 with the login hint
        except OrchestratorError as exc:
            res.fail("promote", str(exc))


def promote(cells: list[StagedCell], registry: Registry, *, all_or_nothing: bool,
            today: dt.date, gate: Gate | None = None, scan: ScanGate | None = None) -> Report:
    """Move the public tags of every staged cell; the report says what happened to each.
    ``gate`` (signing.required: verify.promote_gate) refuses a digest that does not verify;
    ``scan`` (scan: in images.yaml, scan.gate) one that brings a new fixable finding."""
    report = Report("promote", "", today.isoformat())
    bad = [c["id"] for c in cells if c["status"] in (Status.FAILED, Status.ABORTED)]
    for c in cells:
        res = report.cell(c["id"])
        res.digest, res.publish, res.tags = c.get("digest", ""), c.get("publish", ""), c.get("tags", [])
        began = _clock()
        _promote_cell(res, c, registry, bad, all_or_nothing, gate, scan)
        if res.phase in _PROMOTED:
            res.seconds["promote"] = round(_clock() - began, 1)
    return report

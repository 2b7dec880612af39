"""Results: one status per cell, a JSON report, JUnit XML for GitLab, one exit code."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from orchestrator.errors import ExitCode


class Status(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNCHANGED = "unchanged"
    ABORTED = "aborted"


@dataclass
class CellResult:
    id: str
    status: Status = Status.SKIPPED
    phase: str = ""  # build | test | push | tag: where it stopped or finished
    message: str = ""
    image_id: str = ""
    digest: str = ""
    size_bytes: int = 0  # unpacked, native platform
    compressed_bytes: int = 0  # in the registry, native platform
    platforms: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)  # platform -> unpacked bytes
    compressed: dict[str, int] = field(default_factory=dict)  # platform -> compressed bytes
    fingerprint: str = ""
    publish: str = ""  # new | updated | unchanged | "" (not published)
    repository: str = ""  # registry/repository the image goes to
    tags: list[str] = field(default_factory=list)  # the public tags this image should carry
    tags_moved: list[str] = field(default_factory=list)
    immutable_tag: str = ""
    package_changes: list[str] = field(default_factory=list)
    compiled: list[str] = field(default_factory=list)
    # signing: (images.yaml): the pushed digest carries a signature of the configured key after
    # this run (signed now, or an unchanged image signed by an earlier push); what this run
    # signed (the digest and its platform manifests) and attested (per platform SBOM, the
    # provenance: predicate_type, subject, platform, file). False/empty: unsigned.
    signed: bool = False
    signatures: list[str] = field(default_factory=list)
    attestations: list[dict[str, str]] = field(default_factory=list)
    # nightly: the security updates this image took, and (when it could not be published) the
    # ones its published image still lacks: {package, installed, candidate, platform, since}
    security_updates: list[str] = field(default_factory=list)
    waiting_security: list[dict[str, str]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    log: str = ""

    def fail(self, phase: str, message: str) -> None:
        self.status, self.phase, self.message = Status.FAILED, phase, message

    def abort(self, because: str) -> None:
        self.status, self.message = Status.ABORTED, f"not attempted: {because}"


@dataclass
class Report:
    command: str
    profile: str
    date: str
    cells: dict[str, CellResult] = field(default_factory=dict)
    seconds: float = 0.0
    compiles: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # nightly: cells found unchanged before any build (inputs unchanged, no pending apt upgrade)
    fast_path: list[str] = field(default_factory=list)

    def cell(self, cell_id: str) -> CellResult:
        return self.cells.setdefault(cell_id, CellResult(cell_id))

    @property
    def exit_code(self) -> int:
        bad = {Status.FAILED, Status.ABORTED}
        return int(ExitCode.FAILED if any(c.status in bad for c in self.cells.values())
                   else ExitCode.OK)

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for c in self.cells.values():
            out[c.status.value] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cells"] = [{**asdict(c), "status": c.status.value} for c in self.cells.values()]
        d["counts"] = self.counts()
        d["exit_code"] = self.exit_code
        return d

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")

    def write_junit(self, path: Path) -> None:
        counts = self.counts()
        suite = ET.Element("testsuite", name=f"orchestrator {self.command}",
                           tests=str(len(self.cells)),
                           failures=str(counts["failed"]), errors=str(counts["aborted"]),
                           skipped=str(counts["skipped"]), time=f"{self.seconds:.1f}")
        for c in self.cells.values():
            case = ET.SubElement(suite, "testcase", classname=self.command, name=c.id,
                                 time=f"{sum(c.seconds.values()):.1f}")
            if c.status is Status.FAILED:
                ET.SubElement(case, "failure", message=f"{c.phase}: {c.message[:200]}").text = c.message
            elif c.status is Status.ABORTED:
                ET.SubElement(case, "error", message=c.message).text = c.message
            elif c.status is Status.SKIPPED:
                ET.SubElement(case, "skipped", message=c.message)
            out = [f"status={c.status.value} publish={c.publish} digest={c.digest}"
                   + (" signed" if c.signed else "")]
            out += [f"tag {t}" for t in c.tags_moved] + c.package_changes
            ET.SubElement(case, "system-out").text = "\n".join(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)

    def table(self) -> str:
        rows = [("CELL", "STATUS", "PUBLISH", "SIZE MB", "DIGEST", "NOTE")]
        for c in self.cells.values():
            rows.append((c.id, c.status.value, c.publish or "-",
                         f"{c.size_bytes / 1e6:.1f}" if c.size_bytes else "-",
                         c.digest[7:19] if c.digest else "-",
                         (c.message.splitlines() or [""])[0][:70]))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        counts = ", ".join(f"{v} {k}" for k, v in self.counts().items() if v)
        fast = f"; {len(self.fast_path)} unchanged without a build" if self.fast_path else ""
        lines.append(f"{counts}; {len(self.compiles)} CPython compile(s){fast}; "
                     f"{self.seconds:.0f}s")
        for c in self.cells.values():
            for w in c.waiting_security:
                lines.append(f"{c.id}: still lacks security update {w['package']} "
                             f"{w['installed']} -> {w['candidate']} ({w['platform']}, "
                             f"since {w['since']})")
        return "\n".join(lines) + "\n"

"""Results: one status per cell, a JSON report with JUnit XML for GitLab next to it (where
they go: ``report_path``; written by ``Report.write``), one exit code."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from orchestrator import table
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
    # nightly: why this image took the full refresh path instead of the fast path (pending
    # upgrades, other inputs, an archive that does not verify, its group, --full-refresh)
    refresh_reason: str = ""
    checks: list[dict[str, Any]] = field(default_factory=list)
    # perf.enabled: the performance record of this image (release/perf.py: the figures, the
    # published image compared with, the verdict), or why it was not measured ({"skipped": ...})
    perf: dict[str, Any] = field(default_factory=dict)
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

    def write(self, out: Path) -> Path:
        """Write the JSON report to ``out`` and the JUnit XML next to it; returns the XML's path."""
        xml = out.with_suffix(".xml")
        self.write_json(out)
        self.write_junit(xml)
        return xml

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, default=str) + "\n")

    def write_junit(self, path: Path) -> None:
        counts = self.counts()
        suite = ElementTree.Element("testsuite", name=f"orchestrator {self.command}",
                                    tests=str(len(self.cells)),
                                    failures=str(counts["failed"]), errors=str(counts["aborted"]),
                                    skipped=str(counts["skipped"]), time=f"{self.seconds:.1f}")
        for c in self.cells.values():
            case = ElementTree.SubElement(suite, "testcase", classname=self.command, name=c.id,
                                          time=f"{sum(c.seconds.values()):.1f}")
            if c.status is Status.FAILED:
                failure = ElementTree.SubElement(case, "failure",
                                                 message=f"{c.phase}: {c.message[:200]}")
                failure.text = c.message
            elif c.status is Status.ABORTED:
                ElementTree.SubElement(case, "error", message=c.message).text = c.message
            elif c.status is Status.SKIPPED:
                ElementTree.SubElement(case, "skipped", message=c.message)
            out = [f"status={c.status.value} publish={c.publish} digest={c.digest}"
                   + (" signed" if c.signed else "")]
            out += [f"tag {t}" for t in c.tags_moved] + c.package_changes
            ElementTree.SubElement(case, "system-out").text = "\n".join(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        ElementTree.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)

    def table(self, platforms: Mapping[str, Sequence[str]] | None = None) -> str:
        """The summary a person reads at the end: failed and aborted cells first, each with
        the one line that says why; per cell its platforms (``platforms``: the plan's, for
        cells the report has none for), compiles and time. The JSON report is not this."""
        rows: list[tuple[str, ...]] = [("CELL", "STATUS", "PLATFORMS", "COMPILES", "TIME",
                                        "PUBLISH", "SIZE MB", "DIGEST", "NOTE")]
        reasons: dict[int, str] = {}
        for c in sorted(self.cells.values(), key=lambda c: _ORDER.get(c.status, 2)):
            if c.status in (Status.FAILED, Status.ABORTED):
                reasons[len(rows)] = why(c) + (f" (log: {c.log})" if c.phase == "build"
                                               and c.log else "")
            rows.append(_row(c, c.platforms or (platforms or {}).get(c.id, ()),
                             "" if len(rows) in reasons else c.message))
        lines = table.columns(rows, reasons)
        counts = ", ".join(f"{v} {k}" for k, v in self.counts().items() if v)
        fast = f"; {len(self.fast_path)} unchanged without a build" if self.fast_path else ""
        lines.append(f"{counts}; {len(self.compiles)} CPython compile(s){fast}; "
                     f"{self.seconds:.0f}s" + (f" ({duration(self.seconds)})"
                                               if self.seconds >= 60 else ""))
        for c in self.cells.values():
            for w in c.waiting_security:
                lines.append(f"{c.id}: still lacks security update {w['package']} "
                             f"{w['installed']} -> {w['candidate']} ({w['platform']}, "
                             f"since {w['since']})")
        return "\n".join(lines) + "\n"


def report_path(explicit: str | None, work: Path, command: str) -> Path:
    """``--report FILE`` when given, else report-COMMAND.json in the work dir."""
    return Path(explicit) if explicit else work / f"report-{command}.json"


_ORDER = {Status.FAILED: 0, Status.ABORTED: 1}  # then every other status, in the run's order
# A first line that only says where it failed: the next line says why.
_WHERE_ONLY = re.compile(r"(stage \S+ failed|build failed \(log: [^)]*\):?|"
                         r"command failed \(exit \d+\): .*)")


def _row(c: CellResult, platforms: Sequence[str], note: str) -> tuple[str, ...]:
    total = sum(c.seconds.values())
    return (c.id, c.status.value, ",".join(p.removeprefix("linux/") for p in platforms) or "-",
            str(len(c.compiled)) if c.compiled or "build" in c.seconds else "-",
            duration(total) if total else "-", c.publish or "-",
            f"{c.size_bytes / 1e6:.1f}" if c.size_bytes else "-",
            c.digest[7:19] if c.digest else "-", (note.splitlines() or [""])[0][:70])


def why(c: CellResult, *, with_phase: bool = True, width: int = 160) -> str:
    """The one line that says why a cell failed or was not attempted (its message's first
    line, and the next one when the first only says where); ``with_phase``: prefixed with the
    phase it failed in."""
    lines = [x.strip() for x in c.message.splitlines() if x.strip()]
    if not lines:
        return ""
    text = lines[0].removeprefix(f"{c.id}: ")  # a smoke check names its image first
    if len(lines) > 1 and _WHERE_ONLY.fullmatch(text):
        text = f"{text.rstrip(':')}: {lines[1]}"
    if with_phase and c.phase and c.status is Status.FAILED:
        text = f"{c.phase}: {text}"
    return text if len(text) <= width else text[:width - 3] + "..."


def duration(seconds: float) -> str:
    """``8.2s``, ``41s``, ``6m52s``, ``1h02m``."""
    if seconds < 9.95:
        return f"{max(seconds, 0.0):.1f}s"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"

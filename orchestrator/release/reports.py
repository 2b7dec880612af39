"""Where a run's report goes and how it is written: JSON, with JUnit XML next to it."""

from __future__ import annotations

from pathlib import Path

from orchestrator.release.report import Report


def report_path(explicit: str | None, work: Path, command: str) -> Path:
    """``--report FILE`` when given, else report-COMMAND.json in the work dir."""
    return Path(explicit) if explicit else work / f"report-{command}.json"


def write(report: Report, out: Path) -> Path:
    """Write the JSON report to ``out`` and the JUnit XML next to it; returns the XML's path."""
    xml = out.with_suffix(".xml")
    report.write_json(out)
    report.write_junit(xml)
    return xml

"""The judgement of a scan: ignore rules (with their expiry), the gate (a fixable finding at or
above ``fail_on`` that no live rule covers), and the report as a table (the DB first)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase

from orchestrator.config.publish import IgnoreRule
from orchestrator.ledger import FirstSeen
from orchestrator.scan.models import Finding, ImageScan, ScanReport, rank
from orchestrator.table import columns


def rule_for(rules: Iterable[IgnoreRule], cell: str, f: Finding) -> IgnoreRule | None:
    """The first rule naming this advisory (and, when the rule says so, package and cells)."""
    for r in rules:
        if r.advisory.lower() != f.advisory.lower():
            continue
        if r.package is not None and r.package != f.package:
            continue
        if r.cells is not None and not fnmatchcase(cell, r.cells):
            continue
        return r
    return None


def judge(cell: str, found: Iterable[Finding], rules: tuple[IgnoreRule, ...], fail_on: str,
          today: dt.date) -> tuple[Finding, ...]:
    """``found`` with ignored/expired_rule/gating set: a rule covers a finding until the day
    it expires; what it does not cover gates when grype knows a fix (fix state ``fixed``) and
    the severity is at or above ``fail_on``. No fix yet: reported, never gating."""
    out = []
    for f in found:
        rule = rule_for(rules, cell, f)
        ignored = expired = ""
        if rule is not None and today < rule.expires:
            ignored = f"{rule.reason} (until {rule.expires.isoformat()})"
        elif rule is not None:
            expired = rule.expires.isoformat()
        gating = (not ignored and not f.vex and f.fix_state == "fixed"
                  and rank(f.severity) >= rank(fail_on))
        out.append(dataclasses.replace(f, ignored=ignored, expired_rule=expired, gating=gating))
    return tuple(out)


class Ledger(FirstSeen):
    """Since when each finding has been reported (scan-first-seen.json, like the nightly's
    security-first-seen.json). Key: cell|platform|advisory|package."""

    @staticmethod
    def key(cell: str, platform: str, f: Finding) -> str:
        return f"{cell}|{platform}|{f.advisory}|{f.package}"

    def stamp(self, report: ScanReport, today: dt.date) -> None:
        """Every finding of ``report`` with its first-seen date (today and ``new`` for those
        the ledger did not have); entries of scanned images that no longer have the finding
        are forgotten (unpublished or unreadable images keep theirs)."""
        live: set[str] = set()
        images = []
        for i in report.images:
            plats = []
            for p in i.platforms:
                found = []
                for f in p.findings:
                    k = self.key(i.cell, p.platform, f)
                    live.add(k)
                    first, new = self.mark(k, today)
                    found.append(dataclasses.replace(f, first_seen=first, new=new))
                plats.append(dataclasses.replace(p, findings=tuple(found)))
            images.append(dataclasses.replace(i, platforms=tuple(plats)))
        report.images = images
        self.forget({i.cell for i in report.images if i.state == "scanned"}, live)


def _note(f: Finding) -> str:
    notes = []
    if f.gating:
        notes.append("GATE" + (f" (ignore rule expired {f.expired_rule})" if f.expired_rule else ""))
    elif f.vex:
        notes.append(f"VEX: {f.vex}")
    elif f.ignored:
        notes.append(f"ignored: {f.ignored}")
    elif f.expired_rule:
        notes.append(f"ignore rule expired {f.expired_rule}")
    if f.new:
        notes.append("new")
    elif f.first_seen:
        notes.append(f"since {f.first_seen}")
    return "; ".join(notes)


def image_status(i: ImageScan) -> str:
    """``error`` (not scanned: exit 3), ``gating`` (a finding fails the gate), ``scanned`` or
    ``unpublished``."""
    if i.state == "scanned" and any(f.gating for _, f in i.findings):
        return "gating"
    return i.state


def image_why(i: ImageScan) -> str:
    """The one line that says why an image failed (not scanned, or its first gating finding),
    or the note on one that did not (``not published for linux/arm64``); "" when none."""
    gating = [(p, f) for p, f in i.findings if f.gating]
    if i.state != "scanned" or not gating:
        return (i.reason.strip().splitlines() or [""])[0]
    plat, f = gating[0]
    fixed = f", fixed in {f.fixed_in}" if f.fixed_in else ""
    more = f"; and {len(gating) - 1} more gating finding(s)" if len(gating) > 1 else ""
    return (f"{f.advisory} in {f.package} {f.installed}{fixed} ({f.severity}, "
            f"{plat.removeprefix('linux/')}){more}")


_FIRST = {"error": 0, "gating": 1}  # then every other image, in the scan's order


def summary(report: ScanReport, platforms: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """A line per image, the failures first (not scanned, then gating), each followed by the
    one line that says why; per image its platforms (``platforms``: the plan's, for an image
    with none scanned), findings, gating findings and the time its scan took."""
    rows: list[tuple[str, ...]] = [("IMAGE", "STATUS", "PLATFORMS", "FINDINGS", "GATING",
                                    "TIME", "NOTE")]
    reasons: dict[int, str] = {}
    for i in sorted(report.images, key=lambda i: _FIRST.get(image_status(i), 2)):
        status, why = image_status(i), image_why(i)
        plats = [p.platform for p in i.platforms] or list((platforms or {}).get(i.cell, ()))
        scanned = i.state == "scanned"
        if status in _FIRST and why:
            reasons[len(rows)] = why if len(why) <= 160 else why[:157] + "..."
        seconds = report.image_seconds.get(i.cell)
        rows.append((i.cell, status, ",".join(p.removeprefix("linux/") for p in plats) or "-",
                     str(len(i.findings)) if scanned else "-",
                     str(sum(f.gating for _, f in i.findings)) if scanned else "-",
                     f"{seconds:.1f}s" if seconds is not None else "-",
                     "" if len(rows) in reasons else why[:70]))
    return columns(rows, reasons)


def table(report: ScanReport, platforms: Mapping[str, Sequence[str]] | None = None) -> str:
    """The DB, the gate, a line per finding, the notes; then the summary (a line per image,
    failures first with why) and the counts."""
    db = report.db
    lines = [f"vulnerability DB: schema {db.schema}, built {db.built} ({db.age_days:.1f} days "
             f"old), {db.checksum}, from {db.source}; {db.scanner}",
             f"gate: fixable findings at or above {report.fail_on}"]
    rows = [("CELL", "PLATFORM", "ADVISORY", "PACKAGE", "INSTALLED", "FIXED-IN", "SEVERITY",
             "FIX", "NOTE")]
    for i in report.images:
        if i.state != "scanned":
            rows.append((i.cell, "", f"({i.state}: {i.reason})", "", "", "", "", "", ""))
            continue
        if not i.findings:
            rows.append((i.cell, "", "(no findings)", "", "", "", "", "", ""))
        for plat, f in i.findings:
            rows.append((i.cell, plat.removeprefix("linux/"), f.advisory, f.package, f.installed,
                         f.fixed_in, f.severity, f.fix_state, _note(f)))
    lines += columns(rows)
    notes: dict[str, list[str]] = {}
    for i in report.images:
        for p in i.platforms:
            if p.note:
                notes.setdefault(p.note, []).append(f"{i.cell} {p.platform}")
        if i.state == "scanned" and i.reason:
            notes.setdefault(i.reason, []).append(i.cell)
    for note, where in notes.items():
        more = f" and {len(where) - 1} more" if len(where) > 1 else ""
        lines.append(f"note: {where[0]}{more}: {note}")
    lines += ["", *summary(report, platforms)]
    scanned = [i for i in report.images if i.state == "scanned"]
    count = sum(len(i.findings) for i in scanned)
    states = {s: sum(1 for i in report.images if i.state == s) for s in ("unpublished", "error")}
    lines.append(f"{len(scanned)} image(s) scanned ({sum(len(i.platforms) for i in scanned)} "
                 f"platform(s)), {count} finding(s), {len(report.new)} new, "
                 f"{len(report.gating)} gating"
                 + "".join(f", {n} {s}" for s, n in states.items() if n)
                 + f"; {report.seconds:.1f}s")
    return "\n".join(lines) + "\n"

"""The judgement of a scan: ignore rules (with their expiry), the gate (a fixable finding at or
above ``fail_on`` that no live rule covers), and the report as a table (the DB first)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from fnmatch import fnmatchcase

from orchestrator.config.model import IgnoreRule
from orchestrator.ledger import FirstSeen
from orchestrator.scan.models import Finding, ScanReport, rank


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
        gating = (not ignored and f.fix_state == "fixed" and rank(f.severity) >= rank(fail_on))
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
    elif f.ignored:
        notes.append(f"ignored: {f.ignored}")
    elif f.expired_rule:
        notes.append(f"ignore rule expired {f.expired_rule}")
    if f.new:
        notes.append("new")
    elif f.first_seen:
        notes.append(f"since {f.first_seen}")
    return "; ".join(notes)


def table(report: ScanReport) -> str:
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
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
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
    scanned = [i for i in report.images if i.state == "scanned"]
    count = sum(len(i.findings) for i in scanned)
    states = {s: sum(1 for i in report.images if i.state == s) for s in ("unpublished", "error")}
    lines.append(f"{len(scanned)} image(s) scanned ({sum(len(i.platforms) for i in scanned)} "
                 f"platform(s)), {count} finding(s), {len(report.new)} new, "
                 f"{len(report.gating)} gating"
                 + "".join(f", {n} {s}" for s, n in states.items() if n)
                 + f"; {report.seconds:.1f}s")
    return "\n".join(lines) + "\n"

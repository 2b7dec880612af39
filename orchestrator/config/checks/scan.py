"""Semantic checks of images.yaml's ``scan:`` section (one line per problem, collected with the
other semantic checks). The DB file itself is looked for when `scan` runs, not here."""

from __future__ import annotations

import datetime as dt

from orchestrator.config import grammar
from orchestrator.config.publish import Scan
from orchestrator.config.yamlsafe import Path_, Problems


def check(scan: Scan | None, report: Problems, today: dt.date) -> None:
    if scan is None:
        return
    base: Path_ = ("scan", "db")
    db = scan.db
    if (db.url is None) == (db.file is None):
        report(base, "give exactly one of url and file" if db.url else "no url and no file",
               "set scan.db.url (a mirror of the DB archive) or scan.db.file (the archive, relative "
               "to images.yaml), with its sha256")
    if db.url is not None:
        bad = grammar.url(db.url)
        if bad:
            report(base + ("url",), *bad)
    if db.file is not None and not db.file.strip():
        report(base + ("file",), "the value is empty", "write the archive's path")
    for i, rule in enumerate(scan.ignore):
        where: Path_ = ("scan", "ignore", i)
        if rule.advisory != rule.advisory.strip() or any(c.isspace() for c in rule.advisory):
            report(where + ("advisory",), f"{rule.advisory!r} holds blanks",
                   "write one advisory id, e.g. CVE-2025-1234")
        if rule.expires <= today:
            report.warn(where + ("expires",), f"{rule.advisory}: expired on {rule.expires.isoformat()}; "
                        "the rule no longer hides anything: renew it with a reason, or remove it")
    seen: set[str] = set()
    for i, vex in enumerate(scan.vex):
        where = ("scan", "vex", i, "advisory")
        if any(c.isspace() for c in vex.advisory):
            report(where, f"{vex.advisory!r} holds blanks", "write one advisory id, e.g. CVE-2025-1234")
        if vex.advisory in seen:
            report(where, f"{vex.advisory} has two vex rules",
                   "keep one rule per advisory (the component its flaw is in)")
        seen.add(vex.advisory)

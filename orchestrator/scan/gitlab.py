"""A scan report in GitLab's container-scanning report format (schema 15.2.0, security-report-
schemas), which `artifacts:reports:container_scanning` takes, so the project's Security tab and
vulnerability report show what ``orchestrator scan`` found on the published images.

Only what the schema defines is written. One vulnerability per image, advisory and package:
the platforms of an image are one image to GitLab (it identifies a finding by the image name
with its tag and the package), so its platforms are listed in the vulnerability's details. A
finding a live ``scan.ignore`` rule covers is left out (the JSON report keeps it); images that
were not published or could not be scanned are ``scan.messages`` lines, and one that could not
be scanned makes the scan a ``failure`` (its findings are unknown, not gone).

grype's severities become GitLab's: Critical, High, Medium and Low as they are, Negligible is
Info (no security impact worth a change), anything else Unknown.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from typing import Any

from orchestrator import __version__
from orchestrator.scan.models import Finding, ImageScan, ScanReport, rank

SCHEMA_VERSION = "15.2.0"
SCHEMA_URL = ("https://gitlab.com/gitlab-org/security-products/security-report-schemas/-/raw/"
              f"v{SCHEMA_VERSION}/dist/container-scanning-report-format.json")
ANALYZER = {"id": "python-base-orchestrator", "name": "orchestrator scan"}
SCANNER = {"id": "grype", "name": "Grype", "url": "https://github.com/anchore/grype",
           "vendor": {"name": "Anchore"}}
# the vulnerability ids: the same image, advisory and package get the same id every night
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://python-base-orchestrator/scan/gitlab")
_SEVERITY = {"critical": "Critical", "high": "High", "medium": "Medium", "low": "Low",
             "negligible": "Info"}
_PREFIX = re.compile(r"^([A-Za-z]+)-")
_URLS = {"cve": "https://nvd.nist.gov/vuln/detail/{id}",
         "ghsa": "https://github.com/advisories/{id}"}
_NAME_MAX, _SOLUTION_MAX, _DESCRIPTION_MAX = 255, 7000, 1048576


def severity(grype_severity: str) -> str:
    """GitLab's word for a grype severity."""
    return _SEVERITY.get(grype_severity.lower(), "Unknown")


def identifier(advisory: str) -> dict[str, str]:
    """The advisory as GitLab's primary identifier: type from its prefix (cve, ghsa, ...),
    with the advisory's page for CVE and GHSA ids."""
    m = _PREFIX.match(advisory)
    kind = m.group(1).lower() if m else "grype"
    out = {"type": kind, "name": advisory, "value": advisory}
    if kind in _URLS:
        out["url"] = _URLS[kind].format(id=advisory)
    return out


def _time(t: dt.datetime) -> str:
    """yyyy-mm-ddThh:mm:ss in UTC, the schema's only time format."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _text(name: str, value: str) -> dict[str, str]:
    return {"name": name, "type": "text", "value": value}


def _vulnerability(image: ImageScan, found: list[tuple[str, Finding]], os_name: str
                   ) -> dict[str, Any]:
    """One advisory on one package of ``image``, on each platform in ``found``."""
    plats = sorted({p for p, _ in found})
    f = max((f for _, f in found), key=lambda f: rank(f.severity))
    installed = sorted({g.installed for _, g in found})
    first_seen = min((g.first_seen for _, g in found if g.first_seen), default="")
    where = f"{image.ref} ({', '.join(p.removeprefix('linux/') for p in plats)})"
    fix = (f"Fixed in {f.fixed_in}." if f.fixed_in
           else f"No fixed version is known (grype's fix state: {f.fix_state or 'unknown'}).")
    description = (f"{f.advisory} affects {f.package} {', '.join(installed)} in {where}. {fix} "
                   f"Found by grype ({f.matched_by or 'match'}) in the image "
                   f"{image.ref.rsplit(':', 1)[0]}@{image.digest}.")
    details = {
        "platforms": _text("Platforms", ", ".join(plats)),
        "fix_state": _text("Fix state", f.fix_state or "unknown"),
        "gate": _text("Fails the release gate", "yes" if any(g.gating for _, g in found) else "no"),
        "digest": _text("Image digest", image.digest),
    }
    if f.fixed_in:
        details["fixed_in"] = _text("Fixed in", f.fixed_in)
    if first_seen:
        details["first_seen"] = _text("First seen", first_seen)
    if f.expired_rule:
        details["expired_rule"] = _text("Ignore rule expired", f.expired_rule)
    vuln: dict[str, Any] = {
        "id": str(uuid.uuid5(_ID_NAMESPACE, f"{image.ref}|{f.advisory}|{f.package}")),
        "name": f"{f.advisory} in {f.package}"[:_NAME_MAX],
        "description": description[:_DESCRIPTION_MAX],
        "severity": severity(f.severity),
        "identifiers": [identifier(f.advisory)],
        "location": {
            "dependency": {"package": {"name": f.package}, "version": installed[0]},
            "operating_system": os_name or "unknown",
            "image": image.ref,
        },
        "details": details,
    }
    if f.fixed_in:
        vuln["solution"] = (f"Upgrade {f.package} to {f.fixed_in} or later: rebuild the image "
                            "(the nightly's security refresh installs the fixed package; a "
                            "CPython fix needs its patch release in images.lock)")[:_SOLUTION_MAX]
    return vuln


def _messages(report: ScanReport, ignored: int) -> list[dict[str, str]]:
    db = report.db
    out = [{"level": "info", "value": f"vulnerability DB: schema {db.schema}, built {db.built}, "
                                      f"{db.checksum}, from {db.source}; {db.scanner}"},
           {"level": "info", "value": f"gate: fixable findings at or above {report.fail_on}"}]
    if ignored:
        out.append({"level": "info", "value": f"{ignored} finding(s) covered by a live "
                                              "scan.ignore rule or the image's OpenVEX are left "
                                              "out (see the JSON report)"})
    for i in report.images:
        if i.state == "error":
            out.append({"level": "warn", "value": f"{i.cell} ({i.ref}) not scanned: "
                                                  f"{i.reason or 'no reason given'}"})
        elif i.state == "unpublished":
            out.append({"level": "info", "value": f"{i.cell} ({i.ref}): not published"})
    return out


def report_for(report: ScanReport, *, started: dt.datetime, finished: dt.datetime,
               operating_systems: Mapping[str, str], vendor: str) -> dict[str, Any]:
    """``report`` as a GitLab container-scanning report; ``operating_systems``: cell -> the
    distro its image is built on ("debian 12 (bookworm)"), ``vendor``: who runs the analyzer."""
    vulns: list[dict[str, Any]] = []
    ignored = 0
    for image in report.images:
        if image.state != "scanned":
            continue
        groups: dict[tuple[str, str], list[tuple[str, Finding]]] = {}
        for plat, f in image.findings:
            if f.ignored or f.vex:  # a live ignore rule, or the image's OpenVEX says so
                ignored += 1
                continue
            groups.setdefault((f.advisory, f.package), []).append((plat, f))
        found = [_vulnerability(image, g, operating_systems.get(image.cell, ""))
                 for g in groups.values()]
        order = {s: n for n, s in enumerate(("Critical", "High", "Medium", "Low", "Unknown", "Info"))}
        vulns += sorted(found, key=lambda v: (order[v["severity"]], v["name"]))
    version = report.db.scanner.rsplit(" ", 1)[-1] or "unknown"
    return {
        "version": SCHEMA_VERSION,
        "schema": SCHEMA_URL,
        "scan": {
            "analyzer": {**ANALYZER, "version": __version__, "vendor": {"name": vendor or "unknown"}},
            "scanner": {**SCANNER, "version": version},
            "type": "container_scanning",
            "start_time": _time(started),
            "end_time": _time(finished),
            "status": "failure" if any(i.state == "error" for i in report.images) else "success",
            "messages": _messages(report, ignored),
        },
        "vulnerabilities": vulns,
    }

"""The records of a scan report and the order of severities. A leaf: the ``scan:`` section of
images.yaml is config_models' (``Scan``), parsed once with the rest of the file."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from orchestrator.config.publish import SEVERITIES
from orchestrator.errors import ExitCode

# grype's severities, lowest first ("unknown" below everything: it never gates)
_RANK = {name: i for i, name in enumerate(("unknown", *SEVERITIES))}


def rank(severity: str) -> int:
    """Order of a grype severity ("Critical", "high", ...); anything unknown ranks lowest."""
    return _RANK.get(severity.lower(), 0)


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class DbInfo:
    """The DB a scan used, as grype reports it after the import."""

    schema: str  # e.g. v6.1.10
    built: str  # ISO 8601, UTC
    age_days: float
    checksum: str  # sha256:<the archive's sha256> (as pinned in scan.db.sha256)
    source: str  # the URL or file it came from
    scanner: str  # "grype 0.121.3"


@dataclass(frozen=True)
class Finding:
    advisory: str
    package: str
    installed: str
    fixed_in: str  # "" when no fix is known
    severity: str  # as grype says it: Critical, High, Medium, Low, Negligible, Unknown
    fix_state: str  # fixed, not-fixed, wont-fix, unknown
    kind: str = ""  # the package type: deb, UnknownPackage (binaries, e.g. the compiled CPython)
    matched_by: str = ""  # grype's match type: exact-direct-match, exact-indirect-match, cpe-match
    ignored: str = ""  # the ignore rule that covers it ("reason (until DATE)"), or ""
    expired_rule: str = ""  # an ignore rule that would cover it but has expired (its date)
    gating: bool = False  # fixable, at or above the gate, not ignored
    first_seen: str = ""  # YYYY-MM-DD: the first scan that reported it (the ledger)
    new: bool = False  # not reported by the previous scan (first seen in this one)
    # the image's OpenVEX attestation covers it: its status (not_affected, fixed) and
    # justification, as grype applied it; such a finding never gates
    vex: str = ""


@dataclass(frozen=True)
class PlatformScan:
    platform: str
    digest: str  # the platform manifest's digest
    source: str  # "sbom" (the attested SPDX SBOM) or "image" (grype read the image itself)
    findings: tuple[Finding, ...] = ()
    note: str = ""  # e.g. why the SBOM was not used


@dataclass(frozen=True)
class ImageScan:
    cell: str
    ref: str  # host/repo:tag as scanned
    state: Literal["scanned", "unpublished", "error"]
    digest: str = ""
    platforms: tuple[PlatformScan, ...] = ()
    reason: str = ""

    @property
    def findings(self) -> list[tuple[str, Finding]]:
        return [(p.platform, f) for p in self.platforms for f in p.findings]


@dataclass
class ScanReport:
    db: DbInfo
    fail_on: str
    images: list[ImageScan] = field(default_factory=list)
    seconds: float = 0.0
    # cell -> the seconds its scan took: for the summary a person reads, not in the JSON
    image_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def new(self) -> list[tuple[str, str, Finding]]:
        return [(i.cell, plat, f) for i in self.images for plat, f in i.findings if f.new]

    @property
    def gating(self) -> list[tuple[str, str, Finding]]:
        return [(i.cell, plat, f) for i in self.images for plat, f in i.findings if f.gating]

    @property
    def exit_code(self) -> int:
        """3 when an image could not be scanned, else 1 when a finding gates, else 0."""
        if any(i.state == "error" for i in self.images):
            return int(ExitCode.TOOL)
        return int(ExitCode.FAILED) if self.gating else int(ExitCode.OK)

    def to_dict(self) -> dict[str, Any]:
        return {"db": asdict(self.db), "fail_on": self.fail_on,
                "images": [asdict(i) for i in self.images],
                "gating": [{"cell": c, "platform": p, **asdict(f)} for c, p, f in self.gating],
                "new": [{"cell": c, "platform": p, **asdict(f)} for c, p, f in self.new],
                "seconds": self.seconds, "exit_code": self.exit_code}

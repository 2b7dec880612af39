"""The release gate (issue 32 item 4): with ``scan:`` in images.yaml, a pushed image is scanned
by digest (it has no tag yet: release/push.py) and refused when it brings a finding that gates
(fixable, at or above ``scan.fail_on``, no live ignore rule) which the image it replaces did not
have (the one its first public tag points at now; none: everything it has is new); a refused
image gets no tag at all. What is already published is not the release's fault: reported by
``orchestrator scan``, never blocking here.

The DB is prepared before anything is built (``prepare``): a missing scanner or a missing,
corrupt or old DB stops the run with one line (exit 3) and nothing is published.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config.model import ImagesConfig
from orchestrator.config.publish import Scan
from orchestrator.errors import RegistryAuthError, RegistryError, ScanError
from orchestrator.registry import Registry
from orchestrator.scan.grype import Grype, find_binary
from orchestrator.scan.images import EvidenceSource, scan_digest
from orchestrator.scan.models import DbInfo, Finding, PlatformScan
from orchestrator.settings import Settings
from orchestrator.supplychain.provenance import VulnerabilityDb


def new_findings(new: Sequence[PlatformScan],
                 old: Sequence[PlatformScan]) -> list[tuple[str, Finding]]:
    """The gating findings of ``new`` whose advisory and package no platform of ``old`` has
    (at any state: a finding the published image has is not brought by this one)."""
    had = {(f.advisory, f.package) for p in old for f in p.findings}
    return [(p.platform, f) for p in new for f in p.findings
            if f.gating and (f.advisory, f.package) not in had]


@dataclass
class Gate:
    grype: Grype
    scan: Scan
    db: DbInfo
    today: dt.date

    @property
    def fail_on(self) -> str:
        return self.scan.fail_on

    @property
    def vex_advisories(self) -> frozenset[str]:
        """The advisories of the scan.vex rules: the only OpenVEX statements the gate honours."""
        return frozenset(r.advisory for r in self.scan.vex)

    def provenance_record(self) -> VulnerabilityDb:
        """The DB as the provenance of each image this gate lets through records it."""
        return VulnerabilityDb(self.db.source, self.db.checksum.removeprefix("sha256:"),
                               self.db.built, self.db.schema, self.db.scanner)

    def check(self, registry: Registry, repo: str, cell: str, digest: str, public_tag: str,
              sboms: EvidenceSource) -> str | None:
        """Why ``digest`` (pushed for ``cell``) may not take ``public_tag``, or None."""
        name = f"{registry.host}/{repo}"
        try:
            old_digest = registry.digest(repo, public_tag)
            if old_digest == digest:
                return None  # already what the tag holds
            new = scan_digest(registry, repo, cell, digest, self.grype, sboms, self.scan,
                              self.fail_on, self.today)
            old = (scan_digest(registry, repo, cell, old_digest, self.grype, sboms, self.scan,
                               self.fail_on, self.today) if old_digest else [])
        except RegistryAuthError:
            raise
        except (RegistryError, ScanError) as exc:
            return (f"scan gate: {exc}; with scan: in images.yaml an image that cannot be "
                    f"scanned is not published ({name}@{digest} gets no tag)")
        brought = new_findings(new, old)
        if not brought:
            return None
        against = f"{name}:{public_tag} ({old_digest})" if old_digest else \
            f"nothing ({public_tag} is not published yet)"
        items = "; ".join(f"{f.advisory} in {f.package} {f.installed} ({plat.removeprefix('linux/')}"
                          f", {f.severity}, fixed in {f.fixed_in})" for plat, f in brought)
        return (f"scan gate: brings {len(brought)} fixable finding(s) at or above "
                f"{self.fail_on} that {against} does not have: {items}; rebuild with the fix "
                f"(a security refresh) or add a scan.ignore rule with a reason and an expiry; "
                f"{name}@{digest} gets no tag (DB built {self.db.built}, {self.db.checksum})")


def prepare(config: ImagesConfig, root: Path, st: Settings, *,
            now: dt.datetime | None = None) -> Gate | None:
    """The gate of ``config`` (None without ``scan:``), its DB checked and imported now."""
    if config.scan is None:
        return None
    grype = Grype(find_binary(st.tools_dir), st.cache_dir / "scan", st.child_env({}))
    db = grype.prepare(config.scan.db, root, max_age_days=config.scan.max_age_days,
                       now=now or dt.datetime.now(dt.UTC))
    return Gate(grype, config.scan, db, st.today)


def promote_gate(gate: Gate, registry: Registry, sboms: EvidenceSource
                 ) -> Callable[[str, str, str, tuple[str, ...]], str | None]:
    """For promote: (repository, digest, cell, public tags) -> why not, or None."""

    def check(repo: str, digest: str, cell: str, tags: tuple[str, ...]) -> str | None:
        return gate.check(registry, repo, cell, digest, tags[0], sboms) if tags else None

    return check

"""Which images a scan reads: each planned image's first public tag in the registry, every
platform it was published for, by digest; the SBOM the push attested for that platform when
``signing:`` lets it be verified (so grype matches the compiled CPython by the CPE and purl
of its SBOM entry); without ``signing:`` the SBOM the push made of it when it was made here
(``made_by_push``; the push's own gate makes them: release/attest.built_sboms), else the image
itself (grype's own catalogue: syft's binary classifier)."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import log
from orchestrator.config.publish import Scan
from orchestrator.errors import RegistryAuthError, RegistryError, ScanError
from orchestrator.planning.plan import PlannedImage
from orchestrator.registry import Registry
from orchestrator.scan.grype import Grype
from orchestrator.scan.models import ImageScan, PlatformScan, ScanReport
from orchestrator.scan.report import judge
from orchestrator.supplychain.signing import Cosign

_log = log.get("scan")

# (image, its scan) -> the scan's result: what scan_all runs each image's scan through
Around = Callable[[PlannedImage, Callable[[], ImageScan]], ImageScan]
@dataclass(frozen=True)
class Evidence:
    """What a scan of one platform manifest is given: the SBOM attested to it (None: grype
    reads the image itself, ``note`` says why) and its OpenVEX attestation (None: none)."""

    sbom: Path | None
    vex: Path | None = None
    note: str = ""


# (host/repo@platform digest, platform) -> what the push attested to that manifest
EvidenceSource = Callable[[str, str], Evidence]


def _predicate(cosign: Cosign, ref: str, kind: str) -> tuple[dict[str, Any] | None, str]:
    v = cosign.verify_attestation(ref, kind)
    if not v.ok:
        return None, v.reason
    predicate = v.statements[0].get("predicate") if v.statements else None
    return (predicate, "") if isinstance(predicate, dict) else (None, "no predicate")


def current_statements(vex: dict[str, Any], advisories: frozenset[str]) -> dict[str, Any] | None:
    """``vex`` with only the statements about ``advisories`` (the current scan.vex rules: a
    rule removed since the image was attested hides nothing any more); None when none is left."""
    kept = [st for st in vex.get("statements") or []
            if isinstance(st, dict) and (st.get("vulnerability") or {}).get("name") in advisories]
    return {**vex, "statements": kept} if kept else None


def attested(cosign: Cosign, out_dir: Path, advisories: frozenset[str]) -> EvidenceSource:
    """The SPDX SBOM and the OpenVEX document attested to a platform manifest, each verified
    with the configured key; of the document, the statements about ``advisories`` (the
    advisories of images.yaml's scan.vex rules now)."""

    def source(ref: str, platform: str) -> Evidence:
        stem = out_dir / ref.rsplit("@sha256:", 1)[-1][:24]
        attested_vex, _ = _predicate(cosign, ref, "openvex")
        vex = current_statements(attested_vex, advisories) if attested_vex is not None else None
        vex_path = None
        if vex is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            vex_path = stem.with_suffix(".openvex.json")
            vex_path.write_text(json.dumps(vex))
        sbom, why = _predicate(cosign, ref, "spdxjson")
        if sbom is None:
            return Evidence(None, vex_path,
                            f"no verified SBOM attestation ({why}): grype read the image")
        if not sbom.get("packages"):
            return Evidence(None, vex_path,
                            "the SBOM attestation holds no SPDX packages: grype read the image")
        out_dir.mkdir(parents=True, exist_ok=True)
        path = stem.with_suffix(".spdx.json")
        path.write_text(json.dumps(sbom))
        return Evidence(path, vex_path)

    return source


def sbom_dir(work: Path) -> Path:
    """Where the SBOMs a scan reads are kept under the work dir: the verified attestations
    (``attested``) and, without ``signing:``, those the push made (``<cell>/<digest>``,
    release/attest.built_sboms)."""
    return work / "scan" / "sboms"


def made_by_push(work: Path) -> EvidenceSource:
    """Without ``signing:``, for ``orchestrator scan`` and ``promote``: the SPDX SBOM a push
    on this machine made of the platform manifest (attest.built_sboms, with the CPython entry),
    found by its digest under ``sbom_dir(work)``; none there (another machine pushed it, or
    the work dir is new): grype reads the image, the note says so."""

    def source(ref: str, platform: str) -> Evidence:
        hexd = ref.rpartition("@sha256:")[2]
        hits = sorted(sbom_dir(work).glob(f"*/{hexd}.spdx.json")) if hexd else []
        if hits:
            return Evidence(hits[0], None, "no signing: in images.yaml: the SBOM a push on this "
                            "machine made, not attested")
        return Evidence(None, None, "no signing: in images.yaml, and no push on this machine "
                        "made an SBOM of it: grype read the image")

    return source


def without_sbom(why: str) -> EvidenceSource:
    """No attestation and no SBOM made here either (``why``: e.g. no pinned syft): grype reads
    the image, the note says why (it may not match the compiled CPython that way)."""

    def source(ref: str, platform: str) -> Evidence:
        return Evidence(None, None, f"no signing: in images.yaml and no SBOM made here ({why}): "
                        "grype read the image")

    return source


def scan_digest(registry: Registry, repo: str, cell: str, digest: str, grype: Grype,
                sboms: EvidenceSource, scan: Scan, fail_on: str, today: dt.date) -> list[PlatformScan]:
    """Every platform of ``digest`` scanned and judged; ScanError when grype cannot read one
    (the message names the platform), RegistryError when the registry does not answer."""
    plats = registry.platform_manifests(repo, digest)
    if plats is None:
        raise ScanError(f"{registry.host}/{repo}@{digest} is not in the registry")
    out: list[PlatformScan] = []
    for plat, pdigest in sorted(plats.items()):
        at = f"{registry.host}/{repo}@{pdigest}"
        ev = sboms(at, plat)
        target = f"sbom:{ev.sbom}" if ev.sbom else f"registry:{at}"
        try:
            found = grype.scan(target, platform=None if ev.sbom else plat,
                               insecure_http=registry.scheme == "http", vex=ev.vex)
        except ScanError as exc:
            raise ScanError(f"{plat}: {exc}") from None
        judged = judge(cell, found, scan.ignore, fail_on, today)
        out.append(PlatformScan(plat, pdigest, "sbom" if ev.sbom else "image", judged, ev.note))
        _log.info("scanned", image=cell, platform=plat, source=out[-1].source,
                  findings=len(judged), gating=sum(f.gating for f in judged))
    return out


def scan_image(registry: Registry, repo: str, img: PlannedImage, grype: Grype, sboms: EvidenceSource,
               scan: Scan, fail_on: str, today: dt.date) -> ImageScan:
    """The image ``img``'s first public tag points at, every platform of it."""
    tag = img.tags[0] if img.tags else img.immutable_tag
    ref = f"{registry.host}/{repo}:{tag}"
    try:
        digest = registry.digest(repo, tag)
        if digest is None:
            return ImageScan(img.id, ref, "unpublished", reason=f"{tag} is not published")
        plats = scan_digest(registry, repo, img.id, digest, grype, sboms, scan, fail_on, today)
    except RegistryAuthError:
        raise
    except RegistryError as exc:
        return ImageScan(img.id, ref, "error", reason=f"registry: {exc}")
    except ScanError as exc:
        return ImageScan(img.id, ref, "error", digest or "", reason=str(exc))
    missing = [p for p in img.platforms if p not in {s.platform for s in plats}]
    reason = f"not published for {', '.join(missing)}" if missing else ""
    return ImageScan(img.id, ref, "scanned", digest, tuple(plats), reason)


def scan_all(registry: Registry, repo: str, images: tuple[PlannedImage, ...], grype: Grype,
             sboms: EvidenceSource, scan: Scan, report: ScanReport, today: dt.date,
             around: Around | None = None) -> ScanReport:
    """Every image of the plan scanned into ``report`` (its DB and gate already set), each
    image's time in ``report.image_seconds``. ``around``: runs each image's scan (given the
    image and the scan to call), e.g. to show the command's progress."""
    start = time.monotonic()
    for img in images:
        def one(img: PlannedImage = img) -> ImageScan:
            return scan_image(registry, repo, img, grype, sboms, scan, report.fail_on, today)

        began = time.monotonic()
        report.images.append(around(img, one) if around is not None else one())
        report.image_seconds[img.id] = round(time.monotonic() - began, 1)
    report.seconds = round(time.monotonic() - start, 1)
    return report

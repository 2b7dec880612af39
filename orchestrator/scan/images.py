"""Which images a scan reads: each planned image's first public tag in the registry, every
platform it was published for, by digest; the SBOM the push attested for that platform when
``signing:`` lets it be verified (so grype matches the compiled CPython by the CPE and purl
of its SBOM entry), else the image itself (grype's own catalogue: syft's binary classifier)."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path

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
# (host/repo@platform digest, platform) -> (the SBOM file, or None and why not)
SbomSource = Callable[[str, str], tuple[Path | None, str]]


def attested_sboms(cosign: Cosign, out_dir: Path) -> SbomSource:
    """The SPDX SBOM attested to a platform manifest, verified with the configured key."""

    def source(ref: str, platform: str) -> tuple[Path | None, str]:
        v = cosign.verify_attestation(ref, "spdxjson")
        if not v.ok:
            return None, f"no verified SBOM attestation ({v.reason}): grype read the image"
        predicate = v.statements[0].get("predicate")
        if not isinstance(predicate, dict) or not predicate.get("packages"):
            return None, "the SBOM attestation holds no SPDX packages: grype read the image"
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / (ref.rsplit("@sha256:", 1)[-1][:24] + ".spdx.json")
        path.write_text(json.dumps(predicate))
        return path, ""

    return source


def no_sboms(ref: str, platform: str) -> tuple[Path | None, str]:
    return None, "no signing: in images.yaml, so no SBOM attestation to verify: grype read the image"


def scan_digest(registry: Registry, repo: str, cell: str, digest: str, grype: Grype,
                sboms: SbomSource, scan: Scan, fail_on: str, today: dt.date) -> list[PlatformScan]:
    """Every platform of ``digest`` scanned and judged; ScanError when grype cannot read one
    (the message names the platform), RegistryError when the registry does not answer."""
    plats = registry.platform_manifests(repo, digest)
    if plats is None:
        raise ScanError(f"{registry.host}/{repo}@{digest} is not in the registry")
    out: list[PlatformScan] = []
    for plat, pdigest in sorted(plats.items()):
        at = f"{registry.host}/{repo}@{pdigest}"
        sbom, note = sboms(at, plat)
        target = f"sbom:{sbom}" if sbom else f"registry:{at}"
        try:
            found = grype.scan(target, platform=None if sbom else plat,
                               insecure_http=registry.scheme == "http")
        except ScanError as exc:
            raise ScanError(f"{plat}: {exc}") from None
        judged = judge(cell, found, scan.ignore, fail_on, today)
        out.append(PlatformScan(plat, pdigest, "sbom" if sbom else "image", judged, note))
        _log.info("scanned", image=cell, platform=plat, source=out[-1].source,
                  findings=len(judged), gating=sum(f.gating for f in judged))
    return out


def scan_image(registry: Registry, repo: str, img: PlannedImage, grype: Grype, sboms: SbomSource,
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
             sboms: SbomSource, scan: Scan, report: ScanReport, today: dt.date,
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

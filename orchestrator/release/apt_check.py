"""What each published image would take from apt (`orchestrator outdated`, the nightly's
first step): its package list and apt sources from its labels in the registry, the archive's
indices through ArchiveIndex; no pull and no build."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from pathlib import Path

from orchestrator import log
from orchestrator.apt import keyrings, sources
from orchestrator.apt.index import ArchiveIndex, http_fetch, utc_now
from orchestrator.apt.outdated import (
    CellCheck,
    IndexView,
    OutdatedReport,
    PlatformCheck,
    State,
    cell_state,
    upgrades,
)
from orchestrator.apt.sources import AptSource
from orchestrator.config.model import ImagesConfig
from orchestrator.errors import ArchiveError, OrchestratorError, RegistryAuthError
from orchestrator.naming import LabelKeys
from orchestrator.planning.plan import PlannedImage
from orchestrator.registry import Registry
from orchestrator.registry.fingerprint import parse_packages_label

_log = log.get("outdated")

_ARCH = {"linux/amd64": "amd64", "linux/arm64": "arm64"}
_DEFAULT_KEYRING = {"debian": "debian-archive-keyring.gpg",
                    "ubuntu": "ubuntu-archive-keyring.gpg"}
DEADSNAKES_KEYRING = "deadsnakes.gpg"  # where runtime.j2 puts the PPA key in the image


def keyring_resolver(config: ImagesConfig, family: str,
                     cache_dir: Path) -> Callable[[AptSource], Path | None]:
    """Signed-By path in the image -> a keyring on this machine (by file name, in
    sources.apt_keyrings; of several paths the first found); the deadsnakes key is fetched from
    its configured URL and only the pinned fingerprint exported, as the image build does; an
    inline key block becomes a keyring of exactly its own keys."""
    def resolve(src: AptSource) -> Path | None:
        if src.signed_by_key:
            return _inline_keyring(src, cache_dir)
        if src.signed_by == "inline":  # a label that did not keep the block
            return None
        for entry in src.signed_by.split(",") if src.signed_by else [_DEFAULT_KEYRING[family]]:
            name = Path(entry).name
            if name == DEADSNAKES_KEYRING:
                return _deadsnakes_keyring(config, cache_dir)
            for d in config.sources.apt_keyrings:
                if (Path(d) / name).is_file():
                    return Path(d) / name
        return None

    return resolve


def _write(out: Path, data: bytes) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    part.write_bytes(data)
    part.replace(out)
    return out


def _inline_keyring(src: AptSource, cache_dir: Path) -> Path:
    digest = hashlib.sha256(src.signed_by_key.encode()).hexdigest()[:32]
    out = cache_dir / "keyrings" / f"inline-{digest}.gpg"
    if out.exists():
        return out
    origin = f"{src.describe()}: the inline Signed-By key block"
    return _write(out, keyrings.export_block(src.signed_by_key, origin))


def _deadsnakes_keyring(config: ImagesConfig, cache_dir: Path) -> Path:
    ds = config.sources.deadsnakes
    # ".pinned": a keyring of the pinned key only (older orchestrators kept the whole file)
    out = cache_dir / "keyrings" / f"deadsnakes-{ds.key_fingerprint}.pinned.gpg"
    if out.exists():
        return out
    url = ds.key_url.format(fingerprint=ds.key_fingerprint, ppa=ds.ppa)
    resp = http_fetch(url, {})  # the archive client's fetch: typed ArchiveError on failure
    if resp.status != 200:
        raise ArchiveError(f"deadsnakes key {url}: HTTP {resp.status}")
    try:
        return _write(out, keyrings.export_pinned(resp.body, [ds.key_fingerprint], url))
    except ArchiveError as exc:
        raise ArchiveError(f"{exc} (sources.deadsnakes.key_fingerprint, key_url)") from exc


def _views(archive: ArchiveIndex, image_sources: list[AptSource], arch: str) -> list[IndexView]:
    views = []
    for src in image_sources:
        rel = archive.release(src)
        for comp in src.components or ("",):
            pkgs = archive.packages(src, comp, arch)
            views.append(IndexView(f"{rel.name}{' ' + comp if comp else ''} {arch}",
                                   rel.security, rel.automatic, pkgs))
    return views


def check_image(registry: Registry, repo: str, img: PlannedImage, keys: LabelKeys,
                archives: Callable[[str], ArchiveIndex]) -> CellCheck:
    """What apt would upgrade in the image ``img``'s first public tag holds now."""
    tag = img.tags[0] if img.tags else img.immutable_tag
    try:
        # The tag resolved once; the configs read by that digest: a tag moved in between
        # cannot make the digest recorded another image than the one checked.
        digest = registry.digest(repo, tag)
        configs = registry.platform_configs(repo, digest) if digest else None
    except RegistryAuthError:
        raise
    except OrchestratorError as exc:
        return CellCheck(img.id, State.UNKNOWN, f"registry: {exc}")
    if digest is None or configs is None:
        return CellCheck(img.id, State.UNPUBLISHED, f"{tag} is not published")
    missing = [p for p in img.platforms if p not in configs]
    if missing:
        return CellCheck(img.id, State.UNPUBLISHED, f"{tag} has no {', '.join(missing)} image",
                         digest)
    plats = []
    inputs: set[str] = set()
    for plat in img.platforms:
        labels = (configs[plat].get("config") or {}).get("Labels") or {}
        if keys.apt_sources not in labels or keys.packages not in labels:
            return CellCheck(img.id, State.UNKNOWN, f"{tag} ({plat}) has no apt-sources/packages "
                             "label (published by an older orchestrator): refresh it once", digest)
        try:
            image_sources = sources.from_label(labels[keys.apt_sources])
            arch = _ARCH[plat]
            views = _views(archives(img.distro), image_sources, arch)
        except (ValueError, KeyError) as exc:
            return CellCheck(img.id, State.UNKNOWN, f"{tag} ({plat}): bad label: {exc}", digest)
        except ArchiveError as exc:
            return CellCheck(img.id, State.UNKNOWN, str(exc), digest)
        inputs.add(labels.get(keys.inputs, ""))
        installed = parse_packages_label(labels[keys.packages])
        plats.append(PlatformCheck(plat, tuple(upgrades(installed, views)),
                                   tuple(v.name for v in views),
                                   tuple(s.describe() for s in image_sources if s.trusted)))
    return CellCheck(img.id, cell_state(plats), "", digest, tuple(plats),
                     inputs.pop() if len(inputs) == 1 else "")


def check_all(config: ImagesConfig, registry: Registry, images: tuple[PlannedImage, ...],
              keys: LabelKeys, cache_dir: Path, *,
              now: Callable[[], dt.datetime] = utc_now) -> OutdatedReport:
    """Every image checked; ``now``: the clock the archives' Valid-Until is checked against."""
    start = time.monotonic()
    indexes: dict[str, ArchiveIndex] = {}

    def archive(distro: str) -> ArchiveIndex:
        if distro not in indexes:
            family = config.distros[distro].family
            indexes[distro] = ArchiveIndex(cache_dir / "apt",
                                           keyring_resolver(config, family, cache_dir), now=now)
        return indexes[distro]

    report = OutdatedReport()
    for img in images:
        check = check_image(registry, config.publish.repository, img, keys, archive)
        _log.info("outdated", image=img.id, state=check.state.value, reason=check.reason,
                  upgrades=sum(len(p.upgrades) for p in check.platforms))
        report.cells.append(check)
    report.downloads = [u for a in indexes.values() for u in a.downloads]
    report.seconds = round(time.monotonic() - start, 2)
    return report

"""Change detection and safe publishing.

Content fingerprint: base digest + installed package versions + Python tree hash + the
hash of the rendered stages the image is built from. Publishing pushes a tested image under
its new immutable tag first (by digest), and only then moves the public tags; an image whose
fingerprint equals what the registry's tags carry is not pushed at all.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator import log
from orchestrator.errors import RegistryError
from orchestrator.registry import Registry

if TYPE_CHECKING:
    from orchestrator.engine import Engine
    from orchestrator.plan import PlannedImage

_log = log.get("publish")


@dataclass(frozen=True)
class Contents:
    packages: dict[str, str]
    tree_hash: str

    def packages_label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in sorted(self.packages.items()))


def read_contents(engine: Engine, image_ref: str, prefix: str) -> Contents:
    """Installed packages and a hash of the Python tree (bytecode excluded: derived data)."""
    script = (
        "dpkg-query -W -f '${Package}=${Version}\\n'; echo '----'; "
        f"cd / && find {prefix.lstrip('/')} \\( -type f -o -type l \\) ! -name '*.pyc' -print0 "
        "| sort -z | xargs -0 sha256sum | sha256sum"
    )
    out = engine.run(image_ref, ["/bin/sh", "-ec", script], user="0", network="none", timeout=300)
    if out.exit_code != 0 or "----" not in out.output:
        raise RegistryError(f"could not read the contents of {image_ref}: {out.output[-500:]}")
    pkg_text, _, tree = out.output.partition("----")
    packages = dict(line.split("=", 1) for line in pkg_text.split() if "=" in line)
    return Contents(packages, tree.split()[0])


def fingerprint(base_digest: str, contents: Contents, stages_hash: str) -> str:
    doc = json.dumps({"base": base_digest, "packages": contents.packages,
                      "tree": contents.tree_hash, "stages": stages_hash}, sort_keys=True)
    return "sha256:" + hashlib.sha256(doc.encode()).hexdigest()


def parse_packages(label: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in label.split() if "=" in item)


def package_changes(old: dict[str, str], new: dict[str, str]) -> list[str]:
    out = []
    for name in sorted(set(old) | set(new)):
        a, b = old.get(name), new.get(name)
        if a == b:
            continue
        if a is None:
            out.append(f"{name} (new) {b}")
        elif b is None:
            out.append(f"{name} {a} (removed)")
        else:
            out.append(f"{name} {a} -> {b}")
    return out


@dataclass(frozen=True)
class Published:
    outcome: str  # new | updated | unchanged
    digest: str
    immutable_tag: str
    package_changes: tuple[str, ...]
    compressed_bytes: int


def _labels(registry: Registry, repo: str, ref: str) -> dict[str, str] | None:
    cfg = registry.image_config(repo, ref)
    if cfg is None:
        return None
    return dict((cfg.get("config") or cfg.get("container_config") or {}).get("Labels") or {})


def current_state(registry: Registry, repo: str, img: PlannedImage,
                  fp_key: str) -> tuple[list[str | None], dict[str, str] | None]:
    """(fingerprint each public tag carries now, labels of the first existing tag)."""
    fps: list[str | None] = []
    precise: dict[str, str] | None = None
    for tag in img.tags:
        labels = _labels(registry, repo, tag)
        fps.append(labels.get(fp_key) if labels else None)
        if labels is not None and precise is None:
            precise = labels
    return fps, precise


def push_candidate(
    engine: Engine, registry: Registry, host: str, repo: str, img: PlannedImage,
    candidate: str, fp: str, contents: Contents, fp_key: str, pkg_key: str,
) -> Published:
    """Push the tested candidate under its immutable tag; move nothing yet."""
    fps, precise = current_state(registry, repo, img, fp_key)
    if fps and all(f == fp for f in fps):
        digest = registry.digest(repo, img.tags[-1]) or ""
        return Published("unchanged", digest, "", (), registry.manifest_size(repo, digest) or 0)
    old_pkgs = parse_packages(precise.get(pkg_key, "")) if precise else {}
    changes = tuple(package_changes(old_pkgs, contents.packages)) if precise else ()
    immutable = _free_immutable(registry, repo, img.immutable_tag, fp, fp_key)
    ref = f"{host}/{repo}:{immutable}"
    existing = registry.digest(repo, immutable)
    if existing:  # an interrupted earlier run already pushed this very content
        digest = existing
    else:
        with engine.temp_tag(candidate, ref):
            digest = engine.push(ref)
        if registry.digest(repo, immutable) != digest:
            raise RegistryError(f"{ref}: registry digest differs from the pushed {digest}")
    return Published("updated" if precise else "new", digest, immutable, changes,
                     registry.manifest_size(repo, digest) or 0)


def _free_immutable(registry: Registry, repo: str, tag: str, fp: str, fp_key: str) -> str:
    """The dated tag, or tag.N when that date's tag already holds other content."""
    for n in range(0, 100):
        candidate = tag if n == 0 else f"{tag}.{n}"
        labels = _labels(registry, repo, candidate)
        if labels is None or labels.get(fp_key) == fp:
            return candidate
    raise RegistryError(f"{repo}:{tag}: 100 releases on one day; refusing to add more")


def move_tags(registry: Registry, repo: str, digest: str, tags: tuple[str, ...]) -> list[str]:
    """Point every public tag at ``digest``; returns the tags that actually moved."""
    moved = []
    for tag in tags:
        if registry.digest(repo, tag) == digest:
            continue
        registry.tag(repo, digest, tag)
        moved.append(tag)
        _log.info("tag moved", tag=f"{registry.host}/{repo}:{tag}", digest=digest)
    return moved

"""Change detection and safe publishing.

Content fingerprint: base digest + installed package versions + Python tree hash + the
hash of the rendered stages the image is built from. Publishing pushes a tested image under
an internal staging tag (naming.staging_tag: never a public one), gives it its new immutable
tag only when its gates passed (``publish_immutable``: signing, the scan gate), then moves the
public tags; the staging tag is removed again either way (``Registry.untag``), so an image no
gate let through is in the registry by digest only. An image whose fingerprint equals what the
registry's tags carry is not pushed at all.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchestrator import log
from orchestrator.apt import sources
from orchestrator.apt.sources import AptSource
from orchestrator.config.matrix import revision_tag
from orchestrator.errors import EngineError, RegistryError
from orchestrator.naming import repository_ref, staging_tag, tagged
from orchestrator.registry import Registry

if TYPE_CHECKING:
    from orchestrator.engine import Engine
    from orchestrator.planning.plan import PlannedImage

_log = log.get("publish")


@dataclass(frozen=True)
class Contents:
    packages: dict[str, str]
    tree_hash: str
    # Bytes of every file in the image (du --apparent-size of its root filesystem): one meaning
    # on both image stores (the containerd store's `docker images` size also counts the
    # compressed blobs) and per platform of a multi-platform image.
    unpacked_bytes: int = 0
    apt_sources: tuple[AptSource, ...] = ()  # what the image's apt reads (label apt-sources)

    def packages_label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in sorted(self.packages.items()))


def read_contents(engine: Engine, image_ref: str, prefix: str,
                  platform: str | None = None) -> Contents:
    """Installed packages, a hash of the Python tree (bytecode excluded: derived data) and
    the unpacked size, read in a throwaway container of ``platform``'s image."""
    script = (
        "dpkg-query -W -f '${Package}=${Version}\\n'; echo '----'; "
        f"cd / && find {prefix.lstrip('/')} \\( -type f -o -type l \\) ! -name '*.pyc' -print0 "
        "| sort -z | xargs -0 sha256sum | sha256sum; echo '----'; du -sxb /; "
        f"echo '----'; {sources.DUMP_SCRIPT}"
    )
    out = engine.run(image_ref, ["/bin/sh", "-ec", script], user="0", network="none", timeout=600,
                     platform=platform)
    where = f" ({platform})" if platform else ""
    if out.exit_code != 0 or out.output.count("----") < 3:
        raise EngineError(f"could not read the contents of {image_ref}{where}: "
                          f"{out.output[-500:]}")
    pkg_text, tree, du, source_files = out.output.split("----", 3)
    packages = dict(line.split("=", 1) for line in pkg_text.split() if "=" in line)
    return Contents(packages, tree.split()[0], int(du.split()[0]),
                    tuple(sources.parse_dump(source_files)))


def read_contents_without_shell(engine: Engine, image_ref: str, prefix: str,
                                platform: str | None = None) -> Contents:
    """What ``read_contents`` reads, from an image without a shell (minimal): its files,
    through the engine's archive API (a created, never started container)."""
    return contents_from_archive(engine.read_tree(image_ref, "/", platform), prefix)


# A directory as `du --apparent-size` counts it on ext4 and overlayfs (a few entries: a block).
DIR_BYTES = 4096
_STATUS = "var/lib/dpkg/status"


def contents_from_archive(data: bytes, prefix: str) -> Contents:
    """Contents of a root filesystem given as a tar archive (``Engine.read_tree(ref, "/")``),
    with read_contents' meanings: the packages of the dpkg status file (as dpkg-query -W
    lists them), the tree hash of the same `find | sort | xargs sha256sum | sha256sum` (so
    a minimal image and the runtime image of one tree carry the same), the bytes as
    `du -sxb /` counts them (directories as DIR_BYTES) and the apt sources files."""
    tree = prefix.strip("/") + "/"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {_rel(m.name): m for m in tar.getmembers()}
        links = {n: m.linkname for n, m in members.items() if m.issym()}

        def read(name: str) -> bytes | None:
            real = _real(name, links)
            m = members.get(real) if real is not None else None
            if m is None or not (m.isfile() or m.islnk()):
                return None
            f = tar.extractfile(m)
            return f.read() if f is not None else None

        lines = []
        for name in sorted(n for n, m in members.items() if n.startswith(tree)
                           and (m.isfile() or m.islnk() or m.issym()) and not n.endswith(".pyc")):
            body = read(name)
            if body is not None:  # sha256sum skips a dangling link or one to a directory
                lines.append(f"{hashlib.sha256(body).hexdigest()}  {name}\n")
        size = sum(m.size if m.isfile() else len(m.linkname) if m.issym()
                   else DIR_BYTES if m.isdir() else 0 for m in members.values())
        status = (read(_STATUS) or b"").decode("utf-8", "replace")
        dump = "".join(f"{sources.FILE_MARK}/{n}\n{(read(n) or b'').decode('utf-8', 'replace')}\n"
                       for n in sorted((n for n in members if _is_apt_source(n)), key=_apt_order))
    tree_hash = hashlib.sha256("".join(lines).encode()).hexdigest()
    return Contents(parse_dpkg_status(status), tree_hash, size, tuple(sources.parse_dump(dump)))


def parse_dpkg_status(status: str) -> dict[str, str]:
    """{package: version} of a dpkg status file: what `dpkg-query -W` lists (every stanza
    but those dpkg knows as not installed)."""
    out = {}
    for stanza in status.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines()
                      if ": " in line and not line.startswith(" "))
        if "Package" in fields and "Version" in fields \
                and not fields.get("Status", "").endswith("not-installed"):
            out[fields["Package"]] = fields["Version"]
    return out


def _rel(name: str) -> str:
    """A member name of a `docker cp`-style archive of / ("/etc/x", "./etc/x") -> "etc/x"."""
    return name.lstrip("/").removeprefix("./").rstrip("/")


def _is_apt_source(name: str) -> bool:
    return name == "etc/apt/sources.list" or (
        name.startswith("etc/apt/sources.list.d/") and name.endswith((".list", ".sources")))


def _apt_order(name: str) -> tuple[int, str]:
    """DUMP_SCRIPT's order: sources.list, then the .list files, then the .sources files."""
    return (0 if name == "etc/apt/sources.list" else 1 if name.endswith(".list") else 2, name)


def _real(path: str, links: dict[str, str]) -> str | None:
    """``path`` with every symbolic link on it followed inside the archive (None: a loop)."""
    parts, hops = path.split("/"), 0
    out: list[str] = []
    while parts:
        part = parts.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
        target = links.get("/".join(out))
        if target is not None:
            hops += 1
            if hops > 40:
                return None
            out.pop()
            if target.startswith("/"):
                out = []
            parts = target.split("/") + parts
    return "/".join(out)


def fingerprint(base_digest: str, contents: Contents, stages_hash: str) -> str:
    doc = json.dumps({"base": base_digest, "packages": contents.packages,
                      "tree": contents.tree_hash, "stages": stages_hash}, sort_keys=True)
    return "sha256:" + hashlib.sha256(doc.encode()).hexdigest()


def combined_fingerprint(fps: dict[str, str]) -> str:
    """One fingerprint over every platform's (the report and the state show it)."""
    if len(fps) == 1:
        return next(iter(fps.values()))
    doc = json.dumps(fps, sort_keys=True)
    return "sha256:" + hashlib.sha256(doc.encode()).hexdigest()


def parse_packages_label(label: str) -> dict[str, str]:
    """{package: version} of an image's packages label ("name=version ...", what
    ``Contents.packages_label`` writes)."""
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
    # new/updated: the immutable tag the image takes when its gates pass (publish_immutable;
    # already its tag when an interrupted earlier run published this very content under it)
    immutable_tag: str
    package_changes: tuple[str, ...]
    compressed: dict[str, int]  # platform -> config + layers as stored in the registry
    staging_tag: str = ""  # the internal tag this push went under ("": nothing pushed now)


def platform_fingerprints(registry: Registry, repo: str, ref: str,
                          fp_key: str) -> dict[str, str | None] | None:
    """{platform: fingerprint label} of a published tag or digest (None: it does not exist)."""
    configs = registry.platform_configs(repo, ref)
    if configs is None:
        return None
    return {plat: _labels_of(cfg).get(fp_key) for plat, cfg in configs.items()}


def _labels_of(cfg: dict[str, Any]) -> dict[str, str]:
    return dict((cfg.get("config") or cfg.get("container_config") or {}).get("Labels") or {})


def current_state(registry: Registry, repo: str, img: PlannedImage, fp_key: str,
                  ) -> tuple[list[dict[str, str | None] | None], dict[str, str] | None]:
    """(per-platform fingerprints each public tag carries now, labels of the first existing
    tag on the native platform, for the package diff)."""
    fps: list[dict[str, str | None] | None] = []
    precise: dict[str, str] | None = None
    for tag in img.tags:
        configs = registry.platform_configs(repo, tag)
        fps.append(None if configs is None
                   else {plat: _labels_of(cfg).get(fp_key) for plat, cfg in configs.items()})
        if configs and precise is None:
            first = configs.get(img.platforms[0]) if img.platforms else None
            precise = _labels_of(first or next(iter(configs.values())))
    return fps, precise


def push_candidate(
    engine: Engine, registry: Registry, host: str, repo: str, img: PlannedImage,
    candidate: str, fps: dict[str, str], contents: Contents, fp_key: str, pkg_key: str,
) -> Published:
    """Push the tested candidate (one OCI index when it has several platforms) under the
    cell's internal staging tag, and pick the immutable tag it will take; no tag a user pulls
    changes here. Unchanged: every public tag already holds, on every platform, the content
    fingerprint we built (the same set of platforms too)."""
    current, precise = current_state(registry, repo, img, fp_key)
    if current and all(c == fps for c in current):
        digest = registry.digest(repo, img.tags[-1]) or ""
        return Published("unchanged", digest, "", (), _compressed(registry, repo, digest))
    old_pkgs = parse_packages_label(precise.get(pkg_key, "")) if precise else {}
    changes = tuple(package_changes(old_pkgs, contents.packages)) if precise else ()
    outcome = "updated" if precise else "new"
    immutable = _free_immutable(registry, repo, img, fps, fp_key)
    existing = registry.digest(repo, immutable)
    if existing:  # an interrupted earlier run already published this very content
        return Published(outcome, existing, immutable, changes,
                         _compressed(registry, repo, existing))
    staging = staging_tag(img.id)
    ref = tagged(repository_ref(host, repo), staging)
    staged = registry.digest(repo, staging)
    if staged and platform_fingerprints(registry, repo, staged, fp_key) == fps:
        digest = staged  # an interrupted earlier run already staged this very content
    else:
        with engine.temp_tag(candidate, ref):
            digest = engine.push(ref)
        if registry.digest(repo, staging) != digest:
            raise RegistryError(f"{ref}: registry digest differs from the pushed {digest}")
    return Published(outcome, digest, immutable, changes, _compressed(registry, repo, digest),
                     staging)


def publish_immutable(registry: Registry, repo: str, img: PlannedImage, digest: str,
                      planned: str) -> str:
    """Give ``digest`` its immutable tag, its gates passed: ``planned`` (push_candidate's
    pick), or when another image took that one since, the next free same-day revision. An
    immutable tag never moves: one that holds another digest is passed over."""
    names = [planned] + [img.immutable_tag if n == 0 else revision_tag(img.immutable_revision, n)
                         for n in range(0, 100)]
    for tag in dict.fromkeys(names):
        there = registry.digest(repo, tag)
        if there == digest:
            return tag
        if there is None:
            registry.tag(repo, digest, tag)
            _log.info("immutable tag", tag=tagged(repository_ref(registry.host, repo), tag),
                      digest=digest)
            return tag
    raise RegistryError(f"{repo}:{img.immutable_tag}: 100 releases on one day; refusing to add more")


def _compressed(registry: Registry, repo: str, digest: str) -> dict[str, int]:
    return registry.platform_sizes(repo, digest) if digest else {}


def _free_immutable(registry: Registry, repo: str, img: PlannedImage, fps: dict[str, str],
                    fp_key: str) -> str:
    """The dated tag, or its revision N (<date>.N) when that date's tag holds other content."""
    for n in range(0, 100):
        candidate = img.immutable_tag if n == 0 else revision_tag(img.immutable_revision, n)
        there = platform_fingerprints(registry, repo, candidate, fp_key)
        if there is None or there == fps:
            return candidate
    raise RegistryError(f"{repo}:{img.immutable_tag}: 100 releases on one day; refusing to add more")


def move_tags(registry: Registry, repo: str, digest: str, tags: tuple[str, ...]) -> list[str]:
    """Point every public tag at ``digest``; returns the tags that actually moved."""
    moved = []
    for tag in tags:
        if registry.digest(repo, tag) == digest:
            continue
        registry.tag(repo, digest, tag)
        moved.append(tag)
        _log.info("tag moved", tag=tagged(repository_ref(registry.host, repo), tag), digest=digest)
    return moved

"""A fake image engine for publish tests: small synthetic images, pushed over the registry API.

It implements the ``orchestrator.engine.Engine`` protocol (mypy checks it, below). The push
path's methods are real (``exists``, ``inspect``, ``tag``, ``remove``, ``temp_tag``,
``push``); builds make synthetic images and containers run no program (their outcome
comes from ``on_run``, ``run_program``'s too; the smoke test's components probe finds every
component absent); ``pull`` makes a synthetic image of what the registry holds.
``push`` writes the image's blobs (HEAD, POST + PUT upload) and its manifest (PUT by tag, as
``docker push`` does) through an ``orchestrator.registry.Registry`` client, so the client's
retry and auth handling, and any fault proxy in between, are exercised for real. Images are
deterministic: the same (name, seed, labels) always gives the same digest.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator import imageref
from orchestrator.config.publish import VEX_COMPONENTS
from orchestrator.engine import BuildOutcome, Engine, ImageInfo, Mount, RunOutcome
from orchestrator.errors import EngineError, RegistryError
from orchestrator.registry import Registry
from orchestrator.smoke import suite
from tests.fakes.oci_layouts import Layer, write_layout

PROBE = suite.snippet("components.py")  # the components check's program (python3 -c PROBE)

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class FakeImage:
    config: bytes
    layers: tuple[bytes, ...]

    @property
    def id(self) -> str:
        return sha256(self.config)

    @property
    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = json.loads(self.config)["config"]["Labels"]
        return labels

    @property
    def size(self) -> int:
        return sum(len(x) for x in self.layers)

    def manifest(self) -> bytes:
        doc = {
            "schemaVersion": 2, "mediaType": MANIFEST,
            "config": {"mediaType": CONFIG, "size": len(self.config), "digest": sha256(self.config)},
            "layers": [{"mediaType": LAYER, "size": len(x), "digest": sha256(x)} for x in self.layers],
        }
        return json.dumps(doc, indent=3).encode()

    @property
    def digest(self) -> str:
        """The manifest digest the registry will report for this image."""
        return sha256(self.manifest())


def synthetic_image(name: str, seed: str, labels: dict[str, str]) -> FakeImage:
    """A base layer shared by every image, and one layer of its own."""
    layers = (b"shared base layer\n", f"{name} {seed}\n".encode())
    config = {
        "architecture": "amd64", "os": "linux", "config": {"Labels": dict(sorted(labels.items()))},
        "rootfs": {"type": "layers", "diff_ids": [sha256(x) for x in layers]},
    }
    return FakeImage(json.dumps(config, sort_keys=True).encode(), layers)


@dataclass
class FakeEngine:
    registry_for: Callable[[str], Registry]
    images: dict[str, FakeImage] = field(default_factory=dict)  # local ref -> image
    pushed: list[str] = field(default_factory=list)  # refs pushed, in order
    after_push: Callable[[str], None] | None = None  # called with the ref after each push
    # what a container run gives (image, argv, platform) -> outcome; default: exit 0, no output
    on_run: Callable[[str, list[str], str | None], RunOutcome] | None = None
    runs: list[tuple[str, list[str], str | None]] = field(default_factory=list)  # (image, argv, platform)
    # called with (target, log path) before each build; may raise BuildFailed
    on_build: Callable[[str, Path], None] | None = None
    # OCI exports (check-reproducible): the layers per platform of the n-th export (from 1);
    # default: the same files every time, so two builds are identical
    on_export: Callable[[int, str, list[str]], dict[str, list[Layer]]] | None = None
    exports: list[tuple[str, dict[str, str], bool]] = field(default_factory=list)
    export_labels: list[dict[str, str]] = field(default_factory=list)
    rewrites: list[tuple[str, bool]] = field(default_factory=list)  # (target, rewrite_timestamps)
    mounted: list[tuple[Mount, ...]] = field(default_factory=list)  # run_program's mounts, in order
    pulled: list[tuple[str, str | None]] = field(default_factory=list)  # (ref, platform)

    def load(self, ref: str, image: FakeImage) -> None:
        """What a build leaves behind: ``ref`` names ``image`` in the local store."""
        self.images[ref] = image

    def exists(self, ref: str) -> bool:
        return ref in self.images

    def inspect(self, ref: str) -> ImageInfo:
        if ref not in self.images:
            raise EngineError(f"image {ref} is not in the engine's store")
        img = self.images[ref]
        return ImageInfo(img.id, img.size, img.labels)

    def tag(self, image: str, ref: str) -> None:
        self.images[ref] = self.images[image]

    def remove(self, ref: str) -> None:
        self.images.pop(ref, None)

    @contextmanager
    def temp_tag(self, image: str, ref: str) -> Iterator[str]:
        self.tag(image, ref)
        try:
            yield ref
        finally:
            self.remove(ref)

    def push(self, ref: str) -> str:
        """Blobs first, then the manifest under ``ref``'s tag; returns the manifest digest."""
        img = self.images[ref]
        parsed = imageref.parse(ref)
        host, repo, tag = parsed.host, parsed.repository, parsed.reference
        reg = self.registry_for(host)
        for blob in (*img.layers, img.config):
            upload_blob(reg, repo, blob)
        digest = reg.put_manifest(repo, tag, img.manifest(), MANIFEST)
        self.pushed.append(ref)
        if self.after_push is not None:
            self.after_push(ref)
        return digest


    def build(self, context: Path, *, dockerfile: Path, target: str, tags: list[str],
              args: dict[str, str], labels: dict[str, str], network: str | None,
              cache_from: list[str], cache_to: list[str], log_path: Path,
              on_line: Callable[[str], None] | None = None,
              platforms: list[str] | None = None,
              rewrite_timestamps: bool = False) -> BuildOutcome:
        """A synthetic image of (target, args, labels) under every tag; nothing compiled."""
        self.rewrites.append((target, rewrite_timestamps))
        if self.on_build is not None:
            self.on_build(target, log_path)
        seed = json.dumps([str(dockerfile), target, sorted(args.items())])
        image = synthetic_image(target, seed, labels)
        for tag in tags:
            self.load(tag, image)
        return BuildOutcome(image.id, 0.0, (), (target,), log_path)

    def build_dockerfile(self, dockerfile: str, tag: str, *, network: str | None,
                         log_path: Path, context: Path | None = None,
                         platforms: list[str] | None = None) -> str:
        image = synthetic_image(tag, dockerfile, {})
        self.load(tag, image)
        return image.id

    def export_oci(self, context: Path, *, dockerfile: Path, target: str, args: dict[str, str],
                   labels: dict[str, str], network: str | None, dest: Path, log_path: Path,
                   platforms: list[str] | None = None, no_cache: bool = True) -> Path:
        self.exports.append((target, dict(args), no_cache))
        self.export_labels.append(dict(labels))
        plats = platforms or ["linux/amd64"]
        if self.on_export is not None:
            images = self.on_export(len(self.exports), target, plats)
        else:
            epoch = int(args.get("SOURCE_DATE_EPOCH", "0"))
            images = {p: [{f"opt/{target}": (target.encode(), epoch)}] for p in plats}
        return write_layout(dest, images)

    def run(self, image: str, argv: list[str], *, user: str | None = None,
            read_only: bool = False, network: str | None = "host", timeout: float = 300,
            env: dict[str, str] | None = None, platform: str | None = None) -> RunOutcome:
        if image not in self.images:
            raise EngineError(f"cannot create a container of {image}: no such image")
        self.runs.append((image, argv, platform))
        if PROBE in argv:  # the smoke test's components probe: every component absent
            return RunOutcome(0, json.dumps(dict.fromkeys(VEX_COMPONENTS)), 0.0)
        return self.on_run(image, argv, platform) if self.on_run else RunOutcome(0, "", 0.0)

    def run_program(self, image: str, argv: list[str], *, mounts: Sequence[Mount] = (),
                    user: str | None = None, network: str | None = "none", timeout: float = 300,
                    env: dict[str, str] | None = None, platform: str | None = None) -> RunOutcome:
        """As ``run``: recorded in ``runs`` (and its mounts in ``mounted``), its outcome
        ``on_run``'s; the program must be an absolute path (it is the entrypoint)."""
        if image not in self.images:
            raise EngineError(f"cannot create a container of {image}: no such image")
        assert argv[0].startswith("/"), f"an entrypoint is an absolute path: {argv[0]}"
        for m in mounts:
            assert m.source.is_dir(), f"bind mount of a missing directory {m.source}"
        self.runs.append((image, argv, platform))
        self.mounted.append(tuple(mounts))
        return self.on_run(image, argv, platform) if self.on_run else RunOutcome(0, "", 0.0)

    def pull(self, ref: str, platform: str | None = None) -> str:
        """A registry's manifest made a local image (``pulled`` records it); a digest or tag
        the registry does not have is the engine's error, as docker's."""
        parsed = imageref.parse(ref)
        if self.registry_for(parsed.host).platform_manifests(parsed.repository,
                                                             parsed.reference) is None:
            raise EngineError(f"cannot pull {ref}: manifest unknown")
        self.pulled.append((ref, platform))
        image = synthetic_image(ref, "pulled", {})
        self.load(ref, image)
        return image.id

    def read_tree(self, image: str, path: str, platform: str | None = None) -> bytes:
        raise EngineError(f"cannot read {path} from {image}: the fake engine has no files")


if TYPE_CHECKING:
    def _is_an_engine(engine: FakeEngine) -> Engine:
        return engine  # mypy: the fake satisfies the Engine protocol


def _header(headers: Mapping[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), "")


def upload_blob(reg: Registry, repo: str, data: bytes) -> str:
    """Upload one blob unless the repository has it (monolithic: POST, then PUT ?digest=)."""
    digest = sha256(data)
    scope = f"repository:{repo}:pull,push"
    if reg.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope=scope).status == 200:
        return digest
    start = reg.request("POST", f"/v2/{repo}/blobs/uploads/", data=b"", scope=scope)
    if start.status != 202:
        raise RegistryError(f"POST {reg.host}/{repo} blob upload: HTTP {start.status} {start.body[:200]!r}")
    loc = urllib.parse.urlsplit(_header(start.headers, "Location"))
    query = (loc.query + "&" if loc.query else "") + urllib.parse.urlencode({"digest": digest})
    done = reg.request("PUT", f"{loc.path}?{query}", {"Content-Type": "application/octet-stream"},
                       data, scope=scope)
    if done.status != 201:
        raise RegistryError(f"PUT {reg.host}/{repo} blob {digest}: HTTP {done.status} {done.body[:200]!r}")
    return digest

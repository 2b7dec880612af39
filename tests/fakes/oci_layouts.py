"""Writes small OCI image layouts (the tar BuildKit's ``type=oci`` export gives) for the unit
tests of the reproducibility comparison and for the fake engine."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

# A layer: path -> (content, mtime); content None makes a directory.
Layer = dict[str, tuple[bytes | None, int]]
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def layer_tar(layer: Layer, gzip_mtime: int = 0, ordered: bool = True) -> tuple[bytes, bytes]:
    """(gzip blob, uncompressed tar) of ``layer``, members sorted (or in the dict's order)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, (content, mtime) in (sorted(layer.items()) if ordered else layer.items()):
            info = tarfile.TarInfo(path)
            info.mtime = mtime
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content))
    data = raw.getvalue()
    return gzip.compress(data, mtime=gzip_mtime), data


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_layout(dest: Path, images: dict[str, list[Layer]], *,
                 config_extra: dict[str, Any] | None = None, gzip_mtime: int = 0,
                 attestation: bool = True, ordered: bool = True, nested: bool = True,
                 desc_platform: bool = True) -> Path:
    """An OCI layout tar at ``dest``: one manifest per platform ("linux/amd64": layers)
    under an image index, plus an attestation manifest as BuildKit adds. ``nested=False``:
    the manifests straight in index.json; ``desc_platform=False``: no platform on their
    descriptors (BuildKit's single-platform export), the config says which."""
    blobs: dict[str, bytes] = {}

    def put(data: bytes) -> str:
        d = _digest(data)
        blobs[d] = data
        return d

    manifests = []
    for platform, layers in images.items():
        os_, arch = platform.split("/")[:2]
        descs, diff_ids = [], []
        for layer in layers:
            blob, raw = layer_tar(layer, gzip_mtime, ordered)
            descs.append({"mediaType": OCI_LAYER, "digest": put(blob), "size": len(blob)})
            diff_ids.append(_digest(raw))
        config = {"architecture": arch, "os": os_, "created": "2026-01-01T00:00:00Z",
                  "rootfs": {"type": "layers", "diff_ids": diff_ids},
                  "config": {"Env": ["PATH=/usr/bin"]}, **(config_extra or {})}
        cfg = json.dumps(config, sort_keys=True).encode()
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": {"mediaType": OCI_CONFIG, "digest": put(cfg),
                                          "size": len(cfg)},
                               "layers": descs}).encode()
        desc: dict[str, Any] = {"mediaType": OCI_MANIFEST, "digest": put(manifest),
                                "size": len(manifest)}
        if desc_platform:
            desc["platform"] = {"os": os_, "architecture": arch}
        manifests.append(desc)
    if attestation:
        att = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [],
                          "config": {"mediaType": OCI_CONFIG, "digest": put(b"{}"),
                                     "size": 2}}).encode()
        manifests.append({"mediaType": OCI_MANIFEST, "digest": put(att), "size": len(att),
                          "platform": {"os": "unknown", "architecture": "unknown"},
                          "annotations": {"vnd.docker.reference.type": "attestation-manifest"}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": manifests}).encode()
    top = index if not nested else json.dumps({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_INDEX, "digest": put(index), "size": len(index)}]},
    ).encode()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w") as tar:
        for name, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                           ("index.json", top),
                           *((f"blobs/sha256/{d.split(':')[1]}", b) for d, b in blobs.items())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return dest

"""Reading an OCI image layout, as a directory or as the tar BuildKit writes
(``--output type=oci,dest=x.tar``): its index, the image manifest of each platform
(attestations left out) and its blobs, each checked against its digest."""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from pathlib import Path
from typing import IO, Any

from orchestrator.errors import ExitCode, OrchestratorError
from orchestrator.registry import INDEX_TYPES

IMAGE_MANIFEST_TYPES = frozenset({
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
})
_HEX = re.compile(r"[0-9a-f]{64}")
# BuildKit stores attestations (provenance, SBOM) as manifests for platform unknown/unknown.
_ATTESTATION_REF = "vnd.docker.reference.type"


class LayoutError(OrchestratorError):
    """The directory or tar is not an OCI image layout (or a blob is missing or corrupt)."""

    exit_code = ExitCode.TOOL


class Layout:
    """An OCI image layout, as a directory or as the tar BuildKit writes (``dest=x.tar``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tar: tarfile.TarFile | None = None
        if path.is_file():
            try:
                self._tar = tarfile.open(path)  # noqa: SIM115 - closed in close()
            except tarfile.TarError as exc:
                raise LayoutError(f"{path}: not a tar archive ({exc})") from None
        elif not path.is_dir():
            raise LayoutError(f"{path}: no such OCI layout")

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()

    def __enter__(self) -> Layout:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self, name: str) -> IO[bytes]:
        if self._tar is None:
            try:
                return (self.path / name).open("rb")
            except OSError:
                raise LayoutError(f"{self.path}: {name} is missing") from None
        try:
            member = self._tar.extractfile(name)
        except KeyError:
            member = None
        if member is None:
            raise LayoutError(f"{self.path}: {name} is missing")
        return member

    def blob_path(self, digest: str) -> str:
        algo, _, hexdigest = str(digest).partition(":")
        if algo != "sha256" or not _HEX.fullmatch(hexdigest):
            raise LayoutError(f"{self.path}: unsupported digest {digest!r}")
        return f"blobs/sha256/{hexdigest}"

    def blob(self, digest: str) -> bytes:
        with self._open(self.blob_path(digest)) as fh:
            data = fh.read()
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise LayoutError(f"{self.path}: blob {digest} does not match its digest")
        return data

    def open_blob(self, digest: str) -> IO[bytes]:
        return self._open(self.blob_path(digest))

    def json_blob(self, digest: str) -> dict[str, Any]:
        try:
            data = json.loads(self.blob(digest))
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise LayoutError(f"{self.path}: blob {digest} is not a JSON object")
        return data

    def manifests(self) -> dict[str, str]:
        """Image manifest digest per platform ("linux/amd64"), attestations left out."""
        with self._open("index.json") as fh:
            try:
                index = json.load(fh)
            except ValueError:
                index = None
        if not isinstance(index, dict):
            raise LayoutError(f"{self.path}: index.json is not a JSON object")
        found: dict[str, str] = {}
        try:
            self._walk(index, found, depth=0)
        except (KeyError, TypeError, AttributeError) as exc:
            raise LayoutError(f"{self.path}: malformed index or manifest ({exc!r})") from None
        if not found:
            raise LayoutError(f"{self.path}: the layout holds no image manifest")
        return found

    def _walk(self, index: dict[str, Any], found: dict[str, str], depth: int) -> None:
        if depth > 3:
            raise LayoutError(f"{self.path}: image indexes nested too deep")
        for desc in index.get("manifests", []):
            if (desc.get("annotations") or {}).get(_ATTESTATION_REF):
                continue
            if desc.get("mediaType") in INDEX_TYPES:
                self._walk(self.json_blob(desc["digest"]), found, depth + 1)
                continue
            if desc.get("mediaType") not in IMAGE_MANIFEST_TYPES:
                continue  # an artifact, not an image
            name = _platform(desc.get("platform") or {})
            if not name:  # a single-platform export: the config says which
                name = _platform(self.json_blob(self.json_blob(desc["digest"])["config"]["digest"]))
            if name == "unknown/unknown":
                continue
            if name in found:
                raise LayoutError(f"{self.path}: two image manifests for {name}")
            found[name] = str(desc["digest"])


def _platform(d: dict[str, Any]) -> str:
    return "/".join(str(x) for x in (d.get("os"), d.get("architecture"), d.get("variant")) if x)

"""Bit-for-bit comparison of two builds of one image: two OCI image layouts (BuildKit's
``type=oci`` export), platform by platform, then config field by field and layer by layer,
file by file. Every difference names the platform, where it is (config, layer N), the item
(a config key path or a file path), the field (mtime, content, mode, ...) and both values.

Pure: reads the two layouts it is given; ``release.reproduce`` builds them.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
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
MAX_FILES = 40  # per layer: enough to explain, short enough to read

# What each kind of difference usually means, for the reader of the report.
FIELD_HINTS = {
    "mtime": "a file time newer than SOURCE_DATE_EPOCH that the export did not clamp",
    "content": "the file's bytes differ",
    "size": "the file's size differs",
    "mode": "permission bits differ",
    "uid": "owner differs", "gid": "group differs",
    "type": "file type differs (file, link, directory)",
    "linkname": "link target differs",
    "pax": "extended tar headers differ (xattrs, atime/ctime)",
    "missing": "present in one build only",
    "order": "same files, in another order in the tar stream",
    "compression": "same uncompressed layer (diff_id), different compressed bytes",
    "value": "the config value differs",
    "count": "the number of layers (or tar entries) differs",
    "bytes": "equal as compared, different bytes (tar header format, JSON key order)",
}


class LayoutError(OrchestratorError):
    """The directory or tar is not an OCI image layout (or a blob is missing or corrupt)."""

    exit_code = ExitCode.TOOL


@dataclass(frozen=True)
class Difference:
    platform: str
    where: str  # "index", "manifest", "config", "layer 3"
    item: str  # a config key path ("history[2].created") or a file path in the layer
    field: str  # a key of FIELD_HINTS
    first: str
    second: str

    def line(self) -> str:
        return (f"{self.platform} {self.where}: {self.item}: {self.field} "
                f"{self.first!r} != {self.second!r} ({FIELD_HINTS.get(self.field, '')})")


@dataclass(frozen=True)
class PlatformComparison:
    platform: str
    first: str  # manifest digests
    second: str
    layers: int
    identical_layers: int
    differences: tuple[Difference, ...] = ()
    truncated: int = 0  # differences left out of ``differences`` (MAX_FILES per layer)

    @property
    def identical(self) -> bool:
        return bool(self.first) and self.first == self.second


@dataclass(frozen=True)
class Comparison:
    platforms: tuple[PlatformComparison, ...]

    @property
    def identical(self) -> bool:
        return bool(self.platforms) and all(p.identical for p in self.platforms)

    def lines(self) -> list[str]:
        out = []
        for p in self.platforms:
            verdict = "identical" if p.identical else "DIFFERENT"
            out.append(f"{p.platform}: {verdict}: {p.first or '-'} vs {p.second or '-'}; "
                       f"{p.identical_layers}/{p.layers} layers identical")
            out += [f"  {d.line()}" for d in p.differences]
            if p.truncated:
                out.append(f"  ... and {p.truncated} more differences (see the JSON report)")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "platforms": [{
                "platform": p.platform, "identical": p.identical,
                "first": p.first, "second": p.second,
                "layers": p.layers, "identical_layers": p.identical_layers,
                "truncated": p.truncated,
                "differences": [{
                    "where": d.where, "item": d.item, "field": d.field,
                    "first": d.first, "second": d.second,
                    "hint": FIELD_HINTS.get(d.field, ""),
                } for d in p.differences],
            } for p in self.platforms],
        }


# ---------------------------------------------------------------------------- layouts

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


# ---------------------------------------------------------------------------- comparing

def compare(first: Layout, second: Layout, max_files: int = MAX_FILES) -> Comparison:
    a, b = first.manifests(), second.manifests()
    out = []
    for platform in sorted(set(a) | set(b)):
        if platform not in a or platform not in b:
            out.append(PlatformComparison(
                platform, a.get(platform, ""), b.get(platform, ""), 0, 0,
                (Difference(platform, "index", platform, "missing",
                            a.get(platform, "absent"), b.get(platform, "absent")),)))
            continue
        try:
            out.append(_compare_platform(platform, first, a[platform], second, b[platform],
                                         max_files))
        except (KeyError, TypeError, AttributeError) as exc:
            raise LayoutError(f"{first.path} / {second.path}: malformed manifest or config of "
                              f"{platform} ({exc!r})") from None
    return Comparison(tuple(out))


def _compare_platform(platform: str, la: Layout, da: str, lb: Layout, db: str,
                      max_files: int) -> PlatformComparison:
    ma, mb = la.json_blob(da), lb.json_blob(db)
    layers_a, layers_b = ma.get("layers", []), mb.get("layers", [])
    same = sum(1 for x, y in zip(layers_a, layers_b, strict=False) if x["digest"] == y["digest"])
    if da == db:
        return PlatformComparison(platform, da, db, len(layers_a), same)
    diffs: list[Difference] = []
    truncated = 0
    ca, cb = ma["config"]["digest"], mb["config"]["digest"]
    cfg_a, cfg_b = la.json_blob(ca), lb.json_blob(cb)
    if ca != cb:
        diffs += [Difference(platform, "config", path, "value", x, y)
                  for path, x, y in json_differences(cfg_a, cfg_b)]
    if len(layers_a) != len(layers_b):
        diffs.append(Difference(platform, "manifest", "layers", "count",
                                str(len(layers_a)), str(len(layers_b))))
    ids_a = (cfg_a.get("rootfs") or {}).get("diff_ids") or []
    ids_b = (cfg_b.get("rootfs") or {}).get("diff_ids") or []
    for i, (x, y) in enumerate(zip(layers_a, layers_b, strict=False)):
        if x["digest"] == y["digest"]:
            continue
        where = f"layer {i + 1}/{len(layers_a)}"
        if i < len(ids_a) and i < len(ids_b) and ids_a[i] == ids_b[i]:
            diffs.append(Difference(platform, where, x["digest"], "compression",
                                    x["digest"], y["digest"]))
            continue
        with la.open_blob(x["digest"]) as fa, lb.open_blob(y["digest"]) as fb:
            found = layer_differences(platform, where, fa, fb)
        diffs += found[:max_files]
        truncated += max(0, len(found) - max_files)
    if not diffs:
        diffs += [Difference(platform, "manifest", path, "value", x, y)
                  for path, x, y in json_differences(ma, mb)]
    if not diffs:  # equal as JSON values: key order, spacing, 1 vs 1.0
        where, x, y = ("config", ca, cb) if ca != cb else ("manifest", da, db)
        diffs.append(Difference(platform, where, "(JSON bytes)", "bytes", x, y))
    return PlatformComparison(platform, da, db, len(layers_a), same, tuple(diffs), truncated)


def json_differences(a: Any, b: Any, path: str = "") -> list[tuple[str, str, str]]:
    """(key path, first, second) of every leaf that differs; "absent" when only one has it."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            sub = f"{path}.{k}" if path else str(k)
            if k not in a or k not in b:
                out.append((sub, _short(a.get(k, "absent")), _short(b.get(k, "absent"))))
            else:
                out += json_differences(a[k], b[k], sub)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out += json_differences(x, y, f"{path}[{i}]")
        return out
    return [] if a == b else [(path or "(root)", _short(a), _short(b))]


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[:limit - 3] + "..."


@dataclass(frozen=True)
class Entry:
    """One tar member, as far as a layer's identity goes."""

    type: str
    mode: str
    uid: str
    gid: str
    mtime: str
    size: str
    linkname: str
    content: str  # sha256 of a regular file's bytes
    pax: str = ""


ENTRY_FIELDS = ("type", "mode", "uid", "gid", "size", "content", "linkname", "pax", "mtime")


# pax keys compared as fields of their own (mtime) or already part of the name / size
_PAX_OWN = frozenset({"mtime", "path", "linkpath", "size"})


def layer_entries(fh: IO[bytes]) -> Iterator[tuple[str, Entry]]:
    """The members of a layer blob (tar, gzip-compressed or not), in stream order."""
    try:
        with tarfile.open(fileobj=fh, mode="r|*") as tar:
            for m in tar:
                content = ""
                if m.isreg():
                    data = tar.extractfile(m)
                    h = hashlib.sha256()
                    if data is not None:
                        while chunk := data.read(1 << 20):
                            h.update(chunk)
                    content = h.hexdigest()[:16]
                pax = {k: v for k, v in m.pax_headers.items() if k not in _PAX_OWN}
                yield m.name.removeprefix("./").rstrip("/") or ".", Entry(
                    type=m.type.decode(errors="replace") or "0", mode=oct(m.mode),
                    uid=f"{m.uid} ({m.uname})", gid=f"{m.gid} ({m.gname})",
                    mtime=m.pax_headers.get("mtime") or str(int(m.mtime)), size=str(m.size),
                    linkname=m.linkname, content=content,
                    pax=json.dumps(pax, sort_keys=True) if pax else "")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise LayoutError(f"a layer is not a readable tar stream ({exc})") from None


def layer_differences(platform: str, where: str, fa: IO[bytes],
                      fb: IO[bytes]) -> list[Difference]:
    """File-level differences between two layer blobs; "order" when only the order differs."""
    a, b = list(layer_entries(fa)), list(layer_entries(fb))
    ma, mb = dict(a), dict(b)
    out: list[Difference] = []
    for name in sorted(set(ma) | set(mb)):
        x, y = ma.get(name), mb.get(name)
        if x is None or y is None:
            out.append(Difference(platform, where, name, "missing",
                                  "present" if x else "absent", "present" if y else "absent"))
            continue
        for f in ENTRY_FIELDS:
            vx, vy = getattr(x, f), getattr(y, f)
            if vx != vy:
                out.append(Difference(platform, where, name, f, vx, vy))
    names_a, names_b = [n for n, _ in a], [n for n, _ in b]
    if not out and len(names_a) != len(names_b):  # a path twice in one of them
        out.append(Difference(platform, where, "(tar entries)", "count",
                              str(len(names_a)), str(len(names_b))))
    elif not out and names_a != names_b:
        first = next(i for i, (p, q) in enumerate(zip(names_a, names_b, strict=True)) if p != q)
        out.append(Difference(platform, where, f"entry {first + 1}", "order",
                              names_a[first], names_b[first]))
    if not out:
        out.append(Difference(platform, where, "(tar stream)", "bytes", f"{len(a)} entries",
                              f"{len(b)} entries"))
    return out


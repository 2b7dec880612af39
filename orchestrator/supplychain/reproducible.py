"""Bit-for-bit comparison of two builds of one image: two OCI image layouts (BuildKit's
``type=oci`` export), platform by platform, then config field by field and layer by layer,
file by file. Every difference names the platform, where it is (config, layer N), the item
(a config key path or a file path), the field (mtime, content, mode, ...) and both values.

Pure: reads the two layouts it is given (``oci_layout``); ``release.reproduce`` builds them.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from elftools.elf.elffile import ELFFile

from orchestrator.registry.oci_layout import Layout, LayoutError

__all__ = ["Comparison", "Difference", "Layout", "LayoutError", "PlatformComparison", "compare"]

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
    "elf-sections": "the ELF sections whose bytes differ (first) and how many are the same "
                    "(second): code and data (.text, .rodata, .data) come from the compiler's "
                    "decisions, which a PGO build takes from its training run's profile; "
                    ".note.gnu.build-id and .gnu_debuglink follow from them",
    "elf-ids": "only the ELF file's identifiers differ: the linker hashed the whole unstripped "
               "output into the build-id, debug info included, which strip removed afterwards; "
               "a path or time in that debug info (a per-run build directory) is the usual cause",
}
# Sections that only identify the file: they differ when anything the linker hashed differs.
ELF_ID_SECTIONS = frozenset((".note.gnu.build-id", ".gnu_debuglink"))
ELF_MAX_BYTES = 512 << 20  # ELF files compared section by section when at most this big
# an ELF file's sections: (name, sha256 of its bytes)
Sections = tuple[tuple[str, str], ...]


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
    elf: Sections = ()  # to say which sections differ; not a compared field


ENTRY_FIELDS = ("type", "mode", "uid", "gid", "size", "content", "linkname", "pax", "mtime")


# pax keys compared as fields of their own (mtime) or already part of the name / size
_PAX_OWN = frozenset({"mtime", "path", "linkpath", "size"})


def layer_entries(fh: IO[bytes]) -> Iterator[tuple[str, Entry]]:
    """The members of a layer blob (tar, gzip-compressed or not), in stream order."""
    try:
        with tarfile.open(fileobj=fh, mode="r|*") as tar:
            for m in tar:
                content, elf = "", Sections()
                if m.isreg():
                    content, elf = _file_digests(tar.extractfile(m), m.size)
                pax = {k: v for k, v in m.pax_headers.items() if k not in _PAX_OWN}
                yield m.name.removeprefix("./").rstrip("/") or ".", Entry(
                    type=m.type.decode(errors="replace") or "0", mode=oct(m.mode),
                    uid=f"{m.uid} ({m.uname})", gid=f"{m.gid} ({m.gname})",
                    mtime=m.pax_headers.get("mtime") or str(int(m.mtime)), size=str(m.size),
                    linkname=m.linkname, content=content,
                    pax=json.dumps(pax, sort_keys=True) if pax else "", elf=elf)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise LayoutError(f"a layer is not a readable tar stream ({exc})") from None


def _file_digests(data: IO[bytes] | None, size: int) -> tuple[str, Sections]:
    """A regular file's sha256 (16 hex digits) and, for an ELF file, its sections' sha256."""
    h = hashlib.sha256()
    if data is None:
        return h.hexdigest()[:16], ()
    head = data.read(4)
    if head != b"\x7fELF" or size > ELF_MAX_BYTES:
        h.update(head)
        while chunk := data.read(1 << 20):
            h.update(chunk)
        return h.hexdigest()[:16], ()
    body = head + data.read()
    return hashlib.sha256(body).hexdigest()[:16], elf_sections(body)


def elf_sections(body: bytes) -> Sections:
    """(section name, sha256 of its raw bytes) of an ELF file; () when it does not parse.

    The bytes are hashed where the section header says they are (compressed sections are not
    decompressed); a header pointing outside the file makes the whole answer ()."""
    view = memoryview(body)
    out = []
    try:
        for i, sec in enumerate(ELFFile(io.BytesIO(body)).iter_sections()):
            if not i:
                continue
            offset, size = int(sec["sh_offset"]), int(sec["sh_size"])
            if sec["sh_type"] == "SHT_NOBITS":
                digest = ""
            elif offset + size > len(body):
                return ()
            else:
                digest = hashlib.sha256(view[offset:offset + size]).hexdigest()[:16]
            out.append((sec.name or f"[{i}]", digest))
    except Exception:  # only a hint: a corrupt file raises many kinds of errors
        return ()
    return tuple(out)


def _elf_difference(platform: str, where: str, name: str, x: Entry,
                    y: Entry) -> list[Difference]:
    """Which sections of two different builds of an ELF file differ (none when either is not
    ELF, or the section tables differ in names: then the content difference says it all)."""
    if not x.elf or not y.elf or [n for n, _ in x.elf] != [n for n, _ in y.elf]:
        return []
    differ = [n for (n, dx), (_, dy) in zip(x.elf, y.elf, strict=True) if dx != dy]
    field = "elf-ids" if differ and set(differ) <= ELF_ID_SECTIONS else "elf-sections"
    return [Difference(platform, where, name, field, " ".join(differ) or "(none)",
                       f"{len(x.elf) - len(differ)} of {len(x.elf)} sections identical")]


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
                if f == "content":
                    out += _elf_difference(platform, where, name, x, y)
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


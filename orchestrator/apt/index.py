"""A distro archive's indices, read the way apt reads them, cached the way apt caches them.

- ``InRelease`` (or ``Release`` + ``Release.gpg``) is fetched with a conditional GET and its
  signature checked with gpgv against the keyring the image's sources name, judged from gpgv's
  status lines as apt judges it (gpg_status: a signature by an expired or revoked key is
  refused, though gpgv exits 0 for it); a ``trusted=yes`` source is not checked, as apt does
  not check it; an expired ``Valid-Until`` is refused, and so is a ``Date`` in the future
  beyond a small clock skew (apt: "not valid yet"), both checked against the clock the caller
  passes: ``ArchiveIndex.now``, the real time by default (release_file.py reads and judges
  the Release).
- ``Packages`` files are fetched by the SHA256 the verified Release lists (``by-hash/`` URLs
  where the archive has ``Acquire-By-Hash: yes``), checked, and kept under that hash: a repeated
  run downloads only the Release files, and a new index only when the archive changed.
- Each Packages file is reduced once to {package: newest version} and that is cached too.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import lzma
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from debian.debian_support import Version

from orchestrator import log, runner
from orchestrator.apt import gpg_status
from orchestrator.apt.release_file import (
    Release,
    check_date,
    check_suite,
    check_valid_until,
    parse_release,
)
from orchestrator.apt.sources import AptSource
from orchestrator.errors import ArchiveError, CommandError

_log = log.get("apt")


@dataclass(frozen=True)
class Response:
    status: int  # 200, 304 (not modified) or 404
    body: bytes = b""
    etag: str = ""
    last_modified: str = ""


Fetch = Callable[[str, dict[str, str]], Response]


def http_fetch(url: str, headers: dict[str, str]) -> Response:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return Response(resp.status, resp.read(), resp.headers.get("ETag", ""),
                            resp.headers.get("Last-Modified", ""))
    except urllib.error.HTTPError as exc:
        if exc.code in (304, 404):
            return Response(exc.code)
        raise ArchiveError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ArchiveError(f"{url}: {getattr(exc, 'reason', exc)}") from exc


_PKG_RE = re.compile(rb"^Package: *(\S+)\s*$", re.M)
_VER_RE = re.compile(rb"^Version: *(\S+)\s*$", re.M)


def parse_packages_index(data: bytes) -> dict[str, str]:
    """{package: newest version} of an apt Packages index (a PPA or flat repository may list
    several versions of one package)."""
    out: dict[str, str] = {}
    for para in data.split(b"\n\n"):
        p, v = _PKG_RE.search(para), _VER_RE.search(para)
        if not p or not v:
            continue
        name, version = p.group(1).decode(), v.group(1).decode()
        old = out.get(name)
        if old is None or Version(version) > Version(old):
            out[name] = version
    return out


def _decompress(name: str, data: bytes) -> bytes:
    if name.endswith(".xz"):
        return lzma.decompress(data)
    if name.endswith(".gz"):
        return gzip.decompress(data)
    return data


_KEY_FIX = ("update the keyring this machine checks the archive with (the distro's newer "
            "archive-keyring package, or the file in sources.apt_keyrings), or point the image's "
            "sources at an archive signed by a current key")
_FIXES = {"BADSIG": "the file changed after it was signed (a mirror mid-sync, or tampering): "
                    "retry later, or use another mirror",
          "EXPSIG": "the archive must publish a freshly signed Release (a stale mirror?)",
          "WEAK_DIGEST": "the archive must sign with SHA256 or a stronger digest",
          "NODATA": "make sure the URL serves the archive's signed Release (no proxy or login "
                    "page in between)"}


def _fix(status: str) -> str:
    return _FIXES.get(status, _KEY_FIX)


def utc_now() -> dt.datetime:
    """The real time: what production checks ``Valid-Until`` against."""
    return dt.datetime.now(dt.UTC)


@dataclass
class ArchiveIndex:
    """Fetches, verifies and caches Release and Packages files under ``cache_dir``."""

    cache_dir: Path
    keyring_for: Callable[[AptSource], Path | None]
    fetch: Fetch = http_fetch
    now: Callable[[], dt.datetime] = utc_now  # the clock Valid-Until and Date are checked against
    downloads: list[str] = field(default_factory=list)  # URLs fetched with a body (this run)
    _releases: dict[AptSource, Release] = field(default_factory=dict)

    def _base(self, src: AptSource) -> str:
        if src.flat:
            directory = src.suite.rstrip("/")
            return src.uri if directory in ("", ".") else f"{src.uri}/{directory}"
        return f"{src.uri}/dists/{src.suite}"

    def _get(self, url: str, cached: Path | None = None) -> bytes | None:
        """GET ``url``; with ``cached`` a conditional GET that keeps the body there."""
        headers: dict[str, str] = {}
        meta = cached.with_suffix(".meta") if cached else None
        if cached and meta and cached.exists() and meta.exists():
            m = json.loads(meta.read_text())
            if m.get("etag"):
                headers["If-None-Match"] = m["etag"]
            if m.get("last_modified"):
                headers["If-Modified-Since"] = m["last_modified"]
        resp = self.fetch(url, headers)
        if resp.status == 304 and cached and cached.exists():
            return cached.read_bytes()
        if resp.status == 404:
            return None
        self.downloads.append(url)
        if cached and meta:
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_bytes(resp.body)
            meta.write_text(json.dumps({"etag": resp.etag, "last_modified": resp.last_modified}))
        return resp.body

    def release(self, src: AptSource) -> Release:
        if src in self._releases:
            return self._releases[src]
        base = self._base(src)
        slot = self.cache_dir / "release" / hashlib.sha256(base.encode()).hexdigest()[:32]
        inrelease = self._get(f"{base}/InRelease", slot / "InRelease")
        if inrelease is not None:
            text, verified = self._verify_inline(src, inrelease, f"{base}/InRelease")
        else:
            plain = self._get(f"{base}/Release", slot / "Release")
            if plain is None:
                raise ArchiveError(f"{src.describe()}: neither InRelease nor Release at {base}")
            text, verified = self._verify_detached(src, plain, base, slot)
        try:
            fields, sums = parse_release(text)
        except ValueError as exc:
            raise ArchiveError(f"{src.describe()}: its Release lists {exc}; fix: point the sources "
                               "at an archive that publishes a well-formed Release") from None
        rel = Release(src, fields, sums, verified)
        check_suite(rel)
        now = self.now()
        check_valid_until(rel, now)
        check_date(rel, now)
        self._releases[src] = rel
        return rel

    def _keyring(self, src: AptSource) -> Path | None:
        if src.trusted:
            return None
        keyring = self.keyring_for(src)
        if keyring is None:
            raise ArchiveError(f"{src.describe()}: no keyring to check its signature with "
                               f"(signed-by {src.signed_by or '(none)'})")
        return keyring

    def _verify_inline(self, src: AptSource, data: bytes, url: str) -> tuple[str, bool]:
        keyring = self._keyring(src)
        if keyring is None:  # trusted=yes: strip the armour without checking, as apt does
            text = data.decode("utf-8", "replace")
            if "-----BEGIN PGP SIGNED MESSAGE-----" in text:
                text = text.split("\n\n", 1)[1].split("-----BEGIN PGP SIGNATURE-----")[0]
            return text, False
        with tempfile.TemporaryDirectory() as tmp:
            signed, out = Path(tmp) / "InRelease", Path(tmp) / "verified"
            signed.write_bytes(data)
            self._gpgv(src, url, keyring, ["--output", str(out), str(signed)])
            return out.read_text(errors="replace"), True

    def _verify_detached(self, src: AptSource, data: bytes, base: str,
                         slot: Path) -> tuple[str, bool]:
        keyring = self._keyring(src)
        if keyring is None:
            return data.decode("utf-8", "replace"), False
        sig = self._get(f"{base}/Release.gpg", slot / "Release.gpg")
        if sig is None:
            raise ArchiveError(f"{src.describe()}: Release is not signed (no InRelease, no "
                               "Release.gpg) and the source is not trusted=yes")
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "Release").write_bytes(data)
            (Path(tmp) / "Release.gpg").write_bytes(sig)
            self._gpgv(src, f"{base}/Release.gpg", keyring,
                       [str(Path(tmp) / "Release.gpg"), str(Path(tmp) / "Release")])
        return data.decode("utf-8", "replace"), True

    def _gpgv(self, src: AptSource, url: str, keyring: Path, args: list[str]) -> None:
        """gpgv's verdict as apt would take it (gpg_status.judge), not its exit code."""
        try:
            res = runner.run(["gpgv", "--status-fd", "1", "--keyring", str(keyring), *args],
                             check=False)
        except CommandError as exc:  # gpgv missing, or it hung
            raise ArchiveError(f"{src.describe()}: cannot check the signature of {url}: "
                               f"{exc.stderr.strip()}; fix: install gpgv") from exc
        verdict = gpg_status.judge(res.stdout)
        if verdict.good and res.returncode == 0:
            return
        # apt: a good signature by a keyring key is enough; another signature whose key the
        # keyring lacks (a key rotation) is a warning only, though gpgv exits 2 for it.
        # judge() has already refused anything else beside the good signature.
        if verdict.good and res.returncode == 2 and "NO_PUBKEY" in res.stdout:
            _log.warning("signature by a key not in the keyring ignored", archive=src.describe(),
                         url=url, keyring=str(keyring))
            return
        if verdict.good:  # a good signature, yet gpgv failed: take its word for it
            last = (res.stderr.strip().splitlines() or [""])[-1]
            verdict = gpg_status.Verdict(False, f"EXIT{res.returncode}", verdict.key,
                                         f"gpgv failed: {last}")
        raise ArchiveError(f"{src.describe()}: {url}: the signature does not verify with "
                           f"{keyring}: {verdict.describe()}; fix: {_fix(verdict.status)}")

    def packages(self, src: AptSource, component: str, arch: str) -> dict[str, str]:
        """{package: newest version} of one component and architecture ({} if absent)."""
        rel = self.release(src)
        stem = "Packages" if src.flat else f"{component}/binary-{arch}/Packages"
        for ext in (".xz", ".gz", ""):
            name = stem + ext
            if name in rel.sha256:
                return self._packages_file(rel, name)
        return {}

    def _packages_file(self, rel: Release, name: str) -> dict[str, str]:
        sha, size = rel.sha256[name]
        parsed = self.cache_dir / "parsed" / f"{sha}.json"
        if parsed.exists():
            data: dict[str, str] = json.loads(parsed.read_text())
            return data
        blob_path = self.cache_dir / "by-hash" / sha
        if blob_path.exists() and hashlib.sha256(blob_path.read_bytes()).hexdigest() == sha:
            blob = blob_path.read_bytes()
        else:
            base = self._base(rel.source)
            directory = name.rsplit("/", 1)[0] if "/" in name else ""
            url = (f"{base}/{directory}/by-hash/SHA256/{sha}" if rel.by_hash and directory
                   else f"{base}/{name}")
            got = self._get(url)
            if got is None and url != f"{base}/{name}":
                got = self._get(f"{base}/{name}")  # a mirror without by-hash files
            if got is None:
                raise ArchiveError(f"{rel.source.describe()}: {name} is listed but missing")
            if len(got) != size or hashlib.sha256(got).hexdigest() != sha:
                raise ArchiveError(f"{rel.source.describe()}: {name} does not match the sha256 "
                                   "its verified Release lists (mirror mid-sync?)")
            blob = got
            blob_path.parent.mkdir(parents=True, exist_ok=True)
            blob_path.write_bytes(blob)
        result = parse_packages_index(_decompress(name, blob))
        parsed.parent.mkdir(parents=True, exist_ok=True)
        parsed.write_text(json.dumps(result))
        return result

"""Debian source packages as the source of upstream CPython tarballs.

Debian's ``<pkg>_<upstream>.orig.tar.*`` (+ ``.asc``) are the python.org release files. apt runs
against a private sources list and private lists/cache (the host's /etc/apt and
/var/lib/apt/lists stay untouched). The revision is discovered, not configured:
``apt-cache showsrc`` lists every revision the deb-src index has (bookworm, trixie and their
updates/security suites, sid), the newest whose upstream version is the wanted release is taken,
and ``apt-get source --print-uris`` gives its files' URIs and hashes from the signed Sources
index: every download is checked against them.
"""

from __future__ import annotations

import os
import pwd
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from debian.debian_support import Version as DebVersion

from hostkit.common import HostEnv, HostkitError, Out, Run, file_hash, write_if_changed
from orchestrator import runner
from orchestrator.errors import CommandError

SUITES = (("debian_mirror", "bookworm"), ("debian_mirror", "bookworm-updates"),
          ("debian_security_mirror", "bookworm-security"), ("debian_mirror", "trixie"),
          ("debian_mirror", "trixie-updates"), ("debian_security_mirror", "trixie-security"),
          ("debian_mirror", "sid"))
# Ubuntu 26.04's pool serves CPython 3.14.4's upstream tarball (python3.14_3.14.4.orig.tar.xz:
# python.org's Python-3.14.4.tar.xz byte for byte); Debian sid's 3.14 pool files answer 404
# here. Its index is verified by apt with Ubuntu's archive keyring (HostEnv.ubuntu_keyring).
# The .dsc files answer 404 through this machine's proxy: only the orig files are downloaded,
# each against the Sources index's checksum.
UBUNTU_SUITES = (("ubuntu_mirror", "resolute"), ("ubuntu_mirror", "resolute-updates"),
                 ("ubuntu_security_mirror", "resolute-security"))
# apt's names in --print-uris -> hashlib's
HASHES = {"SHA512": "sha512", "SHA256": "sha256", "SHA1": "sha1", "MD5Sum": "md5"}
LISTS_MAX_AGE = 86400  # seconds: older private lists are refreshed before use


@dataclass(frozen=True)
class SourceFile:
    uri: str
    name: str
    size: int
    algo: str  # hashlib name
    digest: str


def source_package(version: str) -> str:
    """Debian's source package of a CPython release: python3.13 for 3.13.5."""
    major, minor = version.split(".")[:2]
    return f"python{major}.{minor}"


def upstream_of(debian_version: str) -> str:
    """3.13.5 of 3.13.5-2+deb13u5 (and of an epoch'd 1:3.13.5-2)."""
    v = debian_version.split(":", 1)[-1]
    return v.rsplit("-", 1)[0] if "-" in v else v


def showsrc_versions(text: str, package: str) -> list[str]:
    """Versions of ``package`` in ``apt-cache showsrc`` output (stanzas of other sources, which
    showsrc also prints for a binary package name, are left out)."""
    found = []
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(re.findall(r"^(Package|Version): *(\S+)", stanza, re.MULTILINE))
        if fields.get("Package") == package and "Version" in fields:
            found.append(fields["Version"])
    return found


def revisions(text: str, package: str, upstream: str) -> list[str]:
    """The Debian revisions of ``package`` that package ``upstream``, newest first."""
    matching = {v for v in showsrc_versions(text, package) if upstream_of(v) == upstream}
    return sorted(matching, key=DebVersion, reverse=True)


def parse_print_uris(text: str) -> list[SourceFile]:
    """``'URI' name size ALGO:hash`` lines of ``apt-get source --print-uris``."""
    files = []
    for line in text.splitlines():
        m = re.fullmatch(r"'([^']+)' (\S+) (\d+) (\w+):([0-9a-fA-F]+)", line.strip())
        if not m:
            continue
        uri, name, size, algo, digest = m.groups()
        if algo not in HASHES:
            raise HostkitError(f"unknown hash type '{algo}' for {name} in apt's Sources index")
        files.append(SourceFile(uri, name, int(size), HASHES[algo], digest.lower()))
    return files


def wanted(files: list[SourceFile], upstream: bool, debian: bool) -> Iterator[SourceFile]:
    """The upstream tarballs and signatures (``upstream``) and the debian/ tarball (``debian``)."""
    for f in files:
        is_upstream = ".orig.tar." in f.name or re.search(r"\.orig-[^.]+\.tar\.", f.name)
        if (upstream and is_upstream) or (debian and ".debian.tar." in f.name):
            yield f


class PrivateApt:
    """apt-get / apt-cache with their own sources.list, lists and cache under ``dir``."""

    def __init__(self, dir: Path, run: Run = runner.run) -> None:
        self.dir = dir
        self.run = run

    def _opts(self) -> list[str]:
        d = self.dir
        return ["-q", "-o", f"Dir::Etc::SourceList={d}/sources.list",
                "-o", f"Dir::Etc::SourceParts={d}/sources.list.d", "-o", "Dir::Etc::Preferences=/dev/null",
                "-o", f"Dir::Etc::PreferencesParts={d}/preferences.d",
                "-o", f"Dir::State::Lists={d}/lists", "-o", f"Dir::Cache={d}/cache"]

    def prepare(self, env: HostEnv, out: Out) -> None:
        """Directories, the deb-src sources list, and fresh lists (apt-get update when missing or
        older than a day)."""
        d = self.dir
        for sub in ("sources.list.d", "preferences.d", "lists/partial", "cache/archives/partial", "download"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # apt downloads as the unprivileged _apt user when it can write there
            try:
                apt_uid = pwd.getpwnam("_apt").pw_uid
            except KeyError:
                apt_uid = -1
            if apt_uid >= 0:
                for sub in ("lists/partial", "cache/archives/partial", "download"):
                    os.chown(d / sub, apt_uid, 0)
        lines = ["# Source packages only, used by provision-host.sh (hostkit) to get upstream",
                 "# CPython tarballs (Debian .orig tarballs are the upstream release tarballs)."]
        for attr, suite in SUITES:
            lines.append(f"deb-src [signed-by={env.keyring}] {getattr(env, attr)} {suite} main")
        if not env.ubuntu_keyring.is_file():
            raise HostkitError(f"no Ubuntu archive keyring at {env.ubuntu_keyring} to verify "
                               "resolute's Sources index (provision-host.sh step images or "
                               "mirror installs it; ORCH_UBUNTU_KEYRING)")
        for attr, suite in UBUNTU_SUITES:
            lines.append(f"deb-src [signed-by={env.ubuntu_keyring}] {getattr(env, attr)} {suite} main")
        write_if_changed(d / "sources.list", ("\n".join(lines) + "\n").encode())
        if self.stale():
            out.say(f"  apt-get update (private deb-src lists in {d})")
            self.update()

    def stale(self, max_age: float = LISTS_MAX_AGE) -> bool:
        stamps = [p.stat().st_mtime for p in (self.dir / "lists").glob("*Release")]
        return not stamps or time.time() - max(stamps) > max_age

    def update(self) -> None:
        try:
            self.run(["apt-get", *self._opts(), "update", "-qq"], timeout=1800)
        except CommandError as exc:
            raise HostkitError(f"apt-get update of the deb-src lists in {self.dir} failed: "
                               f"{_last_line(exc)}") from None

    def showsrc(self, package: str) -> str:
        try:
            return self.run(["apt-cache", *self._opts(), "showsrc", "--only-source", package]).stdout
        except CommandError as exc:
            raise HostkitError(f"apt-cache showsrc {package} failed: {_last_line(exc)}") from None

    def print_uris(self, spec: str) -> list[SourceFile]:
        try:
            res = self.run(["apt-get", *self._opts(), "source", "--print-uris", "--only-source", spec],
                           cwd=self.dir / "download")
        except CommandError as exc:
            raise HostkitError(f"apt-get source --print-uris {spec} failed: {_last_line(exc)}") from None
        return parse_print_uris(res.stdout)


def _last_line(exc: CommandError) -> str:
    lines = (exc.stderr or exc.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit {exc.returncode}"


class Gone(HostkitError):
    """A file the Sources index lists is not in the archive (any more)."""


class Fetcher:
    """Downloads a release's source files into ``cache``, each checked against the index."""

    def __init__(self, apt: PrivateApt, cache: Path, out: Out, run: Run = runner.run) -> None:
        self.apt, self.cache, self.out, self.run = apt, cache, out, run
        self.refreshed = False
        self.checked: dict[str, str] = {}  # file name -> where its checksum came from

    def fetch(self, version: str, upstream: bool = True, debian: bool = False) -> list[Path]:
        """Local paths of the upstream tarball(s) + .asc of ``version`` (``upstream``) and of its
        debian/ tarball (``debian``), from the newest revision that can be downloaded."""
        package = source_package(version)
        candidates = revisions(self.apt.showsrc(package), package, version)
        if not candidates:
            raise HostkitError(f"the deb-src index has no {package} for CPython {version} "
                               "(bookworm, trixie, sid, resolute and their updates/security suites)")
        self.cache.mkdir(parents=True, exist_ok=True)
        gone: list[str] = []
        for rev in candidates:
            spec = f"{package}={rev}"
            self.out.say(f"  {spec}: upstream {version}")
            try:
                files = wanted(self.apt.print_uris(spec), upstream, debian)
                return [self._download(f, spec) for f in files]
            except Gone as exc:
                gone.append(str(exc))
                self.out.warn(f"{exc}; trying an older revision")
        raise HostkitError(f"no revision of {package} with upstream {version} can be downloaded "
                           f"({'; '.join(gone)})")

    def _download(self, f: SourceFile, spec: str) -> Path:
        dst = self.cache / f.name
        if dst.is_file() and file_hash(dst, f.algo) == f.digest:
            self.checked[f.name] = f"{f.algo} listed for {spec} by the signed Sources index ({f.uri})"
            self.out.skip(f"{f.name} already downloaded")
            return dst
        part = dst.with_name(dst.name + ".part")
        self.out.say(f"  downloading {f.name} ({f.size} bytes)")
        if not self._curl(f.uri, part):
            # sid moves fast: a revision listed by lists fetched hours ago can be gone
            uri = self._refreshed_uri(f, spec)
            if not self._curl(uri, part):
                raise Gone(f"cannot download {uri}")
        actual = file_hash(part, f.algo)
        if actual != f.digest:
            part.unlink()
            raise HostkitError(f"{f.name}: {f.algo} {actual} != {f.digest} in the signed Sources "
                               f"index ({spec}, {f.uri}): not the archive's file; nothing served")
        part.replace(dst)
        self.checked[f.name] = f"{f.algo} listed for {spec} by the signed Sources index ({f.uri})"
        self.out.did(f"downloaded {f.name} ({f.algo} verified against the Sources index of {spec})")
        return dst

    def _curl(self, uri: str, dst: Path) -> bool:
        try:
            self.run(["curl", "-fsS", "--retry", "3", "-o", dst, uri], timeout=3600)
        except CommandError:
            return False
        return True

    def _refreshed_uri(self, f: SourceFile, spec: str) -> str:
        if not self.refreshed:
            self.out.say("  refreshing the deb-src lists (a file listed there is gone) and retrying")
            self.apt.update()
            self.refreshed = True
        try:
            listed = self.apt.print_uris(spec)
        except HostkitError:
            raise Gone(f"{spec} is no longer in the deb-src index") from None
        again = {g.name: g for g in listed}.get(f.name)
        if again is None:
            raise Gone(f"{f.name} is no longer in the Debian archive")
        if (again.algo, again.digest) != (f.algo, f.digest):
            raise HostkitError(f"{f.name}: the refreshed Sources index lists another {f.algo}")
        return again.uri

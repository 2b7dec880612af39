"""The sources images.lock pins, and ``update``: the only code that reaches them (python.org
or a mirror of it, pyenv's definitions and release tarball, the base images' registries).
"""

from __future__ import annotations

import hashlib
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

from orchestrator import imageref, log
from orchestrator.config import eol
from orchestrator.config.matrix import minor_key
from orchestrator.config.model import ImagesConfig, Loaded, minor_of
from orchestrator.errors import RegistryUnreachable, SourceError, UsageError, raise_all
from orchestrator.lock.lockfile import (
    BaseLock,
    Change,
    DeadsnakesLock,
    Lock,
    PyenvLock,
    PythonLock,
    SigningKey,
    compiled_minors,
    diff,
    methods_used,
    python_source_problems,
    unsigned_problems,
)
from orchestrator.registry import Registry

_log = log.get("lock")


Fetch = Callable[[str], bytes]
PYTHON_ORG = "https://www.python.org/ftp/python/"  # where pyenv's definitions point


class NotReleased(SourceError):
    """The source answered, but has no such release (or no source tarball for it)."""


def http_get(url: str, timeout: float = 60.0) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data: bytes = resp.read()
            return data
    except (urllib.error.URLError, OSError) as exc:
        raise SourceError(f"cannot fetch {url}: {getattr(exc, 'reason', exc)}") from None


_HREF = re.compile(r'href="([^"?#]+)"')


def _listing(fetch: Fetch, url: str) -> list[str]:
    html = fetch(url).decode("utf-8", "replace")
    return [urllib.request.url2pathname(h).rstrip("/").rsplit("/", 1)[-1] for h in _HREF.findall(html)]


@dataclass
class PythonOrgIndex:
    """A server laid out like https://www.python.org/ftp/python/ (or a mirror of it)."""

    base: str
    keys: str
    fetch: Fetch = http_get

    def versions(self, minor: str) -> list[Version]:
        out = []
        for name in _listing(self.fetch, self.base):
            if re.fullmatch(rf"{re.escape(minor)}\.\d+", name):
                out.append(Version(name))
        return sorted(out)

    def resolve(self, minor: str, pinned: str | None) -> PythonLock:
        candidates = [Version(pinned)] if pinned else list(reversed(self.versions(minor)))
        if not candidates:
            raise NotReleased(f"no Python {minor}.x release found at {self.base} (sources.python)")
        for v in candidates:
            folder = f"{self.base.rstrip('/')}/{v}/"
            try:
                files = set(_listing(self.fetch, folder))
            except SourceError:
                if pinned:
                    raise NotReleased(f"Python {v} is not released at {self.base} "
                                      "(no such folder)") from None
                continue
            for ext in (".tar.xz", ".tgz"):
                name = f"Python-{v}{ext}"
                if name in files:
                    url = folder + name
                    sha = hashlib.sha256(self.fetch(url)).hexdigest()
                    sig = url + ".asc" if name + ".asc" in files else None
                    key = self._key(minor) if sig else None
                    _log.info("resolved python", version=str(v), url=url, sha256=sha)
                    return PythonLock(str(v), url, sha, sig, key, "python.org layout")
            if pinned:
                raise NotReleased(f"Python {v}: no source tarball in {folder}")
        raise NotReleased(f"no Python {minor}.x source tarball found at {self.base}")

    def _key(self, minor: str) -> SigningKey | None:
        fpr = eol.PYTHON_SIGNING_KEY.get(minor)
        if not fpr:
            return None
        url = self.keys.format(fingerprint=fpr)
        data = self.fetch(url)
        if b"BEGIN PGP PUBLIC KEY BLOCK" not in data:
            raise SourceError(f"{url} is not an armored OpenPGP key (sources.python_keys)")
        return SigningKey(fpr, url, hashlib.sha256(data).hexdigest())


@dataclass
class PyenvDefinitions:
    """python-build's own definitions (URL + sha256 pinned by pyenv) in a pyenv checkout.
    The sha256 is pyenv's; the tarball is locked where images.yaml's sources.python (``base``,
    python.org's layout) serves it, as PythonOrgIndex would: pyenv's URL names python.org, which
    a build behind a mirror cannot reach and the lock check refuses."""

    root: Path
    keys: str
    base: str = PYTHON_ORG

    def versions(self, minor: str) -> list[Version]:
        d = self.root / "plugins/python-build/share/python-build"
        return sorted(Version(p.name) for p in d.glob(f"{minor}.*")
                      if re.fullmatch(rf"{re.escape(minor)}\.\d+", p.name))

    def pins(self, version: str) -> dict[str, tuple[str, str]] | None:
        """{tarball name: (url, sha256)} that the definition of ``version`` pins, in its order
        (the first one is what python-build prefers, .tar.xz before .tgz); None: no definition."""
        definition = self.root / "plugins/python-build/share/python-build" / version
        if not definition.is_file():
            return None
        found = re.finditer(rf'install_package "Python-{re.escape(version)}" "([^"#]+)#([0-9a-f]{{64}})"',
                            definition.read_text())
        return {m.group(1).rsplit("/", 1)[-1]: (m.group(1), m.group(2)) for m in found}

    def resolve(self, minor: str, pinned: str | None) -> PythonLock:
        versions = [Version(pinned)] if pinned else self.versions(minor)
        if not versions:
            raise NotReleased(f"no Python {minor}.x definition in {self.root}")
        v = versions[-1]
        pins = self.pins(str(v))
        if pins is None:
            raise NotReleased(f"no Python {v} definition in {self.root} (pyenv too old?)")
        if not pins:
            raise SourceError(f"python-build definition {v} has no pinned tarball")
        name, (_, sha) = next(iter(pins.items()))
        url = f"{self.base.rstrip('/')}/{v}/{name}"
        fpr = eol.PYTHON_SIGNING_KEY.get(minor)
        key = SigningKey(fpr, self.keys.format(fingerprint=fpr)) if fpr else None
        sig = url + ".asc" if key else None
        return PythonLock(str(v), url, sha, sig, key, f"pyenv definitions ({self.root.name})")


def resolve_pyenv(config: ImagesConfig, fetch: Fetch) -> PyenvLock:
    src = config.sources.pyenv
    url = src.url.format(version=src.version)
    try:
        sha: str | None = hashlib.sha256(fetch(url)).hexdigest()
    except SourceError as exc:
        _log.warning("pyenv release not reachable; left unlocked", url=url, error=str(exc))
        sha = None
    return PyenvLock(src.version, url, sha)


def base_ref(config: ImagesConfig, distro: str) -> str:
    reg = config.sources.base_registry.rstrip("/")
    return f"{reg}/{config.distros[distro].image}"


def resolve_base(ref: str, registry_for: Callable[[str], Registry]) -> BaseLock:
    """The digest of ``ref``. A registry that does not answer leaves it unpinned (a warning;
    `lock` fills it next time); a refused or missing login or a rate limit is an error (exit 4)."""
    parsed = imageref.parse(ref)
    try:
        digest = registry_for(parsed.host).digest(parsed.repository, parsed.reference)
    except RegistryUnreachable as exc:
        _log.warning("base image digest not resolved", image=ref, error=str(exc))
        return BaseLock(ref, None)
    if digest is None:
        raise SourceError(f"base image {ref} not found in its registry (sources.base_registry)")
    return BaseLock(ref, digest)


def _name_sort(name: str) -> tuple[int, tuple[int, ...], str]:
    """Python minors first (numerically), then distro names."""
    if re.fullmatch(r"\d+\.\d+", name):
        return (0, minor_key(name), "")
    return (1, (), name)


def _check_only(loaded: Loaded, selected: set[str], upgrade: bool) -> None:
    config = loaded.config
    if selected and not upgrade:
        raise UsageError("--only selects what --upgrade re-resolves; add --upgrade "
                         "(without it, lock only fills what is missing)")
    known = {minor_of(p.version) for p in config.pythons} | set(config.distros)
    unknown = sorted(selected - known)
    if unknown:
        raise UsageError(f"--only {unknown[0]}: not a Python minor or distro in {loaded.path} "
                         f"(known: {', '.join(sorted(known, key=_name_sort))})")


def _pythons(config: ImagesConfig, old: Lock, index: PythonOrgIndex | PyenvDefinitions,
             redo: Callable[[str], bool]) -> dict[str, PythonLock]:
    pythons: dict[str, PythonLock] = {}
    compiled = compiled_minors(config)
    for p in config.pythons:
        minor = minor_of(p.version)
        if minor not in compiled:  # deadsnakes only: the PPA's package, no tarball to pin
            continue
        pinned = p.version if p.version.count(".") == 2 else None
        cur = old.pythons.get(minor)
        stale = cur is None or (pinned is not None and cur.version != pinned)
        if stale or redo(minor):
            pythons[minor] = index.resolve(minor, pinned)
        elif cur is not None and python_source_problems(config, minor, cur):  # elsewhere: re-resolve it
            _log.warning("locked tarball not under images.yaml's sources; re-resolved",
                         python=minor, url=cur.url)
            pythons[minor] = index.resolve(minor, cur.version)
        else:
            assert cur is not None
            pythons[minor] = cur
    return pythons


def _bases(config: ImagesConfig, old: Lock, registry_for: Callable[[str], Registry],
           redo: Callable[[str], bool]) -> dict[str, BaseLock]:
    bases: dict[str, BaseLock] = {}
    for name in config.distros:
        ref = base_ref(config, name)
        cur_b = old.bases.get(name)
        if cur_b is None or cur_b.image != ref or cur_b.digest is None or redo(name):
            bases[name] = resolve_base(ref, registry_for)
        else:
            bases[name] = cur_b
    return bases


def _pyenv(config: ImagesConfig, old: Lock, fetch: Fetch) -> PyenvLock | None:
    if "python-build" not in methods_used(config):
        return None
    src = config.sources.pyenv
    url = src.url.format(version=src.version)
    pyenv = old.pyenv
    if pyenv is None or pyenv.version != src.version or pyenv.url != url or pyenv.sha256 is None:
        pyenv = resolve_pyenv(config, fetch)
    return pyenv


def _deadsnakes(config: ImagesConfig) -> DeadsnakesLock | None:
    if "deadsnakes" not in methods_used(config):
        return None
    s = config.sources.deadsnakes
    return DeadsnakesLock(s.ppa, s.key_fingerprint, s.key_url.format(fingerprint=s.key_fingerprint))


def update(
    loaded: Loaded,
    old: Lock,
    *,
    upgrade: bool,
    only: list[str] | None,
    index: PythonOrgIndex | PyenvDefinitions,
    registry_for: Callable[[str], Registry],
    fetch: Fetch = http_get,
) -> tuple[Lock, list[Change]]:
    """Fill what is missing; with ``upgrade`` also re-resolve (newest patch, new digests)."""
    config = loaded.config
    selected = set(only or [])
    _check_only(loaded, selected, upgrade)

    def redo(name: str) -> bool:
        return upgrade and (not selected or name in selected)

    pythons = _pythons(config, old, index, redo)
    raise_all(unsigned_problems(loaded, pythons))  # never written: check_against refuses it
    bases = _bases(config, old, registry_for, redo)
    new = Lock(pythons, bases, _pyenv(config, old, fetch), _deadsnakes(config))
    return new, diff(old, new)

"""images.lock: round trip, update against fake python.org / registry / pyenv, checks."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.config import eol, loader
from orchestrator.config.model import Loaded
from orchestrator.errors import ConfigError, LockError, RegistryUnreachable, SourceError, UsageError
from orchestrator.lock import lockfile, sources
from orchestrator.lock.lockfile import (
    BaseLock,
    DeadsnakesLock,
    Lock,
    PyenvLock,
    PythonLock,
    SigningKey,
)
from orchestrator.lock.sources import PyenvDefinitions, PythonOrgIndex
from orchestrator.registry import Registry
from tests.unit.helpers import REPO, TODAY, edit, run_cli, write_config

BASE = "https://mirror.test/ftp/python/"
KEYS = "https://keys.test/by-fingerprint/{fingerprint}"
PYENV_URL = "https://github.com/pyenv/pyenv/archive/refs/tags/v2.6.30.tar.gz"
KEY_313: str = eol.PYTHON_SIGNING_KEY["3.13"] or ""
KEY_BYTES = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\nfake key\n-----END PGP PUBLIC KEY BLOCK-----\n"
DEBIAN_DIGEST = "sha256:" + "d" * 64
UBUNTU_DIGEST = "sha256:" + "u" * 64


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tarball(version: str) -> bytes:
    return f"CPython {version} source tarball".encode()


def listing(*names: str) -> bytes:
    """An autoindex page like python.org's /ftp/python/."""
    rows = "\n".join(f'<a href="{n}">{n}</a>                 01-Jan-2026 00:00    -' for n in names)
    return f'<html><body><h1>Index</h1><pre><a href="../">../</a>\n{rows}\n</pre></body></html>'.encode()


@dataclass
class FakePythonOrg:
    """Serves a python.org-like tree from memory; unknown URLs fail like http_get does."""

    files: dict[str, bytes] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)

    def add_release(self, version: str, *, asc: bool) -> None:
        folder = f"{BASE}{version}/"
        names = [f"Python-{version}.tar.xz", f"Python-{version}.tgz"]
        if asc:
            names += [f"Python-{version}.tar.xz.asc", f"Python-{version}.tgz.asc"]
        else:
            names += [f"Python-{version}.tar.xz.sigstore"]
        self.files[folder] = listing(*names)
        self.files[folder + f"Python-{version}.tar.xz"] = tarball(version)
        self.files[folder + f"Python-{version}.tgz"] = b"gzip " + tarball(version)

    def __call__(self, url: str) -> bytes:
        self.fetched.append(url)
        try:
            return self.files[url]
        except KeyError:
            raise SourceError(f"cannot fetch {url}: HTTP Error 404: Not Found") from None


@pytest.fixture
def python_org() -> FakePythonOrg:
    org = FakePythonOrg()
    for v in ("3.12.9", "3.13.5", "3.13.15"):
        org.add_release(v, asc=True)
    for v in ("3.14.0", "3.14.2"):
        org.add_release(v, asc=False)
    # 3.13.16 is listed but its folder is not there yet; 3.13.0rc1 and 3.130.1 are not 3.13.x.
    org.files[BASE] = listing("3.12.9/", "3.13.0rc1/", "3.13.5/", "3.13.15/", "3.13.16/",
                              "3.130.1/", "3.14.0/", "3.14.2/", "index-windows.json")
    org.files[KEYS.format(fingerprint=KEY_313)] = KEY_BYTES
    org.files[PYENV_URL] = b"pyenv 2.6.30 release tarball"
    return org


class FakeRegistry(Registry):
    """digest() from a table; no network."""

    def __init__(self, host: str, digests: dict[tuple[str, str], str | None], fail: bool = False):
        super().__init__(host)
        self.digests = digests
        self.fail = fail
        self.asked: list[tuple[str, str]] = []

    def digest(self, repo: str, ref: str) -> str | None:
        self.asked.append((repo, ref))
        if self.fail:
            raise RegistryUnreachable(f"GET http://{self.host}/v2/: registry {self.host} unreachable")
        return self.digests.get((repo, ref))


@dataclass
class FakeRegistries:
    fail: bool = False
    hosts: list[str] = field(default_factory=list)
    digests: dict[tuple[str, str], str | None] = field(default_factory=lambda: {
        ("library/debian", "bookworm-slim"): DEBIAN_DIGEST,
        ("library/ubuntu", "24.04"): UBUNTU_DIGEST,
    })

    def __call__(self, host: str) -> Registry:
        self.hosts.append(host)
        return FakeRegistry(host, self.digests, self.fail)


def _loaded(tmp_path: Path, text: str) -> Loaded:
    """The config, its sources.python and python_keys at the fake python.org (BASE, KEYS) the
    tests resolve from: the lock check refuses tarballs and keys from anywhere else."""
    ours = f"  python: {BASE}\n  python_keys: {KEYS}\n"
    if "\nsources:\n" in text:
        text = edit(text, "\nsources:\n", "\nsources:\n" + ours)
    else:
        text = edit(text, "\ndistros:\n", "\nsources:\n" + ours + "distros:\n")
    return loader.load(write_config(tmp_path, text), today=TODAY)


def _with_314(minimal_text: str) -> str:
    return edit(minimal_text, '  - version: "3.13"\n', '  - version: "3.13"\n  - version: "3.14"\n')


def _update(
    loaded: Loaded, old: Lock, org: FakePythonOrg, *, upgrade: bool = False,
    only: list[str] | None = None, registries: FakeRegistries | None = None,
) -> tuple[Lock, list[lockfile.Change]]:
    return sources.update(
        loaded, old, upgrade=upgrade, only=only, index=PythonOrgIndex(BASE, KEYS, org),
        registry_for=registries or FakeRegistries(), fetch=org,
    )


# --------------------------------------------------------------------------- file format


def test_repo_lock_round_trips_byte_identical() -> None:
    text = (REPO / "images.lock").read_text()
    assert Lock.from_dict(yaml.safe_load(text)).dumps() == text


def test_round_trip_of_a_full_lock() -> None:
    lock = Lock(
        pythons={
            "3.13": PythonLock("3.13.5", f"{BASE}3.13.5/Python-3.13.5.tar.xz", "a" * 64,
                               f"{BASE}3.13.5/Python-3.13.5.tar.xz.asc",
                               SigningKey(KEY_313, "https://k/" + KEY_313, "b" * 64), "python.org layout"),
            "3.9": PythonLock("3.9.25", f"{BASE}3.9.25/Python-3.9.25.tgz", "c" * 64),
        },
        bases={"noble": BaseLock("docker.io/library/ubuntu:24.04", UBUNTU_DIGEST),
               "bookworm": BaseLock("docker.io/library/debian:bookworm-slim")},
        pyenv=PyenvLock("2.6.30", PYENV_URL, None),
        deadsnakes=DeadsnakesLock("deadsnakes/ppa", "F" * 40, "https://keyserver/F"),
    )
    text = lock.dumps()
    assert text.startswith(lockfile.HEADER)
    back = Lock.from_dict(yaml.safe_load(text))
    assert back == lock
    assert back.dumps() == text
    # Minors sort numerically, distros by name; unset values are left out.
    data = yaml.safe_load(text)
    assert list(data["pythons"]) == ["3.9", "3.13"]
    assert list(data["bases"]) == ["bookworm", "noble"]
    assert "digest" not in data["bases"]["bookworm"]
    assert "sha256" not in data["pyenv"]
    assert lock.python("3.9").filename == "Python-3.9.25.tgz"
    assert lock.base("noble").pinned == f"docker.io/library/ubuntu:24.04@{UBUNTU_DIGEST}"
    assert lock.base("bookworm").pinned == "docker.io/library/debian:bookworm-slim"


def test_malformed_lock() -> None:
    with pytest.raises(LockError) as info:
        Lock.from_dict({"pythons": {"3.13": {"version": "3.13.5"}}}, "x.lock")
    assert str(info.value).startswith("x.lock: malformed (")
    assert str(info.value).endswith("); regenerate it with `orchestrator lock`")


def test_missing_entries_name_the_fix() -> None:
    with pytest.raises(LockError, match=r"^images.lock: pythons.3.15: not locked; run `orchestrator lock`$"):
        Lock().python("3.15")
    with pytest.raises(LockError, match=r"^images.lock: bases.sid: not locked; run `orchestrator lock`$"):
        Lock().base("sid")


def test_read(tmp_path: Path, minimal_text: str) -> None:
    loaded = _loaded(tmp_path, minimal_text)
    assert lockfile.lock_path(loaded) == tmp_path / "images.lock"
    with pytest.raises(LockError) as info:
        lockfile.read(loaded)
    assert str(info.value) == (f"{tmp_path / 'images.lock'}: missing; run "
                               f"`orchestrator lock --config {tmp_path / 'images.yaml'}`")
    assert lockfile.read(loaded, required=False) == Lock()
    (tmp_path / "images.lock").write_text("pythons: [unclosed\n")
    with pytest.raises(ConfigError) as bad:
        lockfile.read(loaded)
    assert str(bad.value) == (f"{tmp_path / 'images.lock'}:2: YAML syntax error: expected ',' or ']', "
                              "but got '<stream end>'; fix the YAML at that line")


# --------------------------------------------------------------------------- update


def test_update_fills_missing_entries(tmp_path: Path, minimal_text: str, python_org: FakePythonOrg) -> None:
    loaded = _loaded(tmp_path, _with_314(minimal_text))
    registries = FakeRegistries()
    new, changes = _update(loaded, Lock(), python_org, registries=registries)

    assert list(new.pythons) == ["3.12", "3.13", "3.14"]
    p313 = new.pythons["3.13"]
    # Newest patch by version, not by string (3.13.15 > 3.13.5); 3.13.16 has no folder yet.
    assert p313 == PythonLock(
        version="3.13.15",
        url=f"{BASE}3.13.15/Python-3.13.15.tar.xz",
        sha256=sha(tarball("3.13.15")),
        signature_url=f"{BASE}3.13.15/Python-3.13.15.tar.xz.asc",
        signing_key=SigningKey(KEY_313, KEYS.format(fingerprint=KEY_313), sha(KEY_BYTES)),
        resolved_from="python.org layout",
    )
    # 3.14 is signed with Sigstore only (PEP 761): no .asc and no OpenPGP key.
    assert new.pythons["3.14"] == PythonLock("3.14.2", f"{BASE}3.14.2/Python-3.14.2.tar.xz",
                                             sha(tarball("3.14.2")), None, None, "python.org layout")
    assert new.pythons["3.12"].version == "3.12.9"

    assert new.bases == {
        "bookworm": BaseLock("docker.io/library/debian:bookworm-slim", DEBIAN_DIGEST),
        "noble": BaseLock("docker.io/library/ubuntu:24.04", UBUNTU_DIGEST),
    }
    assert registries.hosts == ["docker.io", "docker.io"]
    assert new.pyenv == PyenvLock("2.6.30", PYENV_URL, sha(b"pyenv 2.6.30 release tarball"))
    assert new.deadsnakes == DeadsnakesLock(
        "deadsnakes/ppa", "F23C5A6CF475977595C89F51BA6932366A755776",
        "https://keyserver.ubuntu.com/pks/lookup?op=get&search=0xF23C5A6CF475977595C89F51BA6932366A755776",
    )
    assert [str(c) for c in changes] == [
        f"python 3.12: (none) -> 3.12.9 ({sha(tarball('3.12.9'))[:12]})",
        f"python 3.13: (none) -> 3.13.15 ({sha(tarball('3.13.15'))[:12]})",
        f"python 3.14: (none) -> 3.14.2 ({sha(tarball('3.14.2'))[:12]})",
        f"base bookworm: (none) -> docker.io/library/debian:bookworm-slim@{DEBIAN_DIGEST}",
        f"base noble: (none) -> docker.io/library/ubuntu:24.04@{UBUNTU_DIGEST}",
        f"pyenv: (none) -> 2.6.30 ({sha(b'pyenv 2.6.30 release tarball')[:12]})",
        "deadsnakes key: (none) -> F23C5A6CF475977595C89F51BA6932366A755776",
    ]
    # The result is complete for images.yaml.
    lockfile.check_against(loaded, new)
    assert lockfile.unresolved(new) == []


def _old_lock_with_3135(tmp_path: Path, minimal_text: str, org: FakePythonOrg) -> tuple[Loaded, Lock]:
    loaded = _loaded(tmp_path, minimal_text)
    full, _ = _update(loaded, Lock(), org)
    old313 = PythonOrgIndex(BASE, KEYS, org).resolve("3.13", "3.13.5")
    return loaded, Lock({**full.pythons, "3.13": old313}, full.bases, full.pyenv, full.deadsnakes)


def test_update_without_upgrade_keeps_existing_entries(
    tmp_path: Path, minimal_text: str, python_org: FakePythonOrg
) -> None:
    loaded, old = _old_lock_with_3135(tmp_path, minimal_text, python_org)
    python_org.fetched.clear()
    new, changes = _update(loaded, old, python_org)
    assert new == old
    assert changes == []
    assert python_org.fetched == []  # nothing was missing: no source was asked


def test_upgrade_bumps_to_the_newest_patch(
    tmp_path: Path, minimal_text: str, python_org: FakePythonOrg
) -> None:
    loaded, old = _old_lock_with_3135(tmp_path, minimal_text, python_org)
    new, changes = _update(loaded, old, python_org, upgrade=True)
    assert new.pythons["3.13"].version == "3.13.15"
    assert [str(c) for c in changes] == [
        f"python 3.13: 3.13.5 ({sha(tarball('3.13.5'))[:12]}) -> 3.13.15 ({sha(tarball('3.13.15'))[:12]})"
    ]


def test_upgrade_only_some_names(tmp_path: Path, minimal_text: str, python_org: FakePythonOrg) -> None:
    loaded, old = _old_lock_with_3135(tmp_path, minimal_text, python_org)
    new, _ = _update(loaded, old, python_org, upgrade=True, only=["3.12"])
    assert new.pythons["3.13"].version == "3.13.5"
    new, _ = _update(loaded, old, python_org, upgrade=True, only=["3.13"])
    assert new.pythons["3.13"].version == "3.13.15"


def test_only_needs_upgrade_and_known_names(
    tmp_path: Path, minimal_text: str, python_org: FakePythonOrg
) -> None:
    loaded = _loaded(tmp_path, minimal_text)
    with pytest.raises(UsageError, match="add --upgrade"):
        _update(loaded, Lock(), python_org, only=["3.13"])
    with pytest.raises(UsageError) as info:
        _update(loaded, Lock(), python_org, upgrade=True, only=["3.11"])
    assert str(info.value) == (f"--only 3.11: not a Python minor or distro in {loaded.path} "
                               "(known: 3.12, 3.13, bookworm, noble)")


def test_pinned_version_is_honoured(tmp_path: Path, minimal_text: str, python_org: FakePythonOrg) -> None:
    text = edit(minimal_text, '  - version: "3.13"\n', '  - version: "3.13.5"\n')
    loaded = _loaded(tmp_path, text)
    new, _ = _update(loaded, Lock(), python_org, upgrade=True)
    assert new.pythons["3.13"].version == "3.13.5"
    assert new.pythons["3.13"].sha256 == sha(tarball("3.13.5"))
    # A lock holding another patch is stale for the pin and is re-resolved even without --upgrade.
    newer = Lock({**new.pythons, "3.13": PythonOrgIndex(BASE, KEYS, python_org).resolve("3.13", None)},
                 new.bases, new.pyenv, new.deadsnakes)
    assert newer.pythons["3.13"].version == "3.13.15"
    again, changes = _update(loaded, newer, python_org)
    assert again.pythons["3.13"].version == "3.13.5"
    assert [c.what for c in changes] == ["python 3.13"]


def test_pinned_version_not_released(python_org: FakePythonOrg) -> None:
    with pytest.raises(sources.NotReleased) as info:
        PythonOrgIndex(BASE, KEYS, python_org).resolve("3.13", "3.13.99")
    assert str(info.value) == f"Python 3.13.99 is not released at {BASE} (no such folder)"


def test_minor_without_releases(python_org: FakePythonOrg) -> None:
    with pytest.raises(sources.NotReleased) as info:
        PythonOrgIndex(BASE, KEYS, python_org).resolve("3.15", None)
    assert str(info.value) == f"no Python 3.15.x release found at {BASE} (sources.python)"


def test_a_key_that_is_not_armored_is_refused(python_org: FakePythonOrg) -> None:
    python_org.files[KEYS.format(fingerprint=KEY_313)] = b"<html>rate limited</html>"
    with pytest.raises(SourceError, match="is not an armored OpenPGP key"):
        PythonOrgIndex(BASE, KEYS, python_org).resolve("3.13", None)


def test_gzip_tarball_when_there_is_no_xz(python_org: FakePythonOrg) -> None:
    python_org.files[f"{BASE}3.12.9/"] = listing("Python-3.12.9.tgz", "Python-3.12.9.tgz.asc")
    got = PythonOrgIndex(BASE, KEYS, python_org).resolve("3.12", None)
    assert got.url == f"{BASE}3.12.9/Python-3.12.9.tgz"
    assert got.signature_url == got.url + ".asc"
    assert got.sha256 == sha(b"gzip " + tarball("3.12.9"))


def test_unreachable_registry_leaves_the_digest_unpinned(
    tmp_path: Path, minimal_text: str, python_org: FakePythonOrg
) -> None:
    loaded = _loaded(tmp_path, minimal_text)
    new, _ = _update(loaded, Lock(), python_org, registries=FakeRegistries(fail=True))
    assert new.bases["bookworm"] == BaseLock("docker.io/library/debian:bookworm-slim", None)
    assert lockfile.unresolved(new) == ["bases.bookworm.digest", "bases.noble.digest"]
    # Next time (registry back) the missing digests are filled without --upgrade.
    again, changes = _update(loaded, new, python_org)
    assert again.bases["bookworm"].digest == DEBIAN_DIGEST
    assert [c.what for c in changes] == ["base bookworm", "base noble"]


def test_base_image_not_in_registry() -> None:
    registries = FakeRegistries(digests={})
    with pytest.raises(SourceError) as info:
        sources.resolve_base("docker.io/library/debian:sid-slim", registries)
    assert str(info.value) == ("base image docker.io/library/debian:sid-slim not found in its registry "
                               "(sources.base_registry)")


def test_base_ref_uses_the_configured_registry(tmp_path: Path, minimal_text: str) -> None:
    text = edit(minimal_text, "distros:\n", "sources:\n  base_registry: mirror.test:5000/\ndistros:\n")
    loaded = _loaded(tmp_path, text)
    assert sources.base_ref(loaded.config, "noble") == "mirror.test:5000/library/ubuntu:24.04"
    registries = FakeRegistries(digests={("library/ubuntu", "24.04"): UBUNTU_DIGEST})
    ref = "mirror.test:5000/library/ubuntu:24.04"
    assert sources.resolve_base(ref, registries).digest == UBUNTU_DIGEST
    assert registries.hosts == ["mirror.test:5000"]


def test_no_pyenv_or_deadsnakes_when_no_cell_uses_them(
    tmp_path: Path, minimal_text: str, python_org: FakePythonOrg
) -> None:
    text = edit(minimal_text, "    methods: [source, deadsnakes]\n", "    methods: [source]\n")
    text = edit(text, '  - {distro: bookworm, python: "3.13", method: python-build}\n', "")
    text = edit(text, '  - {distro: noble, python: "3.12", method: deadsnakes}\n', "")
    text = text.replace("include:\nexclude:\n", "")
    loaded = _loaded(tmp_path, text)
    new, _ = _update(loaded, Lock(), python_org)
    assert new.pyenv is None
    assert new.deadsnakes is None
    assert PYENV_URL not in python_org.fetched


# --------------------------------------------------------------------------- check_against


def test_check_against(tmp_path: Path, minimal_text: str, python_org: FakePythonOrg) -> None:
    loaded = _loaded(tmp_path, minimal_text)
    good, _ = _update(loaded, Lock(), python_org)
    lockfile.check_against(loaded, good)
    path = tmp_path / "images.lock"

    no_313 = lockfile.without_python(good, "3.13")
    with pytest.raises(LockError) as info:
        lockfile.check_against(loaded, no_313)
    assert str(info.value) == (f"{path}: pythons.3.13: missing for images.yaml's 3.13; "
                               "run `orchestrator lock`")

    no_noble = Lock(good.pythons, {"bookworm": good.bases["bookworm"]}, good.pyenv, good.deadsnakes)
    with pytest.raises(LockError) as info:
        lockfile.check_against(loaded, no_noble)
    assert str(info.value) == f"{path}: bases.noble: missing; run `orchestrator lock`"

    pinned = _loaded(tmp_path, edit(minimal_text, '  - version: "3.13"\n', '  - version: "3.13.5"\n'))
    with pytest.raises(LockError) as info:
        lockfile.check_against(pinned, good)
    assert str(info.value) == (f"{path}: pythons.3.13: locked 3.13.15 but images.yaml pins 3.13.5; "
                               "run `orchestrator lock`")


def test_repo_lock_covers_images_yaml(repo_loaded: Loaded, repo_lock: Lock) -> None:
    lockfile.check_against(repo_loaded, repo_lock)


# --------------------------------------------------------------------------- pyenv definitions


def _definition(version: str, url: str, digest: str) -> str:
    nodot = "".join(version.split(".")[:2])
    return (f'prefer_openssl3\nexport PYTHON_BUILD_CONFIGURE_WITH_OPENSSL=1\n'
            f'install_package "openssl-3.5.0" "https://github.com/openssl/openssl/releases/download/'
            f'openssl-3.5.0/openssl-3.5.0.tar.gz#{"e" * 64}" mac_openssl --if has_broken_mac_openssl\n'
            f'install_package "Python-{version}" "{url}#{digest}" standard verify_py{nodot} '
            "copy_python_gdb ensurepip\n")


@pytest.fixture
def pyenv_root(tmp_path: Path) -> Path:
    root = tmp_path / "pyenv-2.6.30"
    defs = root / "plugins/python-build/share/python-build"
    defs.mkdir(parents=True)
    for v in ("3.13.5", "3.13.10", "3.14.0"):
        (defs / v).write_text(_definition(v, f"https://www.python.org/ftp/python/{v}/Python-{v}.tar.xz",
                                          sha(v.encode())))
    # Neither is a 3.13.x release: free-threaded and development definitions.
    (defs / "3.13.11t").write_text(_definition("3.13.11", "https://x/Python-3.13.11.tar.xz", "1" * 64))
    (defs / "3.13-dev").write_text('install_git "Python-3.13-dev" "https://github.com/python/cpython" 3.13\n')
    (defs / "3.12.1").write_text('install_package "Python-3.12.1" "https://x/Python-3.12.1.tar.xz"\n')
    return root


def test_pyenv_definitions_newest_patch(pyenv_root: Path) -> None:
    index = PyenvDefinitions(pyenv_root, KEYS)
    assert [str(v) for v in index.versions("3.13")] == ["3.13.5", "3.13.10"]
    url = "https://www.python.org/ftp/python/3.13.10/Python-3.13.10.tar.xz"
    assert index.resolve("3.13", None) == PythonLock(
        "3.13.10", url, sha(b"3.13.10"), url + ".asc",
        SigningKey(KEY_313, KEYS.format(fingerprint=KEY_313), None), "pyenv definitions (pyenv-2.6.30)",
    )


def test_pyenv_definitions_pinned_and_sigstore_only(pyenv_root: Path) -> None:
    index = PyenvDefinitions(pyenv_root, KEYS)
    assert index.resolve("3.13", "3.13.5").sha256 == sha(b"3.13.5")
    p314 = index.resolve("3.14", None)
    assert (p314.version, p314.signature_url, p314.signing_key) == ("3.14.0", None, None)


def test_pyenv_definitions_errors(pyenv_root: Path) -> None:
    index = PyenvDefinitions(pyenv_root, KEYS)
    with pytest.raises(sources.NotReleased, match=r"^no Python 3\.15\.x definition in "):
        index.resolve("3.15", None)
    too_old = r"^no Python 3\.13\.99 definition in .*\(pyenv too old\?\)$"
    with pytest.raises(sources.NotReleased, match=too_old):
        index.resolve("3.13", "3.13.99")
    with pytest.raises(SourceError, match=r"^python-build definition 3\.12\.1 has no pinned tarball$"):
        index.resolve("3.12", None)


def test_update_from_pyenv_definitions(
    tmp_path: Path, minimal_text: str, pyenv_root: Path, python_org: FakePythonOrg
) -> None:
    text = edit(minimal_text, '  - version: "3.12"\n', "")
    text = edit(text, 'exclude:\n  - {distro: noble, python: "3.12", method: deadsnakes}\n', "exclude: []\n")
    text = edit(text, 'system_python: "3.12"', 'system_python: "3.11"')
    loaded = _loaded(tmp_path, text)
    new, _ = sources.update(loaded, Lock(), upgrade=False, only=None,
                             index=PyenvDefinitions(pyenv_root, KEYS),
                             registry_for=FakeRegistries(), fetch=python_org)
    assert new.pythons["3.13"].version == "3.13.10"
    assert new.pythons["3.13"].resolved_from == "pyenv definitions (pyenv-2.6.30)"


def test_check_against_refuses_a_lock_whose_keys_are_not_the_pinned_ones(
        tmp_path: Path, minimal_text: str, python_org: FakePythonOrg) -> None:
    """images.yaml's deadsnakes key_fingerprint and the release manager key the orchestrator
    pins per minor (eol.PYTHON_SIGNING_KEY) are what the build must check against: a lock
    that names another key (edited by hand, or left behind after images.yaml changed its
    pin) is refused, never rendered into the Dockerfile in the pin's place."""
    loaded = _loaded(tmp_path, minimal_text)
    good, _ = _update(loaded, Lock(), python_org)
    assert good.deadsnakes is not None and good.pythons["3.13"].signing_key is not None
    path = tmp_path / "images.lock"
    other = "0123456789ABCDEF0123456789ABCDEF01234567"

    swapped = replace(good, deadsnakes=replace(good.deadsnakes, fingerprint=other))
    with pytest.raises(LockError) as info:
        lockfile.check_against(loaded, swapped)
    assert str(info.value) == (
        f"{path}: deadsnakes.fingerprint: {other} is not the key images.yaml pins "
        f"(sources.deadsnakes.key_fingerprint {good.deadsnakes.fingerprint}); run `orchestrator lock`")

    p313 = good.pythons["3.13"]
    assert p313.signing_key is not None
    forged = replace(good, pythons={**good.pythons, "3.13": replace(
        p313, signing_key=replace(p313.signing_key, fingerprint=other))})
    with pytest.raises(LockError) as info:
        lockfile.check_against(loaded, forged)
    assert str(info.value) == (
        f"{path}: pythons.3.13.signing_key: {other} is not the release manager key pinned for "
        f"3.13 ({KEY_313}); run `orchestrator lock --upgrade --only 3.13`")


# --------------------------------------------------------------------------- sources of the lock's URLs

MIRROR = "http://127.0.0.1:8700/ftp/python/"  # the e2e matrix's sources.python
ORG = "https://www.python.org/ftp/python/"


@pytest.mark.parametrize(("url", "base", "ok"), [
    (f"{ORG}3.14.4/Python-3.14.4.tar.xz", ORG, True),
    (f"{MIRROR}3.14.4/Python-3.14.4.tar.xz.asc", MIRROR, True),
    ("HTTPS://WWW.python.org/ftp/python/3.14.4/Python-3.14.4.tar.xz", ORG, True),  # case of host
    ("https://www.python.org:443/ftp/python/3.14.4/Python-3.14.4.tar.xz", ORG, True),  # its port
    (f"{MIRROR}3.14.4/Python-3.14.4.tar.xz", "http://127.0.0.1:8700/ftp/python", True),  # no slash
    ("https://evil.test/ftp/python/3.14.4/Python-3.14.4.tar.xz", ORG, False),
    ("http://127.0.0.1:8700/ftp/python.evil/3.14.4/Python-3.14.4.tar.xz", MIRROR, False),
    ("http://127.0.0.1:8700/ftp/python.evil/3.14.4/Python-3.14.4.tar.xz",
     "http://127.0.0.1:8700/ftp/python", False),  # a base without its slash is still a folder
    ("https://www.python.org.evil.com/ftp/python/3.14.4/Python-3.14.4.tar.xz", ORG, False),
    ("https://www.python.org@evil.com/ftp/python/3.14.4/Python-3.14.4.tar.xz", ORG, False),
    ("https://evil.com@www.python.org/ftp/python/3.14.4/Python-3.14.4.tar.xz", ORG, False),
    ("http://www.python.org/ftp/python/3.14.4/Python-3.14.4.tar.xz", ORG, False),  # scheme
    ("http://127.0.0.1:8701/ftp/python/3.14.4/Python-3.14.4.tar.xz", MIRROR, False),  # port
    ("http://127.0.0.1/ftp/python/3.14.4/Python-3.14.4.tar.xz", MIRROR, False),
    ("http://127.0.0.1:x/ftp/python/3.14.4/Python-3.14.4.tar.xz", MIRROR, False),
    (f"{MIRROR}../../ppa/Python-3.14.4.tar.xz", MIRROR, False),
    (f"{MIRROR}%2e%2e/%2E%2E/ppa/Python-3.14.4.tar.xz", MIRROR, False),
    (f"{MIRROR}3.14.4/Python-3.14.4.tar.xz?from=evil", MIRROR, False),
    (f"{MIRROR}3.14.4/Python-3.14.4.tar.xz#", MIRROR, False),
])
def test_under_compares_parsed_urls_not_string_prefixes(url: str, base: str, ok: bool) -> None:
    assert lockfile.under(url, base) is ok


def _tampered(good: Lock, minor: str, **changes: Any) -> Lock:
    return replace(good, pythons={**good.pythons, minor: replace(good.pythons[minor], **changes)})


def test_check_against_refuses_urls_not_under_images_yaml_sources(
        tmp_path: Path, minimal_text: str, python_org: FakePythonOrg) -> None:
    """A lock edited by hand cannot send the build to another host (whose file the edited
    sha256 then matches): every tarball, signature and key URL, the pyenv release and the
    deadsnakes key must be where images.yaml's sources say. One line each (exit 2)."""
    loaded = _loaded(tmp_path, minimal_text)
    good, _ = _update(loaded, Lock(), python_org)
    lockfile.check_against(loaded, good)
    path = tmp_path / "images.lock"
    evil = "https://mirror.test.evil.com/ftp/python/3.13.15/Python-3.13.15.tar.xz"
    p312, key = good.pythons["3.12"], good.pythons["3.12"].signing_key
    assert good.pyenv is not None and good.deadsnakes is not None and key is not None
    bad = _tampered(good, "3.13", url=evil)
    bad = _tampered(bad, "3.12", signature_url="https://mirror.test/ftp/python.evil/3.12.9/x.asc")
    bad = replace(bad, pythons={**bad.pythons, "3.12": replace(
        bad.pythons["3.12"], signing_key=replace(key, url="https://evil.test/key.asc"))})
    bad = replace(bad, pyenv=replace(good.pyenv, url="https://evil.test/pyenv-2.6.30.tar.gz"),
                  deadsnakes=replace(good.deadsnakes, key_url="https://evil.test/ds.asc"))
    with pytest.raises(ConfigError) as info:
        lockfile.check_against(loaded, bad)
    assert info.value.exit_code == 2
    fpr = key.fingerprint
    assert info.value.lines() == [
        f"{path}: pythons.3.12.signature_url: https://mirror.test/ftp/python.evil/3.12.9/x.asc is "
        f"not under images.yaml's sources.python: it must start with {BASE}; run `orchestrator lock`",
        f"{path}: pythons.3.12.signing_key.url: https://evil.test/key.asc is not the key URL "
        f"images.yaml's sources.python_keys gives: it must be {KEYS.format(fingerprint=fpr)}; "
        "run `orchestrator lock`",
        f"{path}: pythons.3.13.url: {evil} is not under images.yaml's sources.python: it must "
        f"start with {BASE}; run `orchestrator lock`",
        f"{path}: pyenv.url: https://evil.test/pyenv-2.6.30.tar.gz is not the release images.yaml's "
        f"sources.pyenv.url gives: it must be {PYENV_URL}; run `orchestrator lock`",
        f"{path}: deadsnakes.key_url: https://evil.test/ds.asc is not the key URL images.yaml's "
        f"sources.deadsnakes.key_url gives: it must be {good.deadsnakes.key_url}; "
        "run `orchestrator lock`",
    ]
    assert p312.url.startswith(BASE)

    # A lock made against python.org no longer passes once images.yaml points at a mirror.
    moved = loader.load(write_config(tmp_path, edit(
        minimal_text, "\ndistros:\n", f"\nsources:\n  python: {MIRROR}\ndistros:\n")), today=TODAY)
    with pytest.raises(ConfigError, match=rf"pythons\.3\.12\.url: .* it must start with {MIRROR}; "):
        lockfile.check_against(moved, good)


def test_a_tampered_lock_is_refused_by_validate_and_render(
        tmp_path: Path, minimal_text: str, python_org: FakePythonOrg,
        capsys: pytest.CaptureFixture[str]) -> None:
    loaded = _loaded(tmp_path, minimal_text)
    good, _ = _update(loaded, Lock(), python_org)
    evil = "https://mirror.test.evil.com/ftp/python/3.13.15/Python-3.13.15.tar.xz"
    hexed = {k: replace(v, digest="sha256:" + "a" * 64) for k, v in good.bases.items()}
    lockfile.write(loaded, replace(_tampered(good, "3.13", url=evil), bases=hexed))
    for argv in (["validate"], ["render", "--check"]):
        code, out, err = run_cli([*argv, "--config", str(loaded.path)], capsys)
        assert (code, out) == (2, "")
        assert err.splitlines()[-1] == (
            f"error: {tmp_path / 'images.lock'}: pythons.3.13.url: {evil} is not under images.yaml's "
            f"sources.python: it must start with {BASE}; run `orchestrator lock`")


def test_lock_re_resolves_an_entry_not_under_sources_at_the_same_release(
        tmp_path: Path, minimal_text: str, python_org: FakePythonOrg) -> None:
    """The fix the refusal names works: `orchestrator lock` (no --upgrade) replaces the entry
    with the same release from sources.python, and leaves the others alone."""
    loaded, old = _old_lock_with_3135(tmp_path, minimal_text, python_org)
    bad = _tampered(old, "3.13", url="https://evil.test/ftp/python/3.13.5/Python-3.13.5.tar.xz",
                    sha256="e" * 64)
    new, changes = _update(loaded, bad, python_org)
    assert new == old  # 3.13.5 again (not upgraded), from BASE, with its real sha256
    assert [c.what for c in changes] == ["python 3.13"]
    lockfile.check_against(loaded, new)


def test_lock_from_pyenv_definitions_pins_the_tarball_at_sources_python(
        tmp_path: Path, minimal_text: str, pyenv_root: Path, python_org: FakePythonOrg) -> None:
    """pyenv's definitions name python.org; behind a mirror the lock names the mirror's copy of
    that file (pyenv's sha256), so what `lock --from-pyenv` writes passes the check."""
    index = PyenvDefinitions(pyenv_root, KEYS, BASE)
    p = index.resolve("3.13", None)
    assert (p.url, p.signature_url) == (f"{BASE}3.13.10/Python-3.13.10.tar.xz",
                                        f"{BASE}3.13.10/Python-3.13.10.tar.xz.asc")
    assert p.sha256 == sha(b"3.13.10")
    text = edit(minimal_text, '  - version: "3.12"\n', "")
    text = edit(text, 'exclude:\n  - {distro: noble, python: "3.12", method: deadsnakes}\n', "exclude: []\n")
    text = edit(text, 'system_python: "3.12"', 'system_python: "3.11"')
    loaded = _loaded(tmp_path, text)
    new, _ = sources.update(loaded, Lock(), upgrade=False, only=None, index=index,
                             registry_for=FakeRegistries(), fetch=python_org)
    lockfile.check_against(loaded, new)


# --------------------------------------------------------------------------- unsigned tarballs

FEATURES = REPO / "tests" / "unit" / "fixtures" / "features"


def _features(tmp_path: Path, *, unsigned: str | None = None) -> tuple[Path, Path]:
    """The features matrix (3.13.5 signed, 3.14 Sigstore only) in ``tmp_path``, its lock's
    3.13 entry without signature_url and signing_key (as a hand edit leaves it); with
    ``unsigned``, images.yaml's 3.13 entry says that reason."""
    shutil.copytree(FEATURES, tmp_path, dirs_exist_ok=True)
    cfg, lock_file = tmp_path / "images.yaml", tmp_path / "images.lock"
    if unsigned is not None:
        cfg.write_text(edit(cfg.read_text(), '  - version: "3.13.5"\n',
                            f'  - version: "3.13.5"\n    unsigned: "{unsigned}"\n'))
    data = yaml.safe_load(lock_file.read_text())
    assert data["pythons"]["3.13"].pop("signature_url") and data["pythons"]["3.13"].pop("signing_key")
    assert "signature_url" not in data["pythons"]["3.14"]
    lock_file.write_text(Lock.from_dict(data).dumps())
    return cfg, lock_file


def _one_line(lock_file: Path, cfg: Path, version: str = "3.13.5", index: int = 0) -> str:
    return (f"error: {lock_file}: pythons.3.13: {version} is locked without its OpenPGP signature "
            "(signature_url, signing_key), and Python 3.13 releases are signed; run `orchestrator "
            "lock --upgrade --only 3.13` where the .asc is served, or, to build it unverified, say "
            f'why in {cfg}: pythons[{index}].unsigned: "<reason>" (add-python --unsigned REASON writes it)')


@pytest.mark.parametrize("command", ["validate", "render", "plan"])
def test_a_lock_without_the_signature_of_a_pgp_signed_minor_is_refused(
        tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Deleting a 3.13 entry's signature_url and signing_key from images.lock would switch the
    build's OpenPGP check of the tarball off: refused in one line, exit 2, nothing rendered."""
    cfg, lock_file = _features(tmp_path)
    code, out, err = run_cli([command, "--config", str(cfg)], capsys)
    assert (code, out) == (2, "")
    assert err.strip().splitlines()[-1] == _one_line(lock_file, cfg)
    assert not (tmp_path / "out").exists()


def test_an_unsigned_reason_in_images_yaml_lets_it_render_without_a_signature_step(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reason = "the mirror withdrew the .asc: the release key expired"
    cfg, _ = _features(tmp_path, unsigned=reason)
    warning = (f"{cfg}: pythons[0].unsigned: Python 3.13's source tarball may be locked and "
               f"built without its OpenPGP signature: {reason}")
    for command in ("validate", "plan"):
        code, out, err = run_cli([command, "--config", str(cfg)], capsys)
        assert code == 0 and out, err
        assert warning in err
    code, _, err = run_cli(["render", "--config", str(cfg)], capsys)
    assert code == 0, err
    bodies = [d.read_text() for d in (tmp_path / "out").glob("*/Dockerfile")]
    assert any("/Python-3.13.5.tar.xz" in body for body in bodies)
    assert not any("Python-3.13.5.tar.xz.asc" in body or "verify-signature.sh" in body
                   for body in bodies)


def test_a_sigstore_only_minor_needs_no_signature_and_takes_no_unsigned(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """3.14 has no .asc (PEP 761): its entry without one is valid as it is; `unsigned` on it,
    or an empty reason, is a mistake in images.yaml."""
    shutil.copytree(FEATURES, tmp_path, dirs_exist_ok=True)
    cfg = tmp_path / "images.yaml"
    loaded = loader.load(cfg, TODAY)
    lock = lockfile.read(loaded)
    assert not lockfile.signed(lock.pythons["3.14"]) and lockfile.signed(lock.pythons["3.13"])
    lockfile.check_against(loaded, lock)
    assert lockfile.unsigned_problems(loaded, lock.pythons) == []
    text = cfg.read_text()
    cfg.write_text(edit(text, "    freethreaded: true", '    unsigned: "why not"\n    freethreaded: true'))
    with pytest.raises(ConfigError, match=r"pythons\[1\]\.unsigned: Python 3\.14 releases have no "
                       r"OpenPGP signature to go without .*; remove unsigned from this entry$"):
        loader.load(cfg, TODAY)
    cfg.write_text(edit(text, '  - version: "3.13.5"\n', '  - version: "3.13.5"\n    unsigned: " "\n'))
    with pytest.raises(ConfigError, match=r"pythons\[0\]\.unsigned: an empty reason; say why "):
        loader.load(cfg, TODAY)


def test_lock_refuses_to_write_an_entry_of_a_pgp_signed_minor_without_its_signature(
        tmp_path: Path, minimal_text: str, python_org: FakePythonOrg) -> None:
    """A source that serves no .asc for a 3.13 release (a mirror that withdrew it): `lock`
    refuses to pin it unsigned (the same line as check_against), unless images.yaml says why."""
    python_org.add_release("3.13.15", asc=False)
    loaded = _loaded(tmp_path, minimal_text)
    with pytest.raises(ConfigError) as info:
        _update(loaded, Lock(), python_org)
    line = _one_line(tmp_path / "images.lock", loaded.path, "3.13.15", _index(loaded, "3.13"))
    assert f"error: {info.value}" == line
    assert not (tmp_path / "images.lock").exists()

    reason = "the mirror serves 3.13.15 without its .asc"
    (tmp_path / "opted").mkdir()
    opted = _loaded(tmp_path / "opted", edit(minimal_text, '  - version: "3.13"\n',
                                            f'  - version: "3.13"\n    unsigned: "{reason}"\n'))
    new, _ = _update(opted, Lock(), python_org)
    p313 = new.pythons["3.13"]
    assert (p313.version, p313.signature_url, p313.signing_key) == ("3.13.15", None, None)
    lockfile.check_against(opted, new)


def _index(loaded: Loaded, minor: str) -> int:
    return next(i for i, p in enumerate(loaded.config.pythons) if p.version.startswith(minor))

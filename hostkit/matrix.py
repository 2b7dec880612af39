"""What the mirror must hold and which base images provisioning makes, read from the e2e matrix
(tests/e2e/images.yaml) with the package.

* CPython: every pinned X.Y.Z of a minor that some cell compiles (methods source and
  python-build download a tarball from ``sources.python``; a deadsnakes-only minor needs none,
  ``lock.compiled_minors``), plus REFERENCE_RELEASE. A compiled minor must be pinned: "3.13"
  would mean "the newest 3.13 at the mirror", which is what the mirror is being asked.
* Where: the URL paths of ``sources.python``, ``sources.python_keys`` and ``sources.pyenv.url``
  (the document root is $ORCH_MIRROR_DIR, served at 127.0.0.1:$ORCH_MIRROR_PORT).
* pyenv: ``sources.pyenv.version``.
* Signing keys: the release managers' fingerprints the package knows (``eol.PYTHON_SIGNING_KEY``).

A pin must be a release whose tarball a deb-src index carries and serves here: Debian's
(bookworm, trixie, sid) or Ubuntu resolute's (CPython 3.14.4: python3.14_3.14.4.orig.tar.xz is
python.org's Python-3.14.4.tar.xz, the sha256 images.lock pins). Sid's 3.14.9/3.14.10 and
3.15.2 pool files (and Ubuntu 27.04's) answer 404 through this machine's archive proxy, so no
newer 3.14 and no 3.15 can be pinned yet.

The base images (provision-host.sh, step images): one per distro of the matrix, named by its
``image`` in the local registry (``debian:bookworm-slim`` -> $ORCH_REGISTRY/debian:bookworm-slim),
made the way its ``family`` says (``suites``).
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

from hostkit.common import HostkitError
from orchestrator import imageref
from orchestrator.config import eol, loader
from orchestrator.config.model import minor_of
from orchestrator.lock import lockfile

# The one release not named by the matrix itself: tests/e2e/test_release.py pins it in its
# private copy of the mirror (a tarball that stops matching the lock), and
# tests/integration/test_versions_mirror.py pins it. It is the mirror's reference release: the
# tarball whose sha256 must equal pyenv's pin (hard failure; pyenv 2.6.30 has no definition for
# 3.13.15), the one Debian ships with its upstream .asc (3.13.15-1 has none), and the one whose
# debian/upstream/signing-key.asc gives the release manager's key for keys/<fingerprint>.asc.
REFERENCE_RELEASE = "3.13.5"


@dataclass(frozen=True)
class MirrorPlan:
    versions: tuple[str, ...]  # CPython X.Y.Z, oldest first
    reference: str
    python_dir: Path  # relative to the mirror root: ftp/python
    python_keys: str  # the matrix's URL template, {fingerprint}
    pyenv_version: str
    pyenv_file: Path  # relative: pyenv/pyenv-<version>.tar.gz

    def fingerprint(self, version: str) -> str | None:
        """The release manager key that signs ``version``'s tarball (None: Sigstore only)."""
        return eol.PYTHON_SIGNING_KEY.get(minor_of(version))

    def key_file(self, fingerprint: str) -> Path:
        return _url_path(self.python_keys.format(fingerprint=fingerprint), "sources.python_keys")

    def tarballs(self, version: str) -> tuple[str, str]:
        return f"Python-{version}.tar.xz", f"Python-{version}.tgz"


def _url_path(url: str, key: str) -> Path:
    path = urllib.parse.urlsplit(url).path.strip("/")
    if not path or ".." in path.split("/"):
        raise HostkitError(f"e2e matrix: {key}: {url!r} has no usable path on the mirror")
    return Path(path)


def load(path: Path, today: dt.date | None = None) -> MirrorPlan:
    """The mirror's plan from the matrix at ``path`` (validated like `orchestrator validate`)."""
    loaded = loader.load(path, today or dt.datetime.now(dt.UTC).date())
    cfg = loaded.config
    compiled = lockfile.compiled_minors(cfg)
    versions = {REFERENCE_RELEASE}
    for p in cfg.pythons:
        minor = minor_of(p.version)
        if minor not in compiled:
            continue
        if p.version.count(".") != 2:
            raise HostkitError(
                f"{path}: pythons: {p.version} is built from a tarball but not pinned to a release; "
                f"pin it (e.g. \"{minor}.N\") so the mirror knows which {minor} to carry")
        versions.add(p.version)
    src = cfg.sources
    return MirrorPlan(
        versions=tuple(sorted(versions, key=Version)),
        reference=REFERENCE_RELEASE,
        python_dir=_url_path(src.python, "sources.python"),
        python_keys=src.python_keys,
        pyenv_version=src.pyenv.version,
        pyenv_file=_url_path(src.pyenv.url.format(version=src.pyenv.version), "sources.pyenv.url"),
    )


@dataclass(frozen=True)
class Suite:
    """A distro's base image: the suite (the matrix's distro key), its repository and tag in the
    local registry (the matrix's ``image``) and its family (debian, ubuntu)."""

    name: str
    repo: str
    tag: str
    family: str

    def line(self) -> str:
        """``suite repo tag family``: what ``python -m hostkit suites`` prints per suite."""
        return f"{self.name} {self.repo} {self.tag} {self.family}"


def suites(path: Path, today: dt.date | None = None) -> dict[str, Suite]:
    """Every distro of the matrix at ``path``, in its order: bookworm -> debian bookworm-slim
    debian, noble -> ubuntu noble ubuntu."""
    cfg = loader.load(path, today or dt.datetime.now(dt.UTC).date()).config
    found = {}
    for name, distro in cfg.distros.items():
        ref = imageref.parse(distro.image)
        if ref.host != imageref.DOCKER_HUB or ref.digest or not ref.tag:
            raise HostkitError(
                f"{path}: distros: {name}: image {distro.image!r} is not repository:tag without a "
                "registry or digest; provisioning pushes the base as $ORCH_REGISTRY/repository:tag")
        found[name] = Suite(name, ref.name, ref.tag, distro.family)
    return found


def named_suites(path: Path, names: list[str], today: dt.date | None = None) -> list[Suite]:
    """The suites ``names`` lists, in its order (every suite of the matrix when it is empty); a
    name the matrix has no distro for is an error naming the ones it has."""
    known = suites(path, today)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise HostkitError(f"{path} has no distro {', '.join(unknown)} (ORCH_BASE_SUITES); its "
                           f"distros: {', '.join(known)}")
    return [known[n] for n in names] if names else list(known.values())

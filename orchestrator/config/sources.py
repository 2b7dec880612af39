"""The sources section of images.yaml: where the inputs come from (python.org and its
release keys, pyenv's python-build, the deadsnakes PPA, the base image registry, the index
for the dev tooling, the archive keyrings apt sources are checked against)."""

from __future__ import annotations

from pydantic import Field

from orchestrator.config.base import FrozenModel


class PyenvSource(FrozenModel):
    version: str = Field(description="pyenv release whose python-build is used")
    url: str = Field(
        "https://github.com/pyenv/pyenv/archive/refs/tags/v{version}.tar.gz",
        description="Release tarball URL template ({version})",
    )


class DeadsnakesSource(FrozenModel):
    ppa: str = "deadsnakes/ppa"
    key_fingerprint: str = Field(
        "F23C5A6CF475977595C89F51BA6932366A755776", pattern=r"^[0-9A-F]{40}$"
    )
    key_url: str = "https://keyserver.ubuntu.com/pks/lookup?op=get&search=0x{fingerprint}"
    archive: str = "https://ppa.launchpadcontent.net/{ppa}/ubuntu"


class Sources(FrozenModel):
    python: str = Field(
        "https://www.python.org/ftp/python/",
        description="Base URL laid out like python.org's /ftp/python/ (X.Y.Z/Python-X.Y.Z.tar.xz)",
    )
    python_keys: str = Field(
        "https://keys.openpgp.org/vks/v1/by-fingerprint/{fingerprint}",
        description="URL template of a release manager's OpenPGP key ({fingerprint})",
    )
    pyenv: PyenvSource = PyenvSource(version="2.6.30")
    base_registry: str = Field(
        "docker.io", description="Registry (or pull-through mirror) base images come from"
    )
    pypi: str = Field("https://pypi.org/simple", description="Index for the dev tooling")
    deadsnakes: DeadsnakesSource = DeadsnakesSource()
    apt_keyrings: tuple[str, ...] = Field(
        ("/usr/share/keyrings", "/usr/local/share/keyrings"),
        description="Directories, on the machine that runs `outdated` and `nightly`, holding the "
        "archive keyrings the images' apt sources name (looked up by the Signed-By file name; "
        "debian-archive-keyring.gpg / ubuntu-archive-keyring.gpg when a source names none)",
    )

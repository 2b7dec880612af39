"""What provision-host.sh's steps buildkit, dockerd and cosign read from the engine and dpkg:
versions and the engine's setup, parsed from the text the commands print (bash runs them and
hands their output over; nothing here starts a process).

A wanted version is a series, ``26.1``: any 26.1.x release is in it (26.10.0 is not). Debian's
versions are compared by their upstream release: ``26.1.5+dfsg1-9+deb13u1+b1`` is 26.1.5,
``1:2.5.0-2`` (an epoch) 2.5.0, buildx's ``v0.13.1`` 0.13.1.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from packaging.version import Version

from hostkit.common import HostkitError, Out

_RELEASE = r"v?(\d+(?:\.\d+)+)"
# `docker buildx version`: "github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3" (Debian),
# "github.com/docker/buildx v0.13.1 788433953af1..." (upstream)
BUILDX = re.compile(rf"^\S*buildx\S*\s+{_RELEASE}", re.MULTILINE)
# `dockerd --version`: "Docker version 26.1.5+dfsg1, build 411e817"
DOCKERD = re.compile(rf"^Docker version {_RELEASE}", re.MULTILINE)
# a version on its own: dpkg's "26.1.5+dfsg1-9+deb13u1+b1", "1:2.5.0-2"; docker's "26.1.5+dfsg1"
PLAIN = re.compile(rf"^(?:\d+:)?{_RELEASE}")
FORMATS = {"buildx": BUILDX, "dockerd": DOCKERD}
# dpkg-query -W -f="$DPKG_FORMAT": what ``parse_dpkg_query`` reads (provision-host.sh: debs_at)
DPKG_FORMAT = r"${Package}\t${db:Status-Abbrev}\t${Version}\n"
ARM64 = "linux/arm64"
SERIES = re.compile(r"\d+(?:\.\d+)*")  # what a wanted version is: 26.1, 0.13, 2


def release(text: str, pattern: re.Pattern[str] = PLAIN) -> Version | None:
    """The release ``pattern`` finds in ``text`` (None: none there)."""
    found = pattern.search(text.strip())
    return Version(found.group(1)) if found else None


def in_series(version: Version | None, series: str) -> bool:
    """``26.1.5`` is in ``26.1``; ``26.10.0`` and ``27.0.1`` are not."""
    if not SERIES.fullmatch(series):
        raise HostkitError(f"{series!r} is not a version series such as 26.1")
    want = Version(series).release
    return version is not None and version.release[:len(want)] == want


# ------------------------------------------------------------------------------------ dpkg


def parse_dpkg_query(text: str) -> dict[str, tuple[str, str]]:
    """``dpkg-query -W -f="$DPKG_FORMAT" PKG...`` -> package -> (status, version); status "ii"
    is installed (``${db:Status-Abbrev}`` without its blank error flag)."""
    found = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) == 3 and fields[0]:
            name, status, version = fields
            if status.strip() == "ii" or name not in found:
                found[name] = (status.strip(), version.strip())
    return found


def debs_at(specs: Sequence[str], text: str) -> tuple[bool, str]:
    """Whether every ``package`` / ``package=X.Y`` of ``specs`` is installed (in that series),
    from dpkg-query's ``text``; and a line saying so: the versions, or what is not right."""
    installed = parse_dpkg_query(text)
    said = []
    for spec in specs:
        name, _, series = spec.partition("=")
        status, version = installed.get(name, ("", ""))
        if status != "ii":
            return False, f"{name} is not installed"
        if series and not in_series(release(version), series):
            return False, f"{name} {version} is not {series}.x"
        said.append(f"{name} {version}")
    return True, ", ".join(said)


# ---------------------------------------------------------------------------------- engine


@dataclass(frozen=True)
class DockerInfo:
    """What ``docker info --format '{{json .}}'`` says about the daemon."""

    server_version: str
    driver: str
    driver_status: tuple[tuple[str, ...], ...]
    insecure_cidrs: Any  # the JSON value (a list, or None)

    @classmethod
    def parse(cls, text: str) -> DockerInfo:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise HostkitError("docker info: not the JSON of --format '{{json .}}': "
                               f"{text[:80]!r}") from exc
        if not isinstance(data, dict):
            raise HostkitError(f"docker info: expected a JSON object, got {text[:80]!r}")
        status = data.get("DriverStatus") or []
        return cls(server_version=str(data.get("ServerVersion") or ""),
                   driver=str(data.get("Driver") or ""),
                   driver_status=tuple(tuple(str(v) for v in pair) for pair in status),
                   insecure_cidrs=(data.get("RegistryConfig") or {}).get("InsecureRegistryCIDRs"))

    @property
    def containerd_store(self) -> bool:
        """The containerd image store: a snapshotter driver type (the classic store's status
        names its backing filesystem instead)."""
        return any("io.containerd.snapshotter" in v for pair in self.driver_status for v in pair)

    @property
    def driver_status_text(self) -> str:
        """As ``--format '{{.DriverStatus}}'`` prints it: [[driver-type io.containerd.snapshotter.v1]]."""
        return "[" + " ".join("[" + " ".join(pair) + "]" for pair in self.driver_status) + "]"

    @property
    def insecure_text(self) -> str:
        """As ``--format '{{json .RegistryConfig.InsecureRegistryCIDRs}}'`` prints it."""
        return json.dumps(self.insecure_cidrs, separators=(",", ":"))


@dataclass(frozen=True)
class Builder:
    """What ``docker buildx inspect`` says about the default builder (its first node's BuildKit)."""

    name: str
    driver: str
    buildkit: str
    platforms: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Builder:
        fields: dict[str, list[str]] = {}
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if sep and key and not key.startswith(" "):
                fields.setdefault(key.strip(), []).append(value.strip())

        def first(key: str) -> str:
            return (fields.get(key) or [""])[0]

        platforms = [p.strip() for line in fields.get("Platforms", []) for p in line.split(",")]
        return cls(name=first("Name"), driver=first("Driver"), buildkit=first("BuildKit version"),
                   platforms=tuple(p for p in platforms if p))

    @property
    def has_arm64(self) -> bool:
        return any(p == ARM64 or p.startswith(ARM64 + "/") for p in self.platforms)


def check_dockerd(info: DockerInfo, builder: Builder, series: str, registry: str, out: Out) -> None:
    """Step dockerd's checks of the running daemon, in its order: the containerd store, BuildKit
    listing linux/arm64, the daemon's version, 127.0.0.0/8 as an insecure registry range, the
    docker driver. The first one that fails is the error; each passed is said."""
    if not info.containerd_store:
        raise HostkitError("dockerd does not use the containerd image store (driver status: "
                           f"{info.driver_status_text})")
    platforms = ", ".join(builder.platforms)
    if not builder.has_arm64:
        raise HostkitError(f"BuildKit does not list linux/arm64 (platforms: {platforms}); is binfmt "
                           "qemu-aarch64 enabled (step qemu)?")
    out.say(f"  image store: containerd snapshotter; BuildKit platforms: {platforms}")
    if not in_series(release(info.server_version), series):
        raise HostkitError(f"running dockerd is {info.server_version}, expected {series}.x (stop the "
                           "old daemon and re-run)")
    out.say(f"  dockerd {info.server_version}, storage driver {info.driver}, insecure registry "
            f"CIDRs: {info.insecure_text}")
    if "127.0.0.0/8" not in (info.insecure_cidrs or []):
        raise HostkitError('127.0.0.0/8 is not an insecure registry range; add "insecure-registries": '
                           f'["{registry}"] to /etc/docker/daemon.json')
    if builder.driver != "docker":
        raise HostkitError(f"default buildx builder does not use the docker driver (got '{builder.driver}')")
    out.say(f"  default builder: {builder.name} (driver docker, BuildKit {builder.buildkit})")

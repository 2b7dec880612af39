"""hostkit/dockerd.py: provision-host.sh's steps buildkit, dockerd and cosign hand hostkit what
dpkg-query, `docker buildx version`, `dockerd --version`, `docker info` and `docker buildx
inspect` printed; hostkit parses it and compares the versions. The recorded outputs
(fixtures/hostkit/engine/) are this build host's, 2026-12-08: trixie's docker.io 26.1.5, buildx
0.13.1 and cosign 2.5.0 on Debian 12, dockerd on the containerd image store."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from packaging.version import Version

from hostkit import cli, dockerd
from hostkit.common import HostkitError, Out
from hostkit.dockerd import Builder, DockerInfo
from tests.unit.hostkit_fakes import RECORDED

ENGINE = RECORDED / "engine"
INFO = (ENGINE / "docker-info.json").read_text()
INSPECT = (ENGINE / "docker-buildx-inspect.txt").read_text()
DPKG = (ENGINE / "dpkg-query.txt").read_text()
BUILDX_DEBIAN = (ENGINE / "docker-buildx-version.txt").read_text()
DOCKERD_VERSION = (ENGINE / "dockerd-version.txt").read_text()
BUILDX_UPSTREAM = "github.com/docker/buildx v0.13.1 788433953af10f2a698f5c07611dddce2e08c7a0\n"
# the classic image store's driver status (overlay2 on ext4), as Docker 26 reports it
CLASSIC = [["Backing Filesystem", "extfs"], ["Supports d_type", "true"],
           ["Using metacopy", "false"], ["Native Overlay Diff", "true"], ["userxattr", "false"]]
# `docker buildx inspect` of a docker-container builder (two nodes' worth of lines: the
# builder's, then its node's)
CONTAINER_BUILDER = """Name:          ci
Driver:        docker-container
Last Activity: 2026-12-08 00:32:30 +0000 UTC

Nodes:
Name:                  ci0
Endpoint:              unix:///var/run/docker.sock
Status:                running
BuildKit daemon flags: --allow-insecure-entitlement=network.host
BuildKit version:      v0.17.3
Platforms:             linux/amd64, linux/amd64/v2, linux/386
"""


def _info(**changes: Any) -> str:
    data = json.loads(INFO)
    data.update(changes)
    return json.dumps(data)


# ------------------------------------------------------------------ versions


@pytest.mark.parametrize(("text", "pattern", "version"), [
    ("26.1.5+dfsg1-9+deb13u1+b1", dockerd.PLAIN, "26.1.5"),  # dpkg: trixie's docker.io
    ("0.13.1+ds1-3", dockerd.PLAIN, "0.13.1"),
    ("1:2.5.0-2", dockerd.PLAIN, "2.5.0"),  # an epoch
    ("26.1.5+dfsg1", dockerd.PLAIN, "26.1.5"),  # docker info's ServerVersion
    ("", dockerd.PLAIN, None),
    (BUILDX_DEBIAN, dockerd.BUILDX, "0.13.1"),
    (BUILDX_UPSTREAM, dockerd.BUILDX, "0.13.1"),
    ("docker: 'buildx' is not a docker command.\nSee 'docker --help'\n", dockerd.BUILDX, None),
    (DOCKERD_VERSION, dockerd.DOCKERD, "26.1.5"),
    ("Docker version 20.10.24+dfsg1, build 297e128\n", dockerd.DOCKERD, "20.10.24"),
    ("bash: line 1: dockerd: command not found\n", dockerd.DOCKERD, None),
])
def test_the_release_each_output_shows(text: str, pattern: Any, version: str | None) -> None:
    assert dockerd.release(text, pattern) == (Version(version) if version else None)


def test_a_series_is_a_release_prefix() -> None:
    assert dockerd.in_series(Version("26.1.5"), "26.1")
    assert dockerd.in_series(Version("26.1.5"), "26")
    assert not dockerd.in_series(Version("26.10.0"), "26.1")  # not a string prefix
    assert not dockerd.in_series(Version("27.0.1"), "26.1")
    assert not dockerd.in_series(Version("0.12.1"), "0.13")
    assert not dockerd.in_series(None, "26.1")
    with pytest.raises(HostkitError, match=r"'26\.x' is not a version series such as 26\.1"):
        dockerd.in_series(Version("26.1.5"), "26.x")


def test_recorded_dpkg_query_lines() -> None:
    assert dockerd.parse_dpkg_query(DPKG) == {
        "cosign": ("ii", "2.5.0-2+b5"), "docker-buildx": ("ii", "0.13.1+ds1-3"),
        "docker-cli": ("ii", "26.1.5+dfsg1-9+deb13u1+b1"), "docker.io": ("ii", "26.1.5+dfsg1-9+deb13u1+b1")}


def test_the_trixie_debs_at_their_series() -> None:
    assert dockerd.debs_at(["docker.io=26.1", "docker-cli", "docker-buildx=0.13"], DPKG) == (
        True, "docker.io 26.1.5+dfsg1-9+deb13u1+b1, docker-cli 26.1.5+dfsg1-9+deb13u1+b1, "
              "docker-buildx 0.13.1+ds1-3")
    assert dockerd.debs_at(["cosign=2.5"], DPKG) == (True, "cosign 2.5.0-2+b5")
    assert dockerd.debs_at(["docker.io=27.0"], DPKG) == (
        False, "docker.io 26.1.5+dfsg1-9+deb13u1+b1 is not 27.0.x")
    assert dockerd.debs_at(["cosign=2.6"], DPKG) == (False, "cosign 2.5.0-2+b5 is not 2.6.x")


@pytest.mark.parametrize("line", [
    "",  # dpkg-query knows no such package (it says so on stderr)
    "docker.io\tun \t\n",  # known, never installed
    "docker.io\trc \t20.10.24+dfsg1-1+deb12u1\n",  # removed, its configuration kept
    "docker.io\tiF \t26.1.5+dfsg1-9+deb13u1+b1\n",  # half-configured
])
def test_a_package_not_installed_is_not_at_any_version(line: str) -> None:
    assert dockerd.debs_at(["docker.io=26.1"], line) == (False, "docker.io is not installed")


def test_bookworms_own_docker_is_not_the_trixie_one() -> None:
    """Debian 12's docker.io before step buildkit: installed, but 20.10."""
    text = "docker.io\tii \t20.10.24+dfsg1-1+deb12u1+b1\ndocker-cli\tun \t\n"
    assert dockerd.debs_at(["docker.io=26.1", "docker-cli"], text) == (
        False, "docker.io 20.10.24+dfsg1-1+deb12u1+b1 is not 26.1.x")


# ------------------------------------------------------------------ docker info, buildx inspect


def test_recorded_docker_info() -> None:
    info = DockerInfo.parse(INFO)
    assert (info.server_version, info.driver) == ("26.1.5+dfsg1", "overlayfs")
    assert info.containerd_store
    assert info.driver_status_text == "[[driver-type io.containerd.snapshotter.v1]]"
    assert info.insecure_text == '["127.0.0.0/8"]'


def test_the_classic_store_and_a_daemon_that_is_down() -> None:
    classic = DockerInfo.parse(_info(DriverStatus=CLASSIC, Driver="overlay2"))
    assert not classic.containerd_store
    assert classic.driver_status_text.startswith("[[Backing Filesystem extfs] [Supports d_type true]")
    # the client's half of `docker info` when no daemon answers (it exits 1)
    down = DockerInfo.parse('{"ID":"","Driver":"","DriverStatus":null,"RegistryConfig":null,'
                            '"ServerVersion":""}')
    assert (down.containerd_store, down.driver_status_text, down.insecure_text) == (False, "[]", "null")
    with pytest.raises(HostkitError, match="docker info: not the JSON"):
        DockerInfo.parse("Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\n")
    with pytest.raises(HostkitError, match="expected a JSON object"):
        DockerInfo.parse("[]")


def test_recorded_buildx_inspect() -> None:
    assert Builder.parse(INSPECT) == Builder(
        "default", "docker", "v0.0.0+unknown",
        ("linux/amd64", "linux/amd64/v2", "linux/amd64/v3", "linux/amd64/v4", "linux/arm64"))
    assert Builder.parse(INSPECT).has_arm64


def test_a_container_builder_without_arm64() -> None:
    builder = Builder.parse(CONTAINER_BUILDER)
    assert builder == Builder("ci", "docker-container", "v0.17.3",
                              ("linux/amd64", "linux/amd64/v2", "linux/386"))
    assert not builder.has_arm64
    assert Builder.parse("") == Builder("", "", "", ())


# ------------------------------------------------------------------ step dockerd's checks


def _check(info: str = INFO, inspect: str = INSPECT, series: str = "26.1") -> list[str]:
    text = io.StringIO()
    dockerd.check_dockerd(DockerInfo.parse(info), Builder.parse(inspect), series, "127.0.0.1:5000",
                          Out(text, text))
    return text.getvalue().splitlines()


def test_the_recorded_daemon_passes_with_what_bash_said() -> None:
    assert _check() == [
        "[provision]   image store: containerd snapshotter; BuildKit platforms: linux/amd64, "
        "linux/amd64/v2, linux/amd64/v3, linux/amd64/v4, linux/arm64",
        "[provision]   dockerd 26.1.5+dfsg1, storage driver overlayfs, insecure registry CIDRs: "
        '["127.0.0.0/8"]',
        "[provision]   default builder: default (driver docker, BuildKit v0.0.0+unknown)"]


@pytest.mark.parametrize(("info", "inspect", "series", "error"), [
    (_info(DriverStatus=CLASSIC), INSPECT, "26.1",
     "dockerd does not use the containerd image store (driver status: [[Backing Filesystem extfs] "),
    (INFO, INSPECT.replace(", linux/arm64", ""), "26.1",
     "BuildKit does not list linux/arm64 (platforms: linux/amd64, linux/amd64/v2, linux/amd64/v3, "
     "linux/amd64/v4); is binfmt qemu-aarch64 enabled (step qemu)?"),
    (INFO, "ERROR: no builder found\n", "26.1", "BuildKit does not list linux/arm64 (platforms: );"),
    (INFO, INSPECT, "27.0",
     "running dockerd is 26.1.5+dfsg1, expected 27.0.x (stop the old daemon and re-run)"),
    (_info(RegistryConfig={"InsecureRegistryCIDRs": ["10.0.0.0/8"]}), INSPECT, "26.1",
     '127.0.0.0/8 is not an insecure registry range; add "insecure-registries": ["127.0.0.1:5000"] '
     "to /etc/docker/daemon.json"),
    (INFO, INSPECT.replace("Driver:        docker", "Driver:        docker-container"), "26.1",
     "default buildx builder does not use the docker driver (got 'docker-container')"),
])
def test_each_check_that_fails_is_the_error(info: str, inspect: str, series: str, error: str) -> None:
    with pytest.raises(HostkitError) as caught:
        _check(info, inspect, series)
    assert str(caught.value).startswith(error)


def test_checks_passed_before_the_failing_one_are_said() -> None:
    text = io.StringIO()
    with pytest.raises(HostkitError, match=r"running dockerd is 26\.1\.5"):
        dockerd.check_dockerd(DockerInfo.parse(INFO), Builder.parse(INSPECT), "27.0", "r", Out(text, text))
    assert [line.split(":")[0] for line in text.getvalue().splitlines()] == ["[provision]   image store"]


# ------------------------------------------------------------------ the commands


def _main(argv: list[str], monkeypatch: pytest.MonkeyPatch, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    monkeypatch.setattr("sys.stdout", out)
    code = cli.main(argv, Out(out, err))
    return code, out.getvalue(), err.getvalue()


def test_debs_at_command(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _main(["debs-at", "docker.io=26.1", "docker-cli"], monkeypatch, DPKG) == (
        0, "docker.io 26.1.5+dfsg1-9+deb13u1+b1, docker-cli 26.1.5+dfsg1-9+deb13u1+b1\n", "")
    assert _main(["debs-at", "docker-buildx=0.14"], monkeypatch, DPKG) == (
        1, "docker-buildx 0.13.1+ds1-3 is not 0.14.x\n", "")
    assert _main(["debs-at", "docker.io=26.1.x"], monkeypatch, DPKG) == (
        3, "", "[provision] ERROR: '26.1.x' is not a version series such as 26.1\n")


def test_version_in_command(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _main(["version-in", "buildx", "0.13"], monkeypatch, BUILDX_DEBIAN) == (0, "0.13.1\n", "")
    assert _main(["version-in", "dockerd", "26.1"], monkeypatch, DOCKERD_VERSION) == (0, "26.1.5\n", "")
    assert _main(["version-in", "dockerd", "27.0"], monkeypatch, DOCKERD_VERSION) == (1, "26.1.5\n", "")
    assert _main(["version-in", "buildx", "0.13"], monkeypatch, "") == (1, "no buildx version in ''\n", "")
    with pytest.raises(SystemExit):  # argparse: not a series
        _main(["version-in", "buildx", "v0.13"], monkeypatch, BUILDX_DEBIAN)


def test_docker_store_command(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _main(["docker-store"], monkeypatch, INFO) == (0, "containerd\n", "")
    assert _main(["docker-store"], monkeypatch, _info(DriverStatus=CLASSIC)) == (0, "classic\n", "")


def test_dockerd_check_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_REGISTRY", "127.0.0.1:5000")
    code, out, err = _main(["dockerd-check", "26.1", "--info", INFO, "--inspect", INSPECT], monkeypatch)
    assert (code, err, len(out.splitlines())) == (0, "", 3)
    code, out, err = _main(["dockerd-check", "26.1", "--info", _info(DriverStatus=CLASSIC),
                            "--inspect", INSPECT], monkeypatch)
    assert (code, out) == (3, "")
    assert err == ("[provision] ERROR: dockerd does not use the containerd image store (driver status: "
                   "[[Backing Filesystem extfs] [Supports d_type true] [Using metacopy false] "
                   "[Native Overlay Diff true] [userxattr false]])\n")

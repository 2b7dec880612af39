"""scripts/provision-host.sh asks hostkit (python -m hostkit, run for real) and acts on the
answer: step images from the suite table, base-arches and base-state; steps buildkit, dockerd
and cosign from debs-at, version-in, docker-store and dockerd-check.

The script is sourced (its functions only: it runs ``main`` when executed) by a bash whose
side effects are stand-in functions: mmdebstrap and the import (``base_image_for``), docker,
the Ubuntu archives' answers, dpkg-query, dockerd, host-services.sh. The registry the host kit
asks is tests/fakes/fake_registry.py; the state directory and the e2e matrix (the host kit's
fixture) are the test's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.fake_registry import FakeRegistry
from tests.unit.helpers import REPO
from tests.unit.hostkit_fakes import MATRIX, RECORDED

SCRIPT = REPO / "scripts" / "provision-host.sh"
ENGINE = RECORDED / "engine"

pytestmark = pytest.mark.spawns("bash")  # every test sources provision-host.sh in bash

IMAGES_STAND_INS = """
trixie_tools() { :; }
ubuntu_arch_mirror() { [[ $1 == resolute ]] && echo http://archive.ubuntu.com/ubuntu; }
ubuntu_pockets() { case $1 in noble) echo "noble noble-updates" ;; *) echo "$1" ;; esac; }
base_image_for() { echo "made $1 $2" >>"$LOG"; }
umount_below() { echo "umount_below ${1#"$ORCH_HOST_STATE"/}" >>"$LOG"; }
docker() { echo "docker $*" >>"$LOG"; }
registry_has_tag() { :; }  # after imagetools create (a stand-in here)
registry_digest() { echo sha256:pushed; }
now() { echo 0; }
"""

ENGINE_STAND_INS = f"""
dpkg-query() {{  # the recorded lines; one package's ${{Version}} alone for pkg_version
    if [[ $2 == '-f=${{Version}}' ]]; then
        awk -F'\t' -v p="$3" '$1 == p {{ printf "%s", $3 }}' {ENGINE}/dpkg-query.txt
    else
        cat {ENGINE}/dpkg-query.txt
    fi
}}
dockerd() {{ cat {ENGINE}/dockerd-version.txt; }}
docker() {{
    case "$1 ${{2:-}}" in
        "buildx version") cat {ENGINE}/docker-buildx-version.txt ;;
        "buildx inspect") cat {ENGINE}/docker-buildx-inspect.txt ;;
        "info ") [[ -z ${{FAKE_NO_DAEMON:-}} ]] ;;  # plain `docker info`: does a daemon answer
        "info --format") sed "$FAKE_INFO_EDIT" {ENGINE}/docker-info.json ;;
        *) echo "unexpected: docker $*" >&2; return 1 ;;
    esac
}}
trixie_apt_init() {{ die "would install"; }}
HOST_SERVICES=true
"""


def _bash(tmp_path: Path, registry: str, body: str, **env: str) -> subprocess.CompletedProcess[str]:
    state = tmp_path / "state"
    full = {**os.environ, "PYTHONPATH": str(REPO), "ORCH_HOSTKIT_PYTHON": sys.executable,
            "ORCH_E2E_MATRIX": str(MATRIX), "ORCH_REGISTRY": registry, "ORCH_HOST_STATE": str(state),
            "ORCH_HOST_ETC": str(tmp_path / "etc"), "ORCH_HOST_LOG_DIR": str(tmp_path / "log"),
            "ORCH_HOST_RUN_DIR": str(tmp_path / "run"), "LOG": str(tmp_path / "log.txt"), **env}
    return subprocess.run(["bash", "-c", f'source "$1"\n{body}', "bash", str(SCRIPT)], env=full,
                          capture_output=True, text=True, timeout=110, check=False)


def test_step_images_does_what_hostkit_decides(tmp_path: Path) -> None:
    """bookworm: current (skip); trixie: arm64 kept from an earlier run, so a new index only;
    noble: arm64 asked for but not served (a warning), its pockets changed (rebuild); resolute:
    current but its index gone from the registry (push again)."""
    rootfs = tmp_path / "state" / "rootfs"
    for name in ("bookworm-amd64", "trixie-amd64", "trixie-arm64", "noble-amd64", "resolute-amd64"):
        (rootfs / name).mkdir(parents=True)
    markers = {"bookworm": "4 amd64", "trixie": "4 amd64", "noble": "4 amd64 pockets: noble",
               "resolute": "4 amd64 pockets: resolute"}
    for suite, text in markers.items():
        (rootfs / f"{suite}.recipe").write_text(text + "\n")
    with FakeRegistry() as reg:
        bookworm = reg.put_image("debian", "bookworm-slim", "b")
        reg.put_image("debian", "trixie-slim-arm64", "t")
        reg.put_image("ubuntu", "noble", "n")
        proc = _bash(tmp_path, reg.address, IMAGES_STAND_INS + "step_images",
                     ORCH_BASE_SUITES="bookworm trixie noble resolute", ORCH_ARM64_SUITES="noble")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = reg.address
    assert proc.stdout.splitlines() == [
        f"[provision]   skip: {r}/debian:bookworm-slim already in the registry ({bookworm})",
        "[provision]   trixie base recipe changed (now 4 amd64 arm64): rebuilding the index",
        f"[provision]   docker buildx imagetools create -t {r}/debian:trixie-slim "
        f"{r}/debian:trixie-slim-amd64 {r}/debian:trixie-slim-arm64",
        f"[provision]   done: pushed {r}/debian:trixie-slim (sha256:pushed: amd64 arm64) - trixie took 0.0s",
        "[provision]   noble base recipe changed (now 4 amd64 pockets: noble noble-updates): "
        "rebuilding the index",
        f"[provision]   docker buildx imagetools create -t {r}/ubuntu:noble {r}/ubuntu:noble-amd64",
        f"[provision]   done: pushed {r}/ubuntu:noble (sha256:pushed: amd64) - noble took 0.0s",
        f"[provision]   docker buildx imagetools create -t {r}/ubuntu:resolute {r}/ubuntu:resolute-amd64",
        f"[provision]   done: pushed {r}/ubuntu:resolute (sha256:pushed: amd64) - resolute took 0.0s"]
    assert "WARNING: no arm64 base for noble" in proc.stderr
    assert (tmp_path / "log.txt").read_text().splitlines() == [
        "made trixie amd64", "made trixie arm64",
        f"docker buildx imagetools create -t {r}/debian:trixie-slim {r}/debian:trixie-slim-amd64 "
        f"{r}/debian:trixie-slim-arm64",
        f"docker image rm -f {r}/ubuntu:noble", "umount_below rootfs/noble-amd64",
        f"docker image rm -f {r}/ubuntu:noble-amd64", f"docker image rm -f {r}/ubuntu:noble-arm64",
        "made noble amd64",
        f"docker buildx imagetools create -t {r}/ubuntu:noble {r}/ubuntu:noble-amd64",
        "made resolute amd64",
        f"docker buildx imagetools create -t {r}/ubuntu:resolute {r}/ubuntu:resolute-amd64"]
    assert sorted(p.name for p in rootfs.iterdir() if p.is_dir()) == [
        "bookworm-amd64", "resolute-amd64", "trixie-amd64", "trixie-arm64"]  # noble's removed
    assert {s: (rootfs / f"{s}.recipe").read_text() for s in markers} == {
        "bookworm": "4 amd64\n", "trixie": "4 amd64 arm64\n",
        "noble": "4 amd64 pockets: noble noble-updates\n", "resolute": "4 amd64 pockets: resolute\n"}


def test_a_suite_the_matrix_does_not_have_stops_step_images(tmp_path: Path) -> None:
    proc = _bash(tmp_path, "127.0.0.1:9", IMAGES_STAND_INS + "step_images", ORCH_BASE_SUITES="bookworm sid")
    assert proc.returncode == 1
    assert "has no distro sid (ORCH_BASE_SUITES)" in proc.stderr
    assert not (tmp_path / "log.txt").exists()


def test_steps_buildkit_dockerd_and_cosign_on_the_recorded_host(tmp_path: Path) -> None:
    proc = _bash(tmp_path, "127.0.0.1:5000", ENGINE_STAND_INS + "step_buildkit; step_dockerd; step_cosign",
                 FAKE_INFO_EDIT="s/x/x/")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    # `command -v docker` names this machine's docker (the stand-in is a function)
    assert lines.pop(1).endswith(" sees: github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3")
    assert lines == [
        "[provision]   skip: trixie docker packages installed (docker.io 26.1.5+dfsg1-9+deb13u1+b1, "
        "docker-cli 26.1.5+dfsg1-9+deb13u1+b1, docker-buildx 0.13.1+ds1-3)",
        "[provision]   Docker version 26.1.5+dfsg1, build 411e817",
        f"[provision]   wrote {tmp_path}/etc/dockerd.json (containerd image store)",
        "[provision]   image store: containerd snapshotter; BuildKit platforms: linux/amd64, "
        "linux/amd64/v2, linux/amd64/v3, linux/amd64/v4, linux/arm64",
        '[provision]   dockerd 26.1.5+dfsg1, storage driver overlayfs, insecure registry CIDRs: '
        '["127.0.0.0/8"]',
        "[provision]   default builder: default (driver docker, BuildKit v0.0.0+unknown)",
        "[provision]   skip: cosign 2.5.0-2+b5 installed (trixie)"]


def test_step_buildkit_wants_its_versions(tmp_path: Path) -> None:
    proc = _bash(tmp_path, "127.0.0.1:5000", ENGINE_STAND_INS + "WANT_DOCKERD=27.0; step_buildkit")
    assert (proc.returncode, proc.stderr) == (1, "[provision] ERROR: would install\n")
    proc = _bash(tmp_path, "127.0.0.1:5000", ENGINE_STAND_INS
                 + "buildkit_upgraded() { :; }; WANT_BUILDX=0.14; step_buildkit")
    assert proc.returncode == 1
    assert proc.stderr.startswith("[provision] ERROR: `docker buildx version` is not 0.14.x: "
                                  "github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3 (client ")


def test_step_dockerd_stops_at_the_first_check_that_fails(tmp_path: Path) -> None:
    proc = _bash(tmp_path, "127.0.0.1:5000", ENGINE_STAND_INS + "step_dockerd",
                 FAKE_INFO_EDIT='s|"127.0.0.0/8"|"10.0.0.0/8"|')
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-1] == ('[provision]   dockerd 26.1.5+dfsg1, storage driver overlayfs, '
                                            'insecure registry CIDRs: ["10.0.0.0/8"]')
    assert proc.stderr == ('[provision] ERROR: 127.0.0.0/8 is not an insecure registry range; add '
                           '"insecure-registries": ["127.0.0.1:5000"] to /etc/docker/daemon.json\n')


def test_a_dockerd_that_does_not_answer_is_not_taken_for_the_classic_store(tmp_path: Path) -> None:
    """`docker info --format` exits 0 with an empty answer when no daemon answers: step 4 asks
    plain `docker info` first, so a stopped dockerd is started, not "restarted off the classic
    store", and one that still does not answer after the start is said so."""
    proc = _bash(tmp_path, "127.0.0.1:5000", ENGINE_STAND_INS + "step_dockerd",
                 FAKE_INFO_EDIT="s/x/x/", FAKE_NO_DAEMON="1")
    assert proc.returncode == 1
    assert "classic image store" not in proc.stdout
    assert "`docker info` failed after" in proc.stderr

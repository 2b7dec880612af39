"""linux/amd64 + linux/arm64: one OCI index per tag, arm64 CPython cross-compiled on amd64,
its apt steps and every smoke check run under QEMU."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import FULL, REGISTRY, Result, registry

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BOTH = {"linux/amd64", "linux/arm64"}


def _repo(config: Path) -> str:
    return str(yaml.safe_load(config.read_text())["publish"]["repository"])


def test_source_cells_publish_one_index_with_both_platforms(
        multiplatform: tuple[Path, Result]) -> None:
    workspace, release = multiplatform
    assert release.rc == 0, release.explain()
    reg, repo = registry(), _repo(workspace)
    assert {c["id"] for c in release.report["cells"]} >= {"3.14-source-bookworm-runtime",
                                                          "3.14-source-bookworm-dev"}
    # arm64's CPython comes from the cross compile on amd64, never a compile under QEMU: the
    # Dockerfile routes amd64-to-arm64 through the cross stage, and the only compiles the run
    # made are the native and the cross one (either may be a cache hit on a warm engine: a
    # change to the native compile's steps alone rebuilds only that one)
    dockerfile = (workspace.parent / "generated" / "bookworm" / "Dockerfile").read_text()
    assert "FROM python-3.14-source-cross-arm64 AS python-3.14-source-amd64-to-arm64" in dockerfile
    assert "FROM python-3.14-source AS python-3.14-source-amd64-to-amd64" in dockerfile
    if not FULL:
        assert set(release.report["compiles"]) <= {"bookworm/python-3.14-source",
                                                   "bookworm/python-3.14-source-cross-arm64"}, \
            release.report["compiles"]
    for cid, cell in release.cells().items():
        manifests = reg.platform_manifests(repo, cell["digest"])
        want = {"linux/amd64"} if "python-build" in cid else BOTH
        assert manifests is not None and set(manifests) == want, (cid, manifests)
        assert set(cell["platforms"]) == want and set(cell["sizes"]) == want, cid
        for tag in cell["tags"]:  # every tag is the same index
            assert reg.digest(repo, tag) == cell["digest"], (cid, tag)


def test_arm64_image_runs_under_qemu_and_passed_every_check(
        multiplatform: tuple[Path, Result]) -> None:
    workspace, release = multiplatform
    assert release.rc == 0, release.explain()
    repo = _repo(workspace)
    for cid in ("3.14-source-bookworm-runtime", "3.14-source-bookworm-dev"):
        cell = release.cells()[cid]
        ref = f"{REGISTRY}/{repo}:{cell['tags'][0]}"
        out = subprocess.run(
            ["docker", "run", "--rm", "--pull", "always", "--platform", "linux/arm64", ref,
             "python3", "-c", "import platform, ssl, sqlite3, compression.zstd; "
             "print(platform.machine(), platform.python_version())"],
            capture_output=True, text=True, timeout=600, check=False)
        assert out.returncode == 0 and out.stdout.split() == ["aarch64", "3.14.4"], (cid, out.stderr)
        assert "new-in-3.14 [linux/arm64]" in {c["check"] for c in cell["checks"]}, cid
        checks = {c["check"]: c["ok"] for c in cell["checks"]}
        native = {name for name in checks if "[" not in name}
        arm = {name.removesuffix(" [linux/arm64]") for name in checks if name.endswith("[linux/arm64]")}
        assert native and arm == native, (cid, native ^ arm)  # every check on both platforms
        assert all(checks.values()), (cid, checks)
    runtime_checks = {c["check"] for c in release.cells()["3.14-source-bookworm-runtime"]["checks"]}
    assert "dev-venv-runs-in-runtime [linux/arm64]" in runtime_checks
    assert "interpreter-hardening [linux/arm64]" in runtime_checks


def test_labels_say_how_each_platform_was_compiled_and_hardened(
        multiplatform: tuple[Path, Result]) -> None:
    workspace, release = multiplatform
    assert release.rc == 0, release.explain()
    reg, repo = registry(), _repo(workspace)
    cell = release.cells()["3.14-source-bookworm-runtime"]
    configs = reg.platform_configs(repo, cell["digest"])
    assert configs is not None and set(configs) == BOTH
    fps = set()
    for plat, cfg in configs.items():
        labels = cfg["config"]["Labels"]
        assert cfg["architecture"] == plat.split("/")[1]
        assert labels["org.org.base-image.optimizations"] == "none"  # fast profile: no PGO/LTO
        hardening = labels["org.org.base-image.hardening"]
        assert "relro=full" in hardening and "stack-protector" in hardening, (plat, hardening)
        fps.add(labels["org.org.base-image.fingerprint"])
    assert len(fps) == 2, "each platform carries its own content fingerprint"


def test_dev_and_runtime_share_layers_per_platform(multiplatform: tuple[Path, Result]) -> None:
    workspace, release = multiplatform
    assert release.rc == 0, release.explain()
    reg, repo = registry(), _repo(workspace)
    cells = release.cells()
    runtimes = reg.platform_manifests(repo, cells["3.14-source-bookworm-runtime"]["digest"]) or {}
    devs = reg.platform_manifests(repo, cells["3.14-source-bookworm-dev"]["digest"]) or {}
    assert set(runtimes) == set(devs) == BOTH
    for plat in BOTH:
        runtime, dev = reg.layer_digests(repo, runtimes[plat]), reg.layer_digests(repo, devs[plat])
        assert runtime and dev[: len(runtime)] == runtime and len(dev) > len(runtime), plat
    # the CPython tree layer differs between the platforms (arm64 code), the stages do not
    assert reg.layer_digests(repo, runtimes["linux/amd64"]) != \
        reg.layer_digests(repo, runtimes["linux/arm64"])

"""Issue 18: the minimal variant and free-threaded CPython, built, smoke-tested and published
for real: one minimal cell and one free-threaded cell pair on bookworm, linux/amd64.

Not in `make test` (CI budget: the free-threaded build is a CPython compile of its own):
`make test-full` runs it, or `ORCH_E2E_FLAVOURS=1 pytest tests/e2e/test_flavours.py` after
`make provision` (the 3.13 source stages come from the build cache of the main release when
it ran first)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import BOTH_PLATFORMS, FULL, REGISTRY, Result, make_config, orch, registry

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.full,
              pytest.mark.skipif(not (FULL or os.environ.get("ORCH_E2E_FLAVOURS")),
                                 reason="a CPython compile more: make test-full or ORCH_E2E_FLAVOURS=1")]

MINIMAL = "3.13-source-bookworm-minimal"
RUNTIME = "3.13-source-bookworm-runtime"
FT_RUNTIME = "3.13t-source-bookworm-runtime"
FT_DEV = "3.13t-source-bookworm-dev"
CELLS = {RUNTIME, "3.13-source-bookworm-dev", MINIMAL, FT_RUNTIME, FT_DEV}
EMPTY_LAYER = "sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1"  # 32 B
ONLY = ["--only", "3.13-source-bookworm-*", "--only", "3.13t-source-bookworm-*"]


@pytest.fixture(scope="module")
def flavours(e2e_bases: dict[str, str], tmp_path_factory: pytest.TempPathFactory,
             session_id: str) -> tuple[Path, Result]:
    """tests/e2e/images.yaml with variants.minimal and 3.13's free-threaded build, released
    for the bookworm 3.13 source cells (runtime, dev, minimal; 3.13t runtime and dev)."""
    ws = tmp_path_factory.mktemp("flavours")
    config = make_config(ws, f"e2e-{session_id}/flavours", **{
        '  - version: "3.13.15"\n': '  - version: "3.13.15"\n    freethreaded: true\n',
        "  dev: {size_budget_mb: 600}\n": "  dev: {size_budget_mb: 600}\n  minimal: {size_budget_mb: 60}\n",
        '  - {python: "3.11", method: source}\n':
        '  - {python: "3.11", method: source}\n  - {method: deadsnakes, variant: minimal}\n'
        '  - {python: "3.13t", method: deadsnakes}\n  - {python: "3.13t", method: python-build}\n'
        '  - {python: "3.13t", variant: minimal}\n'})
    config.write_text(config.read_text().replace(BOTH_PLATFORMS, "platforms: [linux/amd64]\n"))
    for step in (("lock",), ("render",)):
        res = orch(*step, config=config)
        assert res.rc == 0, res.explain()
    return config, orch("release", *ONLY, config=config, report=ws / "release.json")


def _repo(config: Path) -> str:
    return str(yaml.safe_load(config.read_text())["publish"]["repository"])


def _ref(config: Path, release: Result, cell: str) -> str:
    return f"{REGISTRY}/{_repo(config)}@{release.cells()[cell]['digest']}"


def _docker_run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "run", "--rm", "--pull", "missing", "--network", "none", *argv],
                          capture_output=True, text=True, timeout=300, check=False)


def _layers(repo: str, digest: str) -> list[dict[str, Any]]:
    manifests = registry().platform_manifests(repo, digest)
    assert manifests and "linux/amd64" in manifests, manifests
    found = registry().manifest(repo, manifests["linux/amd64"])
    assert found is not None
    layers: list[dict[str, Any]] = json.loads(found[0])["layers"]
    return layers


def test_the_flavour_cells_are_published_and_pass_their_smoke_tests(
        flavours: tuple[Path, Result]) -> None:
    config, release = flavours
    assert release.rc == 0, release.explain()
    cells = release.cells()
    assert set(cells) == CELLS
    for cid, cell in cells.items():
        assert cell["status"] == "ok" and cell["publish"] == "new", (cid, cell["message"])
        checks = {c["check"]: c["ok"] for c in cell["checks"]}
        assert checks and all(checks.values()), (cid, checks)
    minimal = {c["check"] for c in cells[MINIMAL]["checks"]}
    assert {"python-version", "stdlib-imports", "tls-verify", "extensions-load", "no-shell",
            "runs-as-non-root", "python-tree-read-only", "dpkg-status", "venv", "size-budget",
            "interpreter-hardening", "dev-venv-runs-in-minimal"} <= minimal
    for cid in (FT_RUNTIME, FT_DEV):
        assert "free-threaded" in {c["check"] for c in cells[cid]["checks"]}, cid
    assert "dev-venv-runs-in-runtime" in {c["check"] for c in cells[FT_RUNTIME]["checks"]}
    version = cells[RUNTIME]["tags"][-1].split("-", 1)[0]  # 3.13.15-runtime-bookworm
    tags = set(registry().tags(_repo(config)))
    assert {"3.13-minimal", "3.13-minimal-bookworm", f"{version}-minimal-bookworm",
            "3.13t-runtime", "3.13t-dev", f"{version}t-runtime-bookworm"} <= tags, sorted(tags)
    assert cells[MINIMAL]["size_bytes"] <= 60e6, cells[MINIMAL]["size_bytes"]


def test_minimal_has_no_shell(flavours: tuple[Path, Result]) -> None:
    config, release = flavours
    assert release.rc == 0, release.explain()
    ref = _ref(config, release, MINIMAL)
    as_argument = _docker_run(ref, "sh")  # ENTRYPOINT python3: `python3 sh`
    assert as_argument.returncode != 0, as_argument.stdout
    as_entrypoint = _docker_run("--entrypoint", "sh", ref)
    assert as_entrypoint.returncode != 0, as_entrypoint.stdout
    assert "not found" in as_entrypoint.stderr or "no such file" in as_entrypoint.stderr.lower()
    for tool in ("/bin/sh", "/usr/bin/apt-get", "/usr/bin/dpkg"):
        assert _docker_run("--entrypoint", tool, ref).returncode != 0, tool
    works = _docker_run(ref, "-c", "import os, ssl, sqlite3; print(os.getuid())")
    assert works.returncode == 0 and works.stdout.strip() == "10001", works.stderr


def test_minimal_shares_the_cpython_layer_with_the_runtime(flavours: tuple[Path, Result]) -> None:
    """The minimal image is two layers: its files, then the very layer the runtime image of
    the same cell has for the CPython tree (COPY --link of the same FROM-scratch stage)."""
    config, release = flavours
    assert release.rc == 0, release.explain()
    repo, cells = _repo(config), release.cells()
    # BuildKit writes the well-known empty layer for the WORKDIR of a FROM-scratch image
    minimal = [x for x in _layers(repo, cells[MINIMAL]["digest"]) if x["digest"] != EMPTY_LAYER]
    runtime = _layers(repo, cells[RUNTIME]["digest"])
    assert len(minimal) == 2, minimal
    tree = minimal[1]
    assert tree["digest"] in {x["digest"] for x in runtime}, (tree, runtime)
    assert minimal[0]["digest"] not in {x["digest"] for x in runtime}
    # and the same tree hash in the labels, read by a shell in one and from the archive in the other
    labels = {cid: registry().image_config(repo, cells[cid]["digest"])["config"]["Labels"]  # type: ignore[index]
              for cid in (MINIMAL, RUNTIME)}
    assert labels[MINIMAL]["org.org.base-image.python-tree"] == \
        labels[RUNTIME]["org.org.base-image.python-tree"]
    packages = labels[MINIMAL]["org.org.base-image.packages"]
    assert "libc6=" in packages and "tzdata=" in packages and "ca-certificates=" in packages
    assert "dpkg=" not in packages and "bash=" not in packages and "apt=" not in packages
    assert labels[MINIMAL]["org.org.base-image.apt-sources"] == \
        labels[RUNTIME]["org.org.base-image.apt-sources"]


def test_free_threaded_images_run_without_the_gil(flavours: tuple[Path, Result]) -> None:
    config, release = flavours
    assert release.rc == 0, release.explain()
    script = ("import sys, sysconfig, ssl, sqlite3, decimal; "
              "print(sys._is_gil_enabled(), sysconfig.get_config_var('Py_GIL_DISABLED'), "
              "sys.abiflags, sys.executable)")
    for cid in (FT_RUNTIME, FT_DEV):
        out = _docker_run(_ref(config, release, cid), "python3", "-c", script)
        assert out.returncode == 0, (cid, out.stderr)
        assert out.stdout.split() == ["False", "1", "t", "/opt/org/python/3.13t/bin/python3"], cid
    gil = _docker_run(_ref(config, release, RUNTIME), "python3", "-c",
                      "import sys; print(sys._is_gil_enabled())")
    assert gil.stdout.strip() == "True"
    builds = {c for cell in release.cells().values() for c in cell["compiled"]}
    assert builds <= {"bookworm/python-3.13-source", "bookworm/python-3.13t-source"}, builds
    assert len(release.report["compiles"]) == len(set(release.report["compiles"]))

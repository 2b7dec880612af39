"""Issues 18 and 28: the minimal variant, the free-threaded 3.14t and what 3.14 adds, built,
smoke-tested and published for real by the main e2e release (bookworm, linux/amd64; the
arm64 side: test_multiplatform.py): `make test` runs it (CI budget: the 3.14t compile is one
of the four of a cold run)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import REGISTRY, Result, registry

pytestmark = [pytest.mark.docker, pytest.mark.slow]

MINIMAL = "3.14-source-bookworm-minimal"
RUNTIME = "3.14-source-bookworm-runtime"
FT_RUNTIME = "3.14t-source-bookworm-runtime"
FT_DEV = "3.14t-source-bookworm-dev"
CELLS = {RUNTIME, "3.14-source-bookworm-dev", MINIMAL, FT_RUNTIME, FT_DEV}
EMPTY_LAYER = "sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1"  # 32 B


@pytest.fixture(scope="module")
def flavours(release: Result, workspace: Path) -> tuple[Path, Result]:
    """The main release of the e2e matrix (3.14 runtime, dev, minimal; 3.14t runtime, dev)."""
    return workspace, release


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
    assert set(cells) >= CELLS
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
    for cid in CELLS:
        assert "new-in-3.14" in {c["check"] for c in cells[cid]["checks"]}, cid
    version = cells[RUNTIME]["tags"][-1].split("-", 1)[0]  # 3.14.4-runtime-bookworm
    assert version == "3.14.4", cells[RUNTIME]["tags"]
    tags = set(registry().tags(_repo(config)))
    assert {"3.14-minimal", "3.14-minimal-bookworm", f"{version}-minimal-bookworm",
            "3.14t-runtime", "3.14t-dev", f"{version}t-runtime-bookworm"} <= tags, sorted(tags)
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
        assert out.stdout.split() == ["False", "1", "t", "/opt/org/python/3.14t/bin/python3"], cid
    gil = _docker_run(_ref(config, release, RUNTIME), "python3", "-c",
                      "import sys; print(sys._is_gil_enabled())")
    assert gil.stdout.strip() == "True"
    assert len(release.report["compiles"]) == len(set(release.report["compiles"]))


NEW_IN_314 = """
import compression.zstd as z, annotationlib, sys, platform
import _pyrepl.main, _pyrepl.unix_console
def f(x: Missing) -> None: ...
print(platform.machine(), platform.python_version(),
      z.decompress(z.compress(b"zstd" * 100)) == b"zstd" * 100,
      "x" in annotationlib.get_annotations(f, format=annotationlib.Format.FORWARDREF))
"""


def test_every_3_14_image_has_what_3_14_adds(flavours: tuple[Path, Result]) -> None:
    """compression.zstd (libzstd linked at build time, the runtime library present),
    deferred annotations read through annotationlib, the new REPL's modules: run as the
    published image's default user, read-only, no network."""
    config, release = flavours
    assert release.rc == 0, release.explain()
    for cid in sorted(CELLS):
        entry = [] if cid.endswith("-minimal") else ["python3"]
        out = _docker_run("--read-only", _ref(config, release, cid), *entry, "-c", NEW_IN_314)
        assert out.returncode == 0, (cid, out.stderr)
        assert out.stdout.split() == ["x86_64", "3.14.4", "True", "True"], (cid, out.stdout)


SPAM = "#include <Python.h>\nstatic PyModuleDef m = {PyModuleDef_HEAD_INIT, \"spam\"};\n" \
    "static PyModuleDef_Slot s[] = {{Py_mod_gil, Py_MOD_GIL_NOT_USED}, {0, NULL}};\n" \
    "PyMODINIT_FUNC PyInit_spam(void) { m.m_slots = s; return PyModuleDef_Init(&m); }\n"


def test_a_c_extension_built_in_3_14t_dev_runs_in_3_14t_runtime(
        flavours: tuple[Path, Result], tmp_path: Path) -> None:
    """The downstream app: an extension compiled against 3.14t's headers in the dev image (the
    t ABI: its file name says cpython-314t) imports in the runtime image with the GIL off."""
    config, release = flavours
    assert release.rc == 0, release.explain()
    src = tmp_path / "src"
    src.mkdir()
    src.chmod(0o777)
    (src / "spam.c").write_text(SPAM)
    build = ("cd /src && cc -shared -fPIC $(python3-config --includes) spam.c "
             "-o spam$(python3-config --extension-suffix) && ls spam*.so")
    out = _docker_run("-v", f"{src}:/src", "--user", "0", "--entrypoint", "sh",
                      _ref(config, release, FT_DEV), "-c", build)
    assert out.returncode == 0, out.stderr
    assert "cpython-314t-x86_64-linux-gnu.so" in out.stdout, out.stdout
    run = _docker_run("-v", f"{src}:/src:ro", "-w", "/src", _ref(config, release, FT_RUNTIME),
                      "python3", "-c", "import sys, spam; print(spam.__name__, sys._is_gil_enabled())")
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["spam", "False"], run.stdout


FLAGS = ("import sysconfig; print(' '.join(str(sysconfig.get_config_var(v)) for v in "
         "('CONFIG_ARGS', 'CFLAGS', 'PY_CFLAGS_NODIST', 'LDFLAGS', 'PY_LDFLAGS_NODIST')))")


def test_the_profile_not_the_distro_decides_optimisation(flavours: tuple[Path, Result]) -> None:
    """Issue 33, item 2: the e2e profile (fast: no LTO, no PGO, no frame pointers) is what every
    compiled interpreter got, on Ubuntu too (its dpkg adds LTO and frame pointers by default),
    while the distro's hardening flags are there."""
    config, release = flavours
    assert release.rc == 0, release.explain()
    checked = []
    for cid in release.cells():
        if not cid.endswith("-runtime") or "deadsnakes" in cid:
            continue
        out = _docker_run(_ref(config, release, cid), "python3", "-c", FLAGS)
        assert out.returncode == 0, (cid, out.stderr)
        flags = out.stdout.split()
        for bad in ("-flto", "-flto=auto", "-ffat-lto-objects", "-fno-omit-frame-pointer",
                    "-Wl,-Bsymbolic-functions", "--with-lto", "--enable-optimizations"):
            assert bad not in flags, (cid, bad)
        assert "-fstack-protector-strong" in flags, (cid, flags)
        checked.append(cid)
    assert "3.14-source-bookworm-runtime" in checked

"""Issue: real BuildKit builds, end to end: build, smoke-test, push to a real registry."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from hostkit.matrix import REFERENCE_RELEASE as SIGNED
from orchestrator.config import loader
from orchestrator.engine.docker_engine import DockerEngine
from orchestrator.lock import lockfile
from orchestrator.planning import plan
from orchestrator.smoke import suite
from tests.e2e.conftest import (
    E2E_EPOCH,
    FULL,
    MIRROR_DIR,
    SESSION_DATE,
    Result,
    Server,
    make_config,
    orch,
    registry,
)

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _plan(config: Path) -> plan.Plan:
    loaded = loader.load(config, SESSION_DATE)
    return plan.build(loaded, lockfile.read(loaded), today=SESSION_DATE)


def _repo(config: Path) -> str:
    return str(yaml.safe_load(config.read_text())["publish"]["repository"])


def test_release_builds_tests_and_publishes_every_cell(release: Result, workspace: Path) -> None:
    assert release.rc == 0, release.explain()
    cells = release.cells()
    expected = {i.id for i in _plan(workspace).images}
    assert set(cells) == expected and len(expected) == (15 if FULL else 9)
    for cid, cell in cells.items():
        assert cell["status"] == "ok", (cid, cell["message"])
        assert cell["publish"] == "new", cid
        assert cell["digest"].startswith("sha256:"), cid
        checks = {c["check"]: c["ok"] for c in cell["checks"]}
        assert checks and all(checks.values()), (cid, checks)
        assert "python-version" in checks and "stdlib-imports" in checks and "tls-verify" in checks
    # the dev/runtime promise was checked for every runtime image
    for cid, cell in cells.items():
        names = {c["check"] for c in cell["checks"]}
        if cid.endswith("-runtime"):
            assert "dev-venv-runs-in-runtime" in names, cid
            assert {"no-compilers", "runs-as-non-root", "python-tree-read-only"} <= names
        elif cid.endswith("-dev"):
            assert "dev-c-extension-wheel" in names, cid
        else:
            assert cid.endswith("-minimal") and {"no-shell", "extensions-load"} <= names, cid
        # what 3.14 adds (compression.zstd, annotationlib, the new REPL) in every 3.14 image
        assert ("new-in-3.14" in names) == cid.startswith("3.14"), cid
        assert ("free-threaded" in names) == cid.startswith("3.14t-"), cid


def test_registry_holds_every_tag_at_the_reported_digest(release: Result, workspace: Path) -> None:
    assert release.rc == 0, release.explain()
    reg, repo = registry(), _repo(workspace)
    cells = release.cells()
    wanted = set()
    for img in _plan(workspace).images:
        digest = cells[img.id]["digest"]
        for tag in (*img.tags, cells[img.id]["immutable_tag"]):
            wanted.add(tag)
            assert reg.digest(repo, tag) == digest, (img.id, tag)
    assert set(reg.tags(repo)) == wanted
    # spot-check the tag family the README promises
    assert {"3.14-runtime", "3.14-dev", "3.14-minimal", "3.14.4-runtime-bookworm", "3.14t-runtime",
            "3.14t-dev", "3.13-runtime", "3.13-runtime-bookworm-pybuild", "3.12-runtime",
            "3.12-dev", "3.12-runtime-noble-deadsnakes"} <= wanted
    if FULL:
        assert {"3.14-runtime-trixie", "3.14-runtime-resolute", "3.14-dev-resolute"} <= wanted


def test_deadsnakes_cell_installs_the_ppa_build(release: Result, workspace: Path) -> None:
    """The deadsnakes images carry the test PPA's python3.12 (its +deadsnakes.e2e1 version,
    verified against the pinned key), not Ubuntu's own, and every smoke check ran on them."""
    assert release.rc == 0, release.explain()
    cells = release.cells()
    for variant in ("runtime", "dev"):
        cid = f"3.12-deadsnakes-noble-{variant}"
        out = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", f"{registry().host}/{_repo(workspace)}@"
             f"{cells[cid]['digest']}", "dpkg-query", "-W", "-f", "${Version}", "python3.12"],
            capture_output=True, text=True, check=True).stdout
        assert out.endswith("+deadsnakes.e2e1"), (cid, out)
        names = {c["check"] for c in cells[cid]["checks"]}
        assert {"ldd-resolves", "python-tree-read-only", "on-path", "stdlib-imports"} <= names
    runtime_checks = {c["check"] for c in cells["3.12-deadsnakes-noble-runtime"]["checks"]}
    assert {"no-compilers", "pip-only-in-dev", "venv", "dev-venv-runs-in-runtime"} <= runtime_checks
    assert "dev-c-extension-wheel" in {c["check"] for c in cells["3.12-deadsnakes-noble-dev"]["checks"]}



_INSTALL_RAN = re.compile(r"^#\d+ [\d.]+ deadsnakes cache key: ", re.MULTILINE)  # the RUN's output


def test_a_ppa_upload_rebuilds_the_deadsnakes_install_on_a_warm_builder(
    release: Result, workspace: Path, tmp_path: Path,
) -> None:
    """The PPA's InRelease is a cache key of the deadsnakes install: with the PPA unchanged the
    install stays cached (the builder is warm); once the PPA publishes (here: its InRelease
    signed anew, as Launchpad's publisher does on every upload) the next build runs the
    install again, where a cached layer would keep the older build. Nothing is compiled."""
    assert release.rc == 0, release.explain()
    cid = "3.12-deadsnakes-noble-runtime"

    def build(name: str) -> str:
        res = orch("build", "--only", cid, config=workspace, report=tmp_path / f"{name}.json")
        assert res.rc == 0, res.explain()
        assert res.report["compiles"] == [], res.report["compiles"]
        return Path(res.cells()[cid]["log"]).read_text()

    assert not _INSTALL_RAN.search(build("unchanged")), "the PPA did not change; the install ran"
    dists = MIRROR_DIR / "ppa" / "deadsnakes" / "ppa" / "ubuntu" / "dists" / "noble"
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--yes", "--quiet"]
    original = (dists / "InRelease").read_bytes()
    try:
        subprocess.run([*gpg, "--import", str(Path(__file__).parent / "ppa" / "signing-key.secret.asc")],
                       check=True, capture_output=True)
        time.sleep(1.1)  # a signature made in the same second as the last one may be identical
        subprocess.run([*gpg, "--clearsign", "-o", str(dists / "InRelease.new"),
                        str(dists / "Release")], check=True, capture_output=True)
        (dists / "InRelease.new").replace(dists / "InRelease")
        assert (dists / "InRelease").read_bytes() != original
        assert _INSTALL_RAN.search(build("after-upload")), "the PPA published; the install was cached"
    finally:  # the host's mirror as provisioning left it
        (dists / "InRelease").write_bytes(original)
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False,
                       capture_output=True)


def _release_date(version: str) -> str:
    """__DATE__ __TIME__ as GCC writes them under SOURCE_DATE_EPOCH = the mtime of
    Include/patchlevel.h in the mirrored tarball (what both compile methods export)."""
    here = MIRROR_DIR / "ftp" / "python" / version
    tarballs = [here / f"Python-{version}{ext}" for ext in (".tar.xz", ".tgz")]
    tarball = next((t for t in tarballs if t.is_file()), None)
    assert tarball is not None, f"no tarball of {version} on the mirror"
    with tarfile.open(tarball) as tar:
        mtime = tar.getmember(f"Python-{version}/Include/patchlevel.h").mtime
    return time.strftime("%b %e %Y %H:%M:%S", time.gmtime(mtime))


def test_compiled_interpreters_carry_the_release_date_not_the_build_day(
        release: Result, workspace: Path) -> None:
    """Issue 16: sys.version's build date comes from the tarball for both compile methods
    (python-build through its before_install_package hook), so a rebuild of the same source
    on another day gives the same interpreter."""
    assert release.rc == 0, release.explain()
    cells, seen = release.cells(), set()
    for img in _plan(workspace).images:
        if img.build is None or img.variant != "runtime":
            continue
        out = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", f"{registry().host}/{_repo(workspace)}@"
             f"{cells[img.id]['digest']}", "python3", "-c",
             "import platform; print(platform.python_build()[1])"],
            capture_output=True, text=True, check=False)
        assert out.returncode == 0, (img.id, out.stderr)
        assert out.stdout.strip() == _release_date(img.version), (img.id, out.stdout)
        seen.add(img.method)
    assert seen == {"source", "python-build"}

def test_dev_shares_all_runtime_layers(release: Result, workspace: Path) -> None:
    """Per platform: the dev manifest starts with every layer of the runtime manifest."""
    assert release.rc == 0, release.explain()
    reg, repo = registry(), _repo(workspace)
    cells = release.cells()
    for cid in cells:
        if not cid.endswith("-runtime"):
            continue
        runtimes = reg.platform_manifests(repo, cells[cid]["digest"]) or {}
        devs = reg.platform_manifests(repo, cells[cid.replace("-runtime", "-dev")]["digest"]) or {}
        assert runtimes and set(runtimes) == set(devs), cid
        for plat, manifest in runtimes.items():
            runtime = reg.layer_digests(repo, manifest)
            dev = reg.layer_digests(repo, devs[plat])
            assert runtime and dev[: len(runtime)] == runtime, (cid, plat)
            assert len(dev) > len(runtime), (cid, plat)


def test_published_layers_hold_no_file_time_after_source_date_epoch(
        release: Result, workspace: Path) -> None:
    """build.rewrite_timestamps: in every layer a release build added, no file, directory or
    link is dated after SOURCE_DATE_EPOCH; the base image's layers come through unchanged."""
    assert release.rc == 0, release.explain()
    reg, repo = registry(), _repo(workspace)
    lock = lockfile.read(loader.load(workspace, SESSION_DATE))
    epoch, checked = int(E2E_EPOCH), 0
    for cid, cell in release.cells().items():
        img = next(i for i in _plan(workspace).images if i.id == cid)
        base = lock.base(img.distro)
        base_repo = base.image.split("/", 1)[1].rsplit(":", 1)[0]  # 127.0.0.1:5000/e2e/debian:x
        bases = {_os_arch(p): m for p, m in (reg.platform_manifests(base_repo, str(base.digest))
                                             or {}).items()}
        manifests = reg.platform_manifests(repo, cell["digest"]) or {}
        assert manifests, cid
        for plat, manifest in manifests.items():
            layers = reg.layer_digests(repo, manifest)
            # minimal is FROM scratch: every layer is the release build's own
            base_layers = [] if cid.endswith("-minimal") else \
                reg.layer_digests(base_repo, bases[_os_arch(plat)])
            assert layers[: len(base_layers)] == base_layers, (cid, plat)
            for digest in layers[len(base_layers):]:
                with tarfile.open(fileobj=io.BytesIO(reg.blob(repo, digest))) as tar:
                    late = [m.name for m in tar if m.mtime > epoch]
                assert not late, (cid, plat, digest, late[:5])
                checked += 1
    assert checked


def _os_arch(platform: str) -> str:
    """linux/arm64/v8 and linux/arm64 name the same base manifest."""
    return "/".join(platform.split("/")[:2])


def test_each_cpython_is_compiled_at_most_once(release: Result, workspace: Path) -> None:
    """Counted from BuildKit's own log: a python-* stage whose configure/python-build step
    ran (DONE) rather than being CACHED. Across the run no build may appear twice."""
    assert release.rc == 0, release.explain()
    per_cell = [c for cell in release.cells().values() for c in cell["compiled"]]
    assert len(per_cell) == len(set(per_cell)), per_cell
    builds = {b.id for b in _plan(workspace).builds}
    assert set(per_cell) <= builds
    assert sorted(release.report["compiles"]) == sorted(per_cell)


def test_images_carry_labels_and_locked_version(release: Result, workspace: Path) -> None:
    assert release.rc == 0, release.explain()
    reg, repo = registry(), _repo(workspace)
    lock = yaml.safe_load((workspace.parent / "images.lock").read_text())
    for img in _plan(workspace).images:
        cfg = reg.image_config(repo, release.cells()[img.id]["digest"])
        assert cfg is not None
        labels = cfg["config"]["Labels"]
        # deadsnakes: the PPA's package, not a locked tarball: the label says the minor
        want = img.python if img.method == "deadsnakes" else lock["pythons"][img.base_minor]["version"]
        assert labels["org.opencontainers.image.version"] == want, img.id
        assert labels["org.opencontainers.image.base.digest"] == lock["bases"][img.distro]["digest"]
        assert labels["org.org.base-image.fingerprint"].startswith("sha256:")
        assert "libssl" in labels["org.org.base-image.packages"]
        for key in ("source", "revision", "created", "base.name"):
            assert labels[f"org.opencontainers.image.{key}"], key
        assert cfg["config"]["User"] == "10001:10001"


def test_smoke_test_catches_a_compiler_put_into_runtime(release: Result, workspace: Path,
                                                        tmp_path: Path) -> None:
    """Put gcc into a runtime image by hand: the no-compilers check must fail and say so."""
    assert release.rc == 0, release.explain()
    img = next(i for i in _plan(workspace).images if i.id == "3.14-source-bookworm-runtime")
    digest = release.cells()[img.id]["digest"]
    tainted = "orchestrator-e2e/tainted-runtime:latest"
    dockerfile = (f"FROM 127.0.0.1:5000/{_repo(workspace)}@{digest}\nUSER root\n"
                  "RUN printf '#!/bin/sh\\necho fake gcc\\n' > /usr/local/bin/gcc "
                  "&& chmod +x /usr/local/bin/gcc\nUSER 10001:10001\n")
    subprocess.run(["docker", "buildx", "build", "--network", "host", "--load", "-t", tainted, "-"],
                   input=dockerfile, text=True, check=True, capture_output=True)
    engine = DockerEngine()
    try:
        results = suite.run_checks(engine, tainted, img, uid=10001, prefix="/opt/org/python/3.14",
                                   tls_url="https://pypi.org/simple")
    finally:
        engine.remove(tainted)
    failed = {r.check: r for r in results if not r.ok}
    assert set(failed) == {"no-compilers"}, {k: v.output for k, v in failed.items()}
    text = failed["no-compilers"].describe()
    assert text.startswith("3.14-source-bookworm-runtime: check no-compilers failed")
    assert "/usr/local/bin/gcc" in text


def test_broken_tarball_checksum_fails_clearly_and_pushes_nothing(
    e2e_bases: dict[str, str], tmp_path: Path, session_id: str,
) -> None:
    """The mirror starts serving different bytes than images.lock pinned: no image, no tag."""
    mirror = tmp_path / "mirror"
    shutil.copytree(MIRROR_DIR / "ftp" / "python" / SIGNED, mirror / "ftp" / "python" / SIGNED)
    shutil.copytree(MIRROR_DIR / "ftp" / "python" / "keys", mirror / "ftp" / "python" / "keys")
    repo = f"e2e-{session_id}/broken"
    with Server(mirror) as server:
        config = make_config(
            tmp_path / "ws", repo,
            **{"http://127.0.0.1:8700/ftp/python/": f"{server.url}/ftp/python/",
               '  - version: "3.13.15"': f'  - version: "{SIGNED}"',
               '  - {python: "3.13", method: source}\n': ""})
        # 3.14 is not in this private mirror: drop it from the matrix before locking
        text = "".join(line for line in config.read_text().splitlines(keepends=True)
                       if '- version: "3.14.4"' not in line and 'python: "3.14' not in line
                       and "freethreaded: true" not in line)
        config.write_text(text)
        assert orch("lock", config=config).rc == 0
        tarball = mirror / "ftp" / "python" / SIGNED / f"Python-{SIGNED}.tar.xz"
        tarball.write_bytes(tarball.read_bytes()[:-4096] + b"\0" * 4096)  # same size, other bytes
        res = orch("release", "--only", "3.13-source-bookworm-*", config=config,
                   report=tmp_path / "report.json")
    assert res.rc == 1, res.explain()
    cells = res.cells()
    assert cells["3.13-source-bookworm-runtime"]["status"] == "failed"
    assert cells["3.13-source-bookworm-runtime"]["phase"] == "build"
    assert "does not match the sha256 pinned in images.lock" in cells[
        "3.13-source-bookworm-runtime"]["message"]
    assert cells["3.13-source-bookworm-dev"]["status"] == "aborted"
    assert registry().tags(repo) == []
    summary = json.dumps(res.report)
    assert f"Python-{SIGNED}.tar.xz" in summary or "python-3.13-source" in summary

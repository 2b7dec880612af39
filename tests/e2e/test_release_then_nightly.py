"""Issue: nightly security rebuilds and safe publishing. Runs after test_release.py (file order):
it moves tags that test_release.py asserts on."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import BASES, FULL, REGISTRY, Result, orch, registry, write_apt_repo

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# The nightlies run three times here; `make test` (CI budget) runs them on one compiled cell
# pair and the deadsnakes pair (python-build takes the same refresh path); test-full on all.
NIGHTLY = [] if FULL else ["--only", "3.13-source-bookworm-*", "--only", "3.12-deadsnakes-noble-*"]


def _repo(config: Path) -> str:
    return str(yaml.safe_load(config.read_text())["publish"]["repository"])


def _tag_digests(config: Path) -> dict[str, str | None]:
    reg, repo = registry(), _repo(config)
    return {t: reg.digest(repo, t) for t in reg.tags(repo)}


def _runtime_extras(config: Path, distro: str, minor: str) -> list[str]:
    """The packages only this minor's runtime installs (an extra apt layer in its image)."""
    packages = yaml.safe_load(config.read_text())["distros"][distro]["packages"]
    return list(packages.get("runtime_for_python", {}).get(minor, []))


def _layers(repo: str, digest: str, platform: str = "linux/amd64") -> list[tuple[str, int]]:
    """Layers (digest, size) of ``platform``'s manifest of an image or index."""
    manifests = registry().platform_manifests(repo, digest)
    assert manifests is not None and platform in manifests, (digest, manifests)
    found = registry().manifest(repo, manifests[platform])
    assert found is not None
    return [(x["digest"], int(x["size"])) for x in json.loads(found[0])["layers"]]


def _sibling(config: Path, dest: Path, **replace: str) -> Path:
    """Same lock, generated files and work dir as ``config``, with images.yaml edited."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(config.with_suffix(".lock"), dest / "images.lock")
    shutil.copytree(config.parent / "generated", dest / "generated", dirs_exist_ok=True)
    text = config.read_text()
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    (dest / "images.yaml").write_text(text)
    res = orch("render", config=dest / "images.yaml")  # e.g. the repository is in the bake file
    assert res.rc == 0, res.explain()
    return dest / "images.yaml"


@pytest.fixture(scope="module")
def noop_nightly(release: Result, workspace: Path) -> tuple[Result, dict[str, str | None]]:
    assert release.rc == 0, release.explain()
    before = _tag_digests(workspace)
    res = orch("nightly", *NIGHTLY, config=workspace, report=workspace.parent / "nightly-noop.json")
    return res, before


def test_nightly_with_no_upstream_change_moves_no_tag(
    noop_nightly: tuple[Result, dict[str, str | None]], workspace: Path, release: Result,
) -> None:
    res, before = noop_nightly
    assert res.rc == 0, res.explain()
    for cid, cell in res.cells().items():
        assert cell["status"] == "unchanged", (cid, cell["message"])
        assert cell["tags_moved"] == [], cid
    assert res.report["compiles"] == []
    assert _tag_digests(workspace) == before
    print(f"\nnightly no-op: {res.seconds:.0f}s vs first release {release.seconds:.0f}s "
          f"({100 * res.seconds / release.seconds:.0f}%)")


def _netbase_deb(images: list[str], dest: Path) -> tuple[Path, str]:
    """A newer netbase than any of ``images`` has (same files, version +e2e1): a 'security
    update' served by the local archive that every e2e base lists."""
    def installed(image: str) -> str:
        return subprocess.run(
            ["docker", "run", "--rm", "--network", "none", image, "dpkg-query", "-W", "-f",
             "${Version}", "netbase"], capture_output=True, text=True, check=True).stdout.strip()

    versions = [installed(i) for i in images]
    newest = versions[0]
    for v in versions[1:]:
        if subprocess.run(["dpkg", "--compare-versions", v, "gt", newest], check=False).returncode == 0:
            newest = v
    new_version = f"{newest}+e2e1"
    image = images[versions.index(newest)]
    root = dest / "netbase"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "etc").mkdir()
    for name in ("protocols", "services", "rpc", "ethertypes"):
        out = subprocess.run(["docker", "run", "--rm", "--network", "none", image, "cat",
                              f"/etc/{name}"], capture_output=True, check=False)
        if out.returncode == 0:
            (root / "etc" / name).write_bytes(out.stdout)
    (root / "DEBIAN" / "control").write_text(
        f"Package: netbase\nVersion: {new_version}\nArchitecture: all\n"
        "Maintainer: e2e <e2e@localhost>\nDescription: netbase, e2e security update\n")
    deb = dest / f"netbase_{new_version}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(deb)], check=True,
                   capture_output=True)
    return deb, new_version


def test_security_update_rebuilds_without_compiling_and_failed_cells_keep_tags(
    noop_nightly: tuple[Result, dict[str, str | None]], workspace: Path, release: Result,
    tmp_path: Path,
) -> None:
    """A newer package appears in the distro archive: the nightly picks it up.

    The dev images are forced to fail their smoke test (a 1 MB size budget): their tags must
    stay where they were while the runtime images publish. A second nightly with the normal
    budget then publishes the dev images.
    """
    assert release.rc == 0, release.explain()
    repo = _repo(workspace)
    before = _tag_digests(workspace)
    cells0 = release.cells()
    deb, new_version = _netbase_deb(
        [f"{REGISTRY}/{repo}@{cell['digest']}" for cid, cell in cells0.items()
         if cid.endswith("-runtime")], tmp_path)
    failing = _sibling(workspace, tmp_path / "failing",
                       **{"dev: {size_budget_mb: 600}": "dev: {size_budget_mb: 1}"})
    shutil.copytree(workspace.parent / ".orchestrator", tmp_path / "failing" / ".orchestrator",
                    dirs_exist_ok=True)
    try:
        write_apt_repo([deb])
        res = orch("nightly", *NIGHTLY, config=failing, report=tmp_path / "nightly-sec.json")
        assert res.rc == 1, res.explain()
        after = _tag_digests(workspace)
        for cid, cell in res.cells().items():
            old = cells0[cid]
            if cid.endswith("-dev"):
                assert cell["status"] == "failed" and cell["phase"] == "test", cid
                assert "size-budget" in cell["message"], cid
                assert cell["tags_moved"] == []
            else:
                assert cell["status"] == "ok", (cid, cell["message"])
                assert cell["publish"] == "updated"
                assert any(c.startswith("netbase ") and c.endswith(f"-> {new_version}")
                           for c in cell["package_changes"]), cell["package_changes"]
                assert cell["digest"] != old["digest"]
                # the CPython tree layer kept its digest: only the apt layers changed
                # Layers: base image, certs (ca_certificates), security-updates, runtime-base,
                # [the Python minor's own runtime packages: packages.runtime_for_python],
                # the COPY --link python tree, then an empty layer (WORKDIR).
                old_layers, new_layers = _layers(repo, old["digest"]), _layers(repo, cell["digest"])
                distro, minor = cid.split("-")[-2], cid.split("-")[0]
                nbase = len(_layers(f"e2e/{BASES[distro][0]}", BASES[distro][1]))  # amd64
                changed = [i for i, (a, b) in enumerate(zip(old_layers, new_layers, strict=True))
                           if a != b]
                if "-deadsnakes-" in cid:  # Python is an apt layer itself (the PPA's package)
                    assert nbase + 2 in changed and min(changed) > nbase, changed
                    continue
                apt = 3 if _runtime_extras(workspace, distro, minor) else 2
                # netbase is in runtime-base (packages.runtime); security-updates changes too
                # only when the base already had it (debootstrap's minbase does not)
                apt_layers = {nbase + 1 + i for i in range(apt)}
                assert set(changed) <= apt_layers and nbase + 2 in changed, \
                    ("only the apt layers may change", changed, sorted(apt_layers))
                tree = new_layers[nbase + 1 + apt]
                assert tree == old_layers[nbase + 1 + apt] and tree[1] > 10_000_000, tree
        assert res.report["compiles"] == []
        for tag, digest in after.items():
            owner = next((c for c, cell in cells0.items()
                          if cell["digest"] == before.get(tag)), None)
            if owner and owner not in res.cells():  # not in this nightly: stays where it was
                assert digest == before[tag], f"{tag} moved although its cell was not refreshed"
            elif owner and owner.endswith("-dev"):
                assert digest == before[tag], f"{tag} moved although its cell failed"
            elif tag in before:
                assert digest != before[tag] or tag.endswith(cells0[owner or ""].get(
                    "immutable_tag", "")), tag

        res2 = orch("nightly", *NIGHTLY, config=workspace, report=tmp_path / "nightly-sec2.json")
        assert res2.rc == 0, res2.explain()
        for cid, cell in res2.cells().items():
            if cid.endswith("-dev"):
                assert cell["publish"] == "updated", (cid, cell)
                assert any(c.startswith("netbase ") for c in cell["package_changes"])
            else:
                assert cell["status"] == "unchanged", (cid, cell["message"])
        assert res2.report["compiles"] == []
    finally:
        write_apt_repo([])


def test_registry_requiring_login_gives_a_clear_error(
    release: Result, workspace: Path, tmp_path: Path,
) -> None:
    bcrypt = pytest.importorskip("bcrypt")
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("ci:" + bcrypt.hashpw(b"secret", bcrypt.gensalt()).decode() + "\n")
    reg_cfg = tmp_path / "registry.yml"
    reg_cfg.write_text(yaml.safe_dump({
        "version": 0.1, "storage": {"filesystem": {"rootdirectory": str(tmp_path / "data")}},
        "http": {"addr": "127.0.0.1:5001"},
        "auth": {"htpasswd": {"realm": "e2e", "path": str(htpasswd)}},
    }))
    server = subprocess.Popen(["docker-registry", "serve", str(reg_cfg)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30  # wait until it answers (401), never a fixed sleep
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen("http://127.0.0.1:5001/v2/", timeout=2)
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.2)
        config = _sibling(workspace, tmp_path / "auth",
                          **{"registry: 127.0.0.1:5000": "registry: 127.0.0.1:5001"})
        shutil.copytree(workspace.parent / ".orchestrator", tmp_path / "auth" / ".orchestrator",
                        dirs_exist_ok=True)
        res = orch("push", "--only", "3.13-source-bookworm-runtime", config=config,
                   env={"DOCKER_CONFIG": str(tmp_path / "no-docker-config")})
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert res.rc == 4, res.explain()
    assert "Traceback" not in res.stderr
    assert "registry 127.0.0.1:5001 refused" in res.stderr
    assert "docker login 127.0.0.1:5001" in res.stderr


def test_stage_only_then_promote_moves_public_tags_once(
    release: Result, workspace: Path, tmp_path: Path, session_id: str,
) -> None:
    """CI shards push by digest (--stage-only); one promote moves the tags, or none at all."""
    assert release.rc == 0, release.explain()
    config = _sibling(workspace, tmp_path / "staged", **{
        f"repository: e2e-{session_id}/python": f"repository: e2e-{session_id}/staged"})
    reg, repo = registry(), _repo(config)
    staged = orch("release", "--stage-only", "--only", "3.13-source-*", config=config,
                  report=tmp_path / "staged.json")
    assert staged.rc == 0, staged.explain()
    cells = staged.cells()
    assert {c["phase"] for c in cells.values()} == {"staged"}
    assert set(reg.tags(repo)) == {c["immutable_tag"] for c in cells.values()}

    failed = json.loads((tmp_path / "staged.json").read_text())
    failed["cells"].append({**failed["cells"][0], "id": "3.11-python-build-trixie-dev",
                            "status": "failed", "phase": "test", "message": "forced"})
    (tmp_path / "with-failure.json").write_text(json.dumps(failed))
    refused = orch("promote", str(tmp_path / "with-failure.json"), "--all-or-nothing",
                   config=config, report=tmp_path / "promote-refused.json")
    assert refused.rc == 1, refused.explain()
    assert set(reg.tags(repo)) == {c["immutable_tag"] for c in cells.values()}

    promoted = orch("promote", str(tmp_path / "staged.json"), config=config,
                    report=tmp_path / "promote.json")
    assert promoted.rc == 0, promoted.explain()
    for cid, cell in cells.items():
        assert promoted.cells()[cid]["tags_moved"] == cell["tags"]
        for tag in cell["tags"]:
            assert reg.digest(repo, tag) == cell["digest"], (cid, tag)

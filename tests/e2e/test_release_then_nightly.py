"""Issue: nightly security rebuilds and safe publishing. Runs after test_release.py (file order):
it moves tags that test_release.py asserts on."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import BASES, FULL, REGISTRY, SESSION_DATE, Result, orch, registry, write_apt_repo

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# The nightlies run three times here; `make test` (CI budget) runs them on one compiled cell
# pair and the deadsnakes pair (python-build takes the same refresh path); test-full on all.
NIGHTLY = [] if FULL else ["--only", "3.14-source-bookworm-*", "--only", "3.12-deadsnakes-noble-*"]


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


def _outdated(config: Path, dest: Path) -> tuple[Result, dict[str, dict[str, Any]]]:
    """`orchestrator outdated` on the nightly's cells: (result, {cell: its check})."""
    res = orch("outdated", *NIGHTLY, "--json", str(dest), config=config)
    assert res.rc in (0, 100), res.explain()
    return res, {c["cell"]: c for c in json.loads(dest.read_text())["cells"]}


def _pending(check: dict[str, Any]) -> set[str]:
    return {u["package"] for p in check["platforms"] for u in p["upgrades"]}


def _groups(cells: Iterable[str]) -> set[str]:
    return {c.rsplit("-", 1)[0] for c in cells}


@pytest.fixture(scope="module")
def noop_nightly(release: Result, workspace: Path,
                 ) -> tuple[Result, dict[str, str | None], dict[str, dict[str, Any]]]:
    """A nightly right after the release. The e2e bases list the real distro archives, and a
    warm BuildKit cache can hold apt layers older than today's archive: `outdated` says which
    cells really wait for an update (usually none) before the nightly runs."""
    assert release.rc == 0, release.explain()
    before = _tag_digests(workspace)
    _, checks = _outdated(workspace, workspace.parent / "outdated-noop.json")
    res = orch("nightly", *NIGHTLY, config=workspace, report=workspace.parent / "nightly-noop.json")
    return res, before, checks


def test_nightly_with_no_upstream_change_builds_nothing(
    noop_nightly: tuple[Result, dict[str, str | None], dict[str, dict[str, Any]]],
    workspace: Path, release: Result,
) -> None:
    res, before, checks = noop_nightly
    assert res.rc == 0, res.explain()
    cells = res.cells()
    stale = {cid for cid, c in checks.items() if c["state"] != "up-to-date"}
    refreshed = {cid for cid in cells if cid.rsplit("-", 1)[0] in _groups(stale)}
    assert set(res.report["fast_path"]) == set(cells) - refreshed
    for cid in set(cells) - refreshed:  # nothing new: no build, no smoke test, no tag moved
        cell = cells[cid]
        assert cell["status"] == "unchanged" and cell["tags_moved"] == [], (cid, cell)
        assert cell["seconds"] == {} and cell["checks"] == [], (cid, cell)
    for cid in stale:  # the real archive moved on since the cached apt layers: taken now
        assert cells[cid]["status"] in ("ok", "unchanged"), (cid, cells[cid]["message"])
        taken = {c.split(" ", 1)[0] for c in cells[cid]["package_changes"]}
        assert _pending(checks[cid]) <= taken, (cid, checks[cid], cells[cid]["package_changes"])
    assert res.report["compiles"] == []

    # and right after it, nothing is pending anywhere: all fast path
    again = orch("nightly", *NIGHTLY, config=workspace,
                 report=workspace.parent / "nightly-noop2.json")
    assert again.rc == 0, again.explain()
    assert sorted(again.report["fast_path"]) == sorted(cells), again.explain()
    assert {c["status"] for c in again.cells().values()} == {"unchanged"}
    after = _tag_digests(workspace)
    moved = {t for t in before if after.get(t) != before[t]}
    owners = {t for t in before for cid in refreshed
              if before[t] == release.cells().get(cid, {}).get("digest")}
    assert moved <= owners, ("tags moved for cells with nothing new", moved - owners)
    print(f"\nnightly no-op (fast path): {again.seconds:.1f}s vs first release "
          f"{release.seconds:.0f}s ({100 * again.seconds / release.seconds:.2f}%); "
          f"{len(stale)} cell(s) had real archive updates before it")


def _repacked_deb(images: list[str], package: str, dest: Path) -> tuple[Path, str]:
    """A newer ``package`` than any of ``images`` has (its files and fields, version +e2e1): a
    'security update' served by the local archive that every e2e base lists."""
    def installed(image: str) -> str:
        return subprocess.run(
            ["docker", "run", "--rm", "--network", "none", image, "dpkg-query", "-W", "-f",
             "${Version}", package], capture_output=True, text=True, check=True).stdout.strip()

    versions = [installed(i) for i in images]
    newest = versions[0]
    for v in versions[1:]:
        if subprocess.run(["dpkg", "--compare-versions", v, "gt", newest], check=False).returncode == 0:
            newest = v
    new_version = f"{newest}+e2e1"
    image = images[versions.index(newest)]
    root = dest / package
    (root / "DEBIAN").mkdir(parents=True)
    files = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", image, "sh", "-c",
         f"dpkg-query -L {package} | while read -r f; do "
         "if [ -f \"$f\" ] && [ ! -L \"$f\" ]; then echo \"$f\"; fi; done | tar -cf - -T -"],
        capture_output=True, check=True).stdout
    subprocess.run(["tar", "-xf", "-", "-C", str(root)], input=files, check=True)
    arch = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", image, "dpkg-query", "-W", "-f",
         "${Architecture}", package], capture_output=True, text=True, check=True).stdout.strip()
    (root / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: {new_version}\nArchitecture: {arch}\n"
        f"Maintainer: e2e <e2e@localhost>\nDescription: {package}, e2e security update\n")
    deb = dest / f"{package}_{new_version}_{arch}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(deb)], check=True,
                   capture_output=True)
    return deb, new_version


def test_security_update_rebuilds_without_compiling_and_failed_cells_keep_tags(
    noop_nightly: tuple[Result, dict[str, str | None], dict[str, dict[str, Any]]],
    workspace: Path, release: Result, tmp_path: Path,
) -> None:
    """A newer package appears in the distro archive: `outdated` sees it, the nightly takes it.

    The dev images are forced to fail their smoke test (a 1 MB size budget): their tags must
    stay where they were while the runtime images publish, and the report says which security
    update they still lack. A second nightly with the normal budget then publishes the dev
    images. Then a Debian-only update (debian-archive-keyring) refreshes exactly the cells
    that carry it; the others stay on the fast path.
    """
    assert release.rc == 0, release.explain()
    repo = _repo(workspace)
    before = _tag_digests(workspace)
    cells0 = {cid: c for cid, c in release.cells().items()}
    noop = orch("nightly", *NIGHTLY, config=workspace, report=tmp_path / "nightly-pre.json")
    assert noop.rc == 0, noop.explain()
    for cid, c in noop.cells().items():  # a cell the no-op nightly refreshed (real archive)
        if c["digest"] and c["digest"] != cells0[cid]["digest"]:
            cells0[cid] = {**cells0[cid], "digest": c["digest"],
                           "immutable_tag": c.get("immutable_tag") or cells0[cid]["immutable_tag"]}
    before = _tag_digests(workspace)
    deb, new_version = _repacked_deb(
        [f"{REGISTRY}/{repo}@{cell['digest']}" for cid, cell in cells0.items()
         if cid.endswith("-runtime")], "netbase", tmp_path)
    failing = _sibling(workspace, tmp_path / "failing",
                       **{"dev: {size_budget_mb: 600}": "dev: {size_budget_mb: 1}"})
    shutil.copytree(workspace.parent / ".orchestrator", tmp_path / "failing" / ".orchestrator",
                    dirs_exist_ok=True)
    try:
        write_apt_repo([deb])
        out, checks = _outdated(workspace, tmp_path / "outdated.json")
        assert out.rc == 100, out.explain()
        for cid, check in checks.items():
            ups = [u for p in check["platforms"] for u in p["upgrades"] if u["package"] == "netbase"]
            assert ups and all(u["candidate"] == new_version and u["security"] for u in ups), \
                (cid, check)
        assert "netbase" in out.stdout and new_version in out.stdout

        res = orch("nightly", *NIGHTLY, config=failing, report=tmp_path / "nightly-sec.json")
        assert res.rc == 1, res.explain()
        assert res.report["fast_path"] == []
        after = _tag_digests(workspace)
        for cid, cell in res.cells().items():
            old = cells0[cid]
            if cid.endswith("-dev"):
                assert cell["status"] == "failed" and cell["phase"] == "test", cid
                assert "size-budget" in cell["message"], cid
                assert cell["tags_moved"] == []
                waiting = [w for w in cell["waiting_security"] if w["package"] == "netbase"]
                assert waiting and waiting[0]["candidate"] == new_version, cell
                assert waiting[0]["since"] == SESSION_DATE.isoformat()
                assert f"{cid}: still lacks security update netbase" in res.stdout
            else:
                assert cell["status"] == "ok", (cid, cell["message"])
                assert cell["publish"] == "updated"
                assert any(c.startswith("netbase ") and c.endswith(f"-> {new_version}")
                           for c in cell["package_changes"]), cell["package_changes"]
                assert any(s.startswith("netbase ") for s in cell["security_updates"]), cell
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
                if cid.endswith("-minimal"):  # FROM scratch: its files (libraries, CA bundle,
                    # tzdata, passwd: what the refreshed apt state gives), then the CPython tree
                    assert changed == [0], changed
                    assert new_layers[1] == old_layers[1] and new_layers[1][1] > 10_000_000
                    continue
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
        current = {cell["digest"]: cid for cid, cell in cells0.items() if cell["digest"]}
        for tag, digest in after.items():
            was = before.get(tag)
            if was is None:  # a tag this nightly created (its immutable tags)
                continue
            owner = current.get(was)
            if owner is None:  # an older build's immutable tag (the no-op nightly replaced it)
                assert digest == was, f"{tag} moved although no cell of this run owns {was}"
            elif owner not in res.cells():  # not in this nightly: stays where it was
                assert digest == was, f"{tag} moved although its cell was not refreshed"
            elif owner.endswith("-dev"):
                assert digest == was, f"{tag} moved although its cell failed"
            else:
                assert digest != was or tag.endswith(cells0[owner].get("immutable_tag") or
                                                      "\0"), (tag, owner)

        res2 = orch("nightly", *NIGHTLY, config=workspace, report=tmp_path / "nightly-sec2.json")
        assert res2.rc == 0, res2.explain()
        for cid, cell in res2.cells().items():
            if cid.endswith("-dev"):
                assert cell["publish"] == "updated", (cid, cell)
                assert any(c.startswith("netbase ") for c in cell["package_changes"])
            else:  # rebuilt with its dev image (one group), same content: not pushed again
                assert cell["status"] == "unchanged", (cid, cell["message"])
        assert res2.report["compiles"] == []

        if not FULL:  # CI budget: the mixed fast/full nightly is a unit test in `make test`
            return    # (test_outdated: exactly the groups that have the package refresh)
        # a Debian-only update: only the cells that have the newer package's older version
        published = {cid: c["digest"] for cid, c in res2.cells().items() if c["digest"]}
        debian = [f"{REGISTRY}/{repo}@{d}" for cid, d in published.items()
                  if "-bookworm-" in cid and cid.endswith("-runtime")]
        keyring, kr_version = _repacked_deb(debian, "debian-archive-keyring", tmp_path)
        write_apt_repo([deb, keyring])
        _, checks3 = _outdated(workspace, tmp_path / "outdated3.json")
        affected = {cid for cid, c in checks3.items() if "debian-archive-keyring" in _pending(c)}
        assert affected and {cid for cid in affected if "-bookworm-" not in cid} <= \
            {cid for cid in affected if "-trixie-" in cid}, affected
        res3 = orch("nightly", *NIGHTLY, config=workspace, report=tmp_path / "nightly-sec3.json")
        assert res3.rc == 0, res3.explain()
        refreshed = {cid for cid in res3.cells() if cid.rsplit("-", 1)[0] in _groups(affected)}
        assert set(res3.report["fast_path"]) == set(res3.cells()) - refreshed
        assert any("-noble-" in cid for cid in res3.report["fast_path"]), res3.report["fast_path"]
        for cid in affected:
            cell = res3.cells()[cid]
            assert cell["status"] == "ok" and cell["publish"] == "updated", (cid, cell)
            assert any(s.startswith("debian-archive-keyring ") and s.endswith(kr_version)
                       for s in cell["security_updates"]), cell
        assert res3.report["compiles"] == []
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
        res = orch("push", "--only", "3.14-source-bookworm-runtime", config=config,
                   env={"DOCKER_CONFIG": str(tmp_path / "no-docker-config")})
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert res.rc == 4, res.explain()
    assert "Traceback" not in res.stderr
    # one line naming the registry, where a login was looked for, and the fix
    assert "registry 127.0.0.1:5001 needs a login and none was found" in res.stderr, res.stderr
    assert "no-docker-config" in res.stderr and "docker login 127.0.0.1:5001" in res.stderr


def test_stage_only_then_promote_moves_public_tags_once(
    release: Result, workspace: Path, tmp_path: Path, session_id: str,
) -> None:
    """CI shards push by digest (--stage-only); one promote moves the tags, or none at all."""
    assert release.rc == 0, release.explain()
    config = _sibling(workspace, tmp_path / "staged", **{
        f"repository: e2e-{session_id}/python": f"repository: e2e-{session_id}/staged"})
    reg, repo = registry(), _repo(config)
    staged = orch("release", "--stage-only", "--only", "3.14-source-*", config=config,
                  report=tmp_path / "staged.json")
    assert staged.rc == 0, staged.explain()
    cells = staged.cells()
    assert {c["phase"] for c in cells.values()} == {"staged"}
    assert set(reg.tags(repo)) == {c["immutable_tag"] for c in cells.values()}

    failed = json.loads((tmp_path / "staged.json").read_text())
    failed["cells"].append({**failed["cells"][0], "id": "3.13-python-build-trixie-dev",
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

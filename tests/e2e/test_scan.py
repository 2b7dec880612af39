"""Issue 32 items 3, 4 and 5 end to end, with the real grype and a DB of advisories this test
writes (tools/vulndb: grype's own DB build), against the bookworm 3.14 source cells released
into a repository of their own, signed (SBOM + OpenVEX attested):

- CVE-2099-3001 (High) against netbase, fixed in exactly the version the distro's security
  suite then serves (the e2e archive: "<installed>+e2e1"): the release built before the
  security refresh is refused by the gate (nothing was published: everything is new), the
  nightly after it publishes;
- CVE-2099-3002 (Medium) against zlib with no fix: reported, never gating;
- CVE-2099-3003 (Medium) against CPython 3.14 by CPE (fixed in 3.14.99): found through the
  SBOM's CPython entry, below the gate;
- CVE-2099-3004 (Critical, fixed) against CPython, with a scan.vex rule putting it in idlelib:
  every image's OpenVEX says not_affected (the build removes idlelib, the probe found it
  absent), so grype sets it aside and the gate lets the images through (it would refuse them
  otherwise);
- CVE-2099-3005 (Low) against CPython, in ensurepip's wheel: not_affected in the runtime (no
  ensurepip), reported for dev (which ships it).

The release before the refresh runs without ``signing:`` (audit item 4: the push's gate makes
the SBOMs itself, with the CPython entry, so the compiled CPython is matched unsigned too); the
nightly after it signs, and its report lists what it saw first (issue 32 item 6). Every run
has a work dir of its own (``ORCH_WORK_DIR``): the scan's first-seen ledger is the test's.

`make test` runs it after provisioning (step 11 builds grype beside syft).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hostkit import demo_db, vulndb
from orchestrator.scan.grype import sha256_of
from tests import require
from tests.e2e.conftest import (
    COSIGN_PASSWORD,
    REGISTRY,
    Result,
    cosign_key_pair,
    make_config,
    orch,
    registry,
    write_apt_repo,
)
from tests.e2e.test_release_then_nightly import _repacked_deb

pytestmark = [pytest.mark.docker, pytest.mark.grype, pytest.mark.slow]

CELLS = ["--only", "3.14-source-bookworm-runtime", "--only", "3.14-source-bookworm-dev"]
RUNTIME, DEV = "3.14-source-bookworm-runtime", "3.14-source-bookworm-dev"
CPE = "cpe:2.3:a:python:python:*:*:*:*:*:*:*:*"


def _installed(image: str, package: str) -> str:
    return subprocess.run(["docker", "run", "--rm", "--network", "none", image, "dpkg-query",
                           "-W", "-f", "${Version}", package], capture_output=True, text=True,
                          check=True, timeout=300).stdout.strip()


def _advisories(netbase: str) -> list[dict[str, Any]]:
    return [
        {"id": "CVE-2099-3001", "severity": "High", "namespace": "debian:12",
         "package": "netbase", "fixed": f"{netbase}+e2e1"},
        {"id": "CVE-2099-3002", "severity": "Medium", "namespace": "debian:12", "package": "zlib"},
        {"id": "CVE-2099-3003", "severity": "Medium", "cpe": CPE, "from": "3.14.0",
         "fixed": "3.14.99"},
        {"id": "CVE-2099-3004", "severity": "Critical", "cpe": CPE, "from": "3.14.0",
         "fixed": "3.14.99"},
        {"id": "CVE-2099-3005", "severity": "Low", "cpe": CPE, "from": "3.14.0",
         "fixed": "3.14.99"},
    ]


@pytest.fixture(scope="module")
def scanned_setup(tmp_path_factory: pytest.TempPathFactory, release: Result, workspace: Path,
                  session_id: str) -> tuple[Path, str]:
    """A config with scan: (the test's DB) and signing:, locked and rendered; and the netbase
    version the e2e release's bookworm runtime has."""
    if vulndb.grype() is None:
        require.unavailable("no grype", "run scripts/install-go-tools.sh grype (make test-full does)")
    if vulndb.go() is None:
        require.unavailable("no go on PATH", "tools/vulndb is built with Go 1.26")
    assert release.rc == 0, release.explain()
    released = str(yaml.safe_load(workspace.read_text())["publish"]["repository"])
    netbase = _installed(f"{REGISTRY}/{released}@{release.cells()[RUNTIME]['digest']}", "netbase")
    ws = tmp_path_factory.mktemp("scan")
    archive = vulndb.write_db(_advisories(netbase), ws / "db")
    config = make_config(ws, f"e2e-{session_id}/scanned")
    cosign_key_pair(ws)
    with config.open("a") as f:  # no signing: yet (the test adds it after the unsigned release)
        f.write("\n" + demo_db.scan_section(str(archive), sha256_of(archive), idle="CVE-2099-3004",
                                            ensurepip="CVE-2099-3005", who="e2e"))
    for step in (("lock",), ("render",)):
        res = orch(*step, config=config, env=_env(config))
        assert res.rc == 0, res.explain()
    return config, netbase


def _env(config: Path) -> dict[str, str]:
    """The test's own work dir (scan ledger, push-made SBOMs), and the key's password."""
    return {"COSIGN_PASSWORD": COSIGN_PASSWORD, "ORCH_WORK_DIR": str(config.parent / "work")}


def _cpython_entries(config: Path, cell: str) -> dict[str, list[str]]:
    """SBOM file name -> the CPython entries' SPDX ids of the SBOMs an unsigned push made for
    ``cell`` (release/attest.built_sboms: scan/sboms/<cell>/<platform digest>.spdx.json)."""
    found = sorted((config.parent / "work" / "scan" / "sboms" / cell).glob("*.spdx.json"))
    return {p.name: [pkg["SPDXID"] for pkg in json.loads(p.read_text())["packages"]
                     if pkg["SPDXID"].startswith("SPDXRef-Package-cpython-")] for p in found}


def _findings(report: dict[str, Any], cell: str) -> dict[tuple[str, str], dict[str, Any]]:
    (image,) = [i for i in report["images"] if i["cell"] == cell]
    assert image["state"] == "scanned", image
    return {(f["advisory"], p["platform"]): f for p in image["platforms"] for f in p["findings"]}


def test_the_gate_refuses_the_build_before_the_security_refresh_and_publishes_the_one_after(
        scanned_setup: tuple[Path, str], tmp_path: Path) -> None:
    config, netbase = scanned_setup
    env = _env(config)
    repo = str(yaml.safe_load(config.read_text())["publish"]["repository"])
    version = yaml.safe_load(config.with_suffix(".lock").read_text())["pythons"]["3.14"]["version"]
    reg = registry()

    # unsigned: the gate reads the SBOMs the push made (with the CPython entry)
    before = orch("release", *CELLS, config=config, report=tmp_path / "release.json", env=env)
    assert before.rc == 1, before.explain()
    for cid in (RUNTIME, DEV):
        cell = before.cells()[cid]
        assert (cell["status"], cell["phase"]) == ("failed", "scan"), (cid, cell["message"])
        assert "CVE-2099-3001 in netbase" in cell["message"], cell["message"]
        assert f"fixed in {netbase}+e2e1" in cell["message"], cell["message"]
        assert "CVE-2099-3004" not in cell["message"]  # the OpenVEX set it aside
        made = _cpython_entries(config, cid)
        assert made, (cid, "no SBOM made by the unsigned push")  # one per platform manifest
        for name, ids in made.items():
            assert ids == [f"SPDXRef-Package-cpython-{version}-source"], (cid, name, ids)
    assert reg.digest(repo, "3.14-runtime") is None and reg.digest(repo, "3.14-dev") is None
    with config.open("a") as f:  # from here on signed: SBOMs and OpenVEX attested
        f.write("signing:\n  key: cosign.key\n")

    images = [f"{REGISTRY}/{repo}@{before.cells()[RUNTIME]['digest']}"]
    deb, new_version = _repacked_deb(images, "netbase", tmp_path)
    assert new_version == f"{netbase}+e2e1"
    try:
        write_apt_repo([deb])
        after = orch("nightly", *CELLS, config=config, report=tmp_path / "nightly.json", env=env)
        assert after.rc == 0, after.explain()
        assert after.report["compiles"] == []
        for cid in (RUNTIME, DEV):
            cell = after.cells()[cid]
            assert cell["status"] == "ok" and cell["publish"] in ("new", "updated"), cell
            # nothing was published to diff against (package_changes): ask the image itself
            assert _installed(f"{REGISTRY}/{repo}@{cell['digest']}", "netbase") == new_version
        assert reg.digest(repo, "3.14-runtime") == after.cells()[RUNTIME]["digest"]
        # the nightly's scan: every finding of what it published is first seen tonight
        for cid in (RUNTIME, DEV):
            new = after.report["new_advisories"][cid]
            seen = {(a["advisory"], a["platform"]) for a in new}
            plats = {p for _, p in seen}
            assert "linux/amd64" in plats, (cid, sorted(seen))  # + arm64 in make test-full
            for plat in plats:
                assert {"CVE-2099-3002", "CVE-2099-3003", "CVE-2099-3004",
                        "CVE-2099-3005"} <= {a for a, p in seen if p == plat}, (cid, plat, new)
                assert ("CVE-2099-3001", plat) not in seen  # fixed by the refresh
            (cpython,) = [a for a in new if a["advisory"] == "CVE-2099-3003"
                          and a["platform"] == "linux/amd64"]
            assert cpython["installed"] == version and cpython["fixed_in"] == "3.14.99", cpython
            assert cpython["since"] == new[0]["since"]  # one night, one date
            assert f"{cid}: new advisory CVE-2099-3003 in " in after.stdout, after.stdout

        out = tmp_path / "scan.json"
        scan = orch("scan", *CELLS, "--json", str(out), config=config, env=env)
        assert scan.rc == 0, scan.explain()  # nothing at or above high that is fixable
        report = json.loads(out.read_text())
        assert report["db"]["schema"].startswith("v6.") and report["db"]["built"]
        pinned = yaml.safe_load(config.read_text())["scan"]["db"]["sha256"]
        assert report["db"]["checksum"] == f"sha256:{pinned}"
        assert report["new"] == []  # the nightly's scan saw all of them first (one ledger)
        for cid in (RUNTIME, DEV):
            got = _findings(report, cid)
            plats = {p for _, p in got}
            assert "linux/amd64" in plats
            for plat in plats:
                assert ("CVE-2099-3001", plat) not in got  # fixed by the refresh
                nofix = got["CVE-2099-3002", plat]
                assert (nofix["fix_state"], nofix["gating"]) == ("not-fixed", False)
                cpython = got["CVE-2099-3003", plat]
                assert cpython["matched_by"] == "cpe-match" and cpython["installed"] == version
                assert cpython["fixed_in"] == "3.14.99" and not cpython["gating"]
                vexed = got["CVE-2099-3004", plat]
                assert vexed["vex"].startswith("not_affected") and not vexed["gating"]
                wheel = got["CVE-2099-3005", plat]
                if cid == RUNTIME:  # no ensurepip in the runtime
                    assert wheel["vex"].startswith("not_affected"), wheel
                else:  # dev ships ensurepip's wheel: the finding stands
                    assert wheel["vex"] == "", wheel

        verify = orch("verify", f"{REGISTRY}/{repo}:3.14-runtime", config=config, env=env)
        assert verify.rc == 0, verify.explain()
        assert "openvex linux/amd64 (not_affected: CVE-2099-3004, not_affected: CVE-2099-3005)" \
            in verify.stdout, verify.stdout
    finally:
        write_apt_repo([])

"""tools/vulndb (issue 32 item 3): the tests' advisories become a grype v6 DB through grype's
own build and packaging code, `grype db import` takes the archive, and the real grype matches
exactly what the advisories say: a dpkg package below the fixed version is found (by its
source package), one whose fixed version is older than the installed one is not, an advisory
with no fix is reported as not-fixed, and CPython is matched by the SBOM's CPE.

The SBOM is a real one (the 3.14 bookworm runtime image the e2e published: its SPDX
attestation), trimmed to five packages. Needs the pinned grype (scripts/install-go-tools.sh)
and Go to build tools/vulndb (marker grype: `make test-full`; skipped without them on a
laptop, failed under CI)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any, cast

import pytest

from hostkit import vulndb
from orchestrator.config import loader
from orchestrator.config.publish import VEX_COMPONENTS, Scan, ScanDb, VexRule
from orchestrator.lock import lockfile
from orchestrator.planning import plan
from orchestrator.registry import Registry
from orchestrator.scan import images as scan_images
from orchestrator.scan.grype import Grype, sha256_of
from orchestrator.scan.models import ScanReport
from orchestrator.scan.report import judge
from orchestrator.supplychain import vex
from orchestrator.supplychain.signing import Cosign, Verified
from tests import require
from tests.fakes.fake_registry import FakeRegistry
from tests.fakes.publish_harness import write_config
from tests.unit.helpers import FIXTURES, TODAY

SBOM = FIXTURES / "scan" / "bookworm-3.14-runtime.spdx.json"

ADVISORIES: list[dict[str, Any]] = [
    {"id": "CVE-2099-1001", "severity": "High", "namespace": "debian:12", "package": "glibc",
     "fixed": "2.36-9+deb12u99"},  # installed: 2.36-9+deb12u14 -> found
    {"id": "CVE-2099-1002", "severity": "Critical", "namespace": "debian:12",
     "package": "glibc", "fixed": "2.36-9+deb12u10"},  # older than installed -> not found
    {"id": "CVE-2099-1003", "severity": "Medium", "namespace": "debian:12", "package": "zlib"},
    {"id": "CVE-2099-1004", "severity": "Critical", "namespace": "debian:13", "package": "zlib"},
    {"id": "CVE-2099-1005", "severity": "Critical",
     "cpe": "cpe:2.3:a:python:python:*:*:*:*:*:*:*:*", "from": "3.14.0", "fixed": "3.14.5"},
    {"id": "CVE-2099-1006", "severity": "High",
     "cpe": "cpe:2.3:a:python:python:*:*:*:*:*:*:*:*", "from": "3.13.0", "fixed": "3.13.16"},
]

pytestmark = [pytest.mark.grype,  # make test leaves them out (CI budget); make test-full runs them
              pytest.mark.spawns("grype", "vulndb", "go")]  # the real scanner, its DB writer and its build


@pytest.fixture(autouse=True, scope="module")
def _tools() -> None:
    """Without grype or Go: a skip on a laptop, a failure under CI (tests/require.py)."""
    if vulndb.grype() is None:
        require.unavailable("no grype", "run scripts/install-go-tools.sh grype (make test-full does)")
    if vulndb.go() is None:
        require.unavailable("no go on PATH", "tools/vulndb is built with Go 1.26")


def grype(cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(cache), "GRYPE_DB_CACHE_DIR": str(cache),
           "GRYPE_DB_AUTO_UPDATE": "false", "GRYPE_CHECK_FOR_APP_UPDATE": "false"}
    return subprocess.run([str(vulndb.grype()), *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("vulndb")
    archive = vulndb.write_db(ADVISORIES, root / "out", captured="2026-12-01T00:00:00Z")
    cache = root / "cache"
    result = grype(cache, "db", "import", str(archive))
    assert result.returncode == 0, result.stderr
    return archive, cache


def test_the_archive_is_grypes_own_format(imported: tuple[Path, Path]) -> None:
    archive, _ = imported
    # vulnerability-db_v<schema>_<oldest capture>_<build epoch>.tar.gz (build/archive.go)
    assert archive.name.startswith("vulnerability-db_v6.")
    assert "_2026-12-01T00:00:00Z_" in archive.name
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["import.json", "vulnerability.db"]
    latest = json.loads((archive.parent / "latest.json").read_text())
    assert latest["path"] == archive.name and latest["checksum"].startswith("sha256:")


def test_grype_reports_the_imported_db(imported: tuple[Path, Path]) -> None:
    _, cache = imported
    status = grype(cache, "db", "status", "-o", "json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["valid"] is True and doc["schemaVersion"].startswith("v6.")
    assert doc["from"] == "manual import"
    providers = grype(cache, "db", "providers", "-o", "json")
    assert providers.returncode == 0, providers.stderr
    assert sorted(p["name"] for p in json.loads(providers.stdout)) == ["debian", "nvd"]


def test_grype_finds_exactly_the_advisories_that_apply(imported: tuple[Path, Path]) -> None:
    _, cache = imported
    result = grype(cache, f"sbom:{SBOM}", "-o", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["distro"]["name"] == "debian" and doc["distro"]["version"] == "12"
    found = {(m["vulnerability"]["id"], m["artifact"]["name"]): m for m in doc["matches"]}
    assert set(found) == {("CVE-2099-1001", "libc6"), ("CVE-2099-1001", "libc-bin"),
                          ("CVE-2099-1003", "zlib1g"), ("CVE-2099-1005", "python")}
    glibc = found["CVE-2099-1001", "libc6"]["vulnerability"]
    assert glibc["fix"] == {"versions": ["2.36-9+deb12u99"], "state": "fixed"}
    assert glibc["severity"] == "High"
    assert found["CVE-2099-1003", "zlib1g"]["vulnerability"]["fix"]["state"] == "not-fixed"
    cpython = found["CVE-2099-1005", "python"]
    assert cpython["vulnerability"]["fix"]["versions"] == ["3.14.5"]
    assert cpython["vulnerability"]["severity"] == "Critical"
    assert cpython["matchDetails"][0]["type"] == "cpe-match"
    assert cpython["artifact"]["version"] == "3.14.4"


def test_bad_advisories_are_refused_each_with_its_fix(tmp_path: Path) -> None:
    bad = [{"id": "CVE-2099-2001", "severity": "Severe", "namespace": "debian:12"},
           {"id": "CVE-2099-2002", "severity": "High", "cpe": "cpe:2.3:a:python:python:*"}]
    with pytest.raises(RuntimeError) as exc:
        vulndb.write_db(bad, tmp_path / "out")
    text = str(exc.value)
    assert 'severity "Severe" is not one of' in text
    assert "advisories[0] (CVE-2099-2001): package is missing" in text
    assert "needs exactly one of fixed (versionEndExcluding) or up_to" in text


def test_scan_gives_the_real_grype_the_attested_sbom(tmp_path: Path) -> None:
    """orchestrator.scan end to end with the real grype and a tools/vulndb DB: the image in the
    (fake) registry is synthetic, so every finding comes from the SBOM the stand-in cosign
    returns as verified, the one recorded from the e2e's 3.14 bookworm runtime."""
    archive = vulndb.write_db(ADVISORIES, tmp_path / "db")
    scan = Scan(db=ScanDb(file=str(archive), sha256=sha256_of(archive)), fail_on="high")

    class StandIn:
        def verify_attestation(self, ref: str, predicate_type: str) -> Verified:
            if predicate_type != "spdxjson":  # no OpenVEX attested here
                return Verified(ref, False, "no matching attestations")
            return Verified(ref, True, "", ({"predicate": json.loads(SBOM.read_text())},))

    grype = Grype(str(vulndb.grype()), tmp_path / "cache", {"PATH": os.environ["PATH"],
                                                             "HOME": str(tmp_path)})
    info = grype.prepare(scan.db, tmp_path, max_age_days=5, now=dt.datetime.now(dt.UTC))
    assert info.schema.startswith("v6.") and info.scanner.startswith("grype ")
    with FakeRegistry() as reg:
        cfg = write_config(tmp_path / "cfg", reg.address, "team/python")
        loaded = loader.load(cfg, TODAY)
        planned = plan.build(loaded, lockfile.read(loaded), only=["3.14-source-bookworm-runtime"],
                             profile=None, today=TODAY)
        reg.put_image("team/python", planned.images[0].tags[0], "seed")
        report = scan_images.scan_all(Registry(reg.address), "team/python", planned.images, grype,
                                      scan_images.attested(cast(Cosign, StandIn()),
                                                           tmp_path / "sboms", frozenset()),
                                      scan, ScanReport(info, "high"), TODAY)
    (image,) = report.images
    assert image.state == "scanned" and image.platforms[0].source == "sbom"
    got = {(f.advisory, f.package): f for f in image.platforms[0].findings}
    assert set(got) == {("CVE-2099-1001", "libc6"), ("CVE-2099-1001", "libc-bin"),
                        ("CVE-2099-1003", "zlib1g"), ("CVE-2099-1005", "python")}
    assert got["CVE-2099-1005", "python"].gating and got["CVE-2099-1005", "python"].fixed_in == "3.14.5"
    assert got["CVE-2099-1001", "libc6"].gating  # High, fixed: at the gate
    assert not got["CVE-2099-1003", "zlib1g"].gating  # no fix yet
    assert report.exit_code == 1


def test_the_real_grype_applies_the_images_openvex(imported: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    """The document supplychain/vex.py makes (idle absent, a rule putting CVE-2099-1005 in
    idlelib) makes the real grype set the CPython match aside: reported with its VEX status,
    never gating; the other findings stand."""
    archive, _ = imported
    rules = (VexRule(advisory="CVE-2099-1005", component="idle", reason="In idlelib's RPC."),)
    doc = vex.document("127.0.0.1:5000/e2e/team@sha256:" + "cd" * 32, "linux/amd64",
                       json.loads(SBOM.read_text()), dict.fromkeys(VEX_COMPONENTS), rules,
                       author="e2e", timestamp="2026-12-07T00:00:00Z")
    path = tmp_path / "vex.json"
    path.write_text(json.dumps(doc))
    grype = Grype(str(vulndb.grype()), tmp_path / "cache", {"PATH": os.environ["PATH"],
                                                             "HOME": str(tmp_path)})
    grype.prepare(ScanDb(file=str(archive), sha256=sha256_of(archive)), tmp_path,
                  max_age_days=5, now=dt.datetime.now(dt.UTC))
    got = {(f.advisory, f.package): f for f in grype.scan(f"sbom:{SBOM}", vex=path)}
    assert got["CVE-2099-1005", "python"].vex.startswith("not_affected")
    (judged,) = judge("c", [got["CVE-2099-1005", "python"]], (), "high", TODAY)
    assert not judged.gating
    assert got["CVE-2099-1001", "libc6"].vex == ""
    without = {(f.advisory, f.package): f for f in grype.scan(f"sbom:{SBOM}")}
    assert without["CVE-2099-1005", "python"].vex == ""

"""`orchestrator scan --gitlab-report` (issue 32 item 6): the scan report as GitLab's container-
scanning report, validated against GitLab's own schema (15.2.0, vendored in
tests/unit/fixtures/gitlab with where it came from): severities in GitLab's words, one
vulnerability per image, advisory and package (the platforms in its details), CVE and GHSA
identifiers with their pages, ignored findings left out, unscanned images a failure."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from orchestrator.scan import gitlab
from orchestrator.scan.models import DbInfo, Finding, ImageScan, PlatformScan, ScanReport
from tests.fakes import fake_grype
from tests.unit.helpers import FIXTURES, run_cli
from tests.unit.test_scan import Setup, setup  # noqa: F401  (setup: the fixture, by name)

SCHEMA_FILE = FIXTURES / "gitlab" / f"container-scanning-report-format-{gitlab.SCHEMA_VERSION}.json"
STARTED = dt.datetime(2026, 11, 21, 2, 40, 5, 123456, tzinfo=dt.UTC)
FINISHED = dt.datetime(2026, 11, 21, 3, 41, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
DB = DbInfo(schema="v6.1.10", built="2026-11-20T06:00:00Z", age_days=0.9,
            checksum="sha256:" + "ab" * 32, source="https://mirror.test/db.tar.zst",
            scanner="grype 0.121.3")
REF = "registry.test/org/python:3.14-runtime"
AMD, ARM = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def validate(doc: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["self"]["version"] == gitlab.SCHEMA_VERSION == doc["version"]
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(doc)


def finding(advisory: str, package: str, severity: str, fixed: str = "", **kw: Any) -> Finding:
    return Finding(advisory, package, kw.pop("installed", "1.0-1"), fixed, severity,
                   "fixed" if fixed else "not-fixed", kind="deb",
                   matched_by="exact-direct-match", **kw)


def sample() -> ScanReport:
    libc = finding("CVE-2026-1001", "libc6", "High", "2.36-9+deb12u99", installed="2.36-9+deb12u14",
                   gating=True, first_seen="2026-11-19")
    runtime = ImageScan("3.14-source-bookworm-runtime", REF, "scanned", "sha256:" + "9" * 64, (
        PlatformScan("linux/amd64", AMD, "sbom", (
            libc,
            finding("CVE-2026-1002", "zlib1g", "Medium", first_seen="2026-11-21", new=True),
            finding("GHSA-abcd-efgh-ijkl", "pip", "Negligible"),
            finding("CVE-2026-1003", "libssl3", "Critical", "3.0.99",
                    ignored="not reachable (until 2027-01-31)"),
        )),
        PlatformScan("linux/arm64", ARM, "sbom", (
            libc, finding("TEMP-0001-XYZ", "tzdata", "weird"),
            finding("CVE-2026-1004", "python", "Critical", "3.14.5", installed="3.14.4",
                    expired_rule="2026-11-01", gating=True),
        )),
    ))
    return ScanReport(DB, "high", [
        runtime,
        ImageScan("3.13-source-bookworm-runtime", "registry.test/org/python:3.13-runtime",
                  "unpublished", reason="3.13-runtime is not published"),
    ])


def convert(report: ScanReport) -> dict[str, Any]:
    return gitlab.report_for(report, started=STARTED, finished=FINISHED,
                             operating_systems={"3.14-source-bookworm-runtime": "debian 12 (bookworm)"},
                             vendor="org")


def test_the_report_is_valid_against_gitlabs_schema_and_says_what_the_scan_found() -> None:
    doc = convert(sample())
    validate(doc)
    scan = doc["scan"]
    assert scan["type"] == "container_scanning" and scan["status"] == "success"
    assert (scan["start_time"], scan["end_time"]) == ("2026-11-21T02:40:05", "2026-11-21T02:41:00")
    assert scan["scanner"]["id"] == "grype" and scan["scanner"]["version"] == "0.121.3"
    assert scan["analyzer"]["id"] == "python-base-orchestrator"
    assert scan["analyzer"]["vendor"] == {"name": "org"}
    messages = [m["value"] for m in scan["messages"]]
    assert messages[0].startswith("vulnerability DB: schema v6.1.10, built 2026-11-20T06:00:00Z, sha256:abab")
    assert ("1 finding(s) covered by a live scan.ignore rule or the image's OpenVEX are left out "
            "(see the JSON report)") in messages
    assert "3.13-source-bookworm-runtime (registry.test/org/python:3.13-runtime): not published" in messages
    by_name = {v["name"]: v for v in doc["vulnerabilities"]}
    # the ignored libssl3 finding is not there; libc6 (on both platforms) is there once
    assert list(by_name) == ["CVE-2026-1004 in python", "CVE-2026-1001 in libc6",
                             "CVE-2026-1002 in zlib1g", "TEMP-0001-XYZ in tzdata",
                             "GHSA-abcd-efgh-ijkl in pip"]
    libc = by_name["CVE-2026-1001 in libc6"]
    assert libc["severity"] == "High"
    assert libc["identifiers"] == [{"type": "cve", "name": "CVE-2026-1001", "value": "CVE-2026-1001",
                                    "url": "https://nvd.nist.gov/vuln/detail/CVE-2026-1001"}]
    assert libc["location"] == {"dependency": {"package": {"name": "libc6"}, "version": "2.36-9+deb12u14"},
                                "operating_system": "debian 12 (bookworm)", "image": REF}
    assert libc["solution"].startswith("Upgrade libc6 to 2.36-9+deb12u99 or later")
    assert libc["details"]["platforms"]["value"] == "linux/amd64, linux/arm64"
    assert libc["details"]["gate"]["value"] == "yes"
    assert libc["details"]["first_seen"]["value"] == "2026-11-19"
    assert "in registry.test/org/python:3.14-runtime (amd64, arm64). Fixed in 2.36-9+deb12u99." in \
        libc["description"]
    assert by_name["CVE-2026-1004 in python"]["details"]["expired_rule"]["value"] == "2026-11-01"
    zlib = by_name["CVE-2026-1002 in zlib1g"]
    assert "solution" not in zlib and "(grype's fix state: not-fixed)" in zlib["description"]
    assert zlib["details"]["gate"]["value"] == "no"
    pip = by_name["GHSA-abcd-efgh-ijkl in pip"]
    assert pip["severity"] == "Info"  # grype's Negligible
    assert pip["identifiers"][0]["type"] == "ghsa"
    assert pip["identifiers"][0]["url"] == "https://github.com/advisories/GHSA-abcd-efgh-ijkl"
    tz = by_name["TEMP-0001-XYZ in tzdata"]
    assert tz["severity"] == "Unknown" and tz["identifiers"][0]["type"] == "temp"
    assert "url" not in tz["identifiers"][0]
    # stable ids: the same image, advisory and package keep theirs from one night to the next
    assert len({v["id"] for v in doc["vulnerabilities"]}) == 5
    assert [v["id"] for v in convert(sample())["vulnerabilities"]] == \
        [v["id"] for v in doc["vulnerabilities"]]


def test_an_image_that_could_not_be_scanned_makes_the_scan_a_failure() -> None:
    report = sample()
    report.images.append(ImageScan("3.12-source-bookworm-dev", "registry.test/org/python:3.12-dev",
                                   "error", reason="linux/arm64: grype on registry:...: timeout"))
    doc = convert(report)
    validate(doc)
    assert doc["scan"]["status"] == "failure"
    assert {"level": "warn", "value": "3.12-source-bookworm-dev (registry.test/org/python:3.12-dev) "
                                      "not scanned: linux/arm64: grype on registry:...: timeout"} \
        in doc["scan"]["messages"]


def test_an_empty_scan_is_valid_too() -> None:
    doc = convert(ScanReport(DB, "critical", []))
    validate(doc)
    assert doc["vulnerabilities"] == [] and doc["scan"]["status"] == "success"


def test_the_schema_check_rejects_what_gitlab_would() -> None:
    """The validation really validates: a severity GitLab does not know, a time with a zone."""
    doc = convert(sample())
    doc["vulnerabilities"][0]["severity"] = "Negligible"
    with pytest.raises(jsonschema.ValidationError, match="Negligible"):
        validate(doc)
    doc = convert(sample())
    doc["scan"]["end_time"] += "Z"
    with pytest.raises(jsonschema.ValidationError, match=r"does not match '\^\\\\d\{4\}"):
        validate(doc)


@pytest.mark.spawns("grype")
def test_scan_writes_the_gitlab_report_beside_the_json(setup: Setup,  # noqa: F811
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    arm = setup.digests["3.14-source-bookworm-runtime"]["linux/arm64"]
    (setup.tools / "matches.json").write_text(json.dumps({
        arm: [fake_grype.match("CVE-2026-1111", "libssl3", "3.0.1-1", "High", "3.0.2-1")]}))
    out = setup.cfg.parent / "reports" / "gl-container-scanning-report.json"
    code, _, _ = run_cli(["scan", "--config", str(setup.cfg), "--only", "3.14-source-bookworm-*",
                          "--json", str(setup.cfg.parent / "scan.json"), "--gitlab-report", str(out)],
                         capsys)
    assert code == 1  # the High finding gates; the reports are written all the same
    doc = json.loads(out.read_text())
    validate(doc)
    (vuln,) = doc["vulnerabilities"]
    assert vuln["name"] == "CVE-2026-1111 in libssl3" and vuln["severity"] == "High"
    assert vuln["location"]["operating_system"] == "debian 12 (bookworm)"
    images = json.loads((setup.cfg.parent / "scan.json").read_text())["images"]
    runtime = next(i for i in images if i["cell"] == "3.14-source-bookworm-runtime")
    assert vuln["location"]["image"] == runtime["ref"] == \
        f"{setup.registry.address}/team/python:3.14-runtime"  # its first public tag
    assert vuln["details"]["platforms"]["value"] == "linux/arm64"
    assert vuln["details"]["first_seen"]["value"] and vuln["details"]["gate"]["value"] == "yes"


@pytest.mark.spawns("grype")
def test_an_unwritable_gitlab_report_is_one_line(setup: Setup,  # noqa: F811
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    blocker = setup.cfg.parent / "file"
    blocker.write_text("")
    code, _, err = run_cli(["scan", "--config", str(setup.cfg), "--only", "3.14-source-bookworm-runtime",
                            "--gitlab-report", str(blocker / "gl.json")], capsys)
    assert code == 2 and f"--gitlab-report {blocker / 'gl.json'}: cannot write it" in err


def test_the_fixture_is_the_schema_it_says() -> None:
    assert Path(SCHEMA_FILE).stat().st_size == 35577  # as vendored by GitLab (fixtures/gitlab/README.md)

"""`orchestrator scan` (issue 32 items 1-2): the scan: section of images.yaml, the DB (pinned
checksum, imported once, refused when old or corrupt), the judgement (ignore rules with their
expiry, the gate: fixable and at or above fail_on), and the command over a fake registry with
a stand-in grype (tests/fakes/fake_grype.py): exit 0/1/3, the report starting with the DB, per
platform by digest, the attested SBOM given to grype when there is one."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from orchestrator import settings
from orchestrator.config import loader
from orchestrator.config.model import Loaded
from orchestrator.config.publish import IgnoreRule, ScanDb
from orchestrator.errors import ConfigError, ExitCode, ScanError
from orchestrator.lock import lockfile
from orchestrator.planning import plan
from orchestrator.registry import Registry
from orchestrator.scan import images as scan_images
from orchestrator.scan.grype import Grype, find_binary, last_error
from orchestrator.scan.models import Finding, ScanReport
from orchestrator.scan.report import judge
from orchestrator.supplychain.signing import PREDICATE_TYPES, Cosign, Verified
from tests.fakes import fake_grype
from tests.fakes.fake_registry import FakeRegistry
from tests.fakes.publish_harness import write_config
from tests.unit.helpers import TODAY, run_cli

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)
FRESH = "2026-11-20T06:00:00Z"  # 1.25 days before NOW


def scan_section(sha: str, extra: str = "") -> str:
    return (f"scan:\n  db:\n    file: db.tar.gz\n    sha256: {sha}\n  max_age_days: 5\n"
            f"  fail_on: high\n{extra}")


# --------------------------------------------------------------------------- images.yaml


def load_with(tmp_path: Path, section: str) -> Loaded:
    cfg = write_config(tmp_path / "cfg", "127.0.0.1:5000", "team/python")
    cfg.write_text(cfg.read_text() + section)
    return loader.load(cfg, TODAY)


def problems(tmp_path: Path, section: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_with(tmp_path, section)
    assert exc.value.exit_code == ExitCode.BAD_INPUT
    return exc.value.lines()


def test_the_scan_section_is_read_into_frozen_models(tmp_path: Path) -> None:
    rule = ("  ignore:\n    - advisory: CVE-2026-0001\n      package: libssl3\n"
            "      cells: '3.14-*'\n      reason: not reachable from Python's ssl module\n"
            "      expires: 2027-01-31\n")
    loaded = load_with(tmp_path, scan_section("a" * 64, rule))
    scan = loaded.config.scan
    assert scan is not None and scan.db.file == "db.tar.gz" and scan.fail_on == "high"
    assert scan.ignore[0].expires == dt.date(2027, 1, 31) and scan.ignore[0].cells == "3.14-*"
    with pytest.raises(ValueError):
        scan.fail_on = "low"  # type: ignore[misc]


def test_every_problem_of_the_section_is_one_line_naming_key_and_fix(tmp_path: Path) -> None:
    lines = problems(tmp_path, "scan:\n  db:\n    sha265: abc\n  fail_on: severe\n"
                               "  ignore:\n    - {advisory: CVE-1, reason: short, expires: 2027-01-01}\n")
    text = "\n".join(lines)
    assert 'scan.db.sha265: unknown key; did you mean "sha256"?' in text
    assert all(line.startswith(str(tmp_path / "cfg" / "images.yaml") + ":") for line in lines)
    assert any("scan.fail_on: Input should be 'negligible', 'low'" in line for line in lines)
    assert any("scan.ignore[0].reason: String should have at least 10 characters" in line
               for line in lines)
    assert len(lines) == 3  # every problem in one pass, one line each
    lines = problems(tmp_path, "scan:\n  db: {sha256: nothex}\n  fail_on: severe\n"
                               "  ignore:\n    - {advisory: CVE-1, reason: short, expires: 2027-01-01}\n")
    text = "\n".join(lines)
    assert "scan.db.sha256" in text and "scan.fail_on" in text and "scan.ignore[0].reason" in text


def test_url_or_file_exactly_one(tmp_path: Path) -> None:
    both = problems(tmp_path, "scan:\n  db: {url: 'https://mirror.example/db.tar.zst', "
                              "file: db.tar.gz, sha256: " + "a" * 64 + "}\n")
    assert any("scan.db: give exactly one of url and file" in line for line in both)
    neither = problems(tmp_path, "scan:\n  db: {sha256: " + "a" * 64 + "}\n")
    assert any("scan.db: no url and no file; set scan.db.url" in line for line in neither)
    bad_url = problems(tmp_path, "scan:\n  db: {url: 'ftp://x/db', sha256: " + "a" * 64 + "}\n")
    assert any("scan.db.url" in line for line in bad_url)


def test_an_expired_ignore_rule_is_a_warning_not_an_error(tmp_path: Path) -> None:
    rule = ("  ignore:\n    - {advisory: CVE-2026-0002, reason: fixed upstream in our fork, "
            "expires: 2026-11-01}\n")
    loaded = load_with(tmp_path, scan_section("b" * 64, rule))
    assert any("scan.ignore[0].expires: CVE-2026-0002: expired on 2026-11-01" in w
               for w in loaded.warnings)


# --------------------------------------------------------------------------- the judgement


def finding(advisory: str, severity: str, fix_state: str = "fixed", package: str = "libssl3") -> Finding:
    return Finding(advisory, package, "3.0.1-1", "3.0.2-1" if fix_state == "fixed" else "",
                   severity, fix_state)


def test_the_gate_takes_fixable_findings_at_or_above_its_severity() -> None:
    found = [finding("CVE-A", "Critical"), finding("CVE-B", "High"), finding("CVE-C", "Medium"),
             finding("CVE-D", "Critical", "not-fixed"), finding("CVE-E", "Unknown")]
    judged = {f.advisory: f.gating for f in judge("c", found, (), "high", TODAY)}
    assert judged == {"CVE-A": True, "CVE-B": True, "CVE-C": False, "CVE-D": False,
                      "CVE-E": False}
    assert {f.advisory for f in judge("c", found, (), "critical", TODAY) if f.gating} == {"CVE-A"}
    assert {f.advisory for f in judge("c", found, (), "negligible", TODAY) if f.gating} == {
        "CVE-A", "CVE-B", "CVE-C"}


def test_ignore_rules_cover_until_they_expire_and_only_what_they_name() -> None:
    rules = (
        IgnoreRule(advisory="cve-a", package="libssl3", cells="3.14-*",
                   reason="not reachable from the ssl module", expires=dt.date(2027, 1, 1)),
        IgnoreRule(advisory="CVE-B", reason="accepted until the next point release",
                   expires=TODAY),
    )
    found = [finding("CVE-A", "Critical"), finding("CVE-A", "Critical", package="openssl"),
             finding("CVE-B", "High")]
    in_314 = judge("3.14-source-bookworm-runtime", found, rules, "high", TODAY)
    assert in_314[0].ignored == "not reachable from the ssl module (until 2027-01-01)"
    assert not in_314[0].gating
    assert in_314[1].gating and not in_314[1].ignored  # another package
    assert in_314[2].gating and in_314[2].expired_rule == TODAY.isoformat()  # expires today
    in_313 = judge("3.13-source-bookworm-runtime", found, rules, "high", TODAY)
    assert in_313[0].gating  # the rule names 3.14 cells only


# --------------------------------------------------------------------------- the DB


@pytest.fixture
def tools(tmp_path: Path) -> Path:
    root = tmp_path / "tools"
    fake_grype.install(root)
    return root


def grype_in(tools: Path, tmp_path: Path) -> Grype:
    return Grype(find_binary(tools), tmp_path / "cache", {"PATH": "/usr/bin:/bin"})


@pytest.mark.spawns("grype")
def test_the_db_is_checked_imported_once_and_described(tools: Path, tmp_path: Path) -> None:
    sha = fake_grype.archive(tmp_path / "db.tar.gz", FRESH)
    grype = grype_in(tools, tmp_path)
    db = ScanDb(file="db.tar.gz", sha256=sha)
    info = grype.prepare(db, tmp_path, max_age_days=5, now=NOW)
    assert info.schema == "v6.1.10" and info.built == "2026-11-20T06:00:00Z"
    assert info.age_days == 1.25 and info.checksum == f"sha256:{sha}"
    assert info.scanner == "grype 0.121.3" and info.source == str(tmp_path / "db.tar.gz")
    again = grype_in(tools, tmp_path).prepare(db, tmp_path, max_age_days=5, now=NOW)
    assert again == info
    imports = [c for c in fake_grype.calls(tools) if c["argv"][:2] == ["db", "import"]]
    assert len(imports) == 1  # the second prepare found it imported
    env = imports[0]["env"]
    assert env["GRYPE_DB_AUTO_UPDATE"] == "false" and env["GRYPE_DB_VALIDATE_AGE"] == "false"
    assert env["GRYPE_DB_CACHE_DIR"] == str(tmp_path / "cache" / "grype-db" / sha[:16])


@pytest.mark.spawns("grype")
@pytest.mark.parametrize("case", ["checksum", "missing", "corrupt", "old"])
def test_a_bad_db_is_one_line_and_exit_3(tools: Path, tmp_path: Path, case: str) -> None:
    sha = fake_grype.archive(tmp_path / "db.tar.gz", "2026-11-10T00:00:00Z" if case == "old" else FRESH)
    if case == "corrupt":
        (tmp_path / "db.tar.gz").write_bytes(b"\x1f\x8b not a tar")
        sha = fake_grype.sha256_of_file(tmp_path / "db.tar.gz")
    db = ScanDb(file="gone.tar.gz" if case == "missing" else "db.tar.gz",
                sha256="0" * 64 if case == "checksum" else sha)
    with pytest.raises(ScanError) as exc:
        grype_in(tools, tmp_path).prepare(db, tmp_path, max_age_days=5, now=NOW)
    assert exc.value.exit_code == ExitCode.TOOL
    text = str(exc.value)
    assert "\n" not in text
    assert {"checksum": f"has sha256 {sha}, scan.db.sha256 pins {'0' * 64}",
            "missing": "gone.tar.gz does not exist",
            "corrupt": "grype db import",
            "old": "(11.5 days ago), older than scan.max_age_days (5)"}[case] in text
    if case == "corrupt":
        assert "gzip: invalid header (not a grype DB archive, or corrupt)" in text
        assert "\x1b" not in text


def test_no_scanner_is_one_line_naming_the_install_script(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ScanError) as exc:
        find_binary(tmp_path / "tools")
    assert "no grype" in str(exc.value) and "scripts/install-go-tools.sh grype" in str(exc.value)


def test_grypes_error_lines_lose_colours_and_prefixes() -> None:
    stderr = ("[0000]  WARN registry communication is insecure\n"
              "[0000] ERROR \x1b[31mfailed to load vulnerability db: database does not exist\x1b[0m\n")
    assert last_error(stderr) == "failed to load vulnerability db: database does not exist"


# --------------------------------------------------------------------------- the command


@dataclasses.dataclass
class Setup:
    cfg: Path
    registry: FakeRegistry
    tools: Path
    digests: dict[str, dict[str, str]]  # cell -> platform -> platform manifest digest


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    tools = tmp_path / "tools"
    fake_grype.install(tools)
    with FakeRegistry() as reg:
        cfg = write_config(tmp_path / "cfg", reg.address, "team/python")
        # the command checks the DB's age against the real clock
        built = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        sha = fake_grype.archive(cfg.parent / "db.tar.gz", built.strftime("%Y-%m-%dT%H:%M:%SZ"))
        cfg.write_text(cfg.read_text() + scan_section(sha))
        loaded = loader.load(cfg, TODAY)
        planned = plan.build(loaded, lockfile.read(loaded), only=["3.14-source-*"], profile=None,
                             today=TODAY)
        digests = {}
        for img in planned.images:
            reg.put_image("team/python", img.tags[0], img.id, ("linux/amd64", "linux/arm64"))

            plats = Registry(reg.address).platform_manifests("team/python", img.tags[0])
            assert plats is not None
            digests[img.id] = plats
        st = settings.get()
        settings.override(dataclasses.replace(
            st, tools_dir=tools, cache_dir=tmp_path / "cache", work_dir=tmp_path / "work",
            environ={**st.environ, "PATH": "/usr/bin:/bin"}))
        yield Setup(cfg, reg, tools, digests)


def scan(setup: Setup, capsys: pytest.CaptureFixture[str],
         *args: str) -> tuple[int, str, str, dict[str, Any]]:
    out = setup.cfg.parent / "scan.json"
    code, stdout, stderr = run_cli(["scan", "--config", str(setup.cfg), "--json", str(out), *args],
                                   capsys)
    return code, stdout, stderr, json.loads(out.read_text()) if out.exists() else {}


@pytest.mark.spawns("grype")
def test_scan_reports_per_platform_by_digest_and_gates(setup: Setup,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    arm = setup.digests["3.14-source-bookworm-runtime"]["linux/arm64"]
    (setup.tools / "matches.json").write_text(json.dumps({
        arm: [fake_grype.match("CVE-2026-1111", "libssl3", "3.0.1-1", "High", "3.0.2-1"),
              fake_grype.match("CVE-2026-2222", "zlib1g", "1.2.13", "Critical")],
        "registry:": [fake_grype.match("CVE-2026-3333", "python", "3.14.4", "Medium", "3.14.5",
                                       kind="UnknownPackage", matched_by="cpe-match")],
    }))
    code, out, _, report = scan(setup, capsys, "--only", "3.14-source-bookworm-*")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("vulnerability DB: schema v6.1.10, built ")
    assert " (1.0 days old), sha256:" in lines[0] and lines[0].endswith("; grype 0.121.3")
    assert lines[1] == "gate: fixable findings at or above high"
    assert next(iter(report)) == "db" and report["db"]["schema"] == "v6.1.10"
    assert report["exit_code"] == 1
    assert [(g["cell"], g["platform"], g["advisory"]) for g in report["gating"]] == [
        ("3.14-source-bookworm-runtime", "linux/arm64", "CVE-2026-1111")]
    runtime = next(i for i in report["images"] if i["cell"] == "3.14-source-bookworm-runtime")
    assert {p["platform"]: p["digest"] for p in runtime["platforms"]} == \
        setup.digests["3.14-source-bookworm-runtime"]
    assert all(p["source"] == "image" for p in runtime["platforms"])
    by_plat = {p["platform"]: {f["advisory"]: f for f in p["findings"]} for p in runtime["platforms"]}
    assert set(by_plat["linux/amd64"]) == {"CVE-2026-3333"}
    assert by_plat["linux/arm64"]["CVE-2026-2222"]["fix_state"] == "not-fixed"
    assert not by_plat["linux/arm64"]["CVE-2026-2222"]["gating"]  # no fix yet: reported only
    scans = [c for c in fake_grype.calls(setup.tools) if c["argv"][0].startswith("registry:")]
    assert sorted(c["argv"][0] for c in scans) == sorted(
        f"registry:{setup.registry.address}/team/python@{d}"
        for cell in setup.digests if cell.startswith("3.14-source-bookworm")
        for d in setup.digests[cell].values())
    for c in scans:
        assert c["argv"][c["argv"].index("--platform") + 1] in ("linux/amd64", "linux/arm64")
        assert c["env"]["GRYPE_REGISTRY_INSECURE_USE_HTTP"] == "true"  # a loopback registry
    # the same findings with the gate at critical: the High one no longer fails the scan
    code, _, _, report = scan(setup, capsys, "--only", "3.14-source-bookworm-*",
                              "--fail-on", "critical")
    assert code == 0 and report["gating"] == [] and report["fail_on"] == "critical"


@pytest.mark.spawns("grype")
def test_without_signing_scan_reads_the_sbom_a_push_here_made_else_the_image(
        setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No signing: (issue 32 audit item 4): the SBOM the push made of a platform manifest
    (release/attest.built_sboms: work/scan/sboms/<cell>/<digest>.spdx.json, with the CPython
    entry) goes to grype, so the compiled CPython is matched; a manifest no push here made
    one of is read from the registry, and its note says so."""
    cell = "3.14-source-bookworm-runtime"
    amd, arm = setup.digests[cell]["linux/amd64"], setup.digests[cell]["linux/arm64"]
    made = scan_images.sbom_dir(tmp_path / "work") / cell / f"{amd.removeprefix('sha256:')}.spdx.json"
    made.parent.mkdir(parents=True)
    made.write_text(json.dumps({"packages": [{"SPDXID": "SPDXRef-Package-cpython-3.14.4-source"}]}))
    (setup.tools / "matches.json").write_text(json.dumps({"SPDXRef-Package-cpython-3.14.4": [
        fake_grype.match("CVE-2026-4444", "cpython", "3.14.4", "Medium", "3.14.5",
                         kind="binary", matched_by="cpe-match")]}))
    code, _, _, report = scan(setup, capsys, "--only", cell)
    assert code == 0
    (image,) = report["images"]
    plats = {p["platform"]: p for p in image["platforms"]}
    assert plats["linux/amd64"]["source"] == "sbom"
    assert [f["advisory"] for f in plats["linux/amd64"]["findings"]] == ["CVE-2026-4444"]
    assert plats["linux/amd64"]["note"] == ("no signing: in images.yaml: the SBOM a push on this "
                                            "machine made, not attested")
    assert (plats["linux/arm64"]["source"], plats["linux/arm64"]["findings"]) == ("image", [])
    assert plats["linux/arm64"]["note"] == ("no signing: in images.yaml, and no push on this "
                                            "machine made an SBOM of it: grype read the image")
    targets = [c["argv"][0] for c in fake_grype.calls(setup.tools) if ":" in c["argv"][0]]
    assert sorted(targets) == sorted([f"sbom:{made}",
                                      f"registry:{setup.registry.address}/team/python@{arm}"])


@pytest.mark.spawns("grype")
def test_unpublished_images_are_reported_not_failed(setup: Setup,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _, report = scan(setup, capsys, "--only", "3.13-source-bookworm-runtime",
                                "--only", "3.14-source-bookworm-runtime")
    assert code == 0
    states = {i["cell"]: i["state"] for i in report["images"]}
    assert states == {"3.13-source-bookworm-runtime": "unpublished",
                      "3.14-source-bookworm-runtime": "scanned"}
    assert "(unpublished: 3.13-runtime is not published)" in out
    assert "1 image(s) scanned (2 platform(s)), 0 finding(s), 0 new, 0 gating, 1 unpublished" in out


@pytest.mark.spawns("grype")
def test_a_platform_grype_cannot_read_makes_the_scan_exit_3(setup: Setup,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # the stand-in fails on targets containing "crash": name the runtime's arm64 digest so
    digest = setup.digests["3.14-source-bookworm-runtime"]["linux/arm64"]
    script = setup.tools / "bin" / "grype"
    script.write_text(script.read_text().replace('if "crash" in target',
                                                 f'if "crash" in target or {digest!r} in target'))
    code, out, _, report = scan(setup, capsys, "--only", "3.14-source-bookworm-*")
    assert code == 3 and report["exit_code"] == 3
    assert "(error: linux/arm64: grype on registry:" in out
    failed = next(i for i in report["images"] if i["state"] == "error")
    assert failed["cell"] == "3.14-source-bookworm-runtime"
    assert failed["reason"].startswith("linux/arm64: grype on registry:")
    assert "connection reset" in failed["reason"]


@pytest.mark.spawns("grype")
def test_a_stale_db_stops_the_scan_with_one_line(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    text = setup.cfg.read_text()
    old_sha = text.split("sha256: ")[1].split("\n")[0]
    sha = fake_grype.archive(setup.cfg.parent / "db.tar.gz", "2020-01-01T00:00:00Z")
    setup.cfg.write_text(text.replace(old_sha, sha))
    code, out, err, report = scan(setup, capsys)
    assert code == 3 and out == "" and report == {}
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "older than scan.max_age_days (5)" in errors[0]
    assert not [c for c in fake_grype.calls(setup.tools) if c["argv"][0].startswith("registry:")]


def test_without_a_scan_section_the_command_says_what_to_add(setup: Setup,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    text = setup.cfg.read_text()
    setup.cfg.write_text(text[:text.index("scan:\n")])
    code, _, err, _ = scan(setup, capsys)
    assert code == 2 and "no scan: section" in err and "scan.db" in err


class StandInCosign:
    """verify_attestation as signing.Cosign answers it: the SBOM or OpenVEX predicate, or a
    refusal (a reference containing ``refuse``; an OpenVEX one when ``vex`` is None)."""

    def __init__(self, sbom: dict[str, Any], refuse: str = "",
                 vex: dict[str, Any] | None = None) -> None:
        self.sbom, self.refuse, self.vex = sbom, refuse, vex
        self.asked: list[str] = []

    def verify_attestation(self, ref: str, predicate_type: str) -> Verified:
        self.asked.append(f"{predicate_type} {ref}")
        predicate = self.vex if predicate_type == "openvex" else self.sbom
        if (self.refuse and self.refuse in ref) or predicate is None:
            return Verified(ref, False, "no matching attestations")
        return Verified(ref, True, "", ({"predicateType": PREDICATE_TYPES[predicate_type],
                                         "predicate": predicate},))


@pytest.mark.spawns("grype")
def test_the_attested_sbom_goes_to_grype_when_it_verifies(setup: Setup, tmp_path: Path) -> None:
    (setup.tools / "matches.json").write_text(json.dumps({"sbom:": [fake_grype.match(
        "CVE-2026-4444", "cpython", "3.14.4", "Critical", "3.14.5", kind="UnknownPackage",
        matched_by="cpe-match")]}))
    loaded = loader.load(setup.cfg, TODAY)
    assert loaded.config.scan is not None
    planned = plan.build(loaded, lockfile.read(loaded), only=["3.14-source-bookworm-runtime"],
                         profile=None, today=TODAY)
    arm = setup.digests["3.14-source-bookworm-runtime"]["linux/arm64"]
    cosign = StandInCosign({"spdxVersion": "SPDX-2.3", "packages": [{"name": "cpython"}]}, refuse=arm)
    grype = grype_in(setup.tools, tmp_path)
    grype.prepare(loaded.config.scan.db, setup.cfg.parent, max_age_days=5, now=NOW)

    report = scan_images.scan_all(
        Registry(setup.registry.address), "team/python", planned.images, grype,
        scan_images.attested(cast(Cosign, cosign), tmp_path / "sboms", frozenset()),
        loaded.config.scan,
        ScanReport(cast(Any, None), "high"), TODAY)
    (image,) = report.images
    plats = {p.platform: p for p in image.platforms}
    assert plats["linux/amd64"].source == "sbom" and plats["linux/arm64"].source == "image"
    assert "no verified SBOM attestation (no matching attestations)" in plats["linux/arm64"].note
    assert [f.advisory for f in plats["linux/amd64"].findings] == ["CVE-2026-4444"]
    assert plats["linux/amd64"].findings[0].gating
    assert plats["linux/arm64"].findings == ()
    sbom_calls = [c for c in fake_grype.calls(setup.tools) if c["argv"][0].startswith("sbom:")]
    (call,) = sbom_calls
    written = Path(call["argv"][0].removeprefix("sbom:"))
    assert json.loads(written.read_text())["packages"] == [{"name": "cpython"}]
    assert "--platform" not in call["argv"]  # the SBOM is of one platform already
    assert cosign.asked == [f"{kind} {setup.registry.address}/team/python@{d}"
                            for _, d in sorted(setup.digests["3.14-source-bookworm-runtime"].items())
                            for kind in ("openvex", "spdxjson")]
    assert "--vex" not in call["argv"]  # no OpenVEX attestation verified: none given


@pytest.mark.spawns("grype")
def test_the_images_openvex_sets_its_advisory_aside_and_it_never_gates(
        setup: Setup, tmp_path: Path) -> None:
    """The OpenVEX attestation goes to grype with the SBOM; what it sets aside is reported
    with its VEX status (not gating), the rest stands."""
    (setup.tools / "matches.json").write_text(json.dumps({"sbom:": [
        fake_grype.match("CVE-2099-1007", "python", "3.14.4", "Critical", "3.14.5",
                         kind="UnknownPackage", matched_by="cpe-match"),
        fake_grype.match("CVE-2026-4444", "python", "3.14.4", "Critical", "3.14.5",
                         kind="UnknownPackage", matched_by="cpe-match")]}))
    loaded = loader.load(setup.cfg, TODAY)
    assert loaded.config.scan is not None
    planned = plan.build(loaded, lockfile.read(loaded), only=["3.14-source-bookworm-runtime"],
                         profile=None, today=TODAY)
    vex = {"@context": "https://openvex.dev/ns/v0.2.0", "statements": [
        {"vulnerability": {"name": "CVE-2099-1007"}, "status": "not_affected",
         "justification": "vulnerable_code_not_present", "products": []}]}
    cosign = StandInCosign({"spdxVersion": "SPDX-2.3", "packages": [{"name": "cpython"}]}, vex=vex)
    grype = grype_in(setup.tools, tmp_path)
    grype.prepare(loaded.config.scan.db, setup.cfg.parent, max_age_days=5, now=NOW)
    report = scan_images.scan_all(
        Registry(setup.registry.address), "team/python", planned.images, grype,
        scan_images.attested(cast(Cosign, cosign), tmp_path / "evidence",
                             frozenset({"CVE-2099-1007"})),  # the current scan.vex rules
        loaded.config.scan, ScanReport(cast(Any, None), "high"), TODAY)
    (image,) = report.images
    for plat in image.platforms:
        got = {f.advisory: f for f in plat.findings}
        assert got["CVE-2099-1007"].vex == "not_affected (vulnerable_code_not_present)"
        assert not got["CVE-2099-1007"].gating
        assert got["CVE-2026-4444"].gating and got["CVE-2026-4444"].vex == ""
    calls = [c["argv"] for c in fake_grype.calls(setup.tools) if c["argv"][0].startswith("sbom:")]
    assert len(calls) == 2 and all(json.loads(Path(c[c.index("--vex") + 1]).read_text()) == vex
                                   for c in calls)


@pytest.mark.spawns("grype")
def test_a_db_url_is_downloaded_once_and_checked(tools: Path, tmp_path: Path) -> None:
    import functools
    import http.server
    import threading

    served = tmp_path / "served"
    served.mkdir()
    sha = fake_grype.archive(served / "vulnerability-db_v6.tar.zst", FRESH)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        db = ScanDb(url=f"{base}/vulnerability-db_v6.tar.zst", sha256=sha)
        info = grype_in(tools, tmp_path).prepare(db, tmp_path, max_age_days=5, now=NOW)
        assert info.source == db.url and info.checksum == f"sha256:{sha}"
        kept = tmp_path / "cache" / "downloads" / sha / "vulnerability-db_v6.tar.zst"
        assert kept.is_file()
        (served / "vulnerability-db_v6.tar.zst").unlink()  # a second prepare needs no server
        assert grype_in(tools, tmp_path).prepare(db, tmp_path, max_age_days=5, now=NOW) == info
        with pytest.raises(ScanError) as exc:
            grype_in(tools, tmp_path).prepare(ScanDb(url=f"{base}/gone.tar.zst", sha256=sha),
                                              tmp_path, max_age_days=5, now=NOW)
        assert str(exc.value).startswith(f"scan.db.url: {base}/gone.tar.zst: HTTP 404")
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_tools_dir_comes_from_the_environment() -> None:
    assert settings.Settings.from_environ({}).tools_dir == Path("/var/lib/orchestrator-host/tools")
    assert settings.Settings.from_environ({"ORCH_HOST_STATE": "/srv/h"}).tools_dir == Path("/srv/h/tools")
    assert settings.Settings.from_environ({"ORCH_TOOLS_DIR": "/opt/t", "ORCH_HOST_STATE": "/srv/h"}
                                          ).tools_dir == Path("/opt/t")


@pytest.mark.spawns("grype")
def test_findings_carry_the_day_they_were_first_seen(setup: Setup,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The ledger (work dir, scan-first-seen.json, kept between runs like the nightly's):
    a finding is new the first time, keeps its first date after, and is forgotten once the
    scanned image no longer has it; unpublished images keep theirs."""
    amd = setup.digests["3.14-source-bookworm-runtime"]["linux/amd64"]
    a = fake_grype.match("CVE-2026-0001", "libssl3", "3.0.1-1", "Low", "3.0.2-1")
    b = fake_grype.match("CVE-2026-0002", "zlib1g", "1.2.13", "Medium")
    only = ("--only", "3.14-source-bookworm-runtime")
    (setup.tools / "matches.json").write_text(json.dumps({amd: [a]}))
    _, out, _, report = scan(setup, capsys, *only)
    (first,) = report["new"]
    assert (first["advisory"], first["first_seen"], first["new"]) == ("CVE-2026-0001", "2026-11-21", True)
    (row,) = [line for line in out.splitlines() if "CVE-2026-0001" in line]
    assert row.endswith("  new")  # the NOTE column
    ledger = setup.cfg.parent.parent / "work" / "scan-first-seen.json"
    assert json.loads(ledger.read_text()) == {
        "3.14-source-bookworm-runtime|linux/amd64|CVE-2026-0001|libssl3": "2026-11-21"}
    # the next day: a is old news, b is new
    st = settings.get()
    settings.override(dataclasses.replace(st, today=dt.date(2026, 11, 22)))
    (setup.tools / "matches.json").write_text(json.dumps({amd: [a, b]}))
    _, out, _, report = scan(setup, capsys, *only)
    assert [(n["advisory"], n["first_seen"]) for n in report["new"]] == [("CVE-2026-0002", "2026-11-22")]
    found = {f["advisory"]: f for f in report["images"][0]["platforms"][0]["findings"]}
    assert found["CVE-2026-0001"]["first_seen"] == "2026-11-21" and not found["CVE-2026-0001"]["new"]
    (row,) = [line for line in out.splitlines() if "CVE-2026-0001" in line]
    assert row.endswith("  since 2026-11-21") and ", 1 new, " in out
    # a is fixed: forgotten, so a later return counts as new again
    (setup.tools / "matches.json").write_text(json.dumps({amd: [b]}))
    scan(setup, capsys, *only)
    assert set(json.loads(ledger.read_text())) == {
        "3.14-source-bookworm-runtime|linux/amd64|CVE-2026-0002|zlib1g"}


@pytest.mark.spawns("grype")
def test_scan_shows_its_progress_and_ends_with_a_summary_failures_first(
        setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 34 items 2 and 3: a k/n line per image on stderr (without a terminal: no status,
    no escape codes), and after the findings a line per image, the one grype could not read
    first, then the gating one, each with the line that says why; platforms and time each."""
    runtime, dev, old = ("3.14-source-bookworm-runtime", "3.14-source-bookworm-dev",
                         "3.13-source-bookworm-runtime")
    arm = setup.digests[runtime]["linux/arm64"]
    (setup.tools / "matches.json").write_text(json.dumps({
        arm: [fake_grype.match("CVE-2026-1111", "libssl3", "3.0.1-1", "High", "3.0.2-1")]}))
    crash = setup.digests[dev]["linux/amd64"]
    script = setup.tools / "bin" / "grype"
    script.write_text(script.read_text().replace('if "crash" in target',
                                                 f'if "crash" in target or {crash!r} in target'))
    code, out, err, report = scan(setup, capsys, "--only", old, "--only", runtime, "--only", dev)
    assert code == 3
    lines = err.splitlines()
    assert "scan: 3 cell(s)" in lines and "\x1b" not in err
    done = [line for line in lines if line.startswith("scan ") and "/3: " in line]
    assert len(done) == 3 and [d.split(":")[0] for d in done] == ["scan 1/3", "scan 2/3", "scan 3/3"]
    by_cell = {d.split()[2]: d for d in done}
    assert by_cell[old].startswith(f"scan {done.index(by_cell[old]) + 1}/3: {old} skipped in ")
    assert " failed in " in by_cell[runtime] and "(elapsed " in by_cell[runtime]
    assert by_cell[runtime].endswith(
        ": gating: CVE-2026-1111 in libssl3 3.0.1-1, fixed in 3.0.2-1 (High, arm64)")
    assert " failed in " in by_cell[dev] and ": amd64: grype on registry:" not in by_cell[dev]
    assert ": linux/amd64: grype on registry:" in by_cell[dev]
    assert any(line.startswith("scan: 3/3 cell(s) in ") for line in lines)

    summary = out.splitlines()
    head = next(n for n, line in enumerate(summary) if line.startswith("IMAGE "))
    assert summary[head].split() == ["IMAGE", "STATUS", "PLATFORMS", "FINDINGS", "GATING", "TIME",
                                     "NOTE"]
    assert summary[head + 1].split()[:3] == [dev, "error", "amd64"]  # not scanned: the plan's
    assert summary[head + 2].startswith("  why: linux/amd64: grype on registry:")
    assert summary[head + 3].split()[:5] == [runtime, "gating", "amd64,arm64", "1", "1"]
    assert summary[head + 4] == \
        "  why: CVE-2026-1111 in libssl3 3.0.1-1, fixed in 3.0.2-1 (High, arm64)"
    row = summary[head + 5].split()
    assert row[:5] == [old, "unpublished", "amd64", "-", "-"]
    assert row[5].endswith("s") and " ".join(row[6:]) == "3.13-runtime is not published"
    assert summary[-1].startswith("1 image(s) scanned")
    # the JSON report is as before: no per-image time in it
    assert "image_seconds" not in report and all("seconds" not in i for i in report["images"])

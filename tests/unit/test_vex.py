"""OpenVEX (issue 32 item 5): the smoke test's components probe, the document made from it
and images.yaml's scan.vex rules, and grype's verdicts read back into the scan's findings."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import loader
from orchestrator.config.publish import VEX_COMPONENTS, VexRule
from orchestrator.errors import ConfigError
from orchestrator.scan import images as scan_images
from orchestrator.scan.grype import findings
from orchestrator.scan.report import judge
from orchestrator.smoke import suite
from orchestrator.supplychain import vex
from tests.unit.helpers import FIXTURES, TODAY

REF = "127.0.0.1:5000/org/python@sha256:" + "ab" * 32
SBOM = json.loads((FIXTURES / "scan" / "bookworm-3.14-runtime.spdx.json").read_text())
RULES = (VexRule(advisory="CVE-2099-1007", component="idle", reason="The flaw is in idlelib."),
         VexRule(advisory="CVE-2099-1008", component="pip", reason="The flaw is in pip's resolver."),
         VexRule(advisory="CVE-2099-1009", component="ensurepip", reason="In pip's wheel."))


@pytest.mark.spawns("python")
def test_the_probe_runs_here_and_agrees_with_the_import_system() -> None:
    """The probe is the file the smoke test runs (python3 -c). On this interpreter (a pyenv
    build with everything, or Debian's python3 without idlelib, tkinter or the test suite)
    what it reports agrees with what the import system and sysconfig say, by other means."""
    out = subprocess.run([sys.executable, "-c", suite.snippet("components.py")],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    found = suite.components(out)
    assert list(found) == list(VEX_COMPONENTS)
    for component, module in (("idle", "idlelib"), ("tkinter", "tkinter"), ("pip", "pip"),
                              ("cpython-tests", "test.test_sys")):
        try:
            spec = importlib.util.find_spec(module)
        except ModuleNotFoundError:  # test.test_sys with no test package at all
            spec = None
        assert (found[component] is None) == (spec is None), (component, found[component])
    headers = Path(str(sysconfig.get_config_var("INCLUDEPY")), "Python.h")
    assert (found["headers"] is None) == (not headers.exists())
    wheel = found["ensurepip"]
    assert wheel is None or (wheel.endswith(".whl") and Path(wheel).is_file())
    on_path = [shutil.which(n) for n in ("cc", "gcc", "c++", "g++", "ld", "as") if shutil.which(n)]
    if on_path:  # else it may still be under /usr/bin or be gcc's cc1 (the test below)
        assert found["compilers"] == on_path[0]


def test_the_probe_finds_a_toolchain_off_path_and_reports_none_without_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """components.py's toolchain(): PATH first, then the directories gcc and binutils install
    into (versioned, target-prefixed names), then gcc's cc1; in an image without any: None."""
    probe: dict[str, Any] = {}
    exec(suite.snippet("components.py"), probe)  # the file the smoke test runs; prints its JSON
    capsys.readouterr()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    root = tmp_path / "root"
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/python3").touch()
    assert probe["toolchain"](root) is None  # a runtime image: no compiler anywhere
    cc1 = root / "usr/lib/gcc/x86_64-linux-gnu/12/cc1"
    cc1.parent.mkdir(parents=True)
    cc1.touch()
    assert probe["toolchain"](root) == str(cc1)  # the drivers gone, the compiler proper left
    (root / "usr/bin/x86_64-linux-gnu-gcc-12").touch()
    assert probe["toolchain"](root) == str(root / "usr/bin/x86_64-linux-gnu-gcc-12")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ld").touch(mode=0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert probe["toolchain"](root) == str(bin_dir / "ld")


def test_the_components_verdict_refuses_what_is_not_the_probes_output() -> None:
    img = next(iter([]), None)  # the verdict reads only code and output
    row = next(r for r in suite.CHECK_TABLE if r.name == suite.COMPONENTS)
    good = json.dumps(dict.fromkeys(VEX_COMPONENTS))
    assert row.expect(img, 0, good) is None  # type: ignore[arg-type]
    assert row.expect(img, 1, good) == "exit code 1"  # type: ignore[arg-type]
    bad = row.expect(img, 0, json.dumps({"idle": None}))  # type: ignore[arg-type]
    assert bad is not None and "keys cpython-tests, idle" in bad
    assert row.expect(img, 0, "Traceback") is not None  # type: ignore[arg-type]


def test_a_statement_per_rule_whose_component_is_absent() -> None:
    components = {**dict.fromkeys(VEX_COMPONENTS), "ensurepip": "/p/ensurepip/_bundled/pip.whl"}
    doc = vex.document(REF, "linux/arm64", SBOM, components, RULES, author="acme",
                       timestamp="2026-12-07T03:00:00Z")
    said = {s["vulnerability"]["name"]: s for s in doc["statements"]}
    assert set(said) == {"CVE-2099-1007", "CVE-2099-1008"}  # ensurepip ships: no statement
    idle, pip = said["CVE-2099-1007"], said["CVE-2099-1008"]
    assert idle["justification"] == "vulnerable_code_not_present"
    assert pip["justification"] == "component_not_present"
    assert idle["products"][0]["subcomponents"] == [{"@id": "pkg:generic/python@3.14.4"}]
    assert idle["products"][1:] == [{"@id": "pkg:generic/python@3.14.4"}]
    assert pip["products"] == [{"@id": vex.image_purl(REF), "hashes": {"sha-256": "ab" * 32},
                                "subcomponents": [{"@id": "pkg:pypi/pip"}]}, {"@id": "pkg:pypi/pip"}]
    assert "on linux/arm64" in idle["impact_statement"]
    again = vex.document(REF, "linux/arm64", SBOM, components, RULES, author="acme",
                         timestamp="2026-12-07T03:00:00Z")
    assert again == doc  # the same build, the same document (its id from its content)
    other = vex.document(REF, "linux/arm64", SBOM, {**components, "idle": "/x"}, RULES,
                         author="acme", timestamp="2026-12-07T03:00:00Z")
    assert other["@id"] != doc["@id"] and len(other["statements"]) == 1


def _deb(name: str, version: str, upstream: str = "") -> dict[str, Any]:
    qualifiers = "?arch=amd64&distro=debian-12" + (f"&upstream={upstream}" if upstream else "")
    return {"name": name, "externalRefs": [{
        "referenceType": "purl",
        "referenceLocator": f"pkg:deb/debian/{name}@{version}{qualifiers}"}]}


# what syft lists of a bookworm runtime image's toolchain sources: gcc's runtime libraries
RUNTIME_TOOLCHAIN = [_deb("gcc-12-base", "12.2.0-14", "gcc-12"),
                     _deb("libgcc-s1", "12.2.0-14", "gcc-12"),
                     _deb("libstdc%2B%2B6", "12.2.0-14", "gcc-12"),
                     _deb("libc6", "2.36-9%2Bdeb12u14", "glibc"),
                     _deb("zlib1g", "1:1.2.13.dfsg-1", "zlib")]
COMPILERS = VexRule(advisory="CVE-2099-1011", component="compilers",
                    reason="The flaw is in gcc's C front end (cc1).")


def test_the_toolchain_purls_are_the_packages_of_gcc_and_binutils_sources() -> None:
    dev = [*RUNTIME_TOOLCHAIN, _deb("gcc", "4:12.2.0-3", "gcc-defaults"),
           _deb("cpp-12", "12.2.0-14", "gcc-12"), _deb("binutils", "2.40-2"),
           _deb("libbinutils", "2.40-2", "binutils"), _deb("libctf0", "2.40-2", "binutils"),
           _deb("libgccjit0", "12.2.0-14", "gcc-12%4012.2.0-14")]  # syft's SOURCE@VERSION
    assert vex.toolchain_purls({"packages": dev}) == sorted(
        f"pkg:deb/debian/{n}" for n in (
            "gcc-12-base@12.2.0-14", "libgcc-s1@12.2.0-14", "libstdc%2B%2B6@12.2.0-14",
            "gcc@4:12.2.0-3", "cpp-12@12.2.0-14", "binutils@2.40-2", "libbinutils@2.40-2",
            "libctf0@2.40-2", "libgccjit0@12.2.0-14"))
    # none of them (a minimal image): the toolchain's own packages, unversioned
    assert vex.toolchain_purls(SBOM) == ["pkg:deb/debian/binutils", "pkg:deb/debian/gcc"]
    assert vex.toolchain_purls({"packages": []}) == ["pkg:deb/debian/binutils", "pkg:deb/debian/gcc"]


def test_a_compilers_rule_speaks_for_gccs_runtime_libraries_where_no_compiler_is() -> None:
    """The probe found no toolchain in a runtime image: a gcc advisory the scanner matches
    against libgcc-s1 or libstdc++6 (source gcc-12) is not_affected there, those packages
    named; the dev image ships gcc: no statement. An image whose SBOM has no package of those
    sources still gets one (what expected_vex says, so an unchanged image is not attested
    again every run), naming the absent gcc and binutils, never no package at all (that would
    cover every package of the image)."""
    sbom = {"packages": [*SBOM["packages"], *RUNTIME_TOOLCHAIN]}
    runtime = dict.fromkeys(VEX_COMPONENTS)
    doc = vex.document(REF, "linux/amd64", sbom, runtime, (*RULES, COMPILERS), author="acme",
                       timestamp="2026-12-07T03:00:00Z")
    (st,) = [s for s in doc["statements"] if s["vulnerability"]["name"] == "CVE-2099-1011"]
    libs = ["pkg:deb/debian/gcc-12-base@12.2.0-14", "pkg:deb/debian/libgcc-s1@12.2.0-14",
            "pkg:deb/debian/libstdc%2B%2B6@12.2.0-14"]
    assert (st["status"], st["justification"]) == ("not_affected", "vulnerable_code_not_present")
    assert st["products"][0]["subcomponents"] == [{"@id": p} for p in libs]
    assert st["products"][1:] == [{"@id": p} for p in libs]
    assert st["impact_statement"].startswith("The flaw is in gcc's C front end (cc1). The C "
                                             "toolchain (gcc, cc, g++, cc1, ld, as) is not in")
    dev = {**runtime, "compilers": "/usr/bin/cc"}
    assert vex.statements(REF, "linux/amd64", sbom, dev, (COMPILERS,), "t") == []
    (minimal,) = vex.statements(REF, "linux/amd64", SBOM, runtime, (COMPILERS,), "t")
    assert minimal["products"][0]["subcomponents"] == [{"@id": "pkg:deb/debian/binutils"},
                                                       {"@id": "pkg:deb/debian/gcc"}]
    assert {r.advisory for r in vex.absent(runtime, (COMPILERS,))} == {"CVE-2099-1011"}


def test_a_compilers_rule_loads(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "  vex:\n    - {advisory: CVE-2099-1, component: compilers, "
                  "reason: in gcc's cc1 only}\n")
    scan = loader.load(cfg, TODAY).config.scan
    assert scan is not None and scan.vex[0].component == "compilers"


def test_no_rules_or_no_probe_record_give_no_statement() -> None:
    assert vex.document(REF, "linux/amd64", SBOM, dict.fromkeys(VEX_COMPONENTS), (),
                        author="a", timestamp="t")["statements"] == []
    assert vex.statements(REF, "linux/amd64", SBOM, {}, RULES, "t") == []


def test_cpython_purls_of_a_deadsnakes_image() -> None:
    sbom = {"packages": [
        {"name": n, "externalRefs": [{"referenceType": "purl", "referenceLocator": p}]}
        for n, p in (("python3.12-minimal", "pkg:deb/ubuntu/python3.12-minimal@3.12.13-1?arch=amd64"),
                     ("libpython3.12t64", "pkg:deb/ubuntu/libpython3.12t64@3.12.13-1"),
                     ("libpython3.12-stdlib", "pkg:deb/ubuntu/libpython3.12-stdlib@3.12.13-1"),
                     ("python3-pip", "pkg:deb/ubuntu/python3-pip@24.0"),
                     ("zlib1g", "pkg:deb/ubuntu/zlib1g@1.3"))]}
    assert vex.cpython_purls(sbom) == ["pkg:deb/ubuntu/libpython3.12-stdlib@3.12.13-1",
                                       "pkg:deb/ubuntu/libpython3.12t64@3.12.13-1",
                                       "pkg:deb/ubuntu/python3.12-minimal@3.12.13-1"]


def test_image_purl() -> None:
    assert vex.image_purl("reg.example:5000/team/python@sha256:" + "0" * 64) == (
        "pkg:oci/python@sha256:" + "0" * 64 + "?repository_url=reg.example:5000/team/python")


def test_grype_json_with_vex_is_read_back() -> None:
    """grype's output shape (v0.121.3, seen on the demo's SBOM): a match OpenVEX set aside is
    in ignoredMatches with an applied rule of namespace vex; other ignore rules are not VEX."""
    m: dict[str, Any] = {"vulnerability": {"id": "CVE-2099-1007", "severity": "Critical",
                           "fix": {"versions": ["3.14.5"], "state": "fixed"}},
         "artifact": {"name": "python", "version": "3.14.4", "type": "binary"},
         "matchDetails": [{"type": "cpe-match"}]}
    doc = {"matches": [], "ignoredMatches": [
        {**m, "appliedIgnoreRules": [{"namespace": "vex", "vex-status": "not_affected"}]},
        {**m, "vulnerability": {**m["vulnerability"], "id": "CVE-2099-1010"},
         "appliedIgnoreRules": [{"vulnerability": "CVE-2099-1010"}]}]}
    (f,) = findings(doc)
    assert (f.advisory, f.vex) == ("CVE-2099-1007", "not_affected")
    (judged,) = judge("c", [f], (), "high", TODAY)
    assert not judged.gating  # fixable and critical, but not in this image


def _config(tmp_path: Path, vex_yaml: str) -> Path:
    text = (FIXTURES / "minimal.yaml").read_text()
    cfg = tmp_path / "images.yaml"
    cfg.write_text(text + "scan:\n  db: {file: db.tar.gz, sha256: " + "a" * 64 + "}\n" + vex_yaml)
    return cfg


def test_bad_vex_rules_are_each_one_line(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "  vex:\n"
                  "    - {advisory: CVE-2099-1, component: idlelib, reason: in idlelib only}\n"
                  "    - {advisory: CVE-2099-2, component: idle, reason: short}\n")
    with pytest.raises(ConfigError) as info:
        loader.load(cfg, TODAY)
    text = str(info.value)
    assert "scan.vex[0].component" in text and "'idle'" in text
    assert "scan.vex[1].reason" in text
    cfg = _config(tmp_path, "  vex:\n"
                  "    - {advisory: CVE-2099-3, component: idle, reason: in idlelib only}\n"
                  "    - {advisory: CVE-2099-3, component: pip, reason: in pip's resolver}\n")
    with pytest.raises(ConfigError) as info:
        loader.load(cfg, TODAY)
    assert "scan.vex[1].advisory: CVE-2099-3 has two vex rules" in str(info.value)


def test_good_vex_rules_load(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "  vex:\n    - {advisory: CVE-2099-1, component: idle, "
                  "reason: in idlelib's RPC server}\n")
    scan = loader.load(cfg, TODAY).config.scan
    assert scan is not None and scan.vex == (VexRule(advisory="CVE-2099-1", component="idle",
                                                     reason="in idlelib's RPC server"),)


def test_only_the_current_rules_statements_are_honoured() -> None:
    """A rule removed from scan.vex hides nothing any more, even in an image attested with it."""
    doc = {"statements": [{"vulnerability": {"name": "CVE-2099-1007"}, "status": "not_affected"},
                          {"vulnerability": {"name": "CVE-2099-1008"}, "status": "not_affected"}]}
    kept = scan_images.current_statements(doc, frozenset({"CVE-2099-1008"}))
    assert kept is not None and [s["vulnerability"]["name"] for s in kept["statements"]] == [
        "CVE-2099-1008"]
    assert scan_images.current_statements(doc, frozenset()) is None

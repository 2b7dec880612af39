"""The supply chain of a pushed image (release/attest.attach): SBOM per platform with the locked
CPython, provenance from what the build recorded, signatures and attestations, then verified.
The real push path publishes to the in-memory registry; syft and cosign are the fakes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import render, settings
from orchestrator.config.publish import VEX_COMPONENTS, Scan, ScanDb, VexRule
from orchestrator.errors import SupplyChainError
from orchestrator.lock import lockfile
from orchestrator.planning.plan import PlannedImage
from orchestrator.release.attest import Tools, attach, provenance_inputs, sbom_cpython, syft_for
from orchestrator.release.build import do_build
from orchestrator.release.push import do_push
from orchestrator.release.state import CellState
from orchestrator.supplychain import provenance, sbom, signing, verify
from tests.fakes.fake_cosign import FakeCosign
from tests.fakes.fake_registry import FakeRegistry
from tests.fakes.fake_syft import FakeSyft
from tests.fakes.publish_harness import HarnessRun, Publisher, write_config
from tests.unit.helpers import with_env

REPO = "team/python"
RT13 = "3.13-source-bookworm-runtime"


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with FakeRegistry() as registry:
        yield registry


@pytest.fixture
def pushed(tmp_path: Path, fake: FakeRegistry) -> tuple[Publisher, HarnessRun]:
    """The four bookworm source cells pushed by digest (--stage-only), their Dockerfiles
    rendered and their builds recorded as the build phase records them."""
    pub = Publisher(write_config(tmp_path / "cfg", fake.address, REPO), fake.address,
                    tmp_path / "work")
    run = pub.run()
    do_push(run, all_or_nothing=False, stage_only=True)
    render.write(run.loaded, render.render_all(run.loaded, run.lock))
    for img in run.plan.images:
        st = run.load_state(img.id)
        st.build_args = {"SECURITY_REFRESH": "20261121T030000", "PYTHON_VERSION": img.version}
        st.build_started, st.build_finished = "2026-11-21T03:00:00Z", "2026-11-21T03:14:30Z"
        run.save_state(st)
    (tmp_path / "cfg" / "cosign.key").write_text("k")
    (tmp_path / "cfg" / "cosign.pub").write_text("p")
    with_env(COSIGN_PASSWORD="pw")
    return pub, run


def cosign_for(run: HarnessRun, fake_cosign: FakeCosign) -> signing.Cosign:
    root = run.loaded.root
    return signing.Cosign(signing.Keys(str(root / "cosign.key"), str(root / "cosign.pub")),
                          settings.get().child_env({}), run=fake_cosign)


def test_attach_signs_attests_and_verifies(pushed: tuple[Publisher, HarnessRun]) -> None:
    pub, run = pushed
    img = run.plan.image(RT13)
    digest = run.report.cell(RT13).digest
    name = f"{pub.host}/{REPO}"
    fake_cosign, syft = FakeCosign(), FakeSyft()
    cosign = cosign_for(run, fake_cosign)
    out = attach(run, img, digest, cosign, syft_for(run, Tools(syft=syft)), registry=pub.client(),
                 formats=("spdx", "cyclonedx"))

    assert out.platforms == {"linux/amd64": digest}
    (argv, _), = syft.calls  # the pinned syft in the settings' tools dir
    assert argv[0] == str(run.settings.tools_dir / "bin" / "syft")
    assert argv[1:5] == ["scan", f"registry:{name}@{digest}", "--platform", "linux/amd64"]
    assert [(c[1], c[c.index("--type") + 1] if "--type" in c else "", c[-1]) for c in fake_cosign.calls] == [
        ("sign", "", f"{name}@{digest}"),
        ("attest", "spdxjson", f"{name}@{digest}"),
        ("attest", "cyclonedx", f"{name}@{digest}"),
        ("attest", "slsaprovenance1", f"{name}@{digest}")]  # no scan.vex rule: no OpenVEX

    locked = run.lock.python("3.13")
    cp = sbom.CPython(locked.version, "source", locked.url, locked.sha256, "/opt/acme/python/3.13")
    spdx = json.loads(out.sboms["linux/amd64"]["spdx"].read_text())
    assert sbom.check_spdx(spdx, cp) == []
    assert (sbom.find_cpython_spdx(spdx) or {}).get("versionInfo") == "3.13.5"

    st = json.loads(out.provenance.read_text())
    assert st["subject"] == [{"name": name, "digest": {"sha256": digest.removeprefix("sha256:")}}]
    pred = st["predicate"]
    assert pred == json.loads((out.provenance.parent / "provenance.predicate.json").read_text())
    ext = pred["buildDefinition"]["externalParameters"]
    assert ext["cell"] == RT13 and ext["target"] == img.target and ext["platforms"] == ["linux/amd64"]
    assert ext["buildArgs"] == {"PYTHON_VERSION": "3.13.5", "SECURITY_REFRESH": "20261121T030000"}
    lock_sha = hashlib.sha256(lockfile.lock_path(run.loaded).read_bytes()).hexdigest()
    dockerfile = run.loaded.root / "out" / "bookworm" / "Dockerfile"
    assert pred["buildDefinition"]["resolvedDependencies"] == [
        {"uri": "pkg:docker/library/debian@bookworm-slim?repository_url=mirror.test:5000",
         "digest": {"sha256": "b0" * 32}, "name": "base-image"},
        {"uri": locked.url, "digest": {"sha256": "13" * 32}, "name": "Python-3.13.5.tar.xz"},
        {"name": "images.yaml",
         "digest": {"sha256": hashlib.sha256(run.loaded.path.read_bytes()).hexdigest()}},
        {"name": "images.lock", "digest": {"sha256": lock_sha}},
        {"name": "out/bookworm/Dockerfile",
         "digest": {"sha256": hashlib.sha256(dockerfile.read_bytes()).hexdigest()}}]
    assert pred["runDetails"]["metadata"] == {"startedOn": "2026-11-21T03:00:00Z",
                                              "finishedOn": "2026-11-21T03:14:30Z"}

    v = verify.verify_digest(cosign, pub.client(), REPO, digest)
    assert v.ok, v.line()
    _, sbom_statement = fake_cosign.attestations[digest][0]  # what cosign attested: the edited SBOM
    assert sbom.find_cpython_spdx(sbom_statement["predicate"]) == sbom.find_cpython_spdx(spdx)


def test_attach_again_replaces_the_attestations(pushed: tuple[Publisher, HarnessRun]) -> None:
    pub, run = pushed
    digest = run.report.cell(RT13).digest
    fake_cosign = FakeCosign()
    cosign = cosign_for(run, fake_cosign)
    for _ in range(2):
        attach(run, run.plan.image(RT13), digest, cosign, FakeSyft().tool(), registry=pub.client())
    assert [s["predicateType"] for _, s in fake_cosign.attestations[digest]] == [
        "https://spdx.dev/Document", "https://slsa.dev/provenance/v1"]


def test_a_build_without_a_record_cannot_get_a_provenance(
        pushed: tuple[Publisher, HarnessRun]) -> None:
    pub, run = pushed
    st = run.load_state(RT13)
    st.build_started = ""
    run.save_state(st)
    fake_cosign = FakeCosign()
    with pytest.raises(SupplyChainError) as info:
        attach(run, run.plan.image(RT13), run.report.cell(RT13).digest, cosign_for(run, fake_cosign),
               FakeSyft().tool(), registry=pub.client())
    assert str(info.value) == (f"{RT13}: no start time recorded by its build (''); build it again "
                               "with this orchestrator, then push")
    assert fake_cosign.calls == []  # nothing signed when the provenance cannot be written


def test_an_sbom_without_dpkg_packages_stops_before_signing(
        pushed: tuple[Publisher, HarnessRun]) -> None:
    pub, run = pushed
    img = run.plan.image("3.14-source-bookworm-runtime")
    fake_cosign = FakeCosign()

    def drop_debs(doc: dict[str, Any]) -> dict[str, Any]:
        return {**doc, "packages": [p for p in doc["packages"] if "-deb-" not in p["SPDXID"]]}

    with pytest.raises(SupplyChainError, match="no dpkg package listed"):
        attach(run, img, run.report.cell(img.id).digest, cosign_for(run, fake_cosign),
               FakeSyft(drop_debs).tool(), registry=pub.client())
    assert fake_cosign.calls == []


def test_attach_to_a_digest_that_is_not_there(pushed: tuple[Publisher, HarnessRun]) -> None:
    pub, run = pushed
    with pytest.raises(SupplyChainError, match="not in the registry"):
        attach(run, run.plan.image(RT13), "sha256:" + "0" * 64, cosign_for(run, FakeCosign()),
               FakeSyft().tool(), registry=pub.client())


def test_the_build_records_its_args_and_times_for_the_provenance(
        tmp_path: Path, fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    pub = Publisher(write_config(tmp_path / "cfg", fake.address, REPO), fake.address,
                    tmp_path / "work")
    run = pub.run()
    run.security_refresh = "20261121T030000"  # a nightly's
    render.write(run.loaded, render.render_all(run.loaded, run.lock))
    given: dict[str, dict[str, str]] = {}
    real_build = run.engine.build

    def build(context: Path, **kw: Any) -> Any:
        given[kw["tags"][0]] = dict(kw["args"])
        return real_build(context, **kw)

    def label(run: HarnessRun, img: PlannedImage, image_id: str, base_digest: str) -> None:
        run.save_state(CellState(img.id, image_id))  # what label() leaves (its reads need files)

    monkeypatch.setattr(run.engine, "build", build)
    monkeypatch.setattr("orchestrator.release.build.label", label)
    do_build(run)
    for img in run.plan.images:
        assert run.report.cell(img.id).status == "ok", run.report.cell(img.id).message
        st = run.load_state(img.id)
        assert st.build_args == given[run.unlabelled_ref(img.id)]
        assert st.build_args["SECURITY_REFRESH"] == "20261121T030000"
        inputs = provenance_inputs(run, img)
        assert inputs.build_args == st.build_args
        assert inputs.started <= inputs.finished <= dt.datetime.now(dt.UTC)


def test_a_free_threaded_image_is_attested_with_its_minors_tarball(
        tmp_path: Path, fake: FakeRegistry) -> None:
    """3.14t is built from 3.14's locked tarball: its provenance and SBOM look the tarball up
    by the CPython minor (images.lock has no pythons.3.14t). make demo's sign phase failed both
    3.14t cells with "images.lock: pythons.3.14t: not locked" (the unit fixtures had no
    free-threaded cell)."""
    pub = Publisher(write_config(tmp_path / "cfg", fake.address, REPO, flavours=True),
                    fake.address, tmp_path / "work", only=["3.14t-source-bookworm-*"])
    run = pub.run()
    render.write(run.loaded, render.render_all(run.loaded, run.lock))
    threaded = [i for i in run.plan.images if i.freethreaded and i.build]
    assert threaded
    for img in threaded:
        st = run.load_state(img.id)
        st.build_args = {"PYTHON_VERSION": img.version}
        st.build_started, st.build_finished = "2026-11-21T03:00:00Z", "2026-11-21T03:14:30Z"
        run.save_state(st)
        locked = run.lock.python(img.base_minor)
        assert img.python == f"{img.base_minor}t" and img.python not in run.lock.pythons
        inputs = provenance_inputs(run, img)
        assert inputs.sources[0] == provenance.Source(locked.filename, locked.url, locked.sha256)
        cpython = sbom_cpython(run, img)
        assert cpython is not None and (cpython.version, cpython.sha256) == (locked.version,
                                                                              locked.sha256)


def _with_vex_rules(run: HarnessRun) -> None:
    rules = (VexRule(advisory="CVE-2099-1007", component="idle",
                     reason="The flaw is in idlelib's RPC server."),
             VexRule(advisory="CVE-2099-1008", component="pip", reason="The flaw is in pip's resolver."))
    scan = Scan(db=ScanDb(file="db.tar.gz", sha256="0" * 64), vex=rules)
    run.loaded = dataclasses.replace(run.loaded, config=run.loaded.config.model_copy(
        update={"scan": scan}))


def test_the_openvex_document_says_what_the_smoke_test_found_absent(
        pushed: tuple[Publisher, HarnessRun]) -> None:
    """scan.vex rules against the probe's record: idle absent -> not_affected (with the SBOM's
    CPython purl as subcomponent and as a product); pip present -> no statement."""
    pub, run = pushed
    _with_vex_rules(run)
    st = run.load_state(RT13)
    st.components = {"linux/amd64": {**dict.fromkeys(VEX_COMPONENTS), "pip": "/x/pip/__init__.py"}}
    run.save_state(st)
    digest = run.report.cell(RT13).digest
    fake_cosign = FakeCosign()
    out = attach(run, run.plan.image(RT13), digest, cosign_for(run, fake_cosign),
                 FakeSyft().tool(), registry=pub.client())
    doc = json.loads(out.vex["linux/amd64"].read_text())
    assert doc["@context"] == "https://openvex.dev/ns/v0.2.0" and doc["@id"].startswith(
        "https://openvex.dev/docs/public/vex-")
    (stmt,) = doc["statements"]
    assert stmt["vulnerability"] == {"name": "CVE-2099-1007"}
    assert (stmt["status"], stmt["justification"]) == ("not_affected", "vulnerable_code_not_present")
    assert stmt["timestamp"] == "2026-11-21T03:14:30Z"  # when the build finished
    image, *own = stmt["products"]
    assert image["@id"] == (f"pkg:oci/python@{digest}?repository_url={pub.host}/{REPO}")
    assert image["hashes"] == {"sha-256": digest.removeprefix("sha256:")}
    purls = [s["@id"] for s in image["subcomponents"]]
    # the SBOM's CPython entries, qualifiers dropped: ours (the locked 3.13.5) and syft's binary
    assert "pkg:generic/python@3.13.5" in purls and all(p.startswith("pkg:generic/python@")
                                                         and "?" not in p for p in purls)
    assert [p["@id"] for p in own] == purls
    assert "idlelib's RPC server" in stmt["impact_statement"]
    _, attested = fake_cosign.attestations[digest][1]
    assert attested["predicateType"] == "https://openvex.dev/ns" and attested["predicate"] == doc


def test_no_probe_record_no_openvex_and_nothing_signed(pushed: tuple[Publisher, HarnessRun]) -> None:
    pub, run = pushed
    _with_vex_rules(run)
    fake_cosign = FakeCosign()
    with pytest.raises(SupplyChainError, match="no smoke-test record of its components on "
                       "linux/amd64"):
        attach(run, run.plan.image(RT13), run.report.cell(RT13).digest,
               cosign_for(run, fake_cosign), FakeSyft().tool(), registry=pub.client())
    assert fake_cosign.calls == []

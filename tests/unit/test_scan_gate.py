"""The release gate (issue 32 item 4): with scan: in images.yaml, push scans each new digest
(pushed under an internal staging tag, no other) and refuses one that brings a fixable finding
at or above scan.fail_on which the image its first public tag holds did not have: the refused
image gets no tag at all (by digest only), the published image keeps the tags.
Over the push harness (fake engine, in-memory registry) with the stand-in grype."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from orchestrator import settings
from orchestrator.config import loader
from orchestrator.errors import ScanError
from orchestrator.naming import staging_tag
from orchestrator.release import attest, session
from orchestrator.release.push import do_push
from orchestrator.release.report import Status
from orchestrator.scan import gate as scan_gate
from orchestrator.scan import images as scan_images
from orchestrator.scan.models import Finding, PlatformScan
from tests.fakes import fake_grype, fake_syft
from tests.fakes.fake_engine import synthetic_image
from tests.fakes.fake_registry import FakeRegistry
from tests.fakes.fake_syft import FakeSyft
from tests.fakes.publish_harness import Publisher, image_for, write_config
from tests.unit.helpers import TODAY, run_cli

REPO = "team/python"
RT14, DEV14 = "3.14-source-bookworm-runtime", "3.14-source-bookworm-dev"
CRITICAL = fake_grype.match("CVE-2026-7777", "libssl3", "3.0.15-1", "Critical", "3.0.15-2")
HIGH = fake_grype.match("CVE-2026-8888", "libexpat1", "2.5.0-1", "High", "2.5.0-2")
UNFIXED = fake_grype.match("CVE-2026-9999", "zlib1g", "1.2.13", "Critical")


@dataclasses.dataclass
class Env:
    pub: Publisher
    fake: FakeRegistry
    tools: Path

    def matches(self, table: dict[str, list[dict[str, Any]]]) -> None:
        (self.tools / "matches.json").write_text(json.dumps(table))

    def gate(self) -> scan_gate.Gate:
        loaded = loader.load(self.pub.config, TODAY)
        gate = scan_gate.prepare(loaded.config, loaded.root, settings.get())
        assert gate is not None
        return gate

    def digest(self, cell: str, seed: str) -> str:
        run = self.pub.run()
        return image_for(run, cell, seed).digest.removeprefix("sha256:")


def make_env(tmp_path: Path, fake: FakeRegistry, tools: Path) -> Env:
    cfg = write_config(tmp_path / "cfg", fake.address, REPO)
    built = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sha = fake_grype.archive(cfg.parent / "db.tar.gz", built)
    cfg.write_text(cfg.read_text() + f"scan:\n  db: {{file: db.tar.gz, sha256: {sha}}}\n"
                   "  fail_on: high\n")
    st = settings.get()
    settings.override(dataclasses.replace(st, tools_dir=tools, cache_dir=tmp_path / "cache"))
    return Env(Publisher(cfg, fake.address, tmp_path / "work"), fake, tools)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    tools = tmp_path / "tools"
    fake_grype.install(tools, {})
    with FakeRegistry() as fake:
        yield make_env(tmp_path, fake, tools)


def publish(env: Env, seeds: dict[str, str] | None = None) -> Any:
    run = env.pub.run(seeds=seeds)
    do_push(run, all_or_nothing=False, gate=env.gate())
    return run


@pytest.mark.spawns("grype")
def test_an_image_that_brings_a_fixable_critical_gets_no_tag_at_all(env: Env) -> None:
    """Refused: no tag of any kind (public, dated, internal) names the new image, which the
    registry holds by digest only; the published image keeps every tag; the image that passed
    in the same run is published as always (its dated tag, then its public tags)."""
    first = publish(env)  # nothing found: everything is published
    assert all(first.report.cell(i.id).status is Status.OK for i in first.plan.images)
    published = env.fake.tags(REPO)
    env.matches({env.digest(RT14, "2"): [CRITICAL, UNFIXED]})
    run = publish(env, {RT14: "2", DEV14: "2"})
    res = run.report.cell(RT14)
    assert (res.status, res.phase) == (Status.FAILED, "scan")
    assert "CVE-2026-7777 in libssl3 3.0.15-1 (amd64, Critical, fixed in 3.0.15-2)" in res.message
    assert f"{env.fake.address}/{REPO}:3.14-runtime (sha256:" in res.message
    assert "CVE-2026-9999" not in res.message  # no fix yet: not the release's to fix
    assert "DB built " in res.message and "sha256:" in res.message
    new = "sha256:" + env.digest(RT14, "2")
    assert res.digest == new and res.immutable_tag == "" and res.tags_moved == []
    assert f"{env.fake.address}/{REPO}@{new} gets no tag" in res.message
    assert res.message.endswith(f"not published: {env.fake.address}/{REPO}@{new} has no tag, "
                                "it is in the registry by digest only")
    tags = env.fake.tags(REPO)
    assert new not in tags.values()  # no tag at all, not even a dated or an internal one
    assert env.fake.has_manifest(REPO, new)  # by digest only
    img, dev_img = run.plan.image(RT14), run.plan.image(DEV14)
    dev_new = "sha256:" + env.digest(DEV14, "2")
    # nothing found in the new dev image: published as before, a revision of its dated tag
    assert tags == {**published, **dict.fromkeys(dev_img.tags, dev_new),
                    f"{dev_img.immutable_tag}.1": dev_new}
    assert all(tags[t] == published[t] for t in (*img.tags, img.immutable_tag))
    # the one tag that ever held it, while it was scanned: its internal staging tag
    assert [t for (r, t), held in env.fake.history.items() if r == REPO and new in held] == [
        staging_tag(RT14)]
    dev = run.report.cell(DEV14)
    assert (dev.status, dev.phase, dev.immutable_tag) == (Status.OK, "push",
                                                          f"{dev_img.immutable_tag}.1")
    assert run.report.exit_code == 1


@pytest.mark.spawns("grype")
@pytest.mark.parametrize("deletes", ["digests", "none"])
def test_on_a_registry_that_deletes_no_tag_a_refused_image_is_still_reachable_by_digest_only(
        tmp_path: Path, deletes: Literal["digests", "none"]) -> None:
    """distribution 2.x (the e2e tests' registry) cannot delete a tag: the staging tag is
    pointed at a placeholder first (then deleted by digest where deletion is enabled), so
    the refused image has no tag there either."""
    tools = tmp_path / "tools"
    fake_grype.install(tools, {})
    with FakeRegistry(deletes=deletes) as fake:
        e = make_env(tmp_path, fake, tools)
        publish(e)
        e.matches({e.digest(RT14, "2"): [CRITICAL]})
        run = publish(e, {RT14: "2"})
        res = run.report.cell(RT14)
        assert (res.status, res.phase) == (Status.FAILED, "scan")
        new = "sha256:" + e.digest(RT14, "2")
        tags = fake.tags(REPO)
        assert new not in tags.values() and fake.has_manifest(REPO, new)
        leftover = {t for t in tags if t.startswith("_")}
        if deletes == "digests":
            assert leftover == set()
        else:  # kept, on placeholders: said in the cell
            assert leftover == {staging_tag(i.id) for i in run.plan.images}
            assert not {tags[t] for t in leftover} & {"sha256:" + e.digest(i.id, seed)
                                                       for i in run.plan.images for seed in "12"}
            assert f"internal tag {staging_tag(RT14)} stays (the registry deletes no tag" in \
                res.message


@pytest.mark.spawns("grype")
def test_a_finding_the_published_image_has_too_does_not_block(env: Env) -> None:
    env.matches({env.digest(RT14, "1"): [CRITICAL]})
    first = publish(env)
    # a first publish has nothing to compare with: the finding is brought by it
    assert first.report.cell(RT14).phase == "scan"
    assert "that nothing (3.14-runtime is not published yet) does not have" in \
        first.report.cell(RT14).message
    env.matches({})
    publish(env)  # published without the finding (seed 1)
    env.matches({env.digest(RT14, "1"): [CRITICAL], env.digest(RT14, "2"): [CRITICAL, HIGH]})
    run = publish(env, {RT14: "2"})
    res = run.report.cell(RT14)
    assert res.phase == "scan" and "CVE-2026-8888 in libexpat1" in res.message  # only the new one
    assert "CVE-2026-7777" not in res.message
    env.matches({env.digest(RT14, "1"): [CRITICAL, HIGH], env.digest(RT14, "2"): [CRITICAL, HIGH]})
    run = publish(env, {RT14: "2"})
    assert (run.report.cell(RT14).status, run.report.cell(RT14).phase) == (Status.OK, "push")


@pytest.mark.spawns("grype")
def test_an_image_the_scanner_cannot_read_is_not_published(env: Env) -> None:
    publish(env)
    script = env.tools / "bin" / "grype"
    script.write_text(script.read_text().replace(
        'if "crash" in target', f'if "crash" in target or {env.digest(RT14, "2")!r} in target'))
    run = publish(env, {RT14: "2"})
    res = run.report.cell(RT14)
    assert res.phase == "scan" and "connection reset" in res.message
    assert "an image that cannot be scanned is not published" in res.message


@pytest.mark.spawns("grype")
def test_the_gate_is_prepared_before_anything_and_stops_on_a_stale_db(env: Env) -> None:
    text = env.pub.config.read_text()
    sha = fake_grype.archive(env.pub.config.parent / "db.tar.gz", "2026-01-01T00:00:00Z")
    env.pub.config.write_text(text[:text.index("scan:")] +
                              f"scan:\n  db: {{file: db.tar.gz, sha256: {sha}}}\n")
    with pytest.raises(ScanError) as exc:
        env.gate()
    assert "older than scan.max_age_days (5)" in str(exc.value)
    env.pub.config.write_text(text[:text.index("scan:")])
    loaded = loader.load(env.pub.config, TODAY)
    assert scan_gate.prepare(loaded.config, loaded.root, settings.get()) is None


def test_new_findings_compare_advisory_and_package_across_platforms() -> None:
    def f(advisory: str, package: str, gating: bool = True) -> Finding:
        return Finding(advisory, package, "1", "2", "High", "fixed", gating=gating)

    new = [PlatformScan("linux/amd64", "sha256:a", "sbom", (f("A", "p"), f("B", "p"))),
           PlatformScan("linux/arm64", "sha256:b", "sbom", (f("C", "q"), f("D", "q", False)))]
    old = [PlatformScan("linux/arm64", "sha256:c", "sbom", (f("A", "p", False),))]
    assert [(p, x.advisory) for p, x in scan_gate.new_findings(new, old)] == [
        ("linux/amd64", "B"), ("linux/arm64", "C")]


@pytest.mark.spawns("grype")
def test_a_release_prepares_the_gate_first_and_records_its_db(env: Env) -> None:
    """session.run_phases (what release, nightly and push run): the DB is prepared before any
    phase, the run carries it for the provenance, and the push goes through the gate."""
    publish(env)
    env.matches({env.digest(RT14, "2"): [HIGH]})
    run = env.pub.run(seeds={RT14: "2"})
    session.run_phases(run, ["push"])
    assert run.scan_db is not None and run.scan_db.scanner == "grype 0.121.3"
    assert run.scan_db.uri == str(env.pub.config.parent / "db.tar.gz")
    assert run.report.cell(RT14).phase == "scan"
    assert "CVE-2026-8888 in libexpat1" in run.report.cell(RT14).message


@pytest.mark.spawns("grype")
def test_promote_refuses_a_staged_image_that_brings_a_new_finding(
        env: Env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Images staged without the gate (--stage-only by a run before scan: was configured, or
    against an older DB): `orchestrator promote` scans each staged digest against the image
    its public tag holds and moves the tags of the others only."""
    publish(env)
    env.matches({env.digest(RT14, "2"): [CRITICAL]})
    run = env.pub.run(seeds={RT14: "2", DEV14: "2"})
    do_push(run, all_or_nothing=False, stage_only=True)  # no gate here
    assert run.report.cell(RT14).phase == "staged"
    run.report.write_json(tmp_path / "staged.json")
    before = env.fake.tags(REPO)
    code, out, err = run_cli(["promote", str(tmp_path / "staged.json"), "--config",
                              str(env.pub.config)], capsys)
    assert code == 1, out + err
    tags = env.fake.tags(REPO)
    rt, dev = run.plan.image(RT14), run.plan.image(DEV14)
    assert all(tags[t] == before[t] for t in rt.tags)  # refused: the published image stays
    assert all(tags[t] == "sha256:" + env.digest(DEV14, "2") for t in dev.tags)
    cells = {c["id"]: c for c in json.loads(
        (env.pub.config.parent / ".orchestrator" / "report-promote.json").read_text())["cells"]}
    assert (cells[RT14]["status"], cells[RT14]["phase"]) == ("failed", "scan")
    assert "CVE-2026-7777 in libssl3" in cells[RT14]["message"]


@pytest.mark.spawns("grype")
def test_a_staging_tag_a_killed_run_left_on_a_published_image_goes_on_the_rerun(env: Env) -> None:
    """A run killed after its tags moved and before its cleanup leaves the staging tag on the
    published image; the rerun finds that image published (unchanged: no staging tag of its
    own to push) and still removes the leftover (tests/integration/test_registry_faults.py's
    kill -9 between push and tag moves, against the real registry)."""
    first = publish(env)
    assert all(first.report.cell(i.id).status is Status.OK for i in first.plan.images)
    published = env.fake.tags(REPO)
    assert not [t for t in published if t.startswith("_")]
    digest = published[first.plan.image(RT14).immutable_tag]
    first.registry().tag(REPO, digest, staging_tag(RT14))  # what the killed run left
    assert env.fake.tags(REPO)[staging_tag(RT14)] == digest
    again = publish(env)  # the same content: unchanged, nothing pushed
    assert again.report.cell(RT14).status is Status.UNCHANGED
    assert env.fake.tags(REPO) == published


# the advisory against the compiled CPython: the stand-in grype reports it for an SBOM that has
# the orchestrator's CPython entry (sbom.add_cpython_spdx; the features fixture locks 3.14.2)
CPYTHON_ENTRY = "SPDXRef-Package-cpython-3.14.2-source"
CPYTHON = fake_grype.match("CVE-2026-5555", "cpython", "3.14.2", "Critical", "3.14.3",
                           kind="binary", matched_by="cpe-match")


@pytest.mark.spawns("grype")
def test_without_signing_the_gate_reads_the_sbom_the_push_made_so_cpython_is_matched(
        env: Env) -> None:
    """No signing: nothing is attested, so the push makes the SBOMs itself (the pinned syft,
    plus the CPython entry) and the gate hands them to grype: the advisory against the compiled
    CPython is found on the new image. The image it replaces carries no CPython label in this
    harness, so its SBOM has no CPython entry: the finding is new, the image is refused."""
    fake_syft.install(env.tools)
    syft = FakeSyft()
    tools = attest.Tools(syft=syft)
    first = env.pub.run()
    do_push(first, all_or_nothing=False, gate=env.gate(), tools=tools)
    assert {first.report.cell(i.id).status for i in first.plan.images} == {Status.OK}
    env.matches({CPYTHON_ENTRY: [CPYTHON]})
    run = env.pub.run(seeds={RT14: "2"})
    do_push(run, all_or_nothing=False, gate=env.gate(), tools=tools)
    res = run.report.cell(RT14)
    assert (res.status, res.phase) == (Status.FAILED, "scan")
    assert "CVE-2026-5555 in cpython 3.14.2 (amd64, Critical, fixed in 3.14.3)" in res.message
    scans = [c["argv"][0] for c in fake_grype.calls(env.tools) if c["argv"][0].startswith(
        ("sbom:", "registry:"))]
    new, old = "sha256:" + env.digest(RT14, "2"), "sha256:" + env.digest(RT14, "1")
    sbom_dir = env.pub.work / "scan" / "sboms" / RT14
    assert f"sbom:{sbom_dir / new.removeprefix('sha256:')}.spdx.json" in scans
    assert f"sbom:{sbom_dir / old.removeprefix('sha256:')}.spdx.json" in scans
    assert not [t for t in scans if t.startswith("registry:")]  # grype read no image
    made = json.loads((sbom_dir / f"{new.removeprefix('sha256:')}.spdx.json").read_text())
    assert CPYTHON_ENTRY in {p["SPDXID"] for p in made["packages"]}
    replaced = json.loads((sbom_dir / f"{old.removeprefix('sha256:')}.spdx.json").read_text())
    assert CPYTHON_ENTRY not in {p["SPDXID"] for p in replaced["packages"]}
    assert [c for c in syft.calls if f"@{new}" in " ".join(c[0])]  # syft read the new image


def test_the_replaced_image_gets_the_cpython_entry_when_its_label_says_it_carries_it(
        env: Env) -> None:
    """built_sboms on an image this run did not push: the CPython entry only when the image's
    python-version label is the locked version (an older CPython would be misnamed)."""
    fake_syft.install(env.tools)
    run = env.pub.run()
    registry = env.pub.client()
    engine = run.engine
    img = run.plan.image(RT14)
    key = run.label_keys.python_version
    found = {}
    for version in ("3.14.2", "3.14.1"):
        engine.load(f"old-{version}", synthetic_image(RT14, version, {key: version}))
        ref = f"{env.fake.address}/{REPO}:old-{version}"
        with engine.temp_tag(f"old-{version}", ref):
            digest = engine.push(ref)
        source = attest.built_sboms(run, img, None, FakeSyft().tool(), registry)
        ev = source(f"{env.fake.address}/{REPO}@{digest}", "linux/amd64")
        assert ev.sbom is not None and ev.note.startswith("no signing: in images.yaml: the SBOM")
        found[version] = CPYTHON_ENTRY in {p["SPDXID"] for p in
                                           json.loads(ev.sbom.read_text())["packages"]}
    assert found == {"3.14.2": True, "3.14.1": False}


@pytest.mark.spawns("grype")
def test_without_signing_and_without_the_pinned_syft_grype_reads_the_image_and_says_why(
        env: Env) -> None:
    publish(env)
    env.matches({env.digest(RT14, "2"): [HIGH]})
    run = publish(env, {RT14: "2"})
    assert run.report.cell(RT14).phase == "scan"  # the image was read: its digest matched
    targets = [c["argv"][0] for c in fake_grype.calls(env.tools)]
    assert f"registry:{env.fake.address}/{REPO}@sha256:{env.digest(RT14, '2')}" in targets
    ev = scan_images.without_sbom("no syft: /x/bin/syft is not there")("r@sha256:1", "linux/amd64")
    assert (ev.sbom, ev.note) == (None, "no signing: in images.yaml and no SBOM made here (no "
                                        "syft: /x/bin/syft is not there): grype read the image")

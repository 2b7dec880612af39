"""The perf phase (release/perf.py) over the push harness: fake engine (its containers print
made-up pyperf results), in-memory registry, fake cosign and syft. A build measurably slower
than the image it replaces is refused before anything of it is pushed; the others are pushed
with their record attested beside the SBOM, and verify shows it. No clock is read: the speeds
are the test's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from orchestrator import render
from orchestrator.config.publish import WORKLOADS
from orchestrator.engine import RunOutcome
from orchestrator.perf import predicate
from orchestrator.release import attest, session
from orchestrator.release.perf import do_perf
from orchestrator.release.push import do_push
from orchestrator.release.report import Status
from orchestrator.supplychain import verify
from tests.fakes.fake_cosign import FakeCosign
from tests.fakes.fake_registry import FakeRegistry
from tests.fakes.fake_syft import FakeSyft
from tests.fakes.publish_harness import HarnessRun, Publisher, image_for, write_config
from tests.unit.helpers import with_env
from tests.unit.test_perf import bench_output

REPO = "team/python"
RT13, DEV13 = "3.13-source-bookworm-runtime", "3.13-source-bookworm-dev"
RT14, DEV14 = "3.14-source-bookworm-runtime", "3.14-source-bookworm-dev"
CELLS = (RT13, DEV13, RT14, DEV14)
RUNNER = "/perf/runner.py"


@dataclass
class Env:
    pub: Publisher
    fake: FakeRegistry
    cosign: FakeCosign = field(default_factory=FakeCosign)

    def release(self, seeds: dict[str, str] | None = None, speeds: dict[str, float] | None = None,
                checksum: str = "c0ffee") -> HarnessRun:
        """A push run of candidates built from ``seeds``, the perf phase first; the candidate
        of a cell in ``speeds`` takes that many times the published image's time."""
        run = self.pub.run(seeds=seeds)

        def on_run(image: str, argv: list[str], platform: str | None) -> RunOutcome:
            assert argv[1] == RUNNER, argv
            if "@sha256:" in image:  # the published image, pulled by digest
                return RunOutcome(0, bench_output(1.0, checksum=checksum), 0.0)
            cell = image.rsplit("/", 1)[1].partition(":")[0]
            return RunOutcome(0, bench_output((speeds or {}).get(cell, 1.0)), 0.0)

        run.engine.on_run = on_run
        do_perf(run)
        do_push(run, all_or_nothing=False, tools=attest.Tools(cosign=self.cosign, syft=FakeSyft()))
        return run

    def measured(self, run: HarnessRun) -> list[str]:
        """The image of each perf run, in order."""
        return [image for image, argv, _ in run.engine.runs if argv[1:2] == [RUNNER]]


def _configure(config: Path, perf: str, signing: bool = True) -> None:
    with config.open("a") as f:
        f.write(f"\nperf: {perf}\n")
        if signing:
            f.write("signing: {key: cosign.key}\n")
    (config.parent / "cosign.key").write_text("k")
    (config.parent / "cosign.pub").write_text("p")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    """The four bookworm source cells with perf (2 rounds, limit 1.05) and signing."""
    with FakeRegistry() as fake:
        config = write_config(tmp_path / "cfg", fake.address, REPO)
        _configure(config, "{enabled: true, rounds: 2, max_slowdown: 1.05}")
        with_env(COSIGN_PASSWORD="pw")
        pub = Publisher(config, fake.address, tmp_path / "work")
        run = pub.run()
        render.write(run.loaded, render.render_all(run.loaded, run.lock))  # for the provenance
        yield Env(pub, fake)


def test_a_first_publish_is_measured_once_per_build_recorded_and_attested(env: Env) -> None:
    run = env.release()
    assert all(run.report.cell(c).status is Status.OK and run.report.cell(c).phase == "push"
               for c in CELLS)
    # one measurement per build (the runtime image's interpreter; dev has the same tree), the
    # candidate alone as often as there are rounds: nothing is published to compare with
    measured = env.measured(run)
    assert measured == [run.candidate_ref(RT13)] * 2 + [run.candidate_ref(RT14)] * 2
    assert run.engine.pulled == []
    dev = run.report.cell(DEV14).perf
    assert dev["verdict"] == "first" and dev["published"] is None and dev["slowdown"] is None
    assert (dev["cell"], dev["measured_cell"]) == (DEV14, RT14)
    assert dev["candidate"]["image_id"] == run.load_state(DEV14).tested_image_id
    assert sorted(dev["workloads"]) == sorted(WORKLOADS)
    assert run.load_state(DEV14).perf == dev  # what attest attests
    assert (run.work / "perf" / f"{DEV14}.json").is_file()

    digest = run.report.cell(DEV14).digest
    attested = [s for _, s in env.cosign.attestations[digest]
                if s["predicateType"] == predicate.PREDICATE_TYPE]
    assert [s["predicate"] for s in attested] == [dev]
    assert {"predicate_type": predicate.PREDICATE_TYPE, "platform": "linux/amd64",
            "subject": f"{env.pub.host}/{REPO}@{digest}",
            "file": str(run.work / "supply" / DEV14 / "linux-amd64.perf.json")} \
        in run.report.cell(DEV14).attestations
    cosign = attest.cosign_for(run, attest.Tools(cosign=env.cosign))
    assert cosign is not None
    v = verify.verify_digest(cosign, env.pub.client(), REPO, digest)
    assert v.ok and v.line().endswith(
        ", perf linux/amd64 (first record, 6 workload(s), nothing to compare with), provenance")


def test_a_slower_build_is_refused_and_nothing_of_it_is_pushed(env: Env) -> None:
    env.release()
    before = env.fake.tags(REPO)
    seeds = dict.fromkeys(CELLS, "2")
    run = env.release(seeds, speeds={RT14: 1.2, DEV14: 1.2})
    host = env.pub.host
    for cell in (RT14, DEV14):  # the build's cells share the verdict of its one measurement
        res = run.report.cell(cell)
        assert (res.status, res.phase) == (Status.FAILED, "perf")
        assert "\n" not in res.message
        assert res.message.startswith("perf gate: 1.200x the published image's time, geometric "
                                      "mean over 6 workload(s) (limit 1.05; noise ")
        assert f"against {host}/{REPO}:3.14-runtime ({before['3.14-runtime']}), measured in " \
               f"{RT14}; nothing of it is pushed and no tag moves" in res.message
        assert res.perf["verdict"] == "refused" and res.perf["slowdown"] == 1.2
        assert res.digest == "" and res.tags_moved == []
        new = image_for(run, cell, "2").digest
        assert env.pub.client().platform_manifests(REPO, new) is None  # not even by digest
    tags = env.fake.tags(REPO)
    assert {t: d for t, d in tags.items() if t.startswith("3.14")} == \
        {t: d for t, d in before.items() if t.startswith("3.14")}
    for cell in (RT13, DEV13):  # as fast as what they replace: published, the record attested
        res = run.report.cell(cell)
        assert (res.status, res.phase) == (Status.OK, "push")
        assert res.perf["verdict"] == "ok" and res.perf["slowdown"] == 1.0
        assert res.perf["published"]["digest"] == before["3.13-runtime"]
        assert tags["3.13-runtime"] == image_for(run, RT13, "2").digest
    # interleaved, the published image pulled by digest on the native platform, then removed
    assert env.measured(run)[:4] == [run.candidate_ref(RT13), f"{host}/{REPO}@{before['3.13-runtime']}",
                                     f"{host}/{REPO}@{before['3.13-runtime']}", run.candidate_ref(RT13)]
    assert run.engine.pulled == [(f"{host}/{REPO}@{before[t]}", "linux/amd64")
                                 for t in ("3.13-runtime", "3.14-runtime")]
    assert not any("@sha256:" in ref for ref in run.engine.images)
    assert run.report.exit_code == 1


def test_an_unchanged_image_is_not_measured_again(env: Env) -> None:
    env.release()
    run = env.release()  # the same content: push calls it unchanged
    assert env.measured(run) == []
    for cell in CELLS:
        res = run.report.cell(cell)
        assert res.status is Status.UNCHANGED
        assert res.perf == {"skipped": "unchanged: it keeps the record of the push that "
                                       "published it"}


def test_a_measurement_that_cannot_be_made_refuses_the_build(env: Env) -> None:
    env.release()
    run = env.release({RT14: "2", DEV14: "2"}, checksum="other")
    res = run.report.cell(RT14)
    assert (res.status, res.phase) == (Status.FAILED, "perf")
    assert res.message.startswith("perf: the performance record could not be made (workload ")
    assert "they did different work); an image the gate cannot judge is not published" \
        in res.message
    assert run.report.cell(DEV14).message == res.message and res.perf == {}
    assert env.pub.client().platform_manifests(REPO, image_for(run, RT14, "2").digest) is None


def test_a_record_of_another_image_is_never_attested(env: Env) -> None:
    run = env.release()
    st = run.load_state(RT14)
    assert attest.perf_record(run, run.plan.image(RT14)) == st.perf
    st.tested_image_id = "sha256:" + "0" * 64  # rebuilt and tested since the record was made
    run.save_state(st)
    assert attest.perf_record(run, run.plan.image(RT14)) is None


def test_run_phases_measures_before_the_push_only_when_enabled(tmp_path: Path) -> None:
    with FakeRegistry() as fake:
        config = write_config(tmp_path / "cfg", fake.address, REPO)
        pub = Publisher(config, fake.address, tmp_path / "work")
        run = pub.run()
        session.run_phases(run, ["push"])  # no perf: section, nothing measured
        assert [a for _, a, _ in run.engine.runs] == []
        assert all(run.report.cell(c).perf == {} for c in CELLS)
        _configure(config, "{enabled: true, rounds: 2}", signing=False)
        run = pub.run(seed="2")
        run.engine.on_run = lambda image, argv, plat: RunOutcome(0, bench_output(1.0), 0.0)
        session.run_phases(run, ["push"])
        assert len([a for _, a, _ in run.engine.runs if a[1:2] == [RUNNER]]) == 2 * 2 * 2
        assert all(run.report.cell(c).status is Status.OK for c in CELLS)
        assert run.report.cell(RT13).perf["verdict"] == "ok"

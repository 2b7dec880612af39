"""The test phase (release.smoketest.do_test) and the push after it: an image is published only
when every check passed on every one of its platforms. No Docker: candidates are synthetic
images in the fake engine, whose ``on_run`` plays the containers; pushes go over the registry
API to the in-memory registry (tests/fakes/publish_harness.py).

The matrix is the publish harness's four bookworm source cells, built for linux/amd64 and
linux/arm64 (one OCI index per tag).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from orchestrator import settings
from orchestrator.engine import RunOutcome
from orchestrator.errors import ExitCode, UsageError
from orchestrator.naming import staging_tag
from orchestrator.planning.plan import PlannedImage
from orchestrator.release.report import Report, Status, why
from orchestrator.release.session import run_phases
from orchestrator.smoke import hardening, suite
from orchestrator.smoke.elf import Policy
from tests.fakes.fake_engine import FakeEngine
from tests.fakes.fake_registry import FakeRegistry
from tests.fakes.publish_harness import HarnessRun, Publisher, image_for, write_config

REPO = "team/python"
ARM64 = "linux/arm64"
RT13, DEV13 = "3.13-source-bookworm-runtime", "3.13-source-bookworm-dev"
RT14, DEV14 = "3.14-source-bookworm-runtime", "3.14-source-bookworm-dev"
STDLIB = suite.snippet("stdlib_imports.py")  # the check that fails under QEMU below

Failing = Collection[tuple[str, str, str]]  # (cell id, snippet text, platform) that exit 1


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with FakeRegistry() as registry:
        yield registry


@pytest.fixture
def pub(tmp_path: Path, fake: FakeRegistry) -> Publisher:
    cfg = write_config(tmp_path / "cfg", fake.address, REPO)
    text = cfg.read_text()
    anchor = "tags:\n  default_distro"
    assert text.count(anchor) == 1, "the features fixture changed its tags block"
    cfg.write_text(text.replace(anchor, f"platforms: [linux/amd64, {ARM64}]\n\n{anchor}"))
    return Publisher(cfg, fake.address, tmp_path / "work")


@pytest.fixture(autouse=True)
def hardening_passes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | None]]:
    """The fake engine has no files to read: interpreter-hardening (tests/unit/test_hardening.py)
    passes here, and says which (cell, platform) it was asked about."""
    asked: list[tuple[str, str | None]] = []

    def check(engine: object, image_ref: str, img: PlannedImage, prefix: str,
              platform: str | None, policy: Policy, label: str | None = None) -> suite.CheckResult:
        asked.append((img.id, platform))
        return suite.CheckResult(img.id, suite.check_name("interpreter-hardening", label), True,
                                 "", "files=3", 0.0)

    monkeypatch.setattr(hardening, "hardening_check", check)
    return asked


def containers(run: HarnessRun, failing: Failing = ()) \
        -> Callable[[str, list[str], str | None], RunOutcome]:
    """What each smoke check's container gives: a pass (the version, the uid, "app ok" as the
    checks expect), or exit 1 for the (cell, check, platform)s in ``failing``."""
    by_ref = {run.candidate_ref(img.id): img for img in run.plan.images}
    uid = str(run.config.runtime_user.uid)

    def outcome(image: str, argv: list[str], platform: str | None) -> RunOutcome:
        if image.startswith("orchestrator-app-check/"):
            return RunOutcome(0, "app ok /app/venv", 1.0)
        img = by_ref[image]
        text = argv[2] if len(argv) > 2 else ""
        if (img.id, text, platform or "") in failing:
            return RunOutcome(1, "ModuleNotFoundError: No module named '_ctypes'", 1.0)
        if argv == ["python3", "--version"]:
            return RunOutcome(0, f"Python {img.version}\n", 1.0)
        if argv == ["id", "-u"]:
            return RunOutcome(0, f"{uid}\n", 1.0)
        return RunOutcome(0, "", 1.0)

    return outcome


def built(pub: Publisher, seed: str) -> HarnessRun:
    """A run whose four candidates were built from ``seed`` and not tested yet."""
    run = pub.run(seed, untested=(RT13, DEV13, RT14, DEV14))
    assert all(not run.load_state(i.id).tested_image_id for i in run.plan.images)
    return run


def again(pub: Publisher, run: HarnessRun, command: str) -> HarnessRun:
    """A later invocation on the same work dir and engine (e.g. `orchestrator push`)."""
    return HarnessRun(run.loaded, run.lock, run.plan, Report(command, run.plan.profile, run.plan.date),
                      run.work, engine=run.engine, settings=run.settings, client=pub.client)


def published(run: HarnessRun, seed: str, *cells: str) -> dict[str, str]:
    """tag -> digest once ``cells`` of ``run`` are published from ``seed``."""
    return {tag: image_for(run, img.id, seed).digest for img in run.plan.images if img.id in cells
            for tag in (img.immutable_tag, *img.tags)}


def release(pub: Publisher, seed: str, failing: Failing = (),
            all_or_nothing: bool = False) -> HarnessRun:
    run = built(pub, seed)
    run.engine.on_run = containers(run, failing)
    run_phases(run, {"test", "push"}, all_or_nothing=all_or_nothing)
    return run


def test_every_check_runs_on_every_platform_and_a_clean_run_publishes_everything(
        pub: Publisher, fake: FakeRegistry, hardening_passes: list[tuple[str, str | None]]) -> None:
    """The control for the tests below: the fake containers pass every check on both platforms."""
    run = release(pub, "1")
    for img in run.plan.images:
        res = run.report.cell(img.id)
        assert (res.status, res.phase) == (Status.OK, "push"), res.message
        names = [c["check"] for c in res.checks]
        native = [n for n in names if not n.endswith(f" [{ARM64}]")]
        assert "stdlib-imports" in native and f"stdlib-imports [{ARM64}]" in names
        assert len(names) == 2 * len(native)  # the same checks under QEMU
        assert (img.id, ARM64) in hardening_passes and (img.id, "linux/amd64") in hardening_passes
        assert run.load_state(img.id).tested_image_id == run.load_state(img.id).image_id
    engine: FakeEngine = run.engine
    assert {p for _, _, p in engine.runs} == {"linux/amd64", ARM64}
    assert fake.tags(REPO) == published(run, "1", RT13, DEV13, RT14, DEV14)
    assert run.report.exit_code == 0


def test_a_check_failing_on_arm64_only_fails_the_cell_and_nothing_of_it_is_pushed_or_tagged(
        pub: Publisher, fake: FakeRegistry) -> None:
    before = release(pub, "0")  # yesterday's images hold every public tag
    assert fake.tags(REPO) == published(before, "0", RT13, DEV13, RT14, DEV14)
    writes = len(fake.writes(REPO))

    run = release(pub, "1", failing={(RT13, STDLIB, ARM64)})

    res = run.report.cell(RT13)
    assert (res.status, res.phase) == (Status.FAILED, "test")
    assert f"check stdlib-imports [{ARM64}] failed: exit code 1" in res.message
    assert [c["check"] for c in res.checks if not c["ok"]] == [f"stdlib-imports [{ARM64}]"]
    assert any(c["check"] == "stdlib-imports" and c["ok"] for c in res.checks)  # amd64 passed
    assert not run.load_state(RT13).tested_image_id
    dev = run.report.cell(DEV13)  # its dev is published only with its runtime
    assert dev.status is Status.ABORTED and RT13 in dev.message
    for cid in (RT14, DEV14):
        assert (run.report.cell(cid).status, run.report.cell(cid).phase) == (Status.OK, "push")
    engine: FakeEngine = run.engine
    assert sorted(ref.rpartition(":")[2] for ref in engine.pushed) == sorted(
        staging_tag(c) for c in (RT14, DEV14))
    assert not [t for t in fake.writes(REPO)[writes:] if "3.13" in t]  # no index, no tag
    tags = fake.tags(REPO)
    assert {t: d for t, d in tags.items() if t.startswith("3.13")} == published(before, "0", RT13, DEV13)
    for cid in (RT14, DEV14):
        assert {tags[t] for t in run.plan.image(cid).tags} == {image_for(run, cid, "1").digest}
    assert run.report.exit_code == ExitCode.FAILED


def test_all_or_nothing_publishes_nothing_when_one_platform_of_one_cell_failed(
        pub: Publisher, fake: FakeRegistry) -> None:
    before = release(pub, "0")
    writes = len(fake.writes(REPO))
    run = release(pub, "1", failing={(DEV14, STDLIB, ARM64)}, all_or_nothing=True)
    assert run.report.cell(DEV14).status is Status.FAILED
    assert {run.report.cell(c).status for c in (RT13, DEV13, RT14)} == {Status.SKIPPED}
    engine: FakeEngine = run.engine
    assert engine.pushed == [] and fake.writes(REPO)[writes:] == []
    assert fake.tags(REPO) == published(before, "0", RT13, DEV13, RT14, DEV14)


def test_a_failed_retest_withdraws_the_earlier_pass_so_a_later_push_refuses_the_image(
        pub: Publisher, fake: FakeRegistry) -> None:
    """`orchestrator test` passed, the same image is tested again and fails on arm64 (a flaky
    mirror, a check made stricter): a following `orchestrator push` must not publish it on the
    strength of the first pass."""
    run = built(pub, "1")
    run.engine.on_run = containers(run)
    run_phases(run, {"test"})
    assert run.load_state(RT13).tested_image_id == run.load_state(RT13).image_id

    retest = again(pub, run, "test")
    retest.engine.on_run = containers(retest, {(RT13, STDLIB, ARM64)})
    run_phases(retest, {"test"})
    assert retest.report.cell(RT13).status is Status.FAILED

    assert retest.report.cell(DEV13).status is Status.ABORTED  # its pass is withdrawn too
    assert not retest.load_state(RT13).tested_image_id and not retest.load_state(DEV13).tested_image_id

    push = again(pub, run, "push")
    run_phases(push, {"push"})
    for cid in (RT13, DEV13):
        res = push.report.cell(cid)
        assert (res.status, res.phase) == (Status.FAILED, "push")
        assert "was not smoke-tested" in res.message
    assert fake.tags(REPO) == published(run, "1", RT14, DEV14)


# ------------------------------------------------ the test switch ORCH_SMOKE_FAIL_PLATFORM

FORCED = f"{suite.FORCED_FAILURE} [{ARM64}]"


def test_the_smoke_fail_switch_fails_a_check_run_on_arm64_only_and_nothing_is_published(
        pub: Publisher, fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    """What tests/e2e/test_smoke_fail_arm64.py sets for a real release under QEMU: every cell
    fails its test phase on linux/arm64 alone, with one check whose container ran there;
    nothing is pushed and yesterday's tags stay."""
    before = release(pub, "0")  # the switch off: everything published
    assert fake.tags(REPO) == published(before, "0", RT13, DEV13, RT14, DEV14)
    writes = len(fake.writes(REPO))

    switched = dataclasses.replace(settings.get(), smoke_fail_platform=ARM64)
    monkeypatch.setattr(settings, "_settings", switched)
    run = built(pub, "1")
    engine: FakeEngine = run.engine
    ran_on: list[str | None] = []
    passing = containers(run)

    def outcome(image: str, argv: list[str], platform: str | None) -> RunOutcome:
        if argv[-1:] == ["import platform; print(platform.machine())"]:
            ran_on.append(platform)
            return RunOutcome(0, "aarch64\n", 1.0)
        return passing(image, argv, platform)

    engine.on_run = outcome
    run_phases(run, {"test", "push"})

    assert ran_on == [ARM64, ARM64]  # once per runtime cell, in its arm64 container
    for rt, dev in ((RT13, DEV13), (RT14, DEV14)):
        res = run.report.cell(rt)
        assert (res.status, res.phase) == (Status.FAILED, "test"), res.message
        assert [c["check"] for c in res.checks if not c["ok"]] == [FORCED]
        assert f"check {FORCED} failed: failed on purpose: ORCH_SMOKE_FAIL_PLATFORM={ARM64} " \
               "is set (a test switch); the image ran on aarch64 (exit code 0)" in res.message
        assert why(res).startswith(f"test: check {FORCED} failed: failed on purpose")  # summary
        amd64 = [c for c in res.checks if not c["check"].endswith(f"[{ARM64}]")]
        assert amd64 and all(c["ok"] for c in amd64)  # linux/amd64 passed every check
        assert not run.load_state(rt).tested_image_id
        assert run.report.cell(dev).status is Status.ABORTED
    assert engine.pushed == [] and fake.writes(REPO)[writes:] == []  # no index, no tag
    assert fake.tags(REPO) == published(before, "0", RT13, DEV13, RT14, DEV14)
    assert run.report.exit_code == ExitCode.FAILED


def test_the_forced_failure_check_runs_where_the_switch_says_and_without_a_shell(
        pub: Publisher) -> None:
    """smoke.run_checks adds it last on the named platform only; a minimal image (python3 as
    its entrypoint, no shell) is given the arguments only."""
    ran: list[tuple[list[str], str | None]] = []

    class Engine:
        def run(self, image: str, argv: list[str], **kw: Any) -> RunOutcome:
            ran.append((argv, kw.get("platform")))
            return RunOutcome(0, "aarch64\n", 0.5)

    img = built(pub, "1").plan.image(RT14)
    results = suite.run_checks(cast(Any, Engine()), "ref", img, uid=10001, prefix="/opt/p",
                               tls_url="https://pypi.org/simple", platform=ARM64, label=ARM64,
                               fail_on_purpose=True)
    assert [r.check for r in results].count(FORCED) == 1  # the other checks: as without it
    assert results[-1].check == FORCED and not results[-1].ok
    assert ran[-1] == (["python3", "-c", "import platform; print(platform.machine())"], ARM64)
    ran.clear()
    without = suite.run_checks(cast(Any, Engine()), "ref", img, uid=10001, prefix="/opt/p",
                               tls_url="https://pypi.org/simple", platform=ARM64, label=ARM64)
    assert FORCED not in [r.check for r in without]
    minimal = suite.forced_failure(dataclasses.replace(img, variant="minimal"), ARM64)
    assert minimal.argv == ["-c", "import platform; print(platform.machine())"]


@pytest.mark.parametrize(("value", "expected"), [("", ""), ("linux/arm64", "linux/arm64"),
                                                 ("linux/arm/v7", "linux/arm/v7")])
def test_the_smoke_fail_switch_is_read_from_the_environment(value: str, expected: str) -> None:
    env = {"ORCH_SMOKE_FAIL_PLATFORM": value} if value else {}
    assert settings.Settings.from_environ(env).smoke_fail_platform == expected


@pytest.mark.parametrize("bad", ["arm64", "linux arm64", "Linux/ARM64", "linux/arm64/"])
def test_a_bad_smoke_fail_switch_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError, match="ORCH_SMOKE_FAIL_PLATFORM=.* is not a platform; set it "
                                         r"as os/arch \(e.g. linux/arm64\) or unset it"):
        settings.Settings.from_environ({"ORCH_SMOKE_FAIL_PLATFORM": bad})

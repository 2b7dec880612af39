"""Progress on stderr during long commands (orchestrator/release/progress.py): one line per finished cell
with k/n, its time and the elapsed total, compiles in the build phase, GitLab's collapsible
sections in CI. No Docker: the publish harness's four bookworm source cells in the fake engine
(tests/fakes/publish_harness.py), a clock the fake builds move forward."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import render, settings
from orchestrator.config import loader
from orchestrator.engine import BuildFailed, BuildOutcome
from orchestrator.planning import build_cache
from orchestrator.planning.plan import PlannedImage
from orchestrator.release import session
from orchestrator.release.build import do_build
from orchestrator.release.progress import Progress, section_end, section_start
from orchestrator.release.report import Report, Status, duration
from orchestrator.release.smoketest import do_test
from orchestrator.release.state import CellState, Run
from tests.fakes.fake_engine import FakeEngine
from tests.fakes.fake_registry import FakeRegistry
from tests.fakes.publish_harness import HarnessRun, Publisher, write_config
from tests.unit.helpers import TODAY

REPO = "team/python"
RT13, DEV13 = "3.13-source-bookworm-runtime", "3.13-source-bookworm-dev"
RT14, DEV14 = "3.14-source-bookworm-runtime", "3.14-source-bookworm-dev"
WALL = 1765000000  # the unix time GitLab's markers carry


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with FakeRegistry() as registry:
        yield registry


@pytest.fixture
def pub(tmp_path: Path, fake: FakeRegistry) -> Publisher:
    return Publisher(write_config(tmp_path / "cfg", fake.address, REPO), fake.address,
                     tmp_path / "work")


class Clock:
    """Monotonic time that only the fake builds move."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def watched(run: Run, *, sections: bool = False, command: str = "release") \
        -> tuple[io.StringIO, Clock]:
    out, clock = io.StringIO(), Clock()
    run.progress = Progress(out, command=command, sections=sections, clock=clock,
                            wall=lambda: float(WALL))
    return out, clock


def building(run: HarnessRun, clock: Clock, monkeypatch: pytest.MonkeyPatch,
             fail: str = "") -> None:
    """Each build takes a minute and compiles its runtime's CPython; ``fail``: the bake target
    whose build fails in its own dev stage."""
    render.write(run.loaded, render.render_all(run.loaded, run.lock))
    real = run.engine.build

    def build(context: Path, **kw: Any) -> BuildOutcome:
        clock.now += 60
        if kw["target"] == fail:
            kw["log_path"].parent.mkdir(parents=True, exist_ok=True)
            kw["log_path"].write_text(f"#9 [{fail} 1/1] RUN pip install build\n"
                                      "#9 ERROR: process did not complete successfully: "
                                      "exit code: 2\n")
            raise BuildFailed("exit code: 2", kw["log_path"])
        got = real(context, **kw)
        compiled = (kw["target"].replace("runtime", "python"),) if "runtime" in kw["target"] else ()
        return dataclasses.replace(got, compiled=compiled)

    def label(run: HarnessRun, img: PlannedImage, image_id: str, base_digest: str) -> None:
        run.save_state(CellState(img.id, image_id))  # what label() leaves (its reads need files)

    monkeypatch.setattr(run.engine, "build", build)
    monkeypatch.setattr("orchestrator.release.build.label", label)


def test_durations_read_as_a_person_says_them() -> None:
    assert [duration(s) for s in (0.04, 8.24, 41.4, 59.6, 412, 3599.4, 3725)] == \
        ["0.0s", "8.2s", "41s", "1m00s", "6m52s", "59m59s", "1h02m"]


def test_gitlab_section_markers_are_the_documented_escape_sequences() -> None:
    assert section_start("orchestrator_release_build", "build: 4 cell(s)", WALL) == \
        "\x1b[0Ksection_start:1765000000:orchestrator_release_build\r\x1b[0Kbuild: 4 cell(s)"
    assert section_end("orchestrator_release_build", WALL) == \
        "\x1b[0Ksection_end:1765000000:orchestrator_release_build\r\x1b[0K"
    assert Progress(command="nightly").section_name("build") == "orchestrator_nightly_build"
    assert Progress(command="a b:c").section_name("push") == "orchestrator_a_b_c_push"


def test_the_build_phase_says_each_cell_with_k_of_n_its_time_the_elapsed_total_and_compiles(
        pub: Publisher, monkeypatch: pytest.MonkeyPatch) -> None:
    run = pub.run(untested=(RT13, DEV13, RT14, DEV14))
    out, clock = watched(run)
    building(run, clock, monkeypatch, fail="dev-3.14-source")
    clock.now += 30  # lock, render, engine start: part of the elapsed total
    do_build(run)
    assert out.getvalue().splitlines() == [
        "build: 4 cell(s), 2 CPython compile(s) planned",
        f"build 1/4: {RT13} ok in 1m00s (elapsed 1m30s, compiles 1/2)",
        f"build 2/4: {DEV13} ok in 1m00s (elapsed 2m30s, compiles 1/2)",
        f"build 3/4: {RT14} ok in 1m00s (elapsed 3m30s, compiles 2/2)",
        f"build 4/4: {DEV14} failed in 1m00s (elapsed 4m30s, compiles 2/2): "
        "stage dev-3.14-source failed: exit code: 2",
        "build: 4/4 cell(s) in 4m00s (1 failed, 3 ok)",
    ]


def test_in_ci_each_phase_is_a_collapsible_section(pub: Publisher,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    run = pub.run(untested=(RT13, DEV13, RT14, DEV14))
    out, clock = watched(run, sections=True)
    building(run, clock, monkeypatch)
    do_build(run)
    lines = out.getvalue().split("\n")[:-1]  # not splitlines: the markers hold a \r
    assert lines[0] == ("\x1b[0Ksection_start:1765000000:orchestrator_release_build\r\x1b[0K"
                        "build: 4 cell(s), 2 CPython compile(s) planned")
    assert [x.split(":")[0] for x in lines[1:5]] == [f"build {k}/4" for k in range(1, 5)]
    assert lines[5:] == ["build: 4/4 cell(s) in 4m00s (4 ok)",
                         "\x1b[0Ksection_end:1765000000:orchestrator_release_build\r\x1b[0K"]


def test_the_test_phase_counts_the_cells_it_tests_and_says_why_one_failed(
        pub: Publisher) -> None:
    run = pub.run(untested=(RT13, DEV13, RT14, DEV14))
    run.report.cell(RT14).fail("build", "stage python-3.14-source failed\nexit code: 2")
    run.report.cell(DEV14).abort(f"{RT14}: stage python-3.14-source failed")
    run.engine.images.clear()  # 3.13's candidates are gone (a pruned engine)
    out, _ = watched(run)
    do_test(run)
    assert out.getvalue().splitlines() == [
        "test: 2 cell(s)",  # the failed build and what it took down are not tested
        f"test 1/2: {RT13} failed in 0.0s (elapsed 0.0s): no built image for this cell; "
        "run `orchestrator build` first",
        f"test 2/2: {DEV13} aborted in 0.0s (elapsed 0.0s): not attempted: its runtime image "
        f"{RT13} failed; dev is published only with it",
        "test: 2/2 cell(s) in 0.0s (1 aborted, 1 failed)",
    ]


def test_the_push_phase_says_what_the_registry_got(pub: Publisher) -> None:
    run = pub.run()
    out, _ = watched(run, sections=True, command="nightly")
    session.run_phases(run, ["push"])
    lines = out.getvalue().split("\n")[:-1]
    assert lines[0].endswith("section_start:1765000000:orchestrator_nightly_push\r\x1b[0K"
                             "push: 4 cell(s)")
    assert lines[1:5] == [f"push {k}/4: {cid} new in 0.0s (elapsed 0.0s)"
                          for k, cid in enumerate((i.id for i in run.plan.images), 1)]
    assert lines[5] == "push: 4/4 cell(s) in 0.0s (4 ok)"
    assert lines[6].startswith("\x1b[0Ksection_end:1765000000:orchestrator_nightly_push")

    again = pub.run()
    out, _ = watched(again)
    session.run_phases(again, ["push"])
    assert f"push 4/4: {RT14} unchanged in 0.0s (elapsed 0.0s)" in out.getvalue().splitlines()


def test_a_run_made_without_a_progress_says_nothing_and_the_json_report_is_as_before(
        pub: Publisher, capsys: pytest.CaptureFixture[str]) -> None:
    run = pub.run()
    session.run_phases(run, ["push"])
    assert "push 1/4" not in capsys.readouterr().err
    cell = run.report.to_dict()["cells"][0]
    assert "progress" not in cell and "why" not in cell and sorted(run.report.to_dict()) == \
        ["cells", "command", "compiles", "counts", "date", "exit_code", "fast_path", "notes",
         "profile", "seconds"]
    json.dumps(run.report.to_dict(), default=str)


@pytest.mark.spawns("git")
@pytest.mark.parametrize("ci", [True, False])
def test_a_session_reports_progress_on_stderr_with_sections_only_in_ci(
        tmp_path: Path, fake: FakeRegistry, ci: bool) -> None:
    st = dataclasses.replace(settings.get(), ci=ci)  # what the CLI read of the environment
    loaded = loader.load(write_config(tmp_path / "cfg", fake.address, REPO), TODAY)
    engine = FakeEngine(registry_for=lambda host: pytest.fail(f"asked for registry {host}"))
    run = session.start_run(loaded, "release", lambda: engine, settings=st, only=[RT13],
                            profile=None, shard=None, cache=build_cache.DEFAULT_OPTIONS,
                            network=None)
    assert run.progress.stream is not None and run.progress.sections is ci
    assert run.progress.command == "release"
    assert run.platforms == {RT13: ("linux/amd64",)}


def test_the_summary_puts_failures_first_with_why_platforms_compiles_and_time() -> None:
    report = Report("release", "fast", "2026-11-21", seconds=2304.0,
                    compiles=["bookworm/python-3.14-source", "bookworm/python-3.14-source-cross-arm64"])
    ok = report.cell(RT14)
    ok.status, ok.publish, ok.digest, ok.size_bytes = Status.OK, "new", "sha256:" + "ab" * 32, 45_100_000
    ok.platforms = ["linux/amd64", "linux/arm64"]
    ok.compiled = list(report.compiles)
    ok.seconds = {"build": 400.0, "test": 100.0, "push": 12.0}
    same = report.cell(RT13)
    same.status, same.publish, same.message = Status.UNCHANGED, "unchanged", "content unchanged"
    same.seconds = {"build": 3.0, "test": 20.0}
    bad = report.cell(DEV14)
    bad.fail("build", "stage dev-3.14-source failed\nexit code: 2\nmore")
    bad.log = "/w/logs/3.14-source-bookworm-dev.build.log"
    gone = report.cell(DEV13)
    gone.abort(f"its runtime image {RT13} failed; dev is published only with it")
    lines = report.table({DEV14: ("linux/amd64", "linux/arm64"), DEV13: ("linux/amd64",)}).splitlines()
    assert lines[0].split() == ["CELL", "STATUS", "PLATFORMS", "COMPILES", "TIME", "PUBLISH",
                                "SIZE", "MB", "DIGEST", "NOTE"]
    assert lines[1].split() == [DEV14, "failed", "amd64,arm64", "-", "-", "-", "-", "-"]
    assert lines[2] == ("  why: build: stage dev-3.14-source failed: exit code: 2 "
                        "(log: /w/logs/3.14-source-bookworm-dev.build.log)")
    assert lines[3].split() == [DEV13, "aborted", "amd64", "-", "-", "-", "-", "-"]
    assert lines[4] == f"  why: not attempted: its runtime image {RT13} failed; dev is published only with it"
    assert lines[5].split() == [RT14, "ok", "amd64,arm64", "2", "8m32s", "new", "45.1",
                                "abababababab"]
    assert lines[6].split() == [RT13, "unchanged", "-", "0", "23s", "unchanged", "-", "-",
                                "content", "unchanged"]
    assert lines[7] == "1 ok, 1 failed, 1 unchanged, 1 aborted; 2 CPython compile(s); 2304s (38m24s)"
    assert len(lines) == 8


def test_why_is_one_line_and_leaves_out_the_image_a_smoke_check_names_first() -> None:
    report = Report("test", "fast", "2026-11-21")
    res = report.cell(RT13)
    res.fail("test", f"{RT13}: check venv failed: exit code 1\n    Traceback ...\n"
                     f"{RT13}: check ssl failed: exit code 1")
    from orchestrator.release.report import why
    assert why(res) == "test: check venv failed: exit code 1"
    assert why(res, with_phase=False) == "check venv failed: exit code 1"
    res.fail("push", "x" * 300)
    assert len(why(res)) == 160 and why(res).endswith("...")

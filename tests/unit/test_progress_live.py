"""The live status of long commands on a terminal and its estimate of the time left
(orchestrator/release/progress_live.py, progress_history.py): the estimate from a recorded history, the
history file (atomic, an unreadable one costs the estimate, not the run), the status drawn on a
stream that says it is a terminal, and a run without a terminal printing the lines as before.
No Docker: the publish harness's four bookworm source cells in the fake engine."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from orchestrator import log, settings
from orchestrator.cli import supply_cmds
from orchestrator.config import loader
from orchestrator.planning import build_cache
from orchestrator.release import progress_history as hist
from orchestrator.release import session
from orchestrator.release.build import do_build
from orchestrator.release.progress import Progress
from orchestrator.release.progress_live import Snapshot, status_text
from orchestrator.release.report import CellResult, Status
from orchestrator.release.state import state_dir
from tests.fakes.fake_engine import FakeEngine
from tests.fakes.fake_registry import FakeRegistry
from tests.fakes.publish_harness import Publisher, write_config
from tests.unit.helpers import FIXTURES, TODAY, run_cli
from tests.unit.test_progress import Clock, building

REPO = "team/python"
RT13, DEV13 = "3.13-source-bookworm-runtime", "3.13-source-bookworm-dev"
RT14, DEV14 = "3.14-source-bookworm-runtime", "3.14-source-bookworm-dev"
CELLS = (RT13, DEV13, RT14, DEV14)
PAST = hist.History({"build": {RT13: 600.0, DEV13: 60.0, RT14: 900.0},
                     "test": {RT13: 30.0, DEV13: 20.0, RT14: 40.0, DEV14: 10.0},
                     "push": {RT13: 5.0}},
                    {"build": 12.0, "test": 4.0, "push": 3.0})


class Terminal(io.StringIO):
    """A stream that says it is a terminal (as stderr on one does)."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with FakeRegistry() as registry:
        yield registry


@pytest.fixture
def pub(tmp_path: Path, fake: FakeRegistry) -> Publisher:
    return Publisher(write_config(tmp_path / "cfg", fake.address, REPO), fake.address,
                     tmp_path / "work")


# -- the estimate: a pure function of the history and the work left --------------------------

def test_each_cell_is_estimated_by_its_own_time_and_a_new_one_by_its_phases_mean() -> None:
    assert hist.cell_estimate(PAST, "build", RT14) == 900.0
    assert hist.cell_estimate(PAST, "build", DEV14) == 520.0  # (600 + 60 + 900) / 3
    assert hist.cell_estimate(PAST, "sign", RT13) is None
    assert hist.remaining(PAST, [("build", [RT14, DEV14])]) == 1420.0


def test_the_running_cell_counts_what_is_left_of_it_and_later_phases_their_overhead() -> None:
    work = [("build", [RT14, DEV14]), ("test", list(CELLS)), ("push", [RT13])]
    # 900 - 300 running + 520; test 100 + 4 overhead; push 5 + 3 overhead
    assert hist.remaining(PAST, work, running=300.0) == 600 + 520 + 104 + 8
    # a cell running longer than last time is left at zero, not below
    assert hist.remaining(PAST, [("build", [RT13, DEV13])], running=1000.0) == 60.0
    assert hist.remaining(PAST, [("build", [])]) == 0.0


def test_no_estimate_when_a_phase_still_to_run_has_no_history() -> None:
    assert hist.remaining(PAST, [("build", [RT13]), ("sign", [RT13])]) is None
    assert hist.remaining(hist.History(), [("build", [RT13])]) is None
    assert hist.remaining(PAST, [("build", [RT13]), ("sign", [])]) == 600.0  # nothing to sign


# -- the history file ------------------------------------------------------------------------

def test_the_history_file_round_trips_and_a_run_only_updates_what_it_ran(tmp_path: Path) -> None:
    path = hist.history_path(tmp_path / "state")
    assert hist.read(path) == (None, "")  # the first run: no history, nothing wrong
    hist.write(path, PAST)
    assert hist.read(path) == (PAST, "")
    newer = hist.recorded({"build": {RT13: 480.04}}, {"build": -0.5, "sign": 2.26})
    merged = PAST.merged(newer)
    assert merged.cells["build"] == {RT13: 480.0, DEV13: 60.0, RT14: 900.0}
    assert merged.cells["test"] == PAST.cells["test"]
    assert merged.overhead == {"build": 0.0, "test": 4.0, "push": 3.0, "sign": 2.3}
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_a_write_that_fails_half_way_leaves_the_old_file_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = hist.history_path(tmp_path)
    hist.write(path, PAST)

    def broken(obj: object, f: io.TextIOBase, **kw: object) -> None:
        f.write('{"version": 1, "cel')
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(json, "dump", broken)
    with pytest.raises(OSError):
        hist.write(path, hist.History())
    assert hist.read(path) == (PAST, "")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize("text", ["{not json", '{"version": 1, "cells": [], "overhead": {}}',
                                  '{"version": 1, "cells": {"build": {"a": "6m"}}, "overhead": {}}',
                                  '{"version": 1, "cells": {"build": {"a": -1}}, "overhead": {}}',
                                  '{"version": 99, "cells": {}, "overhead": {}}', "[]", "\udcff"])
def test_an_unreadable_history_is_no_estimate_and_a_warning_not_a_crash(
        tmp_path: Path, text: str) -> None:
    path = hist.history_path(tmp_path)
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    got, problem = hist.read(path)
    assert got is None and problem.startswith(f"{path}: not a progress history")
    with capture_logs() as logs:
        progress = Progress(Terminal(), command="build", live=True, history=path, refresh=0)
    assert [(e["log_level"], e["event"], e["problem"]) for e in logs] == \
        [("warning", "no estimate of the time left", problem)]
    with progress.phase("build", 1, cells=[RT13]):
        assert progress.eta() is None
    progress.times = {"build": {RT13: 1.0}}
    progress.save()  # a good history takes the place of the bad one
    assert hist.read(path) == (hist.History({"build": {RT13: 1.0}}, {"build": 0.0}), "")


# -- the status line -------------------------------------------------------------------------

def test_the_status_says_phase_k_of_n_compiles_elapsed_and_the_time_left() -> None:
    s = Snapshot("release", "build", 3, 15, 1375.0, 1630.0, compiled=3, compiles=8,
                 cell="3.14-source-trixie-dev")
    assert status_text(s) == ("release: build 3/15, compiles 3/8, elapsed 22m55s, "
                              "about 27m10s left (3.14-source-trixie-dev)")
    assert status_text(Snapshot("push", "push", 0, 4, 2.0, None)) == \
        "push: push 0/4, elapsed 2.0s, no estimate yet"
    assert status_text(Snapshot("test", "test", 1, 2, 9.0, 0.0)).endswith(
        "taking longer than last time")


def live_build(pub: Publisher, monkeypatch: pytest.MonkeyPatch, history: Path) \
        -> tuple[Terminal, Progress]:
    """A `release` that builds the four cells on a terminal 160 columns wide (rich crops the
    status to the width), each build a minute."""
    monkeypatch.setenv("COLUMNS", "160")
    run = pub.run(untested=CELLS)
    clock, term = Clock(), Terminal()
    run.progress = Progress(term, command="release", clock=clock, live=True, history=history,
                            refresh=0)
    run.progress.expect(["build", "test", "push"], list(CELLS))
    building(run, clock, monkeypatch)
    clock.now += 30
    do_build(run)
    return term, run.progress


def test_a_first_run_on_a_terminal_shows_the_status_with_no_estimate_then_records_it(
        pub: Publisher, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    history = hist.history_path(tmp_path / "state")
    term, progress = live_build(pub, monkeypatch, history)
    out = term.getvalue()
    assert f"release: build 0/4, compiles 0/2, elapsed 30s, no estimate yet ({RT13})" in out
    assert f"release: build 2/4, compiles 1/2, elapsed 2m30s, no estimate yet ({RT14})" in out
    assert "\x1b[?25l" in out and out.endswith("\x1b[?25h\r\x1b[1A\x1b[2K")  # drawn, then gone
    # the k/n lines are there as without a terminal, each whole on its own line
    assert f"\r\x1b[2Kbuild 3/4: {RT14} ok in 1m00s (elapsed 3m30s, compiles 2/2)\n" in out
    assert not history.exists()  # written at the end of the run
    progress.save()
    assert hist.read(history) == (hist.History({"build": dict.fromkeys(CELLS, 60.0)},
                                               {"build": 0.0}), "")


def test_a_run_after_one_that_recorded_its_times_estimates_the_time_left(
        pub: Publisher, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    history = hist.history_path(tmp_path / "state")
    hist.write(history, PAST)
    term, _ = live_build(pub, monkeypatch, history)
    out = term.getvalue()
    # build: 600 + 60 + 900 + 520 (DEV14: the phase's mean); test 100 + 4; push 4 x 5 + 3
    assert f"release: build 0/4, compiles 0/2, elapsed 30s, about 36m47s left ({RT13})" in out
    # RT13 done (it took 1 min, not 10): the rest as last time, 1607 s
    assert f"release: build 1/4, compiles 1/2, elapsed 1m30s, about 26m47s left ({DEV13})" in out
    assert "release: build 4/4, compiles 2/2, elapsed 4m30s, about 2m07s left" in out


def test_what_is_written_to_stderr_meanwhile_goes_above_the_status(
        pub: Publisher, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    log.configure("console")
    progress = Progress(Terminal(), command="build", live=True, refresh=0)
    assert isinstance(progress.stream, Terminal)
    with progress.phase("build", 1, cells=[RT13]) as ph:
        res = CellResult(RT13)
        with ph.cell(res):
            print("[cell] #5 [python 1/9] RUN ./configure", file=sys.stderr)
            log.get("pipeline").info("step", image=RT13)
            res.status = Status.OK
    out = progress.stream.getvalue()
    # each written whole, after the status line was cleared (\r ESC[2K), then the status again
    assert "\r\x1b[2K[cell] #5 [python 1/9] RUN ./configure\n⠋ build: build 0/1" in out
    logged = next(chunk for chunk in out.split("\r\x1b[2K") if "[info     ] step" in chunk)
    assert logged.endswith(f"image={RT13}\n⠋ build: build 0/1, elapsed 0.0s, no estimate yet ({RT13})")


@pytest.mark.parametrize("terminal", [True, False])
def test_check_reproducible_prints_a_line_per_image_and_its_status_on_a_terminal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        terminal: bool) -> None:
    shutil.copytree(FIXTURES / "features", tmp_path, dirs_exist_ok=True)
    assert run_cli(["render", "--config", str(tmp_path / "images.yaml")], capsys)[0] == 0
    settings.override(dataclasses.replace(settings.get(), source_date_epoch=1764547200,
                                          work_dir=tmp_path / "work"))
    monkeypatch.setattr(supply_cmds, "engine_for", lambda args, loaded: FakeEngine(
        registry_for=lambda host: pytest.fail(f"asked for registry {host}")))
    monkeypatch.setenv("COLUMNS", "160")
    term = Terminal()
    if terminal:
        monkeypatch.setattr(sys, "stderr", term)
    code, out, err = run_cli(["check-reproducible", "--config", str(tmp_path / "images.yaml"),
                              "--only", RT13], capsys)
    assert code == 0, err
    assert f"{RT13} (builds:" in out
    shown = term.getvalue()
    if terminal:
        assert "check-reproducible: reproduce 0/1, elapsed" in shown
        assert f"no estimate yet ({RT13})" in shown
        assert f"reproduce 1/1: {RT13} ok in " in shown
    else:  # without a terminal (CI): the k/n line per image, no status, no escape codes
        assert f"reproduce 1/1: {RT13} ok in " in err and "\x1b" not in err
        assert "reproduce: 1/1 cell(s) in " in err
        assert shown == "" and "elapsed" not in out  # the report on stdout is as before
    # the next run on a terminal has an estimate, live or not this time
    times, _ = hist.read(hist.history_path(tmp_path / "work" / "state"))
    assert times is not None and list(times.cells["reproduce"]) == [RT13]


# -- without a terminal: as before -----------------------------------------------------------

@pytest.mark.spawns("git")
def test_without_a_terminal_a_session_prints_exactly_the_old_lines_and_records_the_times(
        tmp_path: Path, fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    loaded = loader.load(write_config(tmp_path / "cfg", fake.address, REPO), TODAY)
    engine = FakeEngine(registry_for=lambda host: pytest.fail(f"asked for registry {host}"))
    run = session.start_run(loaded, "build", lambda: engine, settings=settings.get(),
                            only=["*-source-*"], profile=None, shard=None,
                            cache=build_cache.DEFAULT_OPTIONS, network=None)
    assert not sys.stderr.isatty() and run.progress.live is False
    history = hist.history_path(state_dir(run.work))
    hist.write(history, PAST)
    clock = Clock()
    run.progress.clock = clock
    run.progress.started = clock.now
    building(run, clock, monkeypatch)  # type: ignore[arg-type]
    session.run_phases(run, ["build"])
    assert capsys.readouterr().err.splitlines() == [
        "build: 4 cell(s), 2 CPython compile(s) planned",
        f"build 1/4: {RT13} ok in 1m00s (elapsed 1m00s, compiles 1/2)",
        f"build 2/4: {DEV13} ok in 1m00s (elapsed 2m00s, compiles 1/2)",
        f"build 3/4: {RT14} ok in 1m00s (elapsed 3m00s, compiles 2/2)",
        f"build 4/4: {DEV14} ok in 1m00s (elapsed 4m00s, compiles 2/2)",
        "build: 4/4 cell(s) in 4m00s (4 ok)",
    ]
    session.finish(run, str(tmp_path / "report.json"), 0.0)
    assert hist.read(history)[0] == PAST.merged(
        hist.History({"build": dict.fromkeys(CELLS, 60.0)}, {"build": 0.0}))
    assert json.loads((tmp_path / "report.json").read_text())["command"] == "build"


@pytest.mark.parametrize(("env", "live"), [
    ({}, True), ({"ORCH_PROGRESS": "0"}, False), ({"ORCH_PROGRESS": "off"}, False),
    ({"ORCH_PROGRESS": "1"}, True), ({"CI": "true"}, False), ({"TERM": "dumb"}, False),
    ({"TERM": "xterm-256color"}, True)])
def test_the_live_status_is_off_in_ci_on_a_dumb_terminal_and_when_asked(
        env: dict[str, str], live: bool) -> None:
    assert settings.Settings.from_environ(env).live_progress is live


def test_the_log_writes_to_stderr_as_it_is_when_a_line_is_logged(
        monkeypatch: pytest.MonkeyPatch) -> None:
    log.configure("json")
    later = io.StringIO()
    monkeypatch.setattr(sys, "stderr", later)
    log.get("x").info("hello")
    assert json.loads(later.getvalue())["event"] == "hello"
    structlog.reset_defaults()

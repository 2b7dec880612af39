"""Progress of `make bench` on stderr (bench/common.py Progress, issue 34 item 2): a header and a
closing line per section with its place among the run's sections (k/n), its time and the time
since the run started, GitLab's collapsible sections in CI, a line per item in the long sections
(build, startup, speed, rebuild), a live status with an estimate from earlier runs' section
times on a terminal. Nothing is measured: the sections' docker calls are replaced by fakes that
move a fake clock."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.release import progress_history as hist
from orchestrator.release.progress_live import status_text
from tests.unit.helpers import REPO

sys.path.append(str(REPO / "bench"))  # bench/ holds scripts, not a package; appended: shadows nothing

import common
import images
import rebuild
import speed
import startup
from common import Progress, Section, Timing

WALL = 1765000000  # the unix time GitLab's markers carry
ESC = "\x1b[0K"


class Clock:
    """Monotonic time that only the fakes move."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def clock() -> Clock:
    return Clock()


def progress(stream: io.StringIO, clock: Clock, names: tuple[str, ...] = ("overhead", "build", "speed"),
             **kw: Any) -> Progress:
    return Progress(stream, names, clock=clock, wall=lambda: WALL, **kw)


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().split("\n")[:-1]  # not splitlines: GitLab's markers hold a \r


# -- the lines --------------------------------------------------------------------------------

def test_sections_count_k_of_n_with_their_time_and_the_elapsed_total(clock: Clock) -> None:
    out = io.StringIO()
    p = progress(out, clock)
    clock.now += 5  # before the first section: counted in elapsed, not in the section
    with p.section("overhead"):
        clock.now += 1.2
    with p.section("build") as sec:
        sec.expect(2)
        with sec.item("ours, fast profile"):
            clock.now += 412
        with sec.item("reference") as it:
            clock.now += 1500
            it.note = "CPython compiled"
    assert lines(out) == [
        "bench 1/3: overhead",
        "bench 1/3: overhead done in 1.2s (elapsed 6.2s)",
        "bench 2/3: build",
        "build 1/2: ours, fast profile in 6m52s (elapsed 6m58s)",
        "build 2/2: reference in 25m00s (elapsed 31m58s): CPython compiled",
        "bench 2/3: build done in 31m52s (elapsed 31m58s)",
    ]
    assert p.times == pytest.approx({"overhead": 1.2, "build": 1912.0})


def test_in_ci_each_section_is_a_gitlab_collapsible_section(clock: Clock) -> None:
    out = io.StringIO()
    p = progress(out, clock, sections=True)
    with p.section("speed") as sec:
        sec.expect(1)
        with sec.item("reference (round 1/1)"):
            clock.now += 40
    assert lines(out) == [
        f"{ESC}section_start:{WALL}:bench_speed\r{ESC}bench 3/3: speed",
        "speed 1/1: reference (round 1/1) in 40s (elapsed 40s)",
        "bench 3/3: speed done in 40s (elapsed 40s)",
        f"{ESC}section_end:{WALL}:bench_speed\r{ESC}",
    ]


def test_a_failing_section_says_where_and_why_closes_its_section_and_raises(clock: Clock) -> None:
    out = io.StringIO()
    p = progress(out, clock, sections=True)
    with pytest.raises(RuntimeError, match="runner failed"), p.section("speed") as sec:
        sec.expect(4)
        with sec.item("debian (round 1/2)"):
            clock.now += 20
        with sec.item("reference (round 1/2)"):
            clock.now += 3
            raise RuntimeError("bench-local/reference: runner failed (exit 1):\nTraceback ...")
    assert lines(out)[1:] == [
        "speed 1/4: debian (round 1/2) in 20s (elapsed 20s)",
        "bench 3/3: speed FAILED in 23s (elapsed 23s) at 2/4 reference (round 1/2): "
        "RuntimeError: bench-local/reference: runner failed (exit 1):",
        f"{ESC}section_end:{WALL}:bench_speed\r{ESC}",
    ]
    assert p.times == {}  # a failed section's time is no estimate of the next run's
    assert p.current is None


def test_a_quiet_section_counts_and_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    sec = Section.quiet("speed")
    sec.expect(2)
    with sec.item("a"), sec.item("b"):
        pass
    assert sec.done == 2
    assert capsys.readouterr() == ("", "")


# -- the sections' items ----------------------------------------------------------------------

def _image(key: str, kind: str) -> images.BenchImage:
    return images.BenchImage(key, key, f"bench-local/{key}", kind, None)


def test_speed_prints_a_line_per_image_and_round(clock: Clock, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    subjects = {k: _image(k, kind) for k, kind in
                (("fast-runtime", "ours"), ("reference", "reference"), ("debian", "debian"))}
    subjects["fast-dev"] = images.BenchImage("fast-dev", "", "x", "ours", None, "fast", "dev")

    def run_once(img: images.BenchImage, _dir: Path, _args: list[str]) -> dict[str, Any]:
        clock.now += {"reference": 40, "debian": 22}.get(img.key, 24)
        return {"python": "3.13.9", "pyperf": "2.9", "timing": {"seconds": 1.0},
                "results": {"nbody": {"values": [0.1, 0.11], "checksum": "c"}}}

    monkeypatch.setattr(speed, "install_pyperf", lambda *_: {"installed": []})
    monkeypatch.setattr(speed, "run_once", run_once)
    out = io.StringIO()
    p = progress(out, clock)
    with p.section("speed") as sec:
        result = speed.measure(subjects, tmp_path, rounds=2, processes=1, values=2, section=sec)
    assert result["images"]["reference"]["geomean_relative_to_reference"] == 1.0
    assert lines(out)[1:-1] == [  # rounds rotate the order; dev is not measured
        "speed 1/6: fast-runtime (round 1/2) in 24s (elapsed 24s)",
        "speed 2/6: reference (round 1/2) in 40s (elapsed 1m04s)",
        "speed 3/6: debian (round 1/2) in 22s (elapsed 1m26s)",
        "speed 4/6: reference (round 2/2) in 40s (elapsed 2m06s)",
        "speed 5/6: debian (round 2/2) in 22s (elapsed 2m28s)",
        "speed 6/6: fast-runtime (round 2/2) in 24s (elapsed 2m52s)",
    ]


def test_startup_prints_the_warm_up_then_a_line_per_round(clock: Clock,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def sample(ref: str, code: str, flags: str = "") -> tuple[float, float]:
        clock.now += 0.5
        return (30.0 if "reference" in ref else 15.0), 400.0

    monkeypatch.setattr(startup, "sample", sample)
    monkeypatch.setattr(startup, "startup_imports", lambda ref: {})
    out = io.StringIO()
    p = progress(out, clock, names=("startup",))
    subjects = {k: _image(k, kind) for k, kind in (("fast-runtime", "ours"), ("reference", "reference"))}
    with p.section("startup") as sec:
        startup.measure(subjects, 2, sec)
    assert lines(out)[1:-1] == [
        "startup 1/3: warm-up in 3.0s (elapsed 3.0s)",  # 2 images x 3 commands
        "startup 2/3: round 1/2 in 3.0s (elapsed 6.0s): imports fast-runtime 15 ms, reference 30 ms",
        "startup 3/3: round 2/2 in 3.0s (elapsed 9.0s): imports fast-runtime 15 ms, reference 30 ms",
    ]


class FakeWorkspace:
    """The bench workspace's `orchestrator` calls: each moves the clock, reports its compiles."""

    def __init__(self, root: Path, clock: Clock) -> None:
        self.dir, self.clock = root, clock
        self.calls: list[tuple[str, ...]] = []

    def orch(self, *args: str, step: str, report: bool = False, show: Any = None) -> tuple[
            int, Timing, dict[str, Any]]:
        self.calls.append(args)
        seconds, compiles, code = {"cold": (3000, ["bookworm/python-3.14-source"] * 3, 0),
                                   "noop": (80, [], 0), "refresh": (700, [], 0),
                                   "publish": (600, [], 0), "nightly": (11, [], 2)}[step]
        self.clock.now += seconds
        cells = [{"id": "3.14-source-bookworm-runtime", "status": "ok"}]
        return code, Timing(seconds), {"compiles": compiles, "cells": cells}


def test_rebuild_prints_a_line_per_step_with_its_compiles_or_its_failure(
        clock: Clock, tmp_path: Path) -> None:
    ws = FakeWorkspace(tmp_path, clock)
    out = io.StringIO()
    p = progress(out, clock, names=("rebuild",))
    with p.section("rebuild") as sec:
        result = rebuild.measure(tmp_path, "r1", quick=True, base_digests={}, fast_ws=ws,  # type: ignore[arg-type]
                                 section=sec)
    assert [c[0] for c in ws.calls] == ["build", "build", "build", "release", "nightly"]
    assert result["noop"]["ratio_to_cold"] == round(80 / 3000, 4)
    assert lines(out)[1:] == [
        "rebuild 1/5: cold build in 50m00s (elapsed 50m00s): 3 CPython compile(s)",
        "rebuild 2/5: noop build in 1m20s (elapsed 51m20s): 0 CPython compile(s)",
        "rebuild 3/5: refresh build in 11m40s (elapsed 1h03m): 0 CPython compile(s)",
        "rebuild 4/5: release in 10m00s (elapsed 1h13m): 0 CPython compile(s)",
        f"rebuild 5/5: nightly in 11s (elapsed 1h13m): exit 2; see {tmp_path}/logs/nightly.log, "
        "0 CPython compile(s)",
        "bench 1/1: rebuild done in 1h13m (elapsed 1h13m)",
    ]


# -- the run: every section in order, a failure costs its section only --------------------------

@pytest.fixture
def bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Iterator[Any]:
    import run as bench_run  # bench/run.py

    monkeypatch.setattr(bench_run, "docker_version", lambda: {"dockerd": "fake", "buildx": "fake"})
    args = bench_run.parse(["--quick", "--output", str(tmp_path / "results.json")])
    b = bench_run.Bench(args)
    # the history of the run's mode beside the bench's workspaces (git-ignored); here: a fake clock
    assert (b.progress.mode, b.progress.history) == ("quick", common.BENCH / ".work" / hist.FILE_NAME)
    b.progress = Progress(io.StringIO(), bench_run.SECTIONS, mode="quick", clock=clock,
                          wall=lambda: WALL, history=tmp_path / "work" / hist.FILE_NAME)
    yield b


@pytest.mark.spawns("git")
def test_the_run_counts_its_sections_and_goes_on_after_a_failed_one(bench: Any, clock: Clock,
                                                                    capsys: pytest.CaptureFixture[str],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def timed(seconds: float, items: int = 0) -> Any:
        def fn(sec: Section) -> None:  # None: nothing measured to report
            sec.expect(items)
            for k in range(items):
                with sec.item(f"item {k + 1}"):
                    clock.now += seconds / items
            if not items:
                clock.now += seconds
        return fn

    def size(sec: Section) -> None:
        clock.now += 7
        raise RuntimeError("docker push failed")

    for name, fn in (("overhead", timed(1.0)), ("build", timed(600.0, 2)), ("size", size),
                     ("startup", timed(30.0)), ("speed", timed(120.0, 3)), ("rebuild", timed(900.0, 5))):
        monkeypatch.setattr(bench, f"do_{name}", fn)
    assert bench.run() == 1  # a section error
    out = lines(bench.progress.stream)
    heads = [ln for ln in out if ln.startswith("bench ")]
    assert heads == [
        "bench 1/6: overhead", "bench 1/6: overhead done in 1.0s (elapsed 1.0s)",
        "bench 2/6: build", "bench 2/6: build done in 10m00s (elapsed 10m01s)",
        "bench 3/6: size",
        "bench 3/6: size FAILED in 7.0s (elapsed 10m08s): RuntimeError: docker push failed",
        "bench 4/6: startup", "bench 4/6: startup done in 30s (elapsed 10m38s)",
        "bench 5/6: speed", "bench 5/6: speed done in 2m00s (elapsed 12m38s)",
        "bench 6/6: rebuild", "bench 6/6: rebuild done in 15m00s (elapsed 27m38s)",
    ]
    assert "speed 3/3: item 3 in 40s (elapsed 12m38s)" in out
    assert "RuntimeError: docker push failed" in capsys.readouterr().err  # the traceback
    results = json.loads((Path(bench.args.output)).read_text())
    assert results["errors"] == {"size": "RuntimeError: docker push failed"}
    # every section that did not fail is recorded for the next run's estimate
    history, problem = hist.read(bench.progress.history)
    assert problem == "" and history is not None
    assert history.cells == {"quick": {"overhead": 1.0, "build": 600.0, "startup": 30.0,
                                       "speed": 120.0, "rebuild": 900.0}}


# -- on a terminal: the live status and its estimate --------------------------------------------

def test_the_live_status_estimates_what_is_left_from_the_runs_before(clock: Clock, tmp_path: Path) -> None:
    path = tmp_path / hist.FILE_NAME
    hist.write(path, hist.History({"full": {"overhead": 1.0, "build": 3600.0, "speed": 500.0},
                                   "quick": {"overhead": 1.0, "build": 60.0, "speed": 50.0}}))
    term = Terminal()
    p = progress(term, clock, live=True, history=path, mode="full", refresh=0)
    assert p.past == {"overhead": 1.0, "build": 3600.0, "speed": 500.0}  # this mode's only
    with p.section("build") as sec:
        sec.expect(3)
        clock.now += 600
        with sec.item("ours, fast profile"):
            assert p.eta() == 3000 + 500  # what is left of build, then speed
            text = status_text(p.snapshot())
            assert text == ("bench 2/3: build 0/3, elapsed 10m00s, about 58m20s left "
                            "(ours, fast profile)")
            clock.now += 3600  # longer than build took last time: speed's time is left
            assert p.eta() == 500
    assert "build 1/3: ours, fast profile in 1h00m (elapsed 1h10m)" in term.getvalue()
    assert "about 58m20s left" in term.getvalue()  # drawn by rich on the "terminal"
    p.save()
    merged, _ = hist.read(path)
    assert merged is not None and merged.cells["full"]["build"] == 4200.0
    assert merged.cells["quick"] == {"overhead": 1.0, "build": 60.0, "speed": 50.0}


def test_without_a_history_or_for_a_section_never_recorded_there_is_no_estimate(
        clock: Clock, tmp_path: Path) -> None:
    path = tmp_path / hist.FILE_NAME
    p = progress(Terminal(), clock, live=True, history=path, refresh=0)
    with p.section("overhead"):
        assert p.eta() is None
        assert status_text(p.snapshot()) == "bench 1/3: overhead, elapsed 0.0s, no estimate yet"
    hist.write(path, hist.History({"full": {"overhead": 1.0, "build": 60.0}}))
    p = progress(Terminal(), clock, live=True, history=path, refresh=0)
    with p.section("build"):
        assert p.eta() is None  # speed has no recorded time


def test_an_unreadable_history_costs_the_estimate_not_the_run(clock: Clock, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / hist.FILE_NAME
    path.write_text("{not json")
    p = progress(Terminal(), clock, live=True, history=path, refresh=0)
    assert p.past is None
    assert "no estimate of the time left" in capsys.readouterr().err
    with p.section("overhead"):
        clock.now += 1
    p.save()  # replaced by this run's
    history, problem = hist.read(path)
    assert problem == "" and history is not None and history.cells == {"full": {"overhead": 1.0}}


def test_for_run_follows_the_orchestrators_switches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CI", "true")
    p = Progress.for_run(["speed"], mode="full", history=tmp_path / hist.FILE_NAME)
    assert p.sections and not p.live and p.stream is sys.stderr
    monkeypatch.delenv("CI")
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    p = Progress.for_run(["speed"], mode="full", history=tmp_path / hist.FILE_NAME)
    assert not p.sections and p.live
    monkeypatch.setenv("ORCH_PROGRESS", "0")
    p = Progress.for_run(["speed"], mode="full", history=tmp_path / hist.FILE_NAME)
    assert not p.sections and not p.live

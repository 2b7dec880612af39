"""The performance record's parts without a container: the comparison and its threshold, the
runs and their interleaving (fake engine), the pyperf copy, the runner itself under this
interpreter, the predicate's shape and what verify says of it. Nothing here reads a clock:
every figure is made up, and no assertion is about how long anything took."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config.publish import WORKLOADS, Perf
from orchestrator.engine import RunOutcome
from orchestrator.errors import PerfError
from orchestrator.perf import compare, measure, predicate, pyperf_dir
from orchestrator.registry import Registry
from tests.fakes.fake_engine import FakeEngine, synthetic_image

CAND = "cand/3.14-source-bookworm-runtime:latest"
PUB = "127.0.0.1:5000/team/python@sha256:" + "ab" * 32


def bench_output(scale: float, names: tuple[str, ...] = WORKLOADS, checksum: str = "c0ffee",
                 python: str = "3.14.4") -> str:
    """What runner.py prints: a line of pyperf noise, then its BENCH-RESULT line; every
    workload's values ``scale`` times a fixed base (0.1 s, 0.2 s, ...), a little spread."""
    results = {n: {"values": [scale * 0.1 * (i + 1) * f for f in (0.99, 1.0, 1.01)],
                   "checksum": f"{checksum}-{n}"} for i, n in enumerate(names)}
    data = {"python": python, "implementation": python, "executable": "/x", "pyperf": "2.10.0",
            "results": results}
    return "nbody: 100 ms\n" + measure.RESULT + json.dumps(data) + "\n"


# ------------------------------------------------------------------ the comparison


def test_geomean_of_per_workload_medians() -> None:
    assert compare.geomean([2.0, 8.0]) == pytest.approx(4.0)
    assert compare.medians({"a": [3.0, 1.0, 2.0], "b": [5.0]}) == {"a": 2.0, "b": 5.0}
    got = compare.ratios({"a": [2.0, 2.2, 1.8], "b": [1.0]}, {"a": [1.0], "b": [2.0], "c": [1.0]})
    assert got == {"a": pytest.approx(2.0), "b": pytest.approx(0.5)}  # c: the candidate lacks it
    with pytest.raises(ValueError, match="positive"):
        compare.geomean([])


def test_the_median_keeps_one_slow_value_from_deciding() -> None:
    published = {"nbody": [1.0, 1.0, 1.0, 1.0, 1.0]}
    candidate = {"nbody": [1.0, 1.01, 0.99, 1.0, 9.0]}  # one run met a busy host
    verdict = compare.judge(candidate, published, 1.05)
    assert verdict.slowdown == pytest.approx(1.0) and verdict.outcome == "ok"


@pytest.mark.parametrize(("scale", "outcome"), [
    (0.90, "ok"), (1.00, "ok"), (1.04, "ok"), (1.05, "ok"), (1.06, "refused"), (1.50, "refused"),
])
def test_refused_only_above_the_threshold(scale: float, outcome: str) -> None:
    published = {"a": [1.0], "b": [2.0]}
    candidate = {"a": [scale], "b": [2.0 * scale]}
    verdict = compare.judge(candidate, published, 1.05)
    assert verdict.slowdown == pytest.approx(scale)
    assert verdict.outcome == outcome and verdict.refused is (outcome == "refused")


def test_one_slower_workload_is_weighed_by_the_geometric_mean() -> None:
    published = {n: [1.0] for n in ("a", "b", "c", "d")}
    candidate = {"a": [1.2], "b": [1.0], "c": [1.0], "d": [1.0]}  # 20 % on one of four
    verdict = compare.judge(candidate, published, 1.05)
    assert verdict.slowdown == pytest.approx(1.2 ** 0.25) and verdict.outcome == "ok"
    assert verdict.ratios["a"] == pytest.approx(1.2)


def test_a_first_publish_is_recorded_never_refused() -> None:
    verdict = compare.judge({"a": [5.0, 5.0]}, None, 1.05)
    assert verdict.slowdown is None and verdict.outcome == "first" and not verdict.refused
    assert verdict.line().startswith("first record: nothing published to compare with")


def test_the_noise_and_each_rounds_figure_are_measured() -> None:
    published = {"a": [1.0, 1.1, 0.9]}
    candidate = {"a": [1.0, 1.0, 1.0]}
    rounds = [({"a": [1.0]}, {"a": [1.0]}), ({"a": [1.1]}, {"a": [1.0]})]
    verdict = compare.judge(candidate, published, 1.05, rounds)
    assert verdict.noise == pytest.approx(0.1)  # the published image's spread
    assert verdict.round_slowdowns == pytest.approx((1.0, 1.1))
    assert verdict.noisy  # 10 % of noise against a 5 % margin: said in the line
    assert verdict.line().endswith("(limit 1.05; noise 10.0 %; noisier than the limit's margin)")
    quiet = compare.judge(candidate, {"a": [1.0, 1.0, 1.01]}, 1.05)
    assert not quiet.noisy and quiet.line() == (
        "1.000x the published image's time, geometric mean over 1 workload(s) (limit 1.05; "
        "noise 0.0 %)")


def test_nothing_run_by_both_is_no_comparison() -> None:
    with pytest.raises(ValueError, match="no workload ran on both"):
        compare.judge({"a": [1.0]}, {"b": [1.0]}, 1.05)


# ------------------------------------------------------------------ the runs


def _engine(outputs: dict[str, str], exit_code: int = 0) -> FakeEngine:
    def no_registry(host: str) -> Registry:
        raise AssertionError("no registry here")

    engine = FakeEngine(no_registry, on_run=lambda image, argv, plat: RunOutcome(
        exit_code, outputs[image], 0.0))
    for ref in outputs:
        engine.load(ref, synthetic_image(ref, "1", {}))
    return engine


def _measure(engine: FakeEngine, tmp_path: Path, perf: Perf, published: bool = True
             ) -> measure.Measurement:
    return measure.measure(
        engine, measure.Subject(measure.CANDIDATE, CAND),
        measure.Subject(measure.PUBLISHED, PUB) if published else None,
        interpreter="/opt/acme/python/3.14/bin/python3", pyperf_dir=tmp_path, perf=perf,
        uid=10001, platform="linux/amd64")


def test_rounds_interleave_the_two_images_and_alternate_which_goes_first(tmp_path: Path) -> None:
    engine = _engine({CAND: bench_output(1.1), PUB: bench_output(1.0)})
    m = _measure(engine, tmp_path, Perf(enabled=True, rounds=4))
    assert [image for image, _, _ in engine.runs] == [CAND, PUB, PUB, CAND, CAND, PUB, PUB, CAND]
    assert [(r.image, r.round) for r in m.runs][:4] == [
        ("candidate", 1), ("published", 1), ("published", 2), ("candidate", 2)]
    assert {plat for _, _, plat in engine.runs} == {"linux/amd64"}  # the native platform only
    assert len(m.values("candidate")["nbody"]) == 4 * 3  # every value of every round
    assert len(m.rounds()) == 4
    verdict = compare.judge(m.values("candidate"), m.values("published"), 1.05, m.rounds())
    assert verdict.slowdown == pytest.approx(1.1) and verdict.refused


def test_each_run_is_the_images_interpreter_on_the_mounted_runner(tmp_path: Path) -> None:
    engine = _engine({CAND: bench_output(1.0, names=("nbody", "regex_log")),
                      PUB: bench_output(1.0, names=("nbody", "regex_log"))})
    _measure(engine, tmp_path, Perf(enabled=True, rounds=2, processes=3, values=4,
                                    workloads=("nbody", "regex_log")))
    _, argv, _ = engine.runs[0]
    assert argv == ["/opt/acme/python/3.14/bin/python3", "/perf/runner.py", "--processes", "3",
                    "--values", "4", "--warmups", "1", "--loops", "1", "--quiet",
                    "--workloads", "nbody,regex_log"]
    mounts = {m.target: m.source for m in engine.mounted[0]}
    assert mounts == {"/perf": measure.workloads_dir(), "/pyperf": tmp_path}
    assert (measure.workloads_dir() / "runner.py").is_file()


def test_a_first_publish_runs_the_candidate_alone(tmp_path: Path) -> None:
    engine = _engine({CAND: bench_output(1.0)})
    m = _measure(engine, tmp_path, Perf(enabled=True, rounds=3), published=False)
    assert [image for image, _, _ in engine.runs] == [CAND] * 3 and m.rounds() == []


def test_images_that_did_different_work_are_no_comparison(tmp_path: Path) -> None:
    engine = _engine({CAND: bench_output(1.0, checksum="bad"), PUB: bench_output(1.0)})
    with pytest.raises(PerfError, match="workload dict_str returned c0ffee-dict_str in the "
                       "published image and bad-dict_str in the candidate one: they did "
                       "different work"):
        _measure(engine, tmp_path, Perf(enabled=True))


@pytest.mark.parametrize(("output", "code", "said"), [
    ("Traceback ...\nModuleNotFoundError: No module named 'pyperf'\n", 1,
     "the candidate image's workloads failed (exit 1): Traceback"),
    ("nothing useful\n", 0, "the candidate image's workloads printed no result: nothing useful"),
    (measure.RESULT + "{not json\n", 0,
     "the candidate image's workloads printed an unreadable result"),
])
def test_a_run_that_fails_says_why(tmp_path: Path, output: str, code: int, said: str) -> None:
    engine = _engine({CAND: output, PUB: bench_output(1.0)}, exit_code=code)
    with pytest.raises(PerfError, match="^" + said.replace("(", r"\(").replace(")", r"\)")):
        _measure(engine, tmp_path, Perf(enabled=True))


def test_a_workload_missing_from_a_run_is_no_comparison(tmp_path: Path) -> None:
    engine = _engine({CAND: bench_output(1.0, names=("nbody",)), PUB: bench_output(1.0)})
    with pytest.raises(PerfError, match=r"the candidate image did not run dict_str"):
        _measure(engine, tmp_path, Perf(enabled=True))


# ------------------------------------------------------------------ pyperf and the runner


def test_pyperf_is_copied_without_bytecode_or_tests(tmp_path: Path) -> None:
    dest = pyperf_dir.prepare(tmp_path / "pyperf")
    assert (dest / "pyperf" / "__init__.py").is_file() and (dest / "pyperf" / "_runner.py").is_file()
    assert not list(dest.rglob("__pycache__")) and not (dest / "pyperf" / "tests").exists()
    assert [p.name for p in dest.iterdir()] == ["pyperf"]
    assert pyperf_dir.version() == "2.10.0"  # pinned in pyproject.toml
    pyperf_dir.prepare(dest)  # again: the same directory, made anew
    assert [p.name for p in dest.iterdir()] == ["pyperf"]


@pytest.mark.spawns("python")
def test_the_runner_runs_the_selected_workloads_with_the_copied_pyperf(tmp_path: Path) -> None:
    """runner.py under this interpreter, pyperf from the copy (as in an image, where nothing
    else provides it): one quick workload, one value; what the measurement parses."""
    pyperf_path = pyperf_dir.prepare(tmp_path / "pyperf")
    runner = measure.workloads_dir() / "runner.py"
    proc = subprocess.run(
        [sys.executable, str(runner), "--workloads", "json_roundtrip", "--processes", "1",
         "--values", "1", "--warmups", "0", "--loops", "1", "--quiet"],
        capture_output=True, text=True, timeout=110, cwd=tmp_path, check=False,
        env={"BENCH_PYPERF": str(pyperf_path), "PYTHONPATH": str(pyperf_path),
             "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    result = measure.parse(proc.stdout, "candidate", 1, 0.0)
    assert list(result.values) == ["json_roundtrip"] and len(result.values["json_roundtrip"]) == 1
    assert result.pyperf == "2.10.0"
    bad = subprocess.run([sys.executable, str(runner), "--workloads", "nbod"], capture_output=True,
                         text=True, timeout=60, cwd=tmp_path, check=False,
                         env={"BENCH_PYPERF": str(pyperf_path), "PATH": "/usr/bin:/bin"})
    assert bad.returncode != 0 and "no workload nbod" in bad.stderr


# ------------------------------------------------------------------ the predicate


def _record(published: bool = True) -> dict[str, Any]:
    m = measure.Measurement()
    cand = measure.parse(bench_output(1.02), "candidate", 1, 0.0)
    m.runs.append(cand)
    if published:
        m.runs.append(measure.parse(bench_output(1.0, python="3.14.3"), "published", 1, 0.0))
    verdict = compare.judge(m.values("candidate"), m.values("published") if published else None,
                            1.05, m.rounds())
    return predicate.record(
        m, verdict, cell="3.14-source-bookworm-dev", measured_cell="3.14-source-bookworm-runtime",
        platform="linux/amd64", image_id="sha256:" + "cd" * 32,
        published_ref="127.0.0.1:5000/team/python:3.14-dev" if published else None,
        published_digest=PUB.partition("@")[2] if published else None, rounds=3,
        args=measure.pyperf_args(Perf()), pyperf="2.10.0", measured_at="2026-11-21T03:20:00Z")


def test_the_predicate_says_what_was_measured_against_what() -> None:
    rec = _record()
    assert json.loads(json.dumps(rec)) == rec  # plain JSON: the cell state, the report, cosign
    assert set(rec) == {"version", "cell", "measured_cell", "platform", "platforms_note",
                        "measured_at", "candidate", "published", "method", "workloads",
                        "slowdown", "round_slowdowns", "noise", "max_slowdown", "verdict",
                        "summary"}
    assert rec["version"] == 1 and rec["verdict"] == "ok" and rec["slowdown"] == 1.02
    assert rec["platform"] == "linux/amd64" and "QEMU" in rec["platforms_note"]
    assert rec["candidate"] == {"image_id": "sha256:" + "cd" * 32, "python": "3.14.4"}
    assert rec["published"] == {"ref": "127.0.0.1:5000/team/python:3.14-dev",
                                "digest": PUB.partition("@")[2], "python": "3.14.3"}
    assert rec["method"]["pyperf"] == "2.10.0" and rec["method"]["interleaved"] is True
    assert rec["method"]["args"][-2:] == ["--workloads", ",".join(WORKLOADS)]
    assert sorted(rec["workloads"]) == sorted(WORKLOADS)
    nbody = rec["workloads"]["nbody"]
    assert set(nbody) == {"candidate_median_ms", "candidate_spread", "values",
                          "published_median_ms", "published_spread", "ratio"}
    assert nbody["ratio"] == 1.02 and nbody["values"] == 3
    assert predicate.PREDICATE_TYPE == "urn:python-base-orchestrator:predicate:performance:v1"


def test_a_first_record_has_no_published_image_and_no_ratio() -> None:
    rec = _record(published=False)
    assert rec["published"] is None and rec["slowdown"] is None and rec["verdict"] == "first"
    assert "ratio" not in rec["workloads"]["nbody"] and rec["method"]["interleaved"] is False


def test_what_verify_says_of_a_record() -> None:
    rec = _record()
    assert predicate.summary(rec) == (
        f"1.020x the time of {PUB.partition('@')[2][:19]} over 6 workload(s), limit 1.05")
    assert predicate.summary(_record(published=False)) == (
        "first record, 6 workload(s), nothing to compare with")
    assert predicate.statements_summary([{"predicate": rec}]) == predicate.summary(rec)
    assert predicate.statements_summary([]) == "unreadable record"

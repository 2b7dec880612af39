"""--stage-only pushes, then `orchestrator promote REPORT...` moves the public tags: against the
in-memory registry, through the real command line (in-process)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import render, runner, settings
from orchestrator.release import promote
from orchestrator.release.attest import attach
from orchestrator.release.push import do_push
from orchestrator.release.report import Status
from orchestrator.supplychain import signing
from tests.fakes.fake_cosign import FakeCosign
from tests.fakes.fake_registry import FakeRegistry
from tests.fakes.fake_syft import FakeSyft
from tests.fakes.publish_harness import HarnessRun, Publisher, image_for, write_config
from tests.unit.helpers import run_cli, with_env

REPO = "team/python"
RT13, DEV13 = "3.13-source-bookworm-runtime", "3.13-source-bookworm-dev"
RT14, DEV14 = "3.14-source-bookworm-runtime", "3.14-source-bookworm-dev"


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with FakeRegistry() as registry:
        yield registry


@pytest.fixture
def pub(tmp_path: Path, fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch) -> Publisher:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # promote must not write into the current directory
    return Publisher(write_config(tmp_path / "cfg", fake.address, REPO), fake.address,
                     tmp_path / "work")


def stage(pub: Publisher, report: Path, **kw: Any) -> HarnessRun:
    run = pub.run(**kw)
    do_push(run, all_or_nothing=False, stage_only=True)
    run.report.write_json(report)
    return run


def run_promote(pub: Publisher, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code, out, err = run_cli(["promote", *args, "--config", str(pub.config)], capsys)
    return code, out + err


def immutables(run: HarnessRun, cells: tuple[str, ...]) -> dict[str, str]:
    return {run.plan.image(c).immutable_tag: image_for(run, c, "1").digest for c in cells}


def public(run: HarnessRun, cells: tuple[str, ...]) -> dict[str, str]:
    return {t: image_for(run, c, "1").digest for c in cells for t in run.plan.image(c).tags}


def promote_report(pub: Publisher) -> dict[str, dict[str, Any]]:
    """The report promote wrote to the work dir (ORCH_WORK_DIR, default .orchestrator)."""
    data = json.loads((pub.config.parent / ".orchestrator" / "report-promote.json").read_text())
    return {c["id"]: c for c in data["cells"]}


def test_stage_only_pushes_the_immutable_tags_and_promote_moves_the_public_ones(
        pub: Publisher, fake: FakeRegistry, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    cells = (RT13, DEV13, RT14, DEV14)
    run = stage(pub, tmp_path / "staged.json")
    for img in run.plan.images:
        res = run.report.cell(img.id)
        assert (res.status, res.phase, res.tags_moved) == (Status.OK, "staged", [img.immutable_tag])
    assert fake.tags(REPO) == immutables(run, cells)
    code, out = run_promote(pub, capsys, str(tmp_path / "staged.json"))
    assert code == 0, out
    assert fake.tags(REPO) == {**immutables(run, cells), **public(run, cells)}
    cells_out = promote_report(pub)
    for img in run.plan.images:
        assert cells_out[img.id]["status"] == "ok"
        assert cells_out[img.id]["tags_moved"] == list(img.tags)
    assert not (Path.cwd() / ".orchestrator").exists()
    code, _ = run_promote(pub, capsys, str(tmp_path / "staged.json"))  # again: nothing to move
    assert code == 0 and all(c["tags_moved"] == [] for c in promote_report(pub).values())


def test_promote_takes_the_reports_of_several_shards(
        pub: Publisher, fake: FakeRegistry, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    pub.only = ["3.13-source-bookworm-*"]
    a = stage(pub, tmp_path / "shard1.json")
    pub.only = ["3.14-source-bookworm-*"]
    b = stage(pub, tmp_path / "shard2.json")
    code, out = run_promote(pub, capsys, str(tmp_path / "shard1.json"), str(tmp_path / "shard2.json"))
    assert code == 0, out
    assert fake.tags(REPO) == {**immutables(a, (RT13, DEV13)), **public(a, (RT13, DEV13)),
                               **immutables(b, (RT14, DEV14)), **public(b, (RT14, DEV14))}


@pytest.mark.parametrize("all_or_nothing", [False, True])
def test_promote_of_a_report_naming_a_failed_cell(
        pub: Publisher, fake: FakeRegistry, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], all_or_nothing: bool) -> None:
    run = stage(pub, tmp_path / "staged.json", failed=(DEV14,))
    good = (RT13, DEV13, RT14)
    assert fake.tags(REPO) == immutables(run, good)
    flags = ["--all-or-nothing"] if all_or_nothing else []
    code, out = run_promote(pub, capsys, str(tmp_path / "staged.json"), *flags)
    assert code == 1, out  # a failed cell fails the promote too
    table = out.splitlines()  # the summary: the failure first, with the line that says why
    assert table[1].split()[:2] == [DEV14, "failed"] and table[2] == "  why: smoke test failed (simulated)"
    cells = promote_report(pub)
    assert cells[DEV14]["status"] == "failed"
    if all_or_nothing:
        assert fake.tags(REPO) == immutables(run, good)  # not one public tag
        for cid in good:
            assert cells[cid]["status"] == "skipped"
            assert cells[cid]["message"].startswith(f"--all-or-nothing: 1 cell(s) failed ({DEV14}")
    else:
        assert fake.tags(REPO) == {**immutables(run, good), **public(run, good)}
        assert {cells[c]["status"] for c in good} == {"ok"}


def test_promote_writes_its_report_under_orch_work_dir(
        pub: Publisher, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stage(pub, tmp_path / "staged.json")
    work = tmp_path / "elsewhere"
    settings.override(dataclasses.replace(settings.get(), work_dir=work))
    code, out = run_promote(pub, capsys, str(tmp_path / "staged.json"))
    assert code == 0, out
    data = json.loads((work / "report-promote.json").read_text())
    assert data["command"] == "promote" and len(data["cells"]) == 4
    assert (work / "report-promote.xml").exists()
    assert not (Path.cwd() / ".orchestrator").exists()
    assert not (pub.config.parent / ".orchestrator").exists()


def test_promote_refused_by_the_registry_exits_4_with_the_login_hint(
        pub: Publisher, fake: FakeRegistry, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    run = stage(pub, tmp_path / "staged.json")
    fake.credentials = ("ci", "s3cret")  # e.g. the CI token expired between stage and promote
    code, out = run_promote(pub, capsys, str(tmp_path / "staged.json"))
    assert code == 4, out
    assert f"run `docker login {fake.address}`" in out and "Traceback" not in out
    assert fake.tags(REPO) == immutables(run, (RT13, DEV13, RT14, DEV14))


def test_a_report_that_is_not_one_is_a_usage_error(
        pub: Publisher, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.json").write_text('{"no": "cells"}')
    code, out = run_promote(pub, capsys, str(tmp_path / "bad.json"))
    assert code == 2 and "not a report written by --report" in out


def _sign(pub: Publisher, run: HarnessRun, cells: tuple[str, ...], cosign_fake: FakeCosign) -> None:
    """What a push phase with signing: does (release/attest.attach) for ``cells``."""
    root = pub.config.parent
    render.write(run.loaded, render.render_all(run.loaded, run.lock))
    keys = signing.Keys(str(root / "cosign.key"), str(root / "cosign.pub"))
    for cid in cells:
        st = run.load_state(cid)
        st.build_started = st.build_finished = "2026-11-21T03:00:00Z"
        run.save_state(st)
        attach(run, run.plan.image(cid), run.report.cell(cid).digest,
               signing.Cosign(keys, settings.get().child_env({}), run=cosign_fake),
               FakeSyft().tool(), registry=pub.client())


@pytest.mark.parametrize("required", [True, False])
def test_promote_refuses_digests_that_do_not_verify_when_signing_is_required(
        pub: Publisher, fake: FakeRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, required: bool) -> None:
    root = pub.config.parent
    (root / "cosign.key").write_text("k")
    (root / "cosign.pub").write_text("p")
    with_env(COSIGN_PASSWORD="pw")
    run = stage(pub, tmp_path / "staged.json")  # staged before images.yaml had signing:
    cosign_fake = FakeCosign()
    _sign(pub, run, (RT13, DEV13, RT14), cosign_fake)  # DEV14 pushed but never signed
    with pub.config.open("a") as f:
        f.write(f"\nsigning: {{key: cosign.key, required: {str(required).lower()}}}\n")
    monkeypatch.setattr(runner, "run", cosign_fake)
    signed_calls = len(cosign_fake.calls)
    code, out = run_promote(pub, capsys, str(tmp_path / "staged.json"))
    cells = promote_report(pub)
    if not required:
        assert code == 0, out
        assert fake.tags(REPO) == {**immutables(run, (RT13, DEV13, RT14, DEV14)),
                                   **public(run, (RT13, DEV13, RT14, DEV14))}
        assert len(cosign_fake.calls) == signed_calls  # nothing verified
        return
    assert code == 1, out
    assert fake.tags(REPO) == {**immutables(run, (RT13, DEV13, RT14, DEV14)),
                               **public(run, (RT13, DEV13, RT14))}
    assert {cid: cells[cid]["status"] for cid in cells} == {
        RT13: "ok", DEV13: "ok", RT14: "ok", DEV14: "failed"}
    digest = run.report.cell(DEV14).digest
    assert cells[DEV14]["phase"] == "verify"
    assert cells[DEV14]["message"] == (
        f"refused: {fake.address}/{REPO}@{digest} is unsigned or does not verify (signature: no "
        "signatures found; sbom linux/amd64: no matching attestations; provenance: no matching "
        "attestations); sign and attest it (push with signing: in images.yaml) or set "
        "signing.required: false")
    assert all(c[c.index("--key") + 1] == str(root / "cosign.pub")
               for c in cosign_fake.calls[signed_calls:])


def test_promotes_summary_gives_each_promoted_cell_its_time(
        pub: Publisher, fake: FakeRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 34 item 3: the summary's TIME is the time promote spent on the cell (a cell that
    failed in staging was not promoted: no time); platforms from the staged report."""
    stage(pub, tmp_path / "staged.json", failed=(DEV14,))
    ticks = iter(range(0, 1000, 3))  # every cell: 3 s from its start to its end
    monkeypatch.setattr(promote, "_clock", lambda: float(next(ticks)))
    code, out = run_promote(pub, capsys, str(tmp_path / "staged.json"))
    assert code == 1, out
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.split() and line.split()[0] in (RT13, DEV13, RT14, DEV14)}
    header = out.splitlines()[0].split()
    at = header.index("TIME")
    assert [rows[c][at] for c in (RT13, DEV13, RT14)] == ["3.0s"] * 3
    assert rows[DEV14][at] == "-"
    cells = promote_report(pub)
    assert cells[RT13]["seconds"] == {"promote": 3.0} and cells[DEV14]["seconds"] == {}

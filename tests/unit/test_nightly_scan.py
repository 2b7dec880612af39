"""The nightly's report of new advisories (issue 32 item 6): with scan: in images.yaml, after
its phases the nightly scans the image each cell leaves behind and lists per image, in its JSON
report and after its table, the findings the scan's ledger (scan-first-seen.json, the one
`orchestrator scan` keeps) had not seen before: first seen since the previous night, with
their first-seen date. Over the push harness (fake engine, in-memory registry) with the
stand-in grype; the push goes through the release gate as the nightly's does."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import settings
from orchestrator.config import loader
from orchestrator.release import attest, nightly
from orchestrator.release.push import do_push
from orchestrator.release.report import Status
from orchestrator.scan import gate
from tests.fakes import fake_grype, fake_syft
from tests.fakes.fake_registry import FakeRegistry
from tests.fakes.fake_syft import FakeSyft
from tests.fakes.publish_harness import HarnessRun, Publisher, image_for, write_config
from tests.unit.helpers import TODAY

pytestmark = pytest.mark.spawns("grype")  # the stand-in grype (tests/fakes/fake_grype.py)

REPO = "team/python"
RT13, DEV13 = "3.13-source-bookworm-runtime", "3.13-source-bookworm-dev"
RT14, DEV14 = "3.14-source-bookworm-runtime", "3.14-source-bookworm-dev"
OLD = fake_grype.match("CVE-2026-1000", "libc6", "2.36-9", "Medium", "2.36-10")
NEW = fake_grype.match("CVE-2026-2000", "zlib1g", "1.2.13", "High")  # no fix yet
FIXABLE = fake_grype.match("CVE-2026-3000", "libssl3", "3.0.15-1", "Critical", "3.0.15-2")


@dataclasses.dataclass
class Night:
    pub: Publisher
    fake: FakeRegistry
    tools: Path

    def matches(self, table: dict[str, list[dict[str, Any]]]) -> None:
        (self.tools / "matches.json").write_text(json.dumps(table))

    def digest(self, cell: str, seed: str) -> str:
        return image_for(self.pub.run(), cell, seed).digest.removeprefix("sha256:")

    def run(self, day: dt.date, seeds: dict[str, str] | None = None,
            failed: tuple[str, ...] = (), tools: attest.Tools | None = None) -> HarnessRun:
        """One night: the candidates of ``seeds`` pushed through the gate, then the scan."""
        settings.override(dataclasses.replace(settings.get(), today=day))
        run = self.pub.run(seeds=seeds, failed=failed)
        run.report = nightly.NightlyReport.of(run.report)  # as nightly.fast_path makes it
        loaded = loader.load(self.pub.config, TODAY)
        do_push(run, all_or_nothing=False,
                gate=gate.prepare(loaded.config, loaded.root, settings.get()), tools=tools)
        nightly.scan_report(run, tools=tools)
        return run


@pytest.fixture
def night(tmp_path: Path) -> Iterator[Night]:
    tools = tmp_path / "tools"
    fake_grype.install(tools, {})
    with FakeRegistry() as fake:
        cfg = write_config(tmp_path / "cfg", fake.address, REPO)
        built = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
        sha = fake_grype.archive(cfg.parent / "db.tar.gz", built)
        cfg.write_text(cfg.read_text() + f"scan:\n  db: {{file: db.tar.gz, sha256: {sha}}}\n"
                       "  fail_on: critical\n")
        settings.override(dataclasses.replace(settings.get(), tools_dir=tools,
                                              cache_dir=tmp_path / "cache"))
        yield Night(Publisher(cfg, fake.address, tmp_path / "work"), fake, tools)


def test_each_night_lists_per_image_the_advisories_first_seen_since_the_previous_one(
        night: Night, capsys: pytest.CaptureFixture[str]) -> None:
    first_day, second_day = dt.date(2026, 11, 21), dt.date(2026, 11, 22)
    night.matches({night.digest(RT13, "1"): [OLD]})
    first = night.run(first_day)
    assert isinstance(first.report, nightly.NightlyReport)
    assert first.report.new_advisories == {RT13: [{
        "advisory": "CVE-2026-1000", "package": "libc6", "installed": "2.36-9",
        "fixed_in": "2.36-10", "severity": "Medium", "fix_state": "fixed",
        "platform": "linux/amd64", "since": "2026-11-21", "vex": "", "ignored": ""}]}

    # the next night: RT13 unchanged (its published image has a new finding too), RT14
    # rebuilt with content that has one; what was found the night before is not new
    night.matches({night.digest(RT13, "1"): [OLD, NEW], night.digest(RT14, "2"): [NEW]})
    second = night.run(second_day, seeds={RT14: "2"})
    assert second.report.cell(RT13).status is Status.UNCHANGED
    assert second.report.cell(RT14).status is Status.OK
    report = second.report
    assert isinstance(report, nightly.NightlyReport)
    assert {c: [(a["advisory"], a["since"]) for a in found]
            for c, found in report.new_advisories.items()} == {
        RT13: [("CVE-2026-2000", "2026-11-22")], RT14: [("CVE-2026-2000", "2026-11-22")]}
    sha = fake_grype.sha256_of_file(night.pub.config.parent / "db.tar.gz")
    (note,) = report.scan_notes
    assert re.fullmatch(r"nightly scan: 4 image\(s\) scanned with the DB built \S+Z "
                        rf"\(sha256:{sha}\): 2 advisory finding\(s\) first seen since the "
                        r"previous scan", note), note

    data = report.to_dict()  # the JSON report
    assert data["new_advisories"][RT14][0]["advisory"] == "CVE-2026-2000"
    assert data["scan_notes"] == report.scan_notes
    table = report.table()
    assert (f"{RT13}: new advisory CVE-2026-2000 in zlib1g 1.2.13 (linux/amd64, High, no fix "
            "yet; first seen 2026-11-22)") in table
    assert "CVE-2026-1000" not in table  # seen the night before: not new
    ledger = json.loads((night.pub.work / "scan-first-seen.json").read_text())
    assert ledger[f"{RT13}|linux/amd64|CVE-2026-1000|libc6"] == "2026-11-21"  # the date stays

    third = night.run(dt.date(2026, 11, 23))  # nothing new: nothing listed
    assert third.report.new_advisories == {}  # type: ignore[attr-defined]


def test_a_refused_image_is_not_what_the_nightly_leaves_the_published_one_is_scanned(
        night: Night) -> None:
    """The gate refuses RT14's rebuild (a new fixable critical): it has no tag, the published
    image stays, and that is what the nightly scans and reports for RT14; a cell that failed
    its tests likewise."""
    night.run(dt.date(2026, 11, 21))
    night.matches({night.digest(RT14, "2"): [FIXABLE], night.digest(RT14, "1"): [NEW],
                   night.digest(DEV13, "1"): [OLD], night.digest(DEV13, "2"): [FIXABLE]})
    run = night.run(dt.date(2026, 11, 22), seeds={RT14: "2", DEV13: "2"}, failed=(DEV13,))
    assert (run.report.cell(RT14).status, run.report.cell(RT14).phase) == (Status.FAILED, "scan")
    new = run.report.new_advisories  # type: ignore[attr-defined]
    assert {c: [a["advisory"] for a in found] for c, found in new.items()} == {
        RT14: ["CVE-2026-2000"], DEV13: ["CVE-2026-1000"]}  # the published images' findings


def test_an_image_the_scanner_cannot_read_is_a_note_not_a_failure(night: Night) -> None:
    night.run(dt.date(2026, 11, 21))
    script = night.tools / "bin" / "grype"
    script.write_text(script.read_text().replace(
        'if "crash" in target', f'if "crash" in target or {night.digest(RT13, "1")!r} in target'))
    run = night.run(dt.date(2026, 11, 22))
    assert run.report.cell(RT13).status is Status.UNCHANGED and run.report.exit_code == 0
    notes = run.report.scan_notes  # type: ignore[attr-defined]
    assert notes[0].startswith("nightly scan: 3 image(s) scanned")
    assert notes[1].startswith(f"nightly scan: {RT13} (") and "connection reset" in notes[1]


def test_a_db_that_went_stale_during_the_night_is_a_note_and_the_report_is_still_written(
        night: Night) -> None:
    first = night.run(dt.date(2026, 11, 21))
    sha = fake_grype.archive(night.pub.config.parent / "db.tar.gz", "2026-01-01T00:00:00Z")
    text = night.pub.config.read_text()
    night.pub.config.write_text(text[:text.index("scan:")] +
                                f"scan:\n  db: {{file: db.tar.gz, sha256: {sha}}}\n")
    first.loaded = loader.load(night.pub.config, TODAY)
    assert nightly.scan_report(first) is None
    note = first.report.scan_notes[-1]  # type: ignore[attr-defined]
    assert note.startswith("nightly scan: not run: scan.db: the vulnerability DB ")
    assert "older than scan.max_age_days (5)" in note


def test_without_signing_the_nightly_scans_the_sboms_it_makes_and_finds_the_cpython(
        night: Night) -> None:
    """No signing: (issue 32 audit item 4): the scan gets the SBOMs made with the pinned syft
    and the CPython entry, so an advisory against the compiled CPython 3.14.2 is reported for
    the two 3.14 images (the 3.13 ones carry 3.13.5)."""
    fake_syft.install(night.tools)
    night.matches({"SPDXRef-Package-cpython-3.14.2-source": [fake_grype.match(
        "CVE-2026-5556", "cpython", "3.14.2", "High", "3.14.3", kind="binary")]})
    run = night.run(dt.date(2026, 11, 21), tools=attest.Tools(syft=FakeSyft()))
    new = run.report.new_advisories  # type: ignore[attr-defined]
    assert {c: [a["advisory"] for a in found] for c, found in new.items()} == {
        RT14: ["CVE-2026-5556"], DEV14: ["CVE-2026-5556"]}
    targets = [c["argv"][0] for c in fake_grype.calls(night.tools) if ":" in c["argv"][0]]
    assert targets and all(t.startswith("sbom:") for t in targets)


def test_without_scan_the_nightly_scans_nothing(tmp_path: Path) -> None:
    with FakeRegistry() as fake:
        pub = Publisher(write_config(tmp_path / "cfg", fake.address, REPO), fake.address,
                        tmp_path / "work")
        run = pub.run()
        do_push(run, all_or_nothing=False)
        assert nightly.scan_report(run) is None
        assert "new_advisories" not in run.report.to_dict()

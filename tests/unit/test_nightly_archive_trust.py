"""What the nightly does when it cannot trust an archive, with no real clock: Valid-Until
checked against an injected time (accepted up to and including its second, refused after),
and an InRelease whose signature does not verify sends every image that reads it down the full
refresh path (rebuilt with the security refresh), the report saying why. A real signed archive
over HTTP on 127.0.0.1, the real gpgv, the fake registry and the fake engine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.apt.index import ArchiveIndex, utc_now
from orchestrator.apt.outdated import State
from orchestrator.apt.release_file import MAX_FUTURE, Release, check_date, check_valid_until
from orchestrator.apt.sources import AptSource
from orchestrator.errors import ArchiveError
from orchestrator.release import apt_check, build, nightly
from orchestrator.release.build import do_build
from orchestrator.release.report import Status
from tests.fakes.publish_harness import Publisher
from tests.unit.apt_archive import (
    KEYRING,
    NOW,
    SIGNED,
    Archive,
    clock,
    make_signing_key,
    publish_with_labels,
    publisher,
    run_nightly,
    served_archive,
    use_dirs,
)
from tests.unit.gpg_keys import stop_agent

UNTIL = "Sat, 28 Nov 2026 00:00:00 UTC"  # before the real date: only an injected clock accepts it
UNTIL_AT = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)
SRC = AptSource("http://127.0.0.1:9/debian", "bookworm", ("main",), SIGNED)


def _release(valid_until: str | None) -> Release:
    fields = {"Suite": "bookworm"} | ({"Valid-Until": valid_until} if valid_until else {})
    return Release(SRC, fields, {}, verified=True)


# ----------------------------------------------------------------------------- Valid-Until


@pytest.mark.parametrize("now", [
    NOW,  # a week before
    UNTIL_AT - dt.timedelta(seconds=1),
    UNTIL_AT,  # the second it names: still valid (apt: expired only once past it)
    UNTIL_AT + dt.timedelta(microseconds=999_999),  # apt counts whole seconds
], ids=["week-before", "second-before", "that-second", "within-that-second"])
def test_a_valid_until_not_yet_passed_is_accepted(now: dt.datetime) -> None:
    check_valid_until(_release(UNTIL), now)


@pytest.mark.parametrize("now", [
    UNTIL_AT + dt.timedelta(seconds=1),
    dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC),
], ids=["second-after", "nine-days-after"])
def test_a_valid_until_in_the_past_is_refused(now: dt.datetime) -> None:
    with pytest.raises(ArchiveError, match=rf"^{SRC.describe()}: its Release expired on {UNTIL} "
                       rf"\(Valid-Until; it is now {now:%Y-%m-%d %H:%M:%S} UTC\): the mirror "
                       r"is stale; fix: "):
        check_valid_until(_release(UNTIL), now)


def test_valid_until_compares_instants_not_wall_clocks() -> None:
    """01:00 at +0100 is midnight UTC; a clock in another zone reads the same instant."""
    offset = "Sat, 28 Nov 2026 01:00:00 +0100"
    check_valid_until(_release(offset), UNTIL_AT)
    check_valid_until(_release(UNTIL), UNTIL_AT.astimezone(dt.timezone(dt.timedelta(hours=-5))))
    with pytest.raises(ArchiveError, match="expired"):
        check_valid_until(_release(offset), UNTIL_AT + dt.timedelta(seconds=1))


def test_no_valid_until_never_expires_and_a_bad_one_or_a_naive_clock_is_refused() -> None:
    check_valid_until(_release(None), dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(ArchiveError, match=r"a Valid-Until that is not a date \('soon'\); fix: "):
        check_valid_until(_release("soon"), NOW)
    with pytest.raises(ValueError, match="has no timezone"):
        check_valid_until(_release(UNTIL), dt.datetime(2026, 11, 21))


# ----------------------------------------------------------------------------- Date


def _dated(date: str | None) -> Release:
    return Release(SRC, {"Suite": "bookworm"} | ({"Date": date} if date else {}), {}, verified=True)


DATE = "Sat, 21 Nov 2026 02:00:00 UTC"  # NOW's second


@pytest.mark.parametrize("date", [
    "Fri, 20 Nov 2026 00:00:00 UTC", DATE, "Sat, 21 Nov 2026 02:00:10 UTC",  # 10 s of skew: apt's
    "Sat, 21 Nov 2026 03:00:10 +0100",  # the same instant in another zone
], ids=["before", "that-second", "skew", "other-zone"])
def test_a_release_dated_now_or_within_the_clock_skew_is_accepted(date: str) -> None:
    assert MAX_FUTURE.total_seconds() == 10
    check_date(_dated(date), NOW)
    check_date(_dated(None), NOW)  # no Date: nothing to check


@pytest.mark.parametrize("date", ["Sat, 21 Nov 2026 02:00:11 UTC", "Mon, 30 Nov 2026 00:00:00 UTC"],
                         ids=["skew-plus-one", "nine-days-ahead"])
def test_a_release_dated_in_the_future_is_refused_as_not_valid_yet(date: str) -> None:
    with pytest.raises(ArchiveError, match=rf"^{SRC.describe()}: its Release is not valid yet "
                       rf"\(Date {date}; it is now 2026-11-21 02:00:00 UTC\): .*; fix: ") as exc:
        check_date(_dated(date), NOW)
    assert "\n" not in str(exc.value)


def test_a_bad_date_or_a_naive_clock_is_refused() -> None:
    with pytest.raises(ArchiveError, match=r"a Date that is not a date \('today'\); fix: "):
        check_date(_dated("today"), NOW)
    with pytest.raises(ValueError, match="has no timezone"):
        check_date(_dated(DATE), dt.datetime(2026, 11, 21))


def test_production_checks_valid_until_against_the_real_time() -> None:
    assert ArchiveIndex(Path("/nonexistent"), lambda s: None).now is utc_now
    assert abs(utc_now() - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)
    assert utc_now().tzinfo is not None


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    home, keyrings = tmp_path_factory.mktemp("gnupg"), tmp_path_factory.mktemp("keyrings")
    make_signing_key(home, keyrings)
    yield home, keyrings
    stop_agent(home)


@pytest.fixture
def archive(tmp_path: Path, signing_key: tuple[Path, Path]) -> Iterator[tuple[Archive, str]]:
    with served_archive(tmp_path, signing_key[0]) as served:
        yield served


@pytest.mark.spawns("gpg", "gpgv")
def test_a_signed_inrelease_is_read_as_of_the_injected_clock(
        archive: tuple[Archive, str], tmp_path: Path, signing_key: tuple[Path, Path]) -> None:
    """The same verified InRelease: valid on NOW, expired a second past its Valid-Until."""
    arch, uri = archive
    arch.publish("bookworm", {"netbase": "6.4"}, valid_until=UNTIL)
    src = AptSource(uri, "bookworm", ("main",), SIGNED)

    def index(now: dt.datetime, cache: str) -> ArchiveIndex:
        return ArchiveIndex(tmp_path / cache, lambda s: signing_key[1] / KEYRING,
                            now=clock(now))

    rel = index(NOW, "a").release(src)
    assert rel.verified and rel.fields["Valid-Until"] == UNTIL
    assert index(UNTIL_AT, "b").packages(src, "main", "amd64") == {"netbase": "6.4"}
    with pytest.raises(ArchiveError, match="expired on Sat, 28 Nov 2026"):
        index(UNTIL_AT + dt.timedelta(seconds=1), "c").release(src)


@pytest.mark.spawns("gpg", "gpgv")
def test_a_signed_inrelease_dated_after_the_injected_clock_is_not_valid_yet(
        archive: tuple[Archive, str], tmp_path: Path, signing_key: tuple[Path, Path]) -> None:
    """The archive's InRelease is dated 2026-11-20 00:00 UTC: a clock a day earlier is refused
    (apt: "not valid yet"), one within the skew is not."""
    arch, uri = archive
    arch.publish("bookworm", {"netbase": "6.4"})
    src = AptSource(uri, "bookworm", ("main",), SIGNED)
    dated = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)

    def index(now: dt.datetime, cache: str) -> ArchiveIndex:
        return ArchiveIndex(tmp_path / cache, lambda s: signing_key[1] / KEYRING, now=clock(now))

    assert index(dated - MAX_FUTURE, "a").release(src).verified
    with pytest.raises(ArchiveError, match=r"its Release is not valid yet \(Date Fri, 20 Nov 2026 "):
        index(dated - MAX_FUTURE - dt.timedelta(seconds=1), "b").release(src)


# ----------------------------------------------------------------------------- the nightly


@pytest.fixture
def published(tmp_path: Path, archive: tuple[Archive, str], signing_key: tuple[Path, Path],
              monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Publisher, Archive, str]]:
    """The four bookworm cells published with the labels the fast path reads, nothing pending."""
    arch, uri = archive
    use_dirs(monkeypatch, tmp_path)
    with publisher(tmp_path, arch, signing_key[1]) as pub:
        publish_with_labels(pub, uri, {"netbase": "6.4", "libssl3": "3.0.20-1"})
        yield pub, arch, uri


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The gnupg home of a key outside the configured keyring."""
    home = tmp_path_factory.mktemp("stranger")
    make_signing_key(home, tmp_path_factory.mktemp("stranger-keyring"))
    yield home
    stop_agent(home)


@pytest.mark.spawns("gpg", "gpgv")
@pytest.mark.parametrize("fault", ["tampered", "unknown-key"])
def test_an_archive_that_does_not_verify_sends_every_image_down_the_full_path(
        published: tuple[Publisher, Archive, str], stranger: Path, fault: str) -> None:
    pub, arch, _ = published
    run, checks = run_nightly(pub)  # first as published: all up to date
    assert run.plan.images == () and len(run.report.fast_path) == 4
    if fault == "tampered":  # the security suite changed after signing: BADSIG
        arch.publish("bookworm-security", {"libssl3": "3.0.20-1"}, label="Debian-Security",
                     tamper=True)
        status = "BADSIG"
    else:  # signed, by a key the keyring does not hold
        arch.publish("bookworm-security", {"libssl3": "3.0.20-1"}, label="Debian-Security",
                     signer=stranger)
        status = "NO_PUBKEY"
    run, checks = run_nightly(pub)
    assert {c.state for c in checks.cells} == {State.UNKNOWN}
    assert all("bookworm-security" in c.reason and "signature does not verify" in c.reason
               and status in c.reason for c in checks.cells), checks.cells
    assert sorted(i.id for i in run.plan.images) == sorted(run.report.cells)  # nothing kept out
    assert run.report.fast_path == []
    assert not any(c.status is Status.UNCHANGED for c in run.report.cells.values())
    cells = {c["id"]: c for c in run.report.to_dict()["cells"]}
    for cell_id, check in ((c.cell, c) for c in checks.cells):
        assert cells[cell_id]["refresh_reason"] == f"unknown: {check.reason}"
        assert f"{cell_id}: not known to be up to date ({check.reason}): rebuilt with the " \
               "security refresh" in run.report.notes
    assert "nightly fast path: 0 image(s) up to date, 4 to refresh" in run.report.notes[-1]
    assert checks.exit_code == 3  # `outdated` over the same archive: it could not tell


@pytest.mark.spawns("gpg", "gpgv")
def test_the_full_path_rebuilds_with_the_security_refresh(
        published: tuple[Publisher, Archive, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The cells the fast path could not clear go through the build phase with the nightly's
    SECURITY_REFRESH (which re-runs the security-updates stage). The label pass after each
    build reads files the fake engine does not have: it is the release tests' concern."""
    pub, arch, _ = published
    arch.publish("bookworm-security", {"libssl3": "3.0.20-1"}, label="Debian-Security",
                 tamper=True)
    run, _ = run_nightly(pub)
    monkeypatch.setattr(build, "label", lambda run, img, image_id, base_digest: None)
    run.security_refresh = "20261121T020000"  # what cmd_nightly passes: the run's start
    do_build(run)
    assert sorted(t for t, _ in run.engine.rewrites) == sorted(i.target for i in run.plan.images)
    for img in run.plan.images:
        res = run.report.cell(img.id)
        assert (res.status, res.phase) == (Status.OK, "build"), res.message
        assert run.load_state(img.id).build_args["SECURITY_REFRESH"] == "20261121T020000"
        assert res.refresh_reason.startswith("unknown: ")


@pytest.mark.spawns("gpg", "gpgv")
def test_a_release_past_its_valid_until_takes_the_full_path_a_valid_one_does_not(
        published: tuple[Publisher, Archive, str]) -> None:
    pub, arch, _ = published
    arch.publish("bookworm-security", {"libssl3": "3.0.20-1"}, label="Debian-Security",
                 valid_until=UNTIL)
    run, checks = run_nightly(pub, now=UNTIL_AT)  # its last valid second
    assert run.plan.images == ()
    assert {c.state for c in checks.cells} == {State.UP_TO_DATE}
    run, checks = run_nightly(pub, now=UNTIL_AT + dt.timedelta(seconds=1))
    assert len(run.plan.images) == 4 and run.report.fast_path == []
    assert all(c.state is State.UNKNOWN and "expired on" in c.reason for c in checks.cells)
    assert all("(Valid-Until; it is now 2026-11-28 00:00:01 UTC)"
               in run.report.cell(c.cell).refresh_reason for c in checks.cells)


@pytest.mark.spawns("gpg", "gpgv")
def test_the_outdated_command_checks_with_the_clock_it_is_given(
        published: tuple[Publisher, Archive, str]) -> None:
    pub, arch, _ = published
    arch.publish("bookworm-security", {"libssl3": "3.0.20-1"}, label="Debian-Security",
                 valid_until=UNTIL)
    run = pub.run()
    for now, state in ((NOW, State.UP_TO_DATE), (UNTIL_AT + dt.timedelta(days=1), State.UNKNOWN)):
        report = apt_check.check_all(run.config, run.registry(), run.plan.images,
                                     run.label_keys, Path(pub.work) / f"cache-{state}",
                                     now=clock(now))
        assert {c.state for c in report.cells} == {state}
    assert nightly.fast_path.__kwdefaults__ == {"now": utc_now}  # production: the real time

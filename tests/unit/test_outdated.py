"""`outdated` and the nightly fast path without Docker: apt sources parsing, upgrade
computation, a real signed archive served over HTTP on 127.0.0.1 (gpg key made here), and the
fast path decisions against the project's fake registry."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import lzma
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from orchestrator import settings
from orchestrator.apt import sources
from orchestrator.apt.index import ArchiveIndex, parse_packages_index
from orchestrator.apt.outdated import (
    CellCheck,
    IndexView,
    Ledger,
    OutdatedReport,
    PlatformCheck,
    State,
    Upgrade,
    upgrades,
)
from orchestrator.apt.release_file import parse_release
from orchestrator.apt.sources import AptSource
from orchestrator.errors import ArchiveError, ExitCode
from orchestrator.registry import Registry
from orchestrator.release import apt_check, nightly
from orchestrator.release.report import Status
from tests.fakes.publish_harness import Publisher
from tests.unit.apt_archive import (
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

# ----------------------------------------------------------------------------- sources


def test_one_line_sources_with_options_flat_repos_and_comments() -> None:
    text = ("# comment\n"
            "deb [arch=amd64 signed-by=/etc/apt/keyrings/x.gpg] http://m/debian/ bookworm main contrib\n"
            "deb-src http://m/debian bookworm main\n"
            "deb [trusted=yes] http://127.0.0.1:8700/apt-e2e ./  # flat\n")
    got = sources.parse_one_line(text)
    assert got == [AptSource("http://m/debian", "bookworm", ("main", "contrib"),
                             "/etc/apt/keyrings/x.gpg"),
                   AptSource("http://127.0.0.1:8700/apt-e2e", "./", (), "", True)]
    assert got[1].flat and not got[0].flat


def test_deb822_sources_expand_uris_and_suites_and_skip_disabled() -> None:
    text = ("Types: deb\nURIs: http://archive.ubuntu.com/ubuntu/\nSuites: noble noble-updates\n"
            "Components: main universe\nSigned-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg\n"
            "\nTypes: deb-src\nURIs: http://x\nSuites: noble\nComponents: main\n"
            "\nTypes: deb\nURIs: http://y\nSuites: noble\nComponents: main\nEnabled: no\n")
    got = sources.parse_deb822(text)
    assert [(s.suite, s.components) for s in got] == [("noble", ("main", "universe")),
                                                      ("noble-updates", ("main", "universe"))]
    assert all(s.uri == "http://archive.ubuntu.com/ubuntu" for s in got)


def test_dump_parses_each_file_by_its_format_and_the_label_round_trips() -> None:
    dump = (f"{sources.FILE_MARK}/etc/apt/sources.list.d/debian.sources\n"
            "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n\n"
            f"{sources.FILE_MARK}/etc/apt/sources.list.d/e2e.list\n"
            "deb [trusted=yes] http://127.0.0.1:8700/apt-e2e ./\n"
            f"{sources.FILE_MARK}/etc/apt/sources.list.d/notes.txt\ndeb http://ignored x main\n")
    got = sources.parse_dump(dump)
    assert [s.uri for s in got] == ["http://deb.debian.org/debian", "http://127.0.0.1:8700/apt-e2e"]
    assert sources.from_label(sources.to_label(got)) == got
    with pytest.raises(ValueError):
        sources.from_label('{"uri": 1}')
    with pytest.raises(ValueError):
        sources.from_label('[{"uri": 1, "suite": "x"}]')


# ----------------------------------------------------------------------------- upgrades


def view(name: str, pkgs: dict[str, str], security: bool = False,
         automatic: bool = True) -> IndexView:
    return IndexView(name, security, automatic, pkgs)


def test_upgrades_take_the_newest_automatic_version_and_mark_security() -> None:
    installed = {"libssl3": "3.0.17-1~deb12u2", "netbase": "6.4", "tzdata": "2025b-0+deb12u1",
                 "zlib1g": "1:1.2.13.dfsg-1", "local-only": "1.0"}
    views = [view("bookworm main", {"libssl3": "3.0.20-1~deb12u2", "netbase": "6.4",
                                    "zlib1g": "1:1.2.13.dfsg-1", "tzdata": "2025b-0+deb12u1"}),
             view("bookworm-security main", {"libssl3": "3.0.22-1~deb12u2"}, security=True),
             view("bookworm-backports main", {"netbase": "7.0~bpo12+1"}, automatic=False),
             # an epoch outranks any upstream version
             view("bookworm-updates main", {"tzdata": "2026a-0+deb12u1", "zlib1g": "1.3"})]
    got = {u.package: u for u in upgrades(installed, views)}
    assert set(got) == {"libssl3", "tzdata"}
    assert got["libssl3"].candidate == "3.0.22-1~deb12u2" and got["libssl3"].security
    assert got["libssl3"].origin == "bookworm-security main"
    assert got["tzdata"].candidate == "2026a-0+deb12u1" and not got["tzdata"].security


def test_security_is_marked_even_when_updates_carries_a_newer_version() -> None:
    got = upgrades({"p": "1.0-1"}, [view("s", {"p": "1.0-1+deb12u1"}, security=True),
                                    view("u", {"p": "1.0-2"})])
    assert [(u.candidate, u.origin, u.security) for u in got] == [("1.0-2", "u", True)]


def test_parse_packages_index_keeps_the_newest_of_several_versions() -> None:
    data = (b"Package: a\nVersion: 1.0-1\nArchitecture: all\n\n"
            b"Package: a\nVersion: 1.0-10\n\nPackage: b\nVersion: 2:0.1\n\nNot-A: stanza\n")
    assert parse_packages_index(data) == {"a": "1.0-10", "b": "2:0.1"}


def test_report_exit_codes_and_table() -> None:
    up = CellCheck("3.13-source-bookworm-runtime", State.UP_TO_DATE)
    pend = CellCheck("3.13-source-bookworm-dev", State.PENDING, platforms=(
        PlatformCheck("linux/amd64", (Upgrade("netbase", "6.4", "6.4+e2e1", "e2e", True,
                                              "2026-11-30"),)),))
    assert OutdatedReport([up]).exit_code == ExitCode.OK
    assert OutdatedReport([up, pend]).exit_code == 100
    assert OutdatedReport([CellCheck("x", State.UNPUBLISHED)]).exit_code == 100
    assert OutdatedReport([pend, CellCheck("y", State.UNKNOWN, "no label")]).exit_code == 3
    table = OutdatedReport([up, pend]).table()
    row = next(r for r in table.splitlines() if "netbase" in r)
    assert row.split() == ["3.13-source-bookworm-dev", "amd64", "netbase", "6.4", "6.4+e2e1",
                           "yes", "2026-11-30"]
    assert "(up-to-date)" in table and "1 up-to-date, 1 pending" in table


def test_ledger_keeps_the_first_date_and_forgets_fixed_updates(tmp_path: Path) -> None:
    u = Upgrade("libssl3", "3.0.17", "3.0.22", "sec", True)
    check = CellCheck("c", State.PENDING, platforms=(PlatformCheck("linux/amd64", (u,)),))
    ledger = Ledger(tmp_path / "seen.json")
    first = ledger.stamp(check, dt.date(2026, 11, 28))
    ledger.save()
    again = Ledger(tmp_path / "seen.json").stamp(check, dt.date(2026, 12, 1))
    assert first.security[0][1].first_seen == again.security[0][1].first_seen == "2026-11-28"
    ledger2 = Ledger(tmp_path / "seen.json")
    ledger2.forget_fixed([CellCheck("c", State.UP_TO_DATE)])
    assert ledger2.seen == {}
    ledger3 = Ledger(tmp_path / "seen.json")  # an unknown check does not erase the history
    ledger3.forget_fixed([CellCheck("c", State.UNKNOWN)])
    assert ledger3.seen


# ----------------------------------------------------------------------------- a real archive


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(gnupg home holding a throwaway secret key, keyring dir with its public keyring)."""
    home, keyrings = tmp_path_factory.mktemp("gnupg"), tmp_path_factory.mktemp("keyrings")
    make_signing_key(home, keyrings)
    yield home, keyrings
    stop_agent(home)


@pytest.fixture
def archive(tmp_path: Path, signing_key: tuple[Path, Path]) -> Iterator[tuple[Archive, str]]:
    with served_archive(tmp_path, signing_key[0]) as served:
        yield served


def _index(tmp_path: Path, keyrings: Path, now: dt.datetime = NOW) -> ArchiveIndex:
    return ArchiveIndex(tmp_path / "cache", lambda s: keyrings / Path(s.signed_by).name,
                        now=clock(now))


@pytest.mark.spawns("gpg", "gpgv")
def test_archive_verified_cached_by_hash_and_read_again_without_downloads(
        archive: tuple[Archive, str], tmp_path: Path, signing_key: tuple[Path, Path]) -> None:
    arch, uri = archive
    arch.publish("bookworm", {"netbase": "6.4", "libssl3": "3.0.20-1"})
    arch.publish("bookworm-security", {"libssl3": "3.0.22-1"}, label="Debian-Security")
    srcs = [AptSource(uri, "bookworm", ("main",), SIGNED),
            AptSource(uri, "bookworm-security", ("main",), SIGNED)]
    idx = _index(tmp_path, signing_key[1])
    assert idx.packages(srcs[0], "main", "amd64") == {"netbase": "6.4", "libssl3": "3.0.20-1"}
    assert idx.release(srcs[1]).security and not idx.release(srcs[0]).security
    assert idx.packages(srcs[1], "main", "amd64") == {"libssl3": "3.0.22-1"}
    assert all(r.verified for r in (idx.release(s) for s in srcs))
    assert any("/by-hash/SHA256/" in u for u in idx.downloads)
    again = _index(tmp_path, signing_key[1])
    for s in srcs:
        again.packages(s, "main", "amd64")
    assert again.downloads == [], "unchanged InRelease (304) and Packages by hash: no download"
    arch.publish("bookworm-security", {"libssl3": "3.0.23-1"}, label="Debian-Security")
    third = _index(tmp_path, signing_key[1])
    assert third.packages(srcs[1], "main", "amd64") == {"libssl3": "3.0.23-1"}
    assert len(third.downloads) == 2  # the changed InRelease and its new Packages file


@pytest.mark.spawns("gpg", "gpgv")
def test_tampered_release_expired_release_and_missing_keyring_are_refused(
        archive: tuple[Archive, str], tmp_path: Path, signing_key: tuple[Path, Path]) -> None:
    arch, uri = archive
    arch.publish("bookworm", {"netbase": "6.4"}, tamper=True)
    arch.publish("old", {"netbase": "6.4"}, valid_until="Mon, 02 Nov 2026 00:00:00 UTC")
    idx = _index(tmp_path, signing_key[1])
    with pytest.raises(ArchiveError, match="signature does not verify"):
        idx.release(AptSource(uri, "bookworm", ("main",), SIGNED))
    with pytest.raises(ArchiveError, match=r"expired .*stale"):
        idx.release(AptSource(uri, "old", ("main",), SIGNED))
    blind = ArchiveIndex(tmp_path / "c2", lambda s: None)
    with pytest.raises(ArchiveError, match="no keyring"):
        blind.release(AptSource(uri, "old", ("main",), SIGNED))


@pytest.mark.spawns("gpg", "gpgv")
def test_a_packages_file_that_does_not_match_its_hash_is_refused(
        archive: tuple[Archive, str], tmp_path: Path, signing_key: tuple[Path, Path]) -> None:
    arch, uri = archive
    arch.publish("bookworm", {"netbase": "6.4"})
    for f in (arch.root / "debian/dists/bookworm/main/binary-amd64/by-hash/SHA256").iterdir():
        f.write_bytes(lzma.compress(b"Package: netbase\nVersion: 99\n"))
    with pytest.raises(ArchiveError, match="does not match the sha256"):
        _index(tmp_path, signing_key[1]).packages(
            AptSource(uri, "bookworm", ("main",), SIGNED), "main", "amd64")


def test_trusted_flat_repository_is_read_without_a_signature(tmp_path: Path,
                                                             archive: tuple[Archive, str]) -> None:
    arch, uri = archive
    flat = arch.root / "debian" / "flat"
    flat.mkdir(parents=True)
    pk = b"Package: netbase\nVersion: 6.4+e2e1\n"
    (flat / "Packages").write_bytes(pk)
    (flat / "Release").write_text(f"Suite: e2e-security\nSHA256:\n {hashlib.sha256(pk).hexdigest()}"
                                  f" {len(pk)} Packages\n")
    idx = ArchiveIndex(tmp_path / "cache", lambda s: None)
    src = sources.parse_one_line(f"deb [trusted=yes] {uri}/flat ./")[0]
    assert idx.packages(src, "", "amd64") == {"netbase": "6.4+e2e1"}
    assert idx.release(src).security and not idx.release(src).verified
    untrusted = AptSource(src.uri, src.suite)
    with pytest.raises(ArchiveError, match="no keyring"):
        ArchiveIndex(tmp_path / "c3", lambda s: None).release(untrusted)


# ----------------------------------------------------------------------------- the fast path



@pytest.fixture
def published(tmp_path: Path, archive: tuple[Archive, str], signing_key: tuple[Path, Path],
              monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Publisher, Archive, str]]:
    arch, uri = archive
    use_dirs(monkeypatch, tmp_path)
    with publisher(tmp_path, arch, signing_key[1]) as pub:
        yield pub, arch, uri


@pytest.mark.spawns("gpg", "gpgv")
def test_nothing_new_means_nothing_to_refresh(published: tuple[Publisher, Archive, str]) -> None:
    pub, _, uri = published
    publish_with_labels(pub, uri, {"netbase": "6.4", "libssl3": "3.0.20-1"})
    run, checks = run_nightly(pub)
    assert run.plan.images == ()
    assert [c.state for c in checks.cells] == [State.UP_TO_DATE] * 4
    report = run.report
    assert sorted(report.fast_path) == sorted(report.cells)
    assert {c.status.value for c in report.cells.values()} == {"unchanged"}
    run2, _ = run_nightly(pub, full=True)
    assert len(run2.plan.images) == 4


@pytest.mark.spawns("gpg", "gpgv")
def test_a_security_update_refreshes_exactly_the_groups_that_have_the_package(
        published: tuple[Publisher, Archive, str]) -> None:
    pub, arch, uri = published
    # only 3.13's dev image has libssl3: its group (runtime + dev) refreshes, 3.14's does not
    publish_with_labels(pub, uri, {"netbase": "6.4"}, per_cell={
        "3.13-source-bookworm-dev": {"netbase": "6.4", "libssl3": "3.0.20-1"}})
    arch.publish("bookworm-security", {"libssl3": "3.0.22-1"}, label="Debian-Security")
    run, checks = run_nightly(pub)
    assert sorted(i.id for i in run.plan.images) == [
        "3.13-source-bookworm-dev", "3.13-source-bookworm-runtime"]
    assert sorted(run.report.fast_path) == [
        "3.14-source-bookworm-dev", "3.14-source-bookworm-runtime"]
    sec = {c.cell: [u.package for _, u in c.security] for c in checks.cells}
    assert sec == {"3.13-source-bookworm-dev": ["libssl3"], "3.13-source-bookworm-runtime": [],
                   "3.14-source-bookworm-dev": [], "3.14-source-bookworm-runtime": []}
    assert all(u.first_seen == "2026-11-21" for c in checks.cells for _, u in c.security)


@pytest.mark.spawns("gpg", "gpgv")
def test_changed_inputs_or_a_moved_tag_refresh_the_group(
        published: tuple[Publisher, Archive, str]) -> None:
    pub, _, uri = published
    first = pub.run().plan.images[0].id
    publish_with_labels(pub, uri, {"netbase": "6.4"}, {first: "sha256:" + "0" * 64})
    run, _ = run_nightly(pub)
    kept = [i.id for i in run.plan.images]
    group = first.rsplit("-", 1)[0]
    assert sorted(kept) == sorted(i for i in run.report.cells if i.startswith(group))
    assert len(run.report.fast_path) == 2


class _TagMovedAfterFirstCall:
    """A registry client whose ``tag`` is pointed at ``to`` right after the first API call the
    code makes through it: a push landing between two requests of one check."""

    def __init__(self, real: Registry, repo: str, tag: str, to: str) -> None:
        self.real, self.repo, self.tag, self.to, self.moved = real, repo, tag, to, False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.real, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kw: Any) -> Any:
            out = attr(*args, **kw)
            if not self.moved:
                self.moved = True
                self.real.tag(self.repo, self.to, self.tag)
            return out
        return call


@pytest.mark.spawns("gpg", "gpgv")
def test_a_tag_moved_during_the_check_records_the_digest_whose_packages_were_checked(
        published: tuple[Publisher, Archive, str], tmp_path: Path) -> None:
    """The tag is resolved once and the configs read by that digest: moved between the two
    requests, the check still names the image it read (before, the configs of one image were
    checked and the digest of the next recorded, so a refresh could be skipped for it)."""
    pub, _, uri = published
    publish_with_labels(pub, uri, {"netbase": "6.4"}, per_cell={
        "3.13-source-bookworm-dev": {"netbase": "6.4", "libssl3": "3.0.19-1"}})
    run = pub.run()
    img = next(i for i in run.plan.images if i.id == "3.13-source-bookworm-dev")
    other = next(i for i in run.plan.images if i.id == "3.13-source-bookworm-runtime")
    repo, real = run.config.publish.repository, run.registry()
    tag = img.tags[0]
    before, to = real.digest(repo, tag), real.digest(repo, other.tags[0])
    assert before and to and before != to
    moving = _TagMovedAfterFirstCall(real, repo, tag, to)
    keyrings = apt_check.keyring_resolver(run.config, "debian", settings.get().cache_dir)
    index = ArchiveIndex(tmp_path / "apt", keyrings, now=clock())
    check = apt_check.check_image(cast(Registry, moving), repo, img, run.label_keys,
                                  lambda distro: index)
    assert moving.moved and real.digest(repo, tag) == to, "the tag did move"
    assert check.digest == before
    assert check.platforms and {u.package for p in check.platforms for u in p.upgrades} == {"libssl3"}


@pytest.mark.spawns("gpg")
def test_images_published_without_the_labels_take_the_full_path(
        published: tuple[Publisher, Archive, str]) -> None:
    from orchestrator.release.push import do_push

    pub, _, _ = published
    run = pub.run()
    do_push(run, all_or_nothing=False)  # the harness's images have no apt-sources label
    run2, checks = run_nightly(pub)
    assert {c.state for c in checks.cells} == {State.UNKNOWN}
    assert "apt-sources" in checks.cells[0].reason
    assert len(run2.plan.images) == 4


def test_keyrings_are_found_by_file_name_in_the_configured_directories(tmp_path: Path) -> None:
    from orchestrator.config import loader
    from orchestrator.release.apt_check import keyring_resolver
    from tests.fakes.publish_harness import FEATURES

    loaded = loader.load(FEATURES / "images.yaml", dt.date(2026, 11, 21))
    d = tmp_path / "k"
    d.mkdir()
    (d / "debian-archive-keyring.gpg").write_bytes(b"k")
    cfg = loaded.config.model_copy(update={"sources": loaded.config.sources.model_copy(
        update={"apt_keyrings": (str(tmp_path / "none"), str(d))})})
    resolve = keyring_resolver(cfg, "debian", tmp_path)
    assert resolve(AptSource("http://x", "bookworm", ("main",))) == d / "debian-archive-keyring.gpg"
    assert resolve(AptSource("http://x", "b", ("main",), "/usr/share/keyrings/debian-archive-keyring.gpg")) \
        == d / "debian-archive-keyring.gpg"
    assert resolve(AptSource("http://x", "b", ("main",), "/etc/apt/keyrings/other.gpg")) is None
    assert shutil.which("gpgv")
    assert json.loads(sources.to_label([])) == []


@pytest.mark.spawns("gpg", "gpgv")
def test_the_report_says_what_an_image_took_and_what_a_failed_one_still_lacks(
        published: tuple[Publisher, Archive, str]) -> None:
    pub, arch, uri = published
    publish_with_labels(pub, uri, {"netbase": "6.4", "libssl3": "3.0.20-1"})
    arch.publish("bookworm-security", {"libssl3": "3.0.22-1"}, label="Debian-Security")
    run, checks = run_nightly(pub)
    ok, failed = "3.13-source-bookworm-runtime", "3.13-source-bookworm-dev"
    run.report.cell(ok).status, run.report.cell(ok).publish = Status.OK, "updated"
    run.report.cell(ok).package_changes = ["libssl3 3.0.20-1 -> 3.0.22-1"]
    run.report.cell(failed).fail("test", "size-budget")
    nightly.security_report(run, checks)
    assert run.report.cell(ok).security_updates == ["libssl3 3.0.20-1 -> 3.0.22-1"]
    assert run.report.cell(failed).waiting_security == [
        {"package": "libssl3", "installed": "3.0.20-1", "candidate": "3.0.22-1",
         "platform": "linux/amd64", "since": "2026-11-21"}]
    assert "still lacks security update libssl3 3.0.20-1 -> 3.0.22-1" in run.report.table()


def _flat(arch: Archive, uri: str, release: str, pk: bytes) -> AptSource:
    """A trusted=yes flat repository (unsigned: whoever answers writes its Release)."""
    flat = arch.root / "debian" / "flat"
    flat.mkdir(parents=True, exist_ok=True)
    (flat / "Packages").write_bytes(pk)
    (flat / "Release").write_text(release)
    return AptSource(f"{uri}/flat", "./", trusted=True)


def test_a_packages_file_whose_hash_matches_but_size_differs_is_refused(
        tmp_path: Path, archive: tuple[Archive, str]) -> None:
    arch, uri = archive
    pk = b"Package: netbase\nVersion: 6.4+e2e1\n"
    src = _flat(arch, uri, f"SHA256:\n {hashlib.sha256(pk).hexdigest()} {len(pk) + 1} Packages\n", pk)
    with pytest.raises(ArchiveError, match="does not match the sha256"):
        ArchiveIndex(tmp_path / "cache", lambda s: None).packages(src, "", "amd64")


@pytest.mark.parametrize("entry", ["../../outside 36 Packages", f"{'0' * 63}g 36 Packages",
                                   f"{'0' * 64} 36x Packages", f"{'0' * 64} 36 ../Packages"])
def test_a_release_entry_that_is_no_sha256_or_no_plain_path_is_refused(
        tmp_path: Path, archive: tuple[Archive, str], entry: str) -> None:
    """The hash names files in the cache (parsed/<sha>.json, by-hash/<sha>) and URLs: a Release
    (here an unsigned one, trusted=yes) cannot point those outside the cache or the archive."""
    arch, uri = archive
    (tmp_path / "outside.json").write_text('{"netbase": "0-planted"}')
    src = _flat(arch, uri, f"Suite: e2e\nSHA256:\n {entry}\n", b"Package: netbase\nVersion: 6.4+e2e1\n")
    with pytest.raises(ArchiveError, match=r"its Release lists .* not a SHA256 line"):
        ArchiveIndex(tmp_path / "cache", lambda s: None).packages(src, "", "amd64")


def test_release_sums_aligned_as_debian_aligns_them_are_read() -> None:
    text = (f"Suite: bookworm\nSHA256:\n {'a' * 64}  1484322 main/Contents-all\n"
            f" {'b' * 64}     8878 main/binary-amd64/Packages.xz\n")
    assert parse_release(text)[1] == {"main/Contents-all": ("a" * 64, 1484322),
                                      "main/binary-amd64/Packages.xz": ("b" * 64, 8878)}

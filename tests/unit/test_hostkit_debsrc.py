"""hostkit/debsrc.py: revisions from recorded apt output, verified downloads."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from hostkit import debsrc
from hostkit.common import HostkitError, Out
from tests.unit.hostkit_fakes import (
    ARCHIVE,
    UBUNTU_POOL,
    XZ_3144,
    FakeRun,
    Release,
    host_env,
    recorded,
    releases,
    sha,
)


def test_revisions_from_recorded_showsrc() -> None:
    py311, py313 = recorded("showsrc-python3.11.txt"), recorded("showsrc-python3.13.txt")
    assert debsrc.showsrc_versions(py313, "python3.13") == ["3.13.5-2+deb13u5", "3.13.15-1", "3.13.18-1"]
    # the newest revision packaging the wanted upstream release (+deb12u9 over +deb12u8)
    assert debsrc.revisions(py311, "python3.11", "3.11.2") == ["3.11.2-6+deb12u9", "3.11.2-6+deb12u8"]
    assert debsrc.revisions(py313, "python3.13", "3.13.5") == ["3.13.5-2+deb13u5"]
    assert debsrc.revisions(py313, "python3.13", "3.13.15") == ["3.13.15-1"]
    assert debsrc.revisions(py313, "python3.13", "3.13.1") == []
    assert debsrc.revisions(py313, "python3.11", "3.13.5") == []  # another source's stanzas
    py314 = recorded("showsrc-python3.14.txt")  # sid's (pool files 404 here) and resolute's
    assert debsrc.showsrc_versions(py314, "python3.14") == [
        "3.14.9-1", "3.14.10-1", "3.14.4-1", "3.14.4-1ubuntu0.2"]
    # resolute-updates/-security's revision first, then resolute's
    assert debsrc.revisions(py314, "python3.14", "3.14.4") == ["3.14.4-1ubuntu0.2", "3.14.4-1"]


def test_revision_order_is_debian_order() -> None:
    text = "".join(f"Package: python3.13\nVersion: {v}\n\n"
                   for v in ("3.13.5-2", "3.13.5-10", "3.13.5-2+deb13u1", "1:3.13.5-1", "3.13.5-2~bpo12+1"))
    assert debsrc.revisions(text, "python3.13", "3.13.5") == [
        "1:3.13.5-1", "3.13.5-10", "3.13.5-2+deb13u1", "3.13.5-2", "3.13.5-2~bpo12+1"]


def test_upstream_of() -> None:
    assert [debsrc.upstream_of(v) for v in ("3.13.5-2+deb13u5", "1:3.13.5-1", "3.13.5")] == ["3.13.5"] * 3
    assert debsrc.source_package("3.13.15") == "python3.13"


def test_print_uris_from_recorded_output() -> None:
    files = debsrc.parse_print_uris(recorded("print-uris-python3.13_3.13.5-2+deb13u5.txt"))
    assert [(f.name, f.size, f.algo) for f in files] == [
        ("python3.13_3.13.5-2+deb13u5.dsc", 4298, "sha256"),
        ("python3.13_3.13.5.orig.tar.xz", 22856016, "sha256"),
        ("python3.13_3.13.5.orig.tar.xz.asc", 963, "sha256"),
        ("python3.13_3.13.5-2+deb13u5.debian.tar.xz", 299640, "sha256")]
    assert files[1].digest == "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"
    assert files[0].uri == ("http://deb.debian.org/debian/pool/main/p/python3.13/"
                            "python3.13_3.13.5-2%2bdeb13u5.dsc")
    py311 = debsrc.parse_print_uris(recorded("print-uris-python3.11_3.11.2-6+deb12u9.txt"))
    assert [f.name for f in debsrc.wanted(py311, upstream=True, debian=False)] == [
        "python3.11_3.11.2.orig.tar.gz"]
    assert [f.name for f in debsrc.wanted(files, upstream=False, debian=True)] == [
        "python3.13_3.13.5-2+deb13u5.debian.tar.xz"]


def test_unknown_hash_type_is_an_error() -> None:
    with pytest.raises(HostkitError, match=r"^unknown hash type 'BLAKE3' for x_1\.dsc"):
        debsrc.parse_print_uris("'http://x/x_1.dsc' x_1.dsc 3 BLAKE3:abcdef\n")


def _fetcher(tmp_path: Path, run: FakeRun) -> tuple[debsrc.Fetcher, io.StringIO]:
    text = io.StringIO()
    apt = debsrc.PrivateApt(tmp_path / "apt-src", run)
    return debsrc.Fetcher(apt, tmp_path / "cache", Out(text, text), run), text


def test_fetch_verifies_against_the_index_and_skips_the_cache(tmp_path: Path) -> None:
    run = FakeRun(releases())
    fetcher, text = _fetcher(tmp_path, run)
    got = fetcher.fetch("3.13.5", upstream=True, debian=True)
    assert [p.name for p in got] == ["python3.13_3.13.5.orig.tar.xz", "python3.13_3.13.5.orig.tar.xz.asc",
                                     "python3.13_3.13.5-2+deb13u5.debian.tar.xz"]
    assert run.programs().count("curl") == 3
    spec = "python3.13=3.13.5-2+deb13u5"
    assert (f"done: downloaded python3.13_3.13.5.orig.tar.xz (sha256 verified against the Sources index "
            f"of {spec})") in text.getvalue()
    where = {name: f"sha256 listed for {spec} by the signed Sources index ({ARCHIVE}/python3.13/{name})"
             for name in (p.name for p in got)}
    assert fetcher.checked == where
    run.calls.clear()
    fetcher, text = _fetcher(tmp_path, run)
    assert fetcher.fetch("3.13.5", upstream=True, debian=True) == got
    assert "curl" not in run.programs()
    assert "skip: python3.13_3.13.5.orig.tar.xz already downloaded" in text.getvalue()
    assert fetcher.checked == where  # a cached file was checked against the index all the same


def test_hash_mismatch_names_both_sha256s_and_leaves_nothing(tmp_path: Path) -> None:
    uri = f"{ARCHIVE}/python3.11/python3.11_3.11.2.orig.tar.gz"
    bad = b"not the tarball the index lists"
    run = FakeRun(releases(), served={uri: bad})
    fetcher, _ = _fetcher(tmp_path, run)
    with pytest.raises(HostkitError) as exc:
        fetcher.fetch("3.11.2")
    assert str(exc.value) == (
        f"python3.11_3.11.2.orig.tar.gz: sha256 {sha(bad)} != {sha(b'Python-3.11.2.tgz bytes')} in the "
        f"signed Sources index (python3.11=3.11.2-6+deb12u9, {uri}): not the archive's file; nothing served")
    assert list((tmp_path / "cache").iterdir()) == []
    assert fetcher.checked == {}


def test_3144_is_fetched_from_ubuntus_pool_without_its_dsc(tmp_path: Path) -> None:
    dsc = f"{UBUNTU_POOL}/python3.14/python3.14_3.14.4-1ubuntu0.2.dsc"
    run = FakeRun(releases(), gone={dsc})
    fetcher, text = _fetcher(tmp_path, run)
    got = fetcher.fetch("3.14.4")
    assert [(p.name, p.read_bytes()) for p in got] == [("python3.14_3.14.4.orig.tar.xz", XZ_3144)]
    orig = f"{UBUNTU_POOL}/python3.14/python3.14_3.14.4.orig.tar.xz"
    assert [c[-1] for c in run.calls if c[0] == "curl"] == [orig]
    assert [c[-1] for c in run.calls if c[0] == "apt-get"] == ["python3.14=3.14.4-1ubuntu0.2"]
    assert fetcher.checked == {"python3.14_3.14.4.orig.tar.xz": "sha256 listed for "
                               f"python3.14=3.14.4-1ubuntu0.2 by the signed Sources index ({orig})"}
    assert "WARNING" not in text.getvalue()


def _prepare(tmp_path: Path, run: FakeRun, **env: object) -> str:
    text = io.StringIO()
    debsrc.PrivateApt(tmp_path / "apt-src", run).prepare(host_env(tmp_path, **env), Out(text, text))
    return text.getvalue()


def test_sources_list_adds_resolute_signed_by_ubuntus_keyring(tmp_path: Path) -> None:
    run = FakeRun(releases())
    out = _prepare(tmp_path, run)
    lines = (tmp_path / "apt-src/sources.list").read_text().splitlines()
    debian = "/usr/share/keyrings/debian-archive-keyring.gpg"
    ubuntu = tmp_path / "keyrings/ubuntu-archive-keyring.gpg"
    assert [line for line in lines if "ubuntu" in line] == [
        f"deb-src [signed-by={ubuntu}] http://archive.ubuntu.com/ubuntu resolute main",
        f"deb-src [signed-by={ubuntu}] http://archive.ubuntu.com/ubuntu resolute-updates main",
        f"deb-src [signed-by={ubuntu}] http://security.ubuntu.com/ubuntu resolute-security main"]
    deb_src = [line for line in lines if line.startswith("deb-src ")]
    assert len(deb_src) == len(debsrc.SUITES) + 3
    assert all(line.startswith(f"deb-src [signed-by={debian}] http://deb.debian.org/")
               for line in deb_src[:len(debsrc.SUITES)])
    assert [c for c in run.calls if "update" in c]  # no lists yet: apt-get update
    assert "apt-get update (private deb-src lists in" in out


def test_ubuntu_mirrors_follow_the_settings(tmp_path: Path) -> None:
    _prepare(tmp_path, FakeRun(releases()), ubuntu_mirror="http://mirror.example/ubuntu",
             ubuntu_security_mirror="http://mirror.example/ubuntu-security")
    text = (tmp_path / "apt-src/sources.list").read_text()
    assert " http://mirror.example/ubuntu resolute-updates main\n" in text
    assert " http://mirror.example/ubuntu-security resolute-security main\n" in text


def test_a_missing_ubuntu_keyring_is_one_line(tmp_path: Path) -> None:
    run = FakeRun(releases())
    missing = tmp_path / "nowhere/ubuntu-archive-keyring.gpg"
    with pytest.raises(HostkitError, match=rf"^no Ubuntu archive keyring at {re.escape(str(missing))} to "
                       r"verify resolute's Sources index \([^\n]*ORCH_UBUNTU_KEYRING\)$"):
        _prepare(tmp_path, run, ubuntu_keyring=missing)
    assert run.calls == []  # no apt-get update with a sources list it cannot verify
    assert not (tmp_path / "apt-src/sources.list").exists()


def test_a_gone_file_refreshes_the_lists_then_takes_an_older_revision(tmp_path: Path) -> None:
    name = "python3.11_3.11.2.orig.tar.gz"
    new = Release("python3.11", "3.11.2-6+deb12u9", {name: b"tgz"}, pool=f"{ARCHIVE}/security")
    old = Release("python3.11", "3.11.2-6+deb12u8", {name: b"tgz"})
    run = FakeRun([new, old], gone={new.uri(name)})
    fetcher, text = _fetcher(tmp_path, run)
    assert [p.read_bytes() for p in fetcher.fetch("3.11.2")] == [b"tgz"]
    curls = [c[-1] for c in run.calls if c[0] == "curl"]
    assert curls == [new.uri(name), new.uri(name), old.uri(name)]  # again after the refresh
    assert sum("update" in c for c in run.calls) == 1
    out = text.getvalue()
    assert "refreshing the deb-src lists (a file listed there is gone) and retrying" in out
    assert f"WARNING: cannot download {new.uri(name)}; trying an older revision" in out


def test_every_revision_gone_is_an_error(tmp_path: Path) -> None:
    name = "python3.11_3.11.2.orig.tar.gz"
    new = Release("python3.11", "3.11.2-6+deb12u9", {name: b"tgz"})
    old = Release("python3.11", "3.11.2-6+deb12u8", {name: b"tgz"})
    run = FakeRun([new, old], gone={new.uri(name)})

    def dropped() -> None:  # the refreshed index no longer has +deb12u9
        run.releases = [old]

    run.on_update = dropped
    fetcher, _ = _fetcher(tmp_path, run)
    with pytest.raises(HostkitError, match=r"^no revision of python3\.11 with upstream 3\.11\.2 can be "
                       r"downloaded \(python3\.11=3\.11\.2-6\+deb12u9 is no longer in the deb-src index; "
                       r"cannot download http://\S+/python3\.11_3\.11\.2\.orig\.tar\.gz\)$"):
        fetcher.fetch("3.11.2")


def test_no_revision_for_the_release(tmp_path: Path) -> None:
    fetcher, _ = _fetcher(tmp_path, FakeRun(releases()))
    with pytest.raises(HostkitError, match=r"^the deb-src index has no python3\.13 for CPython 3\.13\.99 "):
        fetcher.fetch("3.13.99")

"""hostkit/mirror.py: the python.org-shaped tree from (fake) Debian source packages."""

from __future__ import annotations

import functools
import http.server
import io
import re
import threading
from pathlib import Path

import pytest

from hostkit import matrix
from hostkit.common import HostkitError, Out, update_sha256sums
from hostkit.mirror import Mirror, check_served, mirror_name
from orchestrator.lock.sources import PyenvDefinitions
from tests.unit.helpers import TODAY, edit
from tests.unit.hostkit_fakes import (
    ARCHIVE,
    KEY_313,
    MATRIX,
    UBUNTU_POOL,
    XZ_3144,
    FakeRun,
    armored_key,
    host_env,
    org_lock,
    pyenv_definitions,
    releases,
    sha,
)

TGZ_3112 = b"Python-3.11.2.tgz bytes"
XZ_3135 = b"Python-3.13.5.tar.xz bytes"
XZ_31315 = b"Python-3.13.15.tar.xz bytes"
# as pyenv 2.6.30 has them: 3.11.2 and 3.13.5 (xz and tgz), no 3.13.15
PINS = {"3.11.2": {"Python-3.11.2.tar.xz": "a" * 64, "Python-3.11.2.tgz": sha(TGZ_3112)},
        "3.13.5": {"Python-3.13.5.tar.xz": sha(XZ_3135), "Python-3.13.5.tgz": "b" * 64}}
# python.org's Python-3.14.4.tar.xz as the organisation's images.lock pins it
PYTHON_ORG_3144 = "d923c51303e38e249136fc1bdf3568d56ecb03214efdef48516176d3d7faaef8"
ORIG_3144 = f"{UBUNTU_POOL}/python3.14/python3.14_3.14.4.orig.tar.xz"
SPEC_3144 = "python3.14=3.14.4-1ubuntu0.2"  # resolute-updates/-security: newer than resolute's 3.14.4-1
SOURCES_3144 = f"sha256 listed for {SPEC_3144} by the signed Sources index ({ORIG_3144})"


def _mirror(tmp_path: Path, run: FakeRun, pins: dict[str, dict[str, str]] | None = None,
            path: Path = MATRIX, **changes: object) -> tuple[Mirror, io.StringIO]:
    pyenv_definitions(tmp_path / "pyenv", PINS if pins is None else pins)
    text = io.StringIO()
    env = host_env(tmp_path, matrix=path, **changes)
    return Mirror(env, matrix.load(path, TODAY), Out(text, text), run), text


def _matrix_314(tmp_path: Path) -> Path:
    """The fixture matrix with 3.14.4 (source) in 3.11.2's place: 3.13.5, 3.13.15, 3.14.4."""
    text = MATRIX.read_text()
    for old, new in (('  - version: "3.11.2" ', '  - version: "3.14.4" '),
                     ('{python: "3.11", method: source}', '{python: "3.14", method: python-build}'),
                     ('{python: "3.11", method: deadsnakes}', '{python: "3.14", method: deadsnakes}')):
        text = edit(text, old, new)
    path = tmp_path / "images-3.14.yaml"
    path.write_text(text)
    return path


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_first_run_fills_the_tree_checks_and_writes_sha256sums(tmp_path: Path) -> None:
    run = FakeRun(releases())
    mirror, text = _mirror(tmp_path, run)
    mirror.update()
    root = tmp_path / "mirror"
    key = f"ftp/python/keys/{KEY_313}.asc"
    tgz, xz15, xz5 = ("ftp/python/3.11.2/Python-3.11.2.tgz", "ftp/python/3.13.15/Python-3.13.15.tar.xz",
                      "ftp/python/3.13.5/Python-3.13.5.tar.xz")
    assert _files(root) == sorted([
        "SHA256SUMS", tgz, f"{tgz}.checked", xz15, f"{xz15}.checked", xz5, f"{xz5}.checked",
        f"{xz5}.asc", f"{xz5}.asc.checked", key])
    assert (root / xz5).read_bytes() == XZ_3135
    assert (root / key).read_bytes() == armored_key(KEY_313)
    asc = (root / f"{xz5}.asc").read_bytes()
    # where each file's bytes were checked: the Sources index it came with, then pyenv's pin
    # (none for 3.13.15; the fixture's org lock pins only 3.14.4)
    url = "https://www.python.org/ftp/python"
    checked = {
        tgz: f"sha256 {sha(TGZ_3112)}: sha256 listed for python3.11=3.11.2-6+deb12u9 by the signed "
             f"Sources index ({ARCHIVE}/python3.11/python3.11_3.11.2.orig.tar.gz)\n"
             f"sha256 {sha(TGZ_3112)}: equals pyenv's pin ({url}/3.11.2/Python-3.11.2.tgz)\n",
        xz15: f"sha256 {sha(XZ_31315)}: sha256 listed for python3.13=3.13.15-1 by the signed Sources "
              f"index ({ARCHIVE}/python3.13/python3.13_3.13.15.orig.tar.xz)\n",
        xz5: f"sha256 {sha(XZ_3135)}: sha256 listed for python3.13=3.13.5-2+deb13u5 by the signed "
             f"Sources index ({ARCHIVE}/python3.13/python3.13_3.13.5.orig.tar.xz)\n"
             f"sha256 {sha(XZ_3135)}: equals pyenv's pin ({url}/3.13.5/Python-3.13.5.tar.xz)\n",
        f"{xz5}.asc": f"sha256 {sha(asc)}: sha256 listed for python3.13=3.13.5-2+deb13u5 by the signed "
                      f"Sources index ({ARCHIVE}/python3.13/python3.13_3.13.5.orig.tar.xz.asc)\n",
    }
    for rel, note in checked.items():
        assert (root / f"{rel}.checked").read_text() == note, rel
    served = {rel: (root / rel).read_bytes() for rel in _files(root) if rel != "SHA256SUMS"}
    assert (root / "SHA256SUMS").read_text() == "".join(
        f"{sha(data)}  {rel}\n" for rel, data in sorted(served.items(), key=lambda kv: kv[0].encode()))
    assert f"{sha(XZ_3135)}  {xz5}\n{sha(asc)}  {xz5}.asc\n" in (root / "SHA256SUMS").read_text()
    out = text.getvalue()
    for line in (
        "python3.11=3.11.2-6+deb12u9: upstream 3.11.2",  # the newest revision of the recorded index
        f"ok: Python-3.11.2.tgz sha256 matches pyenv's pin ({sha(TGZ_3112)})",
        f"ok: Python-3.13.5.tar.xz sha256 matches pyenv's pin ({sha(XZ_3135)})",
        f"Python-3.13.15.tar.xz sha256 {sha(XZ_31315)} (no pyenv definition to compare with)",
        f"done: {root / key} (Thomas Wouters <thomas@python.org>)",
        f"ok: gpg --verify Python-3.13.5.tar.xz: good signature by {KEY_313} (offline, temporary GNUPGHOME)",
        f"done: {root / 'SHA256SUMS'}",
    ):
        assert line in out, line
    assert "organisation's pin" not in out  # the org lock pins none of these releases
    # the .dsc files and the debian/ tarballs of the other releases are not downloaded
    assert sorted(p.name for p in (tmp_path / "state/src-cache").iterdir()) == [
        "python3.11_3.11.2.orig.tar.gz", "python3.13_3.13.15.orig.tar.xz",
        "python3.13_3.13.5-2+deb13u5.debian.tar.xz", "python3.13_3.13.5.orig.tar.xz",
        "python3.13_3.13.5.orig.tar.xz.asc"]
    sources = (tmp_path / "state/apt-src/sources.list").read_text()
    assert "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] " \
           "http://deb.debian.org/debian-security trixie-security main\n" in sources


def test_second_run_skips_and_downloads_nothing(tmp_path: Path) -> None:
    run = FakeRun(releases())
    _mirror(tmp_path, run)[0].update()
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "mirror").rglob("*")}
    run.calls.clear()
    mirror, text = _mirror(tmp_path, run)
    mirror.update()
    assert not {"apt-get", "apt-cache", "curl"} & set(run.programs())
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "mirror").rglob("*")} == before
    out = text.getvalue()
    assert "skip: all CPython tarballs and the signing key are in the mirror; no Debian downloads" in out
    assert f"skip: {tmp_path / 'mirror/ftp/python/keys' / (KEY_313 + '.asc')} present" in out
    assert f"skip: {tmp_path / 'mirror/SHA256SUMS'} up to date" in out
    assert "done:" not in out


def test_a_missing_key_alone_fetches_only_the_debian_tarball(tmp_path: Path) -> None:
    run = FakeRun(releases())
    _mirror(tmp_path, run)[0].update()
    (tmp_path / f"mirror/ftp/python/keys/{KEY_313}.asc").unlink()
    for f in (tmp_path / "state/src-cache").iterdir():
        f.unlink()
    run.calls.clear()
    _mirror(tmp_path, run)[0].update()
    assert [c[-1].rsplit("/", 1)[-1] for c in run.calls if c[0] == "curl"] == [
        "python3.13_3.13.5-2+deb13u5.debian.tar.xz"]
    assert (tmp_path / f"mirror/ftp/python/keys/{KEY_313}.asc").is_file()


def test_pyenv_pin_mismatch_is_an_error(tmp_path: Path) -> None:
    pins = {**PINS, "3.11.2": {"Python-3.11.2.tgz": "c" * 64}}
    mirror, _ = _mirror(tmp_path, FakeRun(releases()), pins)
    with pytest.raises(HostkitError, match=rf"^Python-3\.11\.2\.tgz sha256 {sha(TGZ_3112)} != pyenv pin "
                       rf"{'c' * 64} - not the upstream tarball; removed from the mirror$"):
        mirror.update()
    assert _files(tmp_path / "mirror/ftp/python/3.11.2") == []  # not served, nor its .checked


def test_the_reference_release_needs_a_pyenv_pin(tmp_path: Path) -> None:
    mirror, _ = _mirror(tmp_path, FakeRun(releases()), {"3.11.2": PINS["3.11.2"]})
    with pytest.raises(HostkitError, match=r"^pyenv has no sha256 pin for Python-3\.13\.5\.tar\.xz \(needed "
                       r"to check 3\.13\.5; pyenv checkout .*/pyenv\)$"):
        mirror.update()


def test_a_signature_by_another_key_is_an_error(tmp_path: Path) -> None:
    other = "A035C8C19219BA821ECEA86B64E628F8D684696D"
    rels = releases()
    rels[1].files["python3.13_3.13.5.orig.tar.xz.asc"] = \
        f"fake signature by {other} of {sha(XZ_3135)}\n".encode()
    run = FakeRun(rels)
    run.keys.add(other)  # the fake gpg shares one keyring: the other key verifies
    mirror, _ = _mirror(tmp_path, run)
    with pytest.raises(HostkitError, match=rf"^gpg --verify Python-3\.13\.5\.tar\.xz: signature is not by "
                       rf"{KEY_313} \(by {other}\)$"):
        mirror.update()


def test_a_bad_signature_is_an_error(tmp_path: Path) -> None:
    rels = releases()
    rels[1].files["python3.13_3.13.5.orig.tar.xz.asc"] = b"garbage\n"
    mirror, _ = _mirror(tmp_path, FakeRun(rels))
    with pytest.raises(HostkitError, match=r"^gpg --verify Python-3\.13\.5\.tar\.xz failed$"):
        mirror.update()


def test_a_debian_tarball_without_the_key_is_an_error(tmp_path: Path) -> None:
    rels = releases()
    rels[1].files["python3.13_3.13.5-2+deb13u5.debian.tar.xz"] = \
        rels[0].files["python3.11_3.11.2-6+deb12u9.debian.tar.xz"]
    mirror, _ = _mirror(tmp_path, FakeRun(rels))
    with pytest.raises(HostkitError, match=r"python3\.13_3\.13\.5-2\+deb13u5\.debian\.tar\.xz has no "
                       r"debian/upstream/signing-key\.asc$"):
        mirror.update()


def test_sha256sums_lists_every_served_file_in_byte_order(tmp_path: Path) -> None:
    root = tmp_path / "m"
    files = {"b/x": b"1", "B/y": b"2", "a.part": b"", "ppa/.recipe": b"3", "SHA256SUMS.old": b""}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "link").symlink_to(root / "b/x")
    text = io.StringIO()
    update_sha256sums(root, Out(text, text))
    assert (root / "SHA256SUMS").read_text() == (
        f"{sha(b'2')}  B/y\n{sha(b'1')}  b/x\n{sha(b'3')}  ppa/.recipe\n")
    update_sha256sums(root, Out(text, text))
    assert text.getvalue().splitlines()[-1].endswith("SHA256SUMS up to date")


def test_mirror_names() -> None:
    assert mirror_name("python3.13_3.13.5.orig.tar.xz.asc", "python3.13", "3.13.5") == \
        "Python-3.13.5.tar.xz.asc"
    assert mirror_name("python3.11_3.11.2.orig.tar.gz", "python3.11", "3.11.2") == "Python-3.11.2.tgz"
    assert mirror_name("python3.13_3.13.5-2.debian.tar.xz", "python3.13", "3.13.5") is None


def test_pyenv_definitions_pins_every_tarball(tmp_path: Path) -> None:
    pyenv_definitions(tmp_path, PINS)
    defs = PyenvDefinitions(tmp_path, "k/{fingerprint}")
    url = "https://www.python.org/ftp/python/3.11.2/Python-3.11.2.tgz"
    assert defs.pins("3.11.2") == {"Python-3.11.2.tar.xz": (url.replace(".tgz", ".tar.xz"), "a" * 64),
                                   "Python-3.11.2.tgz": (url, sha(TGZ_3112))}
    assert defs.pins("3.13.15") is None
    assert defs.resolve("3.11", "3.11.2").sha256 == "a" * 64  # python-build's first choice, .tar.xz


def test_served_checks_every_release_over_http(tmp_path: Path) -> None:
    run = FakeRun(releases())
    mirror, _ = _mirror(tmp_path, run)
    mirror.update()
    root = tmp_path / "mirror"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        env = host_env(tmp_path, mirror_port=httpd.server_address[1])
        text = io.StringIO()
        plan = matrix.load(MATRIX, TODAY)
        try:
            check_served(env, plan, Out(text, text))
            assert text.getvalue().strip().endswith(
                f"ok: mirror answers at {env.mirror_url}ftp/python/ (3.11.2, 3.13.5, 3.13.15)")
            (root / "ftp/python/3.13.15").rename(root / "elsewhere")  # with its .checked
            unlisted = rf"^{env.mirror_url}ftp/python/ does not list 3\.13\.15/$"
            with pytest.raises(HostkitError, match=unlisted):
                check_served(env, plan, Out(text, text))
        finally:
            httpd.shutdown()


def test_3144_comes_from_ubuntus_pool_checked_against_the_org_lock(tmp_path: Path) -> None:
    dsc = f"{UBUNTU_POOL}/python3.14/python3.14_3.14.4-1ubuntu0.2.dsc"
    run = FakeRun(releases(), gone={dsc})  # Ubuntu's .dsc answers 404 here: never asked for
    pins = {**PINS, "3.14.4": {"Python-3.14.4.tar.xz": sha(XZ_3144)}}
    mirror, text = _mirror(tmp_path, run, pins, _matrix_314(tmp_path))
    mirror.update()
    root = tmp_path / "mirror"
    xz = root / "ftp/python/3.14.4/Python-3.14.4.tar.xz"
    assert _files(xz.parent) == ["Python-3.14.4.tar.xz", "Python-3.14.4.tar.xz.checked"]  # no .asc
    assert xz.read_bytes() == XZ_3144
    assert [c[-1] for c in run.calls if c[0] == "curl" and "python3.14" in c[-1]] == [ORIG_3144]
    lock = tmp_path / "org/images.lock"
    assert (xz.parent / "Python-3.14.4.tar.xz.checked").read_text() == (
        f"sha256 {sha(XZ_3144)}: {SOURCES_3144}\n"
        f"sha256 {sha(XZ_3144)}: equals pyenv's pin (https://www.python.org/ftp/python/3.14.4/"
        "Python-3.14.4.tar.xz)\n"
        f"sha256 {sha(XZ_3144)}: equals the pin of {lock.name}\n")
    out = text.getvalue()
    for line in (
        f"{SPEC_3144}: upstream 3.14.4",
        f"done: downloaded python3.14_3.14.4.orig.tar.xz (sha256 verified against the Sources index "
        f"of {SPEC_3144})",
        f"ok: Python-3.14.4.tar.xz sha256 equals the organisation's pin in images.lock ({sha(XZ_3144)})",
    ):
        assert line in out, line
    assert "gpg --verify Python-3.14.4" not in out  # 3.14 is Sigstore-signed only (PEP 761)
    assert f"{sha(XZ_3144)}  ftp/python/3.14.4/Python-3.14.4.tar.xz\n" in (root / "SHA256SUMS").read_text()
    sources = (tmp_path / "state/apt-src/sources.list").read_text()
    assert f"deb-src [signed-by={tmp_path}/keyrings/ubuntu-archive-keyring.gpg] " \
           "http://archive.ubuntu.com/ubuntu resolute-updates main\n" in sources


def test_a_tarball_other_than_the_org_pin_is_removed_with_both_sha256s(tmp_path: Path) -> None:
    # the fake archive's 3.14.4 is consistent with its Sources index, but not python.org's bytes
    lock = org_lock(tmp_path / "elsewhere/images.lock", {"3.14.4": PYTHON_ORG_3144})
    mirror, text = _mirror(tmp_path, FakeRun(releases()), path=_matrix_314(tmp_path), org_lock=lock)
    with pytest.raises(HostkitError) as exc:
        mirror.update()
    assert str(exc.value) == (f"Python-3.14.4.tar.xz sha256 {sha(XZ_3144)} != {PYTHON_ORG_3144} pinned by "
                              f"{lock}: not python.org's tarball; removed from the mirror")
    root = tmp_path / "mirror"
    assert _files(root / "ftp/python/3.14.4") == []  # nothing served: no tarball, no .checked
    assert not (root / "SHA256SUMS").exists()
    assert "done: downloaded python3.14_3.14.4.orig.tar.xz" in text.getvalue()  # the index agreed


def test_a_sources_index_mismatch_names_both_sha256s_and_leaves_nothing(tmp_path: Path) -> None:
    bad = b"not the file the Sources index lists"
    run = FakeRun(releases(), served={ORIG_3144: bad})
    mirror, _ = _mirror(tmp_path, run, path=_matrix_314(tmp_path))
    with pytest.raises(HostkitError, match=(
            rf"^python3\.14_3\.14\.4\.orig\.tar\.xz: sha256 {sha(bad)} != {sha(XZ_3144)} in the signed "
            rf"Sources index \({re.escape(SPEC_3144)}, {re.escape(ORIG_3144)}\): not the archive's file; "
            r"nothing served$")):
        mirror.update()
    assert not (tmp_path / "mirror/ftp/python/3.14.4").exists()
    assert [p.name for p in (tmp_path / "state/src-cache").iterdir() if "3.14" in p.name] == []
    # the newest revision's file is refused: no older revision is tried for a wrong file
    assert [c[-1] for c in run.calls if c[0] == "curl" and "python3.14" in c[-1]] == [ORIG_3144]


def test_a_second_run_checks_the_org_pin_of_a_mirrored_tarball(tmp_path: Path) -> None:
    run = FakeRun(releases())
    path = _matrix_314(tmp_path)
    _mirror(tmp_path, run, path=path)[0].update()  # no pyenv pin for 3.14.4: the org pin decides
    xz = tmp_path / "mirror/ftp/python/3.14.4/Python-3.14.4.tar.xz"
    tampered = b"Python-3.14.4.tar.xz, changed in the mirror"
    xz.write_bytes(tampered)
    run.calls.clear()
    mirror, text = _mirror(tmp_path, run, path=path)
    with pytest.raises(HostkitError, match=rf"^Python-3\.14\.4\.tar\.xz sha256 {sha(tampered)} != "
                       rf"{sha(XZ_3144)} pinned by .*/org/images\.lock: not python\.org's tarball; "
                       r"removed from the mirror$"):
        mirror.update()
    assert not {"apt-get", "apt-cache", "curl"} & set(run.programs())  # checked without downloading
    assert "skip: all CPython tarballs and the signing key are in the mirror" in text.getvalue()
    assert _files(xz.parent) == []
    # the next run puts the Sources-checked file from the download cache back
    run.calls.clear()
    _mirror(tmp_path, run, path=path)[0].update()
    assert xz.read_bytes() == XZ_3144
    assert "curl" not in run.programs()


def test_a_release_the_org_lock_pins_must_be_in_the_mirror_by_that_name(tmp_path: Path) -> None:
    # the lock pins python.org's .tar.xz; Debian's 3.11.2 is the .tgz
    lock = org_lock(tmp_path / "elsewhere/images.lock", {"3.11.2": "e" * 64})
    mirror, _ = _mirror(tmp_path, FakeRun(releases()), org_lock=lock)
    with pytest.raises(HostkitError, match=rf"^{re.escape(str(lock))} pins Python-3\.11\.2\.tar\.xz "
                       rf"\(sha256 {'e' * 64}\) but the mirror has no Python-3\.11\.2\.tar\.xz "
                       r"for 3\.11\.2$"):
        mirror.update()


@pytest.mark.parametrize("text", [None, "pythons: [\n", "- not a lock\n", "pythons: [3.14.4]\n",
                                  "pythons:\n  '3.14': {url: https://x/Python-3.14.4.tar.xz, sha256: x}\n"])
def test_an_unusable_org_lock_is_one_line(tmp_path: Path, text: str | None) -> None:
    lock = tmp_path / "elsewhere/images.lock"
    if text is not None:
        lock.parent.mkdir()
        lock.write_text(text)
    run = FakeRun(releases())
    mirror, _ = _mirror(tmp_path, run, org_lock=lock)
    with pytest.raises(HostkitError, match=rf"^cannot read the organisation's lock {re.escape(str(lock))}: "):
        mirror.update()
    assert run.calls == []  # read before anything is downloaded


def test_a_signature_by_a_key_that_has_expired_since_is_not_served(tmp_path: Path) -> None:
    """Thomas Wouters' key (3.12/3.13) expired on 2026-07-02 in every copy reachable here: the
    .asc leaves the mirror (builds refuse EXPKEYSIG), the tarball stays (pinned three ways)."""
    run = FakeRun(releases(), expired={KEY_313})
    mirror, text = _mirror(tmp_path, run)
    mirror.update()
    here = tmp_path / "mirror/ftp/python/3.13.5"
    assert (here / "Python-3.13.5.tar.xz").is_file()
    assert not (here / "Python-3.13.5.tar.xz.asc").exists()
    assert "Python-3.13.5.tar.xz.asc" not in (tmp_path / "mirror/SHA256SUMS").read_text()
    why = f"EXPKEYSIG by {KEY_313} (the signing key has expired)"
    checked = (here / "Python-3.13.5.tar.xz.checked").read_text()
    assert f"Python-3.13.5.tar.xz.asc not served: {why}" in checked
    assert f"WARNING: Python-3.13.5.tar.xz.asc not served: {why}" in text.getvalue()


def test_a_bad_signature_still_stops_provisioning_and_is_not_withdrawn_quietly(tmp_path: Path) -> None:
    rels = releases()
    rels[1].files["python3.13_3.13.5.orig.tar.xz.asc"] = b"garbage\n"
    mirror, _ = _mirror(tmp_path, FakeRun(rels, expired={KEY_313}))
    with pytest.raises(HostkitError, match=r"^gpg --verify Python-3\.13\.5\.tar\.xz failed$"):
        mirror.update()

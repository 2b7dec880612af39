"""tests/hostkit/mirror.py: the python.org-shaped tree from (fake) Debian source packages."""

from __future__ import annotations

import functools
import http.server
import io
import threading
from pathlib import Path

import pytest

from orchestrator.lock_sources import PyenvDefinitions
from tests.hostkit import matrix
from tests.hostkit.common import E2E_MATRIX, HostkitError, Out, update_sha256sums
from tests.hostkit.mirror import Mirror, check_served, mirror_name
from tests.unit.helpers import TODAY
from tests.unit.hostkit_fakes import KEY_313, FakeRun, armored_key, host_env, pyenv_definitions, releases, sha

TGZ_3112 = b"Python-3.11.2.tgz bytes"
XZ_3135 = b"Python-3.13.5.tar.xz bytes"
XZ_31315 = b"Python-3.13.15.tar.xz bytes"
# as pyenv 2.6.30 has them: 3.11.2 and 3.13.5 (xz and tgz), no 3.13.15
PINS = {"3.11.2": {"Python-3.11.2.tar.xz": "a" * 64, "Python-3.11.2.tgz": sha(TGZ_3112)},
        "3.13.5": {"Python-3.13.5.tar.xz": sha(XZ_3135), "Python-3.13.5.tgz": "b" * 64}}


def _mirror(tmp_path: Path, run: FakeRun, pins: dict[str, dict[str, str]] | None = None
            ) -> tuple[Mirror, io.StringIO]:
    pyenv_definitions(tmp_path / "pyenv", PINS if pins is None else pins)
    text = io.StringIO()
    return Mirror(host_env(tmp_path), matrix.load(E2E_MATRIX, TODAY), Out(text, text), run), text


def test_first_run_fills_the_tree_checks_and_writes_sha256sums(tmp_path: Path) -> None:
    run = FakeRun(releases())
    mirror, text = _mirror(tmp_path, run)
    mirror.update()
    root = tmp_path / "mirror"
    key = f"ftp/python/keys/{KEY_313}.asc"
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        "SHA256SUMS", "ftp/python/3.11.2/Python-3.11.2.tgz", "ftp/python/3.13.15/Python-3.13.15.tar.xz",
        "ftp/python/3.13.5/Python-3.13.5.tar.xz", "ftp/python/3.13.5/Python-3.13.5.tar.xz.asc", key]
    assert (root / "ftp/python/3.13.5/Python-3.13.5.tar.xz").read_bytes() == XZ_3135
    assert (root / key).read_bytes() == armored_key(KEY_313)
    asc = (root / "ftp/python/3.13.5/Python-3.13.5.tar.xz.asc").read_bytes()
    assert (root / "SHA256SUMS").read_text() == (
        f"{sha(TGZ_3112)}  ftp/python/3.11.2/Python-3.11.2.tgz\n"
        f"{sha(XZ_31315)}  ftp/python/3.13.15/Python-3.13.15.tar.xz\n"
        f"{sha(XZ_3135)}  ftp/python/3.13.5/Python-3.13.5.tar.xz\n"
        f"{sha(asc)}  ftp/python/3.13.5/Python-3.13.5.tar.xz.asc\n"
        f"{sha(armored_key(KEY_313))}  {key}\n")
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
                       rf"{'c' * 64} - not the upstream tarball$"):
        mirror.update()


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
        plan = matrix.load(E2E_MATRIX, TODAY)
        try:
            check_served(env, plan, Out(text, text))
            assert text.getvalue().strip().endswith(
                f"ok: mirror answers at {env.mirror_url}ftp/python/ (3.11.2, 3.13.5, 3.13.15)")
            (root / "ftp/python/3.13.15/Python-3.13.15.tar.xz").rename(root / "elsewhere")
            (root / "ftp/python/3.13.15").rmdir()
            unlisted = rf"^{env.mirror_url}ftp/python/ does not list 3\.13\.15/$"
            with pytest.raises(HostkitError, match=unlisted):
                check_served(env, plan, Out(text, text))
        finally:
            httpd.shutdown()

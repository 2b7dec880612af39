"""A real signed Debian archive for the `outdated` and nightly tests (imported, not fixtures):
a throwaway gpg key, the archive's files on disk served over HTTP on 127.0.0.1, images
published with the labels the fast path reads (the fake registry, the fake engine), and the
nightly's fast path run over them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import http.server
import lzma
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from orchestrator import render
from orchestrator.apt import sources as apt_sources
from orchestrator.apt.outdated import OutdatedReport
from orchestrator.apt.sources import AptSource
from orchestrator.release import nightly
from tests.fakes.fake_registry import FakeRegistry
from tests.fakes.publish_harness import HarnessRun, Publisher, write_config

SIGNED = "/usr/share/keyrings/test-archive-keyring.gpg"  # the Signed-By the images' labels carry
KEYRING = Path(SIGNED).name
# The tests' clock for Valid-Until (the unit tests' date, 02:00 UTC: a nightly's hour)
NOW = dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC)


def clock(at: dt.datetime = NOW) -> Callable[[], dt.datetime]:
    """A clock that always says ``at``."""
    return lambda: at


def gpg(home: Path, *args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(["gpg", "--batch", "--homedir", str(home), *args], input=stdin,
                          capture_output=True, check=True, timeout=60).stdout


def make_signing_key(home: Path, keyrings: Path) -> None:
    """A throwaway secret key in ``home`` and its public keyring as ``keyrings``/KEYRING."""
    home.chmod(0o700)
    gpg(home, "--passphrase", "", "--quick-gen-key", "Test Archive <archive@localhost>",
        "ed25519", "sign", "never")
    (keyrings / KEYRING).write_bytes(gpg(home, "--export"))


class Archive:
    """A Debian-layout archive on disk (dists/<suite>/InRelease, by-hash Packages.xz)."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root, self.home = root, home
        self.clock = 1_780_000_000

    def publish(self, suite: str, packages: dict[str, str], *, label: str = "Debian",
                valid_until: str = "", tamper: bool = False, arch: str = "amd64",
                signer: Path | None = None) -> None:
        """Write ``suite``'s Packages and InRelease, signed in ``signer`` (a gnupg home; the
        archive's own by default), or tampered after signing."""
        d = self.root / "debian" / "dists" / suite
        body = "".join(f"Package: {n}\nVersion: {v}\nArchitecture: {arch}\n\n"
                       for n, v in packages.items()).encode()
        xz = lzma.compress(body)
        sha = hashlib.sha256(xz).hexdigest()
        by_hash = d / "main" / f"binary-{arch}" / "by-hash" / "SHA256"
        by_hash.mkdir(parents=True, exist_ok=True)
        (by_hash / sha).write_bytes(xz)
        (d / "main" / f"binary-{arch}" / "Packages.xz").write_bytes(xz)
        release = (f"Origin: Debian\nLabel: {label}\nSuite: {suite}\nCodename: {suite}\n"
                   f"Date: Fri, 20 Nov 2026 00:00:00 UTC\n"  # before NOW
                   + (f"Valid-Until: {valid_until}\n" if valid_until else "")
                   + f"Acquire-By-Hash: yes\nSHA256:\n {sha} {len(xz)} main/binary-{arch}/Packages.xz\n")
        signed = gpg(signer or self.home, "--clearsign", stdin=release.encode())
        if tamper:
            signed = signed.replace(b"Suite: ", b"Suite: x")
        (d / "InRelease").write_bytes(signed)
        # a republished file gets a newer Last-Modified (HTTP dates have 1 s resolution)
        self.clock += 10
        os.utime(d / "InRelease", (self.clock, self.clock))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def served_archive(tmp_path: Path, home: Path) -> Iterator[tuple[Archive, str]]:
    """An empty archive under ``tmp_path``/www and its URI (http://127.0.0.1:port/debian)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Archive(root, home), f"http://127.0.0.1:{server.server_address[1]}/debian"
    finally:
        server.shutdown()
        server.server_close()


def publish_with_labels(pub: Publisher, uri: str, installed: dict[str, str],
                        inputs_of: dict[str, str] | None = None,
                        per_cell: dict[str, dict[str, str]] | None = None) -> None:
    """A release whose images carry the labels the fast path reads."""
    from orchestrator.release.label import inputs_hash
    from orchestrator.release.push import do_push
    from tests.fakes import publish_harness as ph
    from tests.fakes.fake_engine import synthetic_image

    run = pub.run()
    keys = run.label_keys
    sources = apt_sources.to_label([AptSource(uri, "bookworm", ("main",), SIGNED),
                                    AptSource(uri, "bookworm-security", ("main",), SIGNED)])
    for img in run.plan.images:
        base = run.lock.base(img.distro).digest or ""
        labels = {keys.fingerprint: ph.fingerprint(img.id, "1"),
                  keys.packages: " ".join(
                      f"{k}={v}" for k, v in (per_cell or {}).get(img.id, installed).items()),
                  keys.apt_sources: sources,
                  keys.inputs: (inputs_of or {}).get(img.id)
                  or inputs_hash(run, img, base)}
        image = synthetic_image(img.id, "1", labels)
        run.engine.load(run.candidate_ref(img.id), image)
        st = run.load_state(img.id)
        st.image_id = st.tested_image_id = image.id
        run.save_state(st)
    do_push(run, all_or_nothing=False)
    assert all(c.status.value == "ok" for c in run.report.cells.values()), run.report.table()


@contextmanager
def publisher(tmp_path: Path, archive: Archive, keyrings: Path) -> Iterator[Publisher]:
    """Publish runs of the four bookworm source cells to a fake registry, with the archive's
    two suites published (netbase 6.4, libssl3 3.0.20-1) and ``keyrings`` configured as
    sources.apt_keyrings; the caller sets settings (work and cache dirs under tmp_path)."""
    from orchestrator.config import loader
    from orchestrator.lock import lockfile

    archive.publish("bookworm", {"netbase": "6.4", "libssl3": "3.0.20-1"})
    archive.publish("bookworm-security", {"libssl3": "3.0.20-1"}, label="Debian-Security")
    with FakeRegistry() as reg:
        cfg = write_config(tmp_path / "cfg", reg.address, "team/python")
        text = cfg.read_text()
        cfg.write_text(text.replace("sources:\n", f"sources:\n  apt_keyrings: [{keyrings}]\n", 1)
                       if "sources:\n" in text else
                       text + f"sources:\n  apt_keyrings: [{keyrings}]\n")
        loaded = loader.load(cfg, dt.date(2026, 11, 21))
        render.write(loaded, render.render_all(loaded, lockfile.read(loaded)))
        yield Publisher(cfg, reg.address, tmp_path / "work")


def use_dirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings as the unit tests' (2026-11-21), work and cache dirs under ``tmp_path``."""
    from orchestrator import settings

    st = settings.get()
    monkeypatch.setattr(settings, "_settings", dataclasses.replace(
        st, today=dt.date(2026, 11, 21), revision="rev", work_dir=tmp_path / "work",
        cache_dir=tmp_path / "cache"))


def run_nightly(pub: Publisher, full: bool = False,
                now: dt.datetime = NOW) -> tuple[HarnessRun, OutdatedReport]:
    """A nightly's fast path over ``pub``'s plan, Valid-Until checked as of ``now``."""
    run = pub.run()
    for c in run.report.cells.values():  # as start_run leaves them: nothing done yet
        c.status = type(c.status)("skipped")
    checks = nightly.fast_path(run, full, now=clock(now))
    return run, checks

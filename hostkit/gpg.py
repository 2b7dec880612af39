"""gpg with a temporary GNUPGHOME: offline, nothing from the host's keyrings, agent stopped."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from hostkit.common import HostkitError, Run
from orchestrator import runner
from orchestrator.apt import gpg_status
from orchestrator.errors import CommandError


class SignatureRefused(HostkitError):
    """gpg checked the signature and the rule refuses it (``verdict`` says why)."""

    def __init__(self, message: str, verdict: gpg_status.Verdict) -> None:
        super().__init__(message)
        self.verdict = verdict


class TempGpg:
    def __init__(self, run: Run = runner.run) -> None:
        self.run = run
        self._tmp = Path(tempfile.mkdtemp(prefix="hostkit-gpg."))
        self.home = self._tmp / "gnupg"
        self.home.mkdir(mode=0o700)

    def __enter__(self) -> TempGpg:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        with contextlib.suppress(CommandError):  # gpg may have spawned an agent for this home
            self.run(["gpgconf", "--homedir", self.home, "--kill", "all"], check=False, timeout=30)
        shutil.rmtree(self._tmp, ignore_errors=True)

    def gpg(self, *args: str | Path, check: bool = True) -> runner.Completed:
        return self.run(["gpg", "--homedir", self.home, "--batch", *args], check=check, timeout=120)

    def import_key(self, path: Path) -> None:
        try:
            self.gpg("--quiet", "--import", path)
        except CommandError:
            raise HostkitError(f"gpg cannot import {path}") from None

    def uid(self, fingerprint: str) -> str | None:
        """The first user id of ``fingerprint``; None when the key is not in this home."""
        res = self.gpg("--with-colons", "--list-keys", fingerprint, check=False)
        if res.returncode != 0:
            return None
        for line in res.stdout.splitlines():
            fields = line.split(":")
            if fields[0] == "uid" and len(fields) > 9:
                return fields[9]
        return ""

    def export(self, fingerprint: str, dst: Path) -> None:
        """The armored public key, written by gpg itself (bytes as `gpg --armor --export`)."""
        self.gpg("--yes", "--armor", "--output", dst, "--export", fingerprint)

    def verify(self, signature: Path, data: Path) -> str:
        """The fingerprint of the (primary) key that made a good signature; HostkitError else,
        also when gpg exits 0 for a signature apt would refuse (gpg_status: an expired or
        revoked key, an expired signature, a weak digest)."""
        res = self.gpg("--status-fd", "1", "--verify", signature, data, check=False)
        if res.returncode != 0:
            raise HostkitError(f"gpg --verify {data.name} failed")
        verdict = gpg_status.judge(res.stdout)
        if verdict.status in gpg_status.REFUSING or verdict.status == "WEAK_DIGEST":
            raise SignatureRefused(f"gpg --verify {data.name}: signature refused: "
                                   f"{verdict.describe()}", verdict)
        for line in res.stdout.splitlines():
            fields = line.split()
            if fields[:2] == ["[GNUPG:]", "VALIDSIG"]:
                return fields[-1]
        raise HostkitError(f"gpg --verify {data.name}: no VALIDSIG status line")

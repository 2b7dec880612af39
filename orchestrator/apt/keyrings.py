"""Keyrings that hold the pinned keys and nothing else.

A key file downloaded from a key server or a PPA may hold more than the key it was fetched
for (a second key, a key someone appended); dearmoring the whole file would trust all of
them. Every keyring the orchestrator writes is instead ``gpg --export FPR...`` of exactly the
pinned fingerprints, out of a temporary GNUPGHOME the file was imported into, and the export
is listed again to prove it holds those keys and no other. A pin is a primary key's
fingerprint or a subkey's (a release manager's signing subkey, as signature checks take it):
a subkey pin exports the primary key that carries it. A pinned key that is missing, expired
or revoked (a subkey: or its primary) is an error naming the fingerprint and where the file
came from.
(stages/scripts/pinned-keyring.sh does the same inside a build.)
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from orchestrator import runner
from orchestrator.apt import gpg_status
from orchestrator.errors import ArchiveError, CommandError


@contextlib.contextmanager
def _gnupg_home() -> Iterator[Path]:
    """A throwaway GNUPGHOME (0700); any agent gpg starts for it is stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="orch-gpg.") as tmp:
        home = Path(tmp) / "gnupg"
        home.mkdir(mode=0o700)
        try:
            yield home
        finally:
            with contextlib.suppress(CommandError):
                runner.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False,
                           timeout=30)


def _gpg(home: Path, *args: str | Path, check: bool = True) -> runner.Completed:
    return runner.run(["gpg", "--homedir", home, "--batch", "--no-tty", *args], check=check,
                      timeout=120)


def _listed(home: Path, *args: str | Path) -> dict[str, str]:
    return gpg_status.primary_keys(_gpg(home, "--with-colons", *args).stdout)


def _check_pins(keys: dict[str, tuple[str, str]], pins: Sequence[str], origin: str) -> list[str]:
    """The primary keys carrying ``pins`` (each a primary or a subkey of ``keys``, usable)."""
    held = sorted({primary for primary, _ in keys.values()})
    for fpr in pins:
        if fpr not in keys:
            raise ArchiveError(f"the key file {origin} does not hold the pinned key {fpr} (it "
                               f"holds {', '.join(held) or 'no key'}); fix: correct the pinned "
                               "fingerprint or the key's URL")
        primary, validity = keys[fpr]
        if validity in gpg_status.UNUSABLE:
            sub = f" (a subkey of {primary})" if primary != fpr else ""
            raise ArchiveError(f"the pinned key {fpr}{sub} from {origin} "
                               f"{gpg_status.UNUSABLE[validity]}; fix: pin the key its owner "
                               "signs with now (or fetch its refreshed copy)")
    return sorted({keys[fpr][0] for fpr in pins})


def export_pinned(armored: bytes, fingerprints: Sequence[str], origin: str) -> bytes:
    """The binary keyring (as ``gpg --export``) holding exactly the primary keys that
    ``fingerprints`` (primary keys or subkeys) name, of the key file ``armored``, fetched from
    ``origin`` (a URL, for the error)."""
    pins = sorted({f.upper() for f in fingerprints})
    try:
        with _gnupg_home() as home:
            src, out = home.parent / "keys.asc", home.parent / "pinned.gpg"
            src.write_bytes(armored)
            _gpg(home, "--quiet", "--import", src, check=False)  # judged by what arrived
            listing = _gpg(home, "--with-colons", "--with-subkey-fingerprint", "--list-keys")
            primaries = _check_pins(gpg_status.pinnable_keys(listing.stdout), pins, origin)
            _gpg(home, "--yes", "--output", out, "--export", *pins)
            exported = _listed(home, "--show-keys", out)
            if sorted(exported) != primaries:
                raise ArchiveError(f"the keyring exported from {origin} holds "
                                   f"{', '.join(sorted(exported)) or 'no key'}, not exactly "
                                   f"{', '.join(primaries)}")
            return out.read_bytes()
    except CommandError as exc:
        raise ArchiveError(f"the key file {origin}: gpg failed: {exc.message.splitlines()[-1]}; "
                           "fix: install gnupg") from exc


def export_block(armored: str, origin: str) -> bytes:
    """The keyring of an inline key block (deb822 ``Signed-By``): the block is the pin, so
    exactly the primary keys it shows, each checked as ``export_pinned`` checks a pin."""
    try:
        with _gnupg_home() as home:
            src = home.parent / "block.asc"
            src.write_text(armored)
            fprs = list(_listed(home, "--show-keys", src))
    except CommandError as exc:
        raise ArchiveError(f"{origin}: not an OpenPGP key block ({exc.message.splitlines()[-1]})"
                           "; fix: correct the Signed-By key block") from exc
    if not fprs:
        raise ArchiveError(f"{origin}: the key block holds no key; fix: correct the Signed-By "
                           "key block")
    return export_pinned(armored.encode(), fprs, origin)

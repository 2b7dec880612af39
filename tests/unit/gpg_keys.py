"""Throwaway OpenPGP keys for the signature tests, made with the real gpg in a temporary
GNUPGHOME: a good key, a key that has EXPIRED (made and used under gpg's
--faked-system-time, a day long, years ago: expired now, without waiting on the clock), a
REVOKED key (it signs from its own home; its public key is published from a second home
that imported its revocation certificate), a second, unrelated key, and two keys whose
primary only certifies and which sign with a subkey: one valid, one whose signing subkey has
expired (made under the faked past time, the primary never expires)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

PAST = "20200101T000000!"  # gpg's --faked-system-time: the "!" freezes the clock there
PAST_SIGN = "20200101T010000!"  # an hour later: the one-day key is still valid


def gpg(home: Path, *args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(["gpg", "--homedir", str(home), "--batch", "--no-tty", *args],
                          input=stdin, capture_output=True, check=True, timeout=60).stdout


def fingerprint(home: Path, uid: str) -> str:
    for line in gpg(home, "--with-colons", "--list-keys", uid).decode().splitlines():
        if line.startswith("fpr:"):
            return line.split(":")[9]
    raise AssertionError(f"no key {uid}")


@dataclass(frozen=True)
class Key:
    home: Path
    fpr: str
    faked: str = ""  # sign under this faked time (the expired key)
    public: Path | None = None  # the home its public key is exported from (the revoked key)
    subkey: str = ""  # the signing subkey's fingerprint (the primary only certifies)

    def _time(self) -> list[str]:
        return ["--faked-system-time", self.faked] if self.faked else []

    def clearsign(self, text: str) -> bytes:
        return gpg(self.home, *self._time(), "--local-user", self.fpr, "--clearsign",
                   stdin=text.encode())

    def detach_sign(self, data: bytes) -> bytes:
        return gpg(self.home, *self._time(), "--local-user", self.fpr, "--detach-sign",
                   stdin=data)

    def armored(self) -> bytes:
        return gpg(self.public or self.home, "--armor", "--export", self.fpr)

    def keyring(self) -> bytes:
        """A binary keyring of this key alone (what apt's signed-by files are)."""
        return gpg(self.public or self.home, "--export", self.fpr)


@dataclass(frozen=True)
class Keys:
    good: Key
    expired: Key
    revoked: Key
    other: Key
    subkeyed: Key  # signs with a valid subkey
    stale_subkey: Key  # its signing subkey has expired


def _gen(home: Path, uid: str, expire: str = "never", faked: str = "") -> Key:
    time = ["--faked-system-time", faked] if faked else []
    gpg(home, *time, "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", expire)
    return Key(home, fingerprint(home, uid), PAST_SIGN if faked else "")


def _subkeyed(home: Path, uid: str, expire: str = "never", faked: str = "") -> Key:
    """A certify-only primary (never expires) with a signing subkey that expires ``expire``."""
    time = ["--faked-system-time", faked] if faked else []
    gpg(home, *time, "--passphrase", "", "--quick-gen-key", uid, "ed25519", "cert", "never")
    primary = fingerprint(home, uid)
    gpg(home, *time, "--passphrase", "", "--quick-add-key", primary, "ed25519", "sign", expire)
    subs = [line.split(":")[9] for line in
            gpg(home, "--with-colons", "--with-subkey-fingerprint", "--list-keys", primary)
            .decode().splitlines() if line.startswith("fpr:")][1:]
    return Key(home, primary, PAST_SIGN if faked else "", subkey=subs[0])


def _revoked(key: Key, public: Path) -> Key:
    """``key`` as the world sees it once its revocation certificate (the one gpg made with the
    key) is published; it still signs from its own home."""
    public.mkdir(mode=0o700)
    gpg(public, "--import", stdin=key.armored())
    cert = (key.home / "openpgp-revocs.d" / f"{key.fpr}.rev").read_text()
    gpg(public, "--import", stdin=cert.replace(":-----BEGIN", "-----BEGIN").encode())
    return Key(key.home, key.fpr, public=public)


def make_keys(home: Path) -> Keys:
    home.chmod(0o700)
    good = _gen(home, "Good Archive <good@localhost>")
    expired = _gen(home, "Expired Archive <expired@localhost>", "1d", PAST)
    revoked = _revoked(_gen(home, "Revoked Archive <revoked@localhost>"),
                       home.with_name(home.name + "-revoked"))
    other = _gen(home, "Other Key <other@localhost>")
    subkeyed = _subkeyed(home, "Subkey Signer <subkey@localhost>")
    stale = _subkeyed(home, "Stale Subkey <stale@localhost>", "1d", PAST)
    return Keys(good, expired, revoked, other, subkeyed, stale)


def stop_agent(home: Path) -> None:
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False,
                   capture_output=True, timeout=60)

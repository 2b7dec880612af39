"""An OpenPGP signature judged as apt judges it, from gpgv's (or gpg's) ``--status-fd`` lines;
and the keys (primary, and subkeys a pin may name) a ``gpg --with-colons`` listing shows.
Pure: no process, no file.

gpgv exits 0 for a signature by an expired key (status ``EXPKEYSIG``, with a ``VALIDSIG``),
so its exit code says nothing about whether apt would take the file. The rule here, for every
signature check the orchestrator makes (archive InRelease/Release files; stages/scripts/
verify-signature.sh is the same rule in sh, for the checks that run inside a build):

- accepted only with a ``GOODSIG`` and its ``VALIDSIG`` (the fingerprint) by a key of the
  keyring (and, when ``allowed`` is given, by one of those primary or signing fingerprints);
- refused when any signature on the file is ``EXPKEYSIG``, ``REVKEYSIG``, ``EXPSIG``,
  ``BADSIG`` or ``ERRSIG``, or its digest is one apt no longer trusts (MD5, SHA1, RIPEMD160:
  ``WEAK_DIGEST``): stricter than apt, which lets a good signature carry an expired key's
  second signature;
- a second signature by a key that is not in the keyring at all (``NO_PUBKEY`` and the
  ``ERRSIG`` it explains) is ignored when a good one is there, as apt and sqv do: archives
  sign with the next release's key before hosts' keyrings have it (a key rotation must not
  stop the nightly). Without a good signature it is the refusal.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

PREFIX = "[GNUPG:]"

# status -> what it means (the reason part of the one-line error)
REFUSING: dict[str, str] = {
    "EXPKEYSIG": "the signing key has expired",
    "REVKEYSIG": "the signing key has been revoked",
    "EXPSIG": "the signature has expired",
    "BADSIG": "the signature does not match the signed data",
    "ERRSIG": "the signature could not be checked",
    "NO_PUBKEY": "the signing key is not in the keyring",
}
# OpenPGP hash algorithm ids apt treats as untrusted (its methods/gpgv.cc Digests table)
WEAK_DIGESTS: dict[str, str] = {"1": "MD5", "2": "SHA1", "3": "RIPEMD160"}
# validity (field 2 of a pub/sub record) -> why the key cannot be pinned
UNUSABLE: dict[str, str] = {"e": "has expired", "r": "has been revoked", "i": "is invalid",
                            "d": "is disabled"}


@dataclass(frozen=True)
class Verdict:
    good: bool
    status: str = ""  # what refused it: a REFUSING key, WEAK_DIGEST, NOT_PINNED, NODATA, NO_GOODSIG
    key: str = ""  # the fingerprint (or long key id) that status names; the signer when good
    reason: str = ""
    signers: tuple[str, ...] = ()  # primary fingerprints of the good signatures

    def describe(self) -> str:
        """``EXPKEYSIG by <fingerprint> (the signing key has expired)``."""
        by = f" by {self.key}" if self.key else ""
        return f"{self.status}{by} ({self.reason})"


@dataclass(frozen=True)
class _ValidSig:
    signing: str  # fingerprint of the key that made it (a subkey or the primary)
    primary: str
    digest: str  # OpenPGP hash algorithm id


def _lines(status: str) -> list[list[str]]:
    return [line.split()[1:] for line in status.splitlines()
            if line.startswith(PREFIX + " ") and len(line.split()) > 1]


def _same_key(keyid: str, fingerprint: str) -> bool:
    """GOODSIG and friends name a long key id (16 hex) or a fingerprint."""
    k, f = keyid.upper(), fingerprint.upper()
    return bool(k) and (k == f or (len(k) == 16 and f.endswith(k)))


def _name(keyid: str, valid: list[_ValidSig], fallback: str = "") -> str:
    """The primary fingerprint behind ``keyid`` when a VALIDSIG says it, else what we have."""
    for v in valid:
        if _same_key(keyid, v.signing) or _same_key(keyid, v.primary):
            return v.primary
    return fallback if fallback and fallback != "-" else keyid


def _refusal(words: list[list[str]], valid: list[_ValidSig], unknown_ok: bool = False
             ) -> Verdict | None:
    """The first signature that refuses the file (NO_PUBKEY over the ERRSIG it explains);
    ``unknown_ok``: a signature by a key the keyring does not have is no refusal."""
    missing = {w[1].upper() for w in words if w[0] == "NO_PUBKEY" and len(w) > 1}
    for w in words:
        status, arg = w[0], (w[1] if len(w) > 1 else "")
        if status == "ERRSIG" and arg.upper() in missing:
            status = "NO_PUBKEY"
        if status == "NO_PUBKEY" and unknown_ok:
            continue
        if status in REFUSING:
            fpr = w[7] if status == "ERRSIG" and len(w) > 7 else ""
            return Verdict(False, status, _name(arg, valid, fpr), REFUSING[status])
    for v in valid:
        if v.digest in WEAK_DIGESTS:
            return Verdict(False, "WEAK_DIGEST", v.primary,
                           f"made with {WEAK_DIGESTS[v.digest]}, a digest apt no longer trusts")
    return None


def judge(status: str, allowed: Collection[str] = ()) -> Verdict:
    """The verdict on the ``--status-fd`` output ``status`` of one verification; ``allowed``:
    the fingerprints (primary or signing) a good signature must be by (empty: any key of the
    keyring gpgv was given)."""
    words = _lines(status)
    valid = [_ValidSig(w[1].upper(), (w[10] if len(w) > 10 else w[1]).upper(), w[8])
             for w in words if w[0] == "VALIDSIG" and len(w) > 8]
    goods = [w[1] for w in words if w[0] == "GOODSIG" and len(w) > 1]
    good = [v for v in valid if any(_same_key(g, v.signing) for g in goods)]
    pins = {a.upper() for a in allowed}
    pinned = [v for v in good if not pins or v.primary in pins or v.signing in pins]
    refused = _refusal(words, valid, unknown_ok=bool(pinned))
    if refused is not None:
        return refused
    if pinned:
        signers = tuple(dict.fromkeys(v.primary for v in pinned))
        return Verdict(True, key=signers[0], signers=signers)
    if good:
        return Verdict(False, "NOT_PINNED", good[0].primary,
                       f"a good signature, but not by the pinned {', '.join(sorted(pins))}")
    if any(w[0] == "NODATA" for w in words):
        return Verdict(False, "NODATA", "", "no signature in the file (not signed, or not "
                       "what the server should have sent)")
    return Verdict(False, "NO_GOODSIG", "", "gpgv reported no good signature")


def primary_keys(colons: str) -> dict[str, str]:
    """{primary fingerprint: validity} of a ``gpg --with-colons`` key listing (``--list-keys``
    or ``--show-keys``); validity is field 2 of the ``pub`` record: ``e`` expired, ``r``
    revoked, ``i`` invalid, ``d`` disabled; anything else is usable."""
    out: dict[str, str] = {}
    validity: str | None = None
    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] == "pub":
            validity = fields[1] if len(fields) > 1 else ""
        elif fields[0] == "fpr" and validity is not None and len(fields) > 9:
            out[fields[9].upper()] = validity
            validity = None
        elif fields[0] in ("sub", "sec", "ssb", "uid"):
            validity = None
    return out


def pinnable_keys(colons: str) -> dict[str, tuple[str, str]]:
    """{fingerprint: (primary fingerprint, validity)} of every primary key and subkey of a
    ``gpg --with-colons`` listing: a pin may name a primary key or a (signing) subkey, as
    ``judge`` and verify-signature.sh take either; a keyring for a subkey pin holds the
    primary key that carries it. A subkey's validity is its primary's when that one is
    unusable (an expired or revoked primary takes its subkeys with it), else its own."""
    out: dict[str, tuple[str, str]] = {}
    primary = primary_validity = ""
    record: tuple[str, str] | None = None  # (pub|sub, validity) whose fpr comes next
    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] in ("pub", "sub"):
            record = (fields[0], fields[1] if len(fields) > 1 else "")
            if fields[0] == "pub":
                primary = ""
        elif fields[0] == "fpr" and record is not None and len(fields) > 9:
            fpr, (kind, validity) = fields[9].upper(), record
            if kind == "pub":
                primary, primary_validity = fpr, validity
                out[fpr] = (fpr, validity)
            elif primary:
                out[fpr] = (primary, primary_validity if primary_validity in UNUSABLE else validity)
            record = None
        elif fields[0] in ("sec", "ssb", "uid", "uat"):
            record = None
    return out

"""Signatures judged as apt judges them and keyrings of the pinned keys alone, with the real
gpg and gpgv (keys made here, in a temporary GNUPGHOME; tests/unit/gpg_keys.py): the archive
client behind `outdated`, the deadsnakes and inline Signed-By keyrings it writes, and the two
scripts the image builds run (stages/scripts/pinned-keyring.sh, verify-signature.sh)."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hostkit.common import HostkitError
from hostkit.gpg import TempGpg
from orchestrator.apt import keyrings, sources
from orchestrator.apt.gpg_status import judge, primary_keys
from orchestrator.apt.index import ArchiveIndex, Fetch, Response
from orchestrator.apt.sources import AptSource
from orchestrator.config import loader
from orchestrator.errors import ArchiveError, ExitCode
from orchestrator.release import apt_check
from tests.fakes.publish_harness import FEATURES
from tests.unit.gpg_keys import Key, Keys, gpg, make_keys, stop_agent
from tests.unit.helpers import REPO

SCRIPTS = REPO / "stages" / "scripts"
URI = "http://127.0.0.1:9/debian"
KEYRING = "/usr/share/keyrings/test-archive-keyring.gpg"
SRC = AptSource(URI, "bookworm", ("main",), KEYRING)
RELEASE = ("Origin: Debian\nLabel: Debian\nSuite: bookworm\nCodename: bookworm\n"
           "Date: Mon, 30 Nov 2026 00:00:00 UTC\nSHA256:\n")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    made = make_keys(tmp_path_factory.mktemp("gnupg"))
    yield made
    # every home an agent ran in: the keys' own and the revoked key's public view
    for home in {made.good.home, *(k.public for k in (made.revoked,) if k.public is not None)}:
        stop_agent(home)


def served(files: dict[str, bytes]) -> Fetch:
    def fetch(url: str, headers: dict[str, str]) -> Response:
        return Response(200, files[url]) if url in files else Response(404)
    return fetch


def index(tmp_path: Path, keyring: bytes, files: dict[str, bytes]) -> ArchiveIndex:
    ring = tmp_path / "keyrings" / "test-archive-keyring.gpg"
    ring.parent.mkdir(parents=True, exist_ok=True)
    ring.write_bytes(keyring)
    return ArchiveIndex(tmp_path / "cache", lambda s: ring, fetch=served(files))


def inrelease(signer: Key) -> dict[str, bytes]:
    return {f"{URI}/dists/bookworm/InRelease": signer.clearsign(RELEASE)}


def refused(exc: pytest.ExceptionInfo[ArchiveError], status: str, key: Key) -> str:
    """The one line a refused signature stops with: the archive, the key, the status, the fix."""
    text = str(exc.value)
    assert "\n" not in text
    assert text.startswith(f"{URI} bookworm main: {URI}/dists/bookworm/")
    assert f"{status} by {key.fpr}" in text and "; fix: " in text
    assert exc.value.exit_code is ExitCode.TOOL
    return text


# ----------------------------------------------------------------------------- the archive


@pytest.mark.spawns("gpg", "gpgv")
def test_inrelease_by_the_keyring_key_is_accepted(keys: Keys, tmp_path: Path) -> None:
    rel = index(tmp_path, keys.good.keyring(), inrelease(keys.good)).release(SRC)
    assert rel.verified and rel.name == "bookworm"


@pytest.mark.spawns("gpg", "gpgv")
def test_another_suites_signed_release_is_refused_in_its_place(keys: Keys, tmp_path: Path) -> None:
    """bookworm's Release, validly signed by the same archive key and without a Valid-Until,
    served for bookworm-security would hide every security update: refused, naming both. A
    suite its Release names as Suite (not Codename) is accepted, as Ubuntu's noble-security."""
    signed = keys.good.clearsign(RELEASE)
    security = AptSource(URI, "bookworm-security", ("main",), KEYRING)
    files = {f"{URI}/dists/bookworm-security/InRelease": signed}
    with pytest.raises(ArchiveError) as exc:
        index(tmp_path, keys.good.keyring(), files).release(security)
    assert str(exc.value) == (
        f"{URI} bookworm-security main: its Release is for bookworm (Codename/Suite), not "
        "bookworm-security: another suite's signed Release served in its place (a misconfigured "
        "mirror, or a replay); fix: point the sources at an archive that serves this suite")
    noble = RELEASE.replace("Suite: bookworm\nCodename: bookworm", "Suite: noble-security\nCodename: noble")
    files = {f"{URI}/dists/noble-security/InRelease": keys.good.clearsign(noble)}
    rel = index(tmp_path / "n", keys.good.keyring(), files).release(
        AptSource(URI, "noble-security", ("main",), KEYRING))
    assert rel.verified and rel.security


@pytest.mark.spawns("gpg", "gpgv")
def test_inrelease_by_expired_key_is_refused(keys: Keys, tmp_path: Path) -> None:
    files = inrelease(keys.expired)
    # gpgv itself takes it: exit 0 (status EXPKEYSIG); apt refuses it, so must we
    (tmp_path / "k.gpg").write_bytes(keys.expired.keyring())
    (tmp_path / "InRelease").write_bytes(files[f"{URI}/dists/bookworm/InRelease"])
    gpgv = subprocess.run(["gpgv", "--status-fd", "1", "--keyring", str(tmp_path / "k.gpg"),
                           str(tmp_path / "InRelease")], capture_output=True, text=True, check=False,
                          timeout=60)
    assert gpgv.returncode == 0 and "[GNUPG:] EXPKEYSIG " in gpgv.stdout
    with pytest.raises(ArchiveError) as exc:
        index(tmp_path, keys.expired.keyring(), files).release(SRC)
    assert "(the signing key has expired)" in refused(exc, "EXPKEYSIG", keys.expired)


FORGED = "Suite: forged\nValid-Until: Mon, 01 Jan 2001 00:00:00 UTC\n"


@pytest.mark.spawns("gpg", "gpgv")
@pytest.mark.parametrize("where", ["before", "after"])
def test_unsigned_text_around_a_signed_inrelease_is_never_read(keys: Keys, tmp_path: Path,
                                                              where: str) -> None:
    """gpgv verifies the signed part and ignores text outside the armour (exit 0): the fields
    come from what gpgv says it verified (--output), never from the file as served."""
    signed = inrelease(keys.good)[f"{URI}/dists/bookworm/InRelease"]
    data = FORGED.encode() + b"\n" + signed if where == "before" else signed + FORGED.encode()
    rel = index(tmp_path, keys.good.keyring(), {f"{URI}/dists/bookworm/InRelease": data}).release(SRC)
    assert rel.verified and rel.fields["Suite"] == "bookworm" and "Valid-Until" not in rel.fields


@pytest.mark.spawns("gpg", "gpgv")
def test_an_inrelease_of_two_signed_messages_is_refused(keys: Keys, tmp_path: Path) -> None:
    """Two clearsigned messages in one file, both by the archive's key (an old Release and a
    new one): gpgv reports a good signature, then fails (exit 2, "multiple plaintexts");
    apt refuses such a file, so must we."""
    first = inrelease(keys.good)[f"{URI}/dists/bookworm/InRelease"]
    data = first + keys.good.clearsign(FORGED)
    with pytest.raises(ArchiveError, match=r"EXIT2 by .*gpgv failed"):
        index(tmp_path, keys.good.keyring(), {f"{URI}/dists/bookworm/InRelease": data}).release(SRC)


@pytest.mark.spawns("gpg", "gpgv")
def test_release_gpg_by_expired_key_is_refused(keys: Keys, tmp_path: Path) -> None:
    """No InRelease: Release + its detached Release.gpg, the same rule."""
    base = f"{URI}/dists/bookworm"
    files = {f"{base}/Release": RELEASE.encode(),
             f"{base}/Release.gpg": keys.expired.detach_sign(RELEASE.encode())}
    with pytest.raises(ArchiveError) as exc:
        index(tmp_path, keys.expired.keyring(), files).release(SRC)
    assert f"{base}/Release.gpg: the signature does not verify" in refused(exc, "EXPKEYSIG",
                                                                           keys.expired)


@pytest.mark.spawns("gpg", "gpgv")
def test_inrelease_by_revoked_key_is_refused(keys: Keys, tmp_path: Path) -> None:
    with pytest.raises(ArchiveError) as exc:
        index(tmp_path, keys.revoked.keyring(), inrelease(keys.revoked)).release(SRC)
    assert "(the signing key has been revoked)" in refused(exc, "REVKEYSIG", keys.revoked)


@pytest.mark.spawns("gpg", "gpgv")
def test_inrelease_signed_by_the_keyring_key_and_an_unknown_one_is_accepted(
        keys: Keys, tmp_path: Path) -> None:
    """A key rotation: the archive signs with its current key and the next one, the keyring holds
    one of them. apt accepts it (one good signature; the missing key's is only a warning)
    although gpgv exits 2 for the NO_PUBKEY."""
    both = gpg(keys.good.home, "--local-user", keys.good.fpr, "--local-user", keys.other.fpr,
               "--clearsign", stdin=RELEASE.encode())
    url = f"{URI}/dists/bookworm/InRelease"
    gpgv = subprocess.run(["gpgv", "--status-fd", "1", "--keyring", "/dev/null", "-"],
                          input=both, capture_output=True, check=False, timeout=60)
    assert gpgv.stdout.count(b"NO_PUBKEY") == 2  # two signatures in the message
    rel = index(tmp_path, keys.good.keyring(), {url: both}).release(SRC)
    assert rel.verified and rel.name == "bookworm"
    # ... and the other way round: the good signature's key missing, only the unknown one's
    with pytest.raises(ArchiveError, match="NO_PUBKEY"):
        index(tmp_path / "other", keys.revoked.keyring(), {url: both}).release(SRC)


@pytest.mark.spawns("gpg", "gpgv")
def test_inrelease_by_a_key_outside_the_keyring_is_refused(keys: Keys, tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match=rf"NO_PUBKEY by {keys.other.fpr[-16:]} \(the signing "
                       r"key is not in the keyring\); fix: update the keyring"):
        index(tmp_path, keys.good.keyring(), inrelease(keys.other)).release(SRC)


# ----------------------------------------------------------------------------- keyrings


def shown(keyring: bytes | Path, tmp_path: Path) -> list[str]:
    """The primary fingerprints a keyring holds."""
    path = keyring if isinstance(keyring, Path) else tmp_path / "shown.gpg"
    if not isinstance(keyring, Path):
        path.write_bytes(keyring)
    home = tmp_path / "show-home"
    home.mkdir(mode=0o700, exist_ok=True)
    return list(primary_keys(gpg(home, "--with-colons", "--show-keys", str(path)).decode()))


def deadsnakes_resolver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fpr: str,
                        body: bytes) -> Callable[[AptSource], Path | None]:
    loaded = loader.load(FEATURES / "images.yaml", dt.date(2026, 11, 21))
    src = loaded.config.sources
    ds = src.deadsnakes.model_copy(update={"key_fingerprint": fpr,
                                           "key_url": "http://keys.test/{fingerprint}.asc"})
    cfg = loaded.config.model_copy(update={"sources": src.model_copy(update={"deadsnakes": ds})})
    monkeypatch.setattr(apt_check, "http_fetch", lambda url, headers: Response(200, body))
    return apt_check.keyring_resolver(cfg, "ubuntu", tmp_path / "cache")


DEADSNAKES = AptSource("https://ppa.test/deadsnakes/ppa/ubuntu", "noble", ("main",),
                       "/etc/apt/keyrings/deadsnakes.gpg")


@pytest.mark.spawns("gpg", "gpgconf", "gpgv")
def test_deadsnakes_keyring_holds_only_the_pinned_key_of_a_file_with_a_second_key(
        keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    both = keys.other.armored() + keys.good.armored()
    ring = deadsnakes_resolver(tmp_path, monkeypatch, keys.good.fpr, both)(DEADSNAKES)
    assert ring is not None
    assert shown(ring, tmp_path) == [keys.good.fpr]
    # an InRelease signed by the second key is refused, by the pinned one accepted
    with pytest.raises(ArchiveError, match="NO_PUBKEY"):
        index(tmp_path / "a", ring.read_bytes(), inrelease(keys.other)).release(SRC)
    assert index(tmp_path / "b", ring.read_bytes(), inrelease(keys.good)).release(SRC).verified


@pytest.mark.spawns("gpg", "gpgconf")
def test_deadsnakes_key_file_without_the_pinned_key_fails_naming_fingerprint_and_url(
        keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    resolve = deadsnakes_resolver(tmp_path, monkeypatch, keys.good.fpr, keys.other.armored())
    with pytest.raises(ArchiveError) as exc:
        resolve(DEADSNAKES)
    assert str(exc.value) == (
        f"the key file http://keys.test/{keys.good.fpr}.asc does not hold the pinned key "
        f"{keys.good.fpr} (it holds {keys.other.fpr}); fix: correct the pinned fingerprint or "
        "the key's URL (sources.deadsnakes.key_fingerprint, key_url)")


@pytest.mark.spawns("gpg", "gpgconf")
def test_deadsnakes_key_that_has_expired_is_refused(
        keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    resolve = deadsnakes_resolver(tmp_path, monkeypatch, keys.expired.fpr, keys.expired.armored())
    with pytest.raises(ArchiveError, match=rf"^the pinned key {keys.expired.fpr} from "
                       rf"http://keys\.test/{keys.expired.fpr}\.asc has expired; fix: "):
        resolve(DEADSNAKES)
    assert not (tmp_path / "cache" / "keyrings").exists() or \
        not list((tmp_path / "cache" / "keyrings").glob("*.gpg"))


@pytest.mark.spawns("gpg", "gpgconf")
def test_a_revoked_pinned_key_is_refused(keys: Keys) -> None:
    with pytest.raises(ArchiveError, match=rf"^the pinned key {keys.revoked.fpr} from u has "
                       "been revoked"):
        keyrings.export_pinned(keys.revoked.armored(), [keys.revoked.fpr], "u")


@pytest.mark.spawns("gpg", "gpgconf", "gpgv")
def test_an_inline_signed_by_key_block_checks_the_archive(keys: Keys, tmp_path: Path) -> None:
    block = keys.good.armored().decode().strip().splitlines()
    text = ("Types: deb\nURIs: " + URI + "\nSuites: bookworm\nComponents: main\nSigned-By:\n"
            + "".join(f" {line or '.'}\n" for line in block))
    (src,) = sources.parse_deb822(text)
    assert src.signed_by == "inline" and src.signed_by_key.startswith("-----BEGIN PGP")
    assert sources.from_label(sources.to_label([src])) == [src]
    loaded = loader.load(FEATURES / "images.yaml", dt.date(2026, 11, 21))
    resolve = apt_check.keyring_resolver(loaded.config, "debian", tmp_path / "cache")
    ring = resolve(src)
    assert ring is not None and shown(ring, tmp_path) == [keys.good.fpr]
    ok = ArchiveIndex(tmp_path / "c1", resolve, fetch=served(inrelease(keys.good)))
    assert ok.release(src).verified
    bad = ArchiveIndex(tmp_path / "c2", resolve, fetch=served(inrelease(keys.other)))
    with pytest.raises(ArchiveError, match="NO_PUBKEY"):
        bad.release(src)


# ----------------------------------------------------------------------------- in the build


def script(name: str, *args: str | Path,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([shutil.which("sh") or "/bin/sh", str(SCRIPTS / name), *map(str, args)],
                          capture_output=True, text=True, check=False, timeout=60, env=env)


@pytest.mark.spawns("gpg", "sh")
def test_build_keyring_holds_only_the_pinned_key(keys: Keys, tmp_path: Path) -> None:
    (tmp_path / "key.asc").write_bytes(keys.other.armored() + keys.good.armored())
    res = script("pinned-keyring.sh", tmp_path / "key.asc", "http://k/x", tmp_path / "k.gpg",
                 keys.good.fpr)
    assert (res.returncode, res.stderr) == (0, "")
    assert shown(tmp_path / "k.gpg", tmp_path) == [keys.good.fpr]


@pytest.mark.spawns("gpg", "sh")
def test_build_keyring_without_the_pinned_key_fails_in_one_line(keys: Keys, tmp_path: Path) -> None:
    (tmp_path / "key.asc").write_bytes(keys.other.armored())
    res = script("pinned-keyring.sh", tmp_path / "key.asc", "http://k/x?a&b", tmp_path / "k.gpg",
                 keys.good.fpr)
    assert res.returncode == 1 and not (tmp_path / "k.gpg").exists()
    assert res.stderr == (f"pinned-keyring.sh: the key file http://k/x?a&b does not hold the pinned "
                          f"key {keys.good.fpr} (it holds {keys.other.fpr}); fix: correct the "
                          "pinned fingerprint or the key's URL\n")


@pytest.mark.spawns("gpg", "sh")
@pytest.mark.parametrize(("which", "status"), [("expired", "has expired"),
                                               ("revoked", "has been revoked")])
def test_build_keyring_of_an_expired_or_revoked_pinned_key_fails(
        keys: Keys, tmp_path: Path, which: str, status: str) -> None:
    key: Key = getattr(keys, which)
    (tmp_path / "key.asc").write_bytes(key.armored())
    res = script("pinned-keyring.sh", tmp_path / "key.asc", "http://k/x", tmp_path / "k.gpg",
                 key.fpr)
    assert res.returncode == 1
    assert res.stderr.startswith(f"pinned-keyring.sh: the pinned key {key.fpr} from http://k/x "
                                 f"{status}; fix: ")


def verify(tmp_path: Path, keyring: bytes, pin: str, *signers: Key) -> subprocess.CompletedProcess[str]:
    """verify-signature.sh on data that ``signers`` signed (one detached signature each, in one
    file: gpgv checks every one)."""
    data = b"Python-3.13.5.tar.xz, as released\n"
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "data").write_bytes(data)
    (tmp_path / "data.asc").write_bytes(b"".join(signer.detach_sign(data) for signer in signers))
    (tmp_path / "ring.gpg").write_bytes(keyring)
    return script("verify-signature.sh", tmp_path / "ring.gpg", pin, "https://x/data.asc",
                  tmp_path / "data.asc", tmp_path / "data")


@pytest.mark.spawns("gpg", "sh")
def test_tarball_signature_by_the_pinned_key_is_accepted_in_the_build(keys: Keys,
                                                                      tmp_path: Path) -> None:
    res = verify(tmp_path, keys.good.keyring(), keys.good.fpr, keys.good)
    assert (res.returncode, res.stderr) == (0, "")


@pytest.mark.spawns("gpg", "sh")
def test_verify_signature_needs_the_data_a_detached_signature_signs(keys: Keys,
                                                                   tmp_path: Path) -> None:
    """Without DATA gpgv takes any clearsigned (or inline-signed) message by the pinned key as
    good, whatever it says: the script only judges a detached signature of DATA (the one way
    the build calls it). Given DATA, a signed message in SIGNATURE's place is no signature of
    it."""
    (tmp_path / "ring.gpg").write_bytes(keys.good.keyring())
    (tmp_path / "other.asc").write_bytes(keys.good.clearsign("something else the key signed\n"))
    (tmp_path / "data").write_bytes(b"Python-3.13.5.tar.xz, as released\n")
    res = script("verify-signature.sh", tmp_path / "ring.gpg", keys.good.fpr, "https://x/data.asc",
                 tmp_path / "other.asc")
    assert (res.returncode, res.stderr) == (
        2, "usage: verify-signature.sh KEYRING FINGERPRINT WHAT SIGNATURE DATA\n")
    res = script("verify-signature.sh", tmp_path / "ring.gpg", keys.good.fpr, "https://x/data.asc",
                 tmp_path / "other.asc", tmp_path / "data")
    assert res.returncode == 1 and ": NO_GOODSIG (" in res.stderr


@pytest.mark.spawns("gpg", "sh")
def test_tarball_signature_by_expired_key_is_refused_in_the_build(keys: Keys,
                                                                  tmp_path: Path) -> None:
    res = verify(tmp_path, keys.expired.keyring(), keys.expired.fpr, keys.expired)
    assert res.returncode == 1
    assert res.stderr.startswith(
        f"verify-signature.sh: https://x/data.asc: signature refused, pinned key {keys.expired.fpr}: "
        f"EXPKEYSIG by {keys.expired.fpr} (the signing key has expired); fix: pin the key that "
        "signs it now, or a refreshed copy of the pinned key (orchestrator lock)\n")
    assert res.stderr.count("\n") == 1


@pytest.mark.spawns("gpg", "sh")
@pytest.mark.parametrize(("which", "ring", "status"), [
    ("revoked", "revoked", "REVKEYSIG"),
    ("other", "good", "NO_PUBKEY"),  # a keyring of the pinned key alone
])
def test_tarball_signature_by_a_revoked_or_unpinned_key_is_refused_in_the_build(
        keys: Keys, tmp_path: Path, which: str, ring: str, status: str) -> None:
    signer: Key = getattr(keys, which)
    res = verify(tmp_path, getattr(keys, ring).keyring(), keys.good.fpr if ring == "good"
                 else signer.fpr, signer)
    assert res.returncode == 1 and f": {status} by " in res.stderr


@pytest.mark.spawns("gpg", "sh")
def test_tarball_signature_by_a_good_key_that_is_not_the_pinned_one_is_refused(
        keys: Keys, tmp_path: Path) -> None:
    both = keys.good.keyring() + keys.other.keyring()
    res = verify(tmp_path, both, keys.good.fpr, keys.other)
    assert res.returncode == 1 and f"NOT_PINNED by {keys.other.fpr}" in res.stderr


@pytest.mark.spawns("gpg", "gpgv", "sh")
@pytest.mark.parametrize(("signers", "ring", "pin", "refusal"), [
    (("good", "other"), ("good",), "good", ""),  # the next key signs too: not in the keyring
    (("other", "good"), ("good",), "good", ""),
    (("good", "other"), ("good",), "other", "NO_PUBKEY"),  # no good pinned signature beside it
    (("good", "expired"), ("good", "expired"), "good", "EXPKEYSIG"),  # a known bad key refuses
], ids=["pinned-then-unknown", "unknown-then-pinned", "unknown-pinned", "expired-beside"])
def test_a_second_signature_by_a_key_outside_the_keyring_is_ignored_beside_a_pinned_one(
        keys: Keys, tmp_path: Path, signers: tuple[str, ...], ring: tuple[str, ...], pin: str,
        refusal: str) -> None:
    """verify-signature.sh and gpg_status.judge give the same verdict on the same gpgv run."""
    keyring = b"".join(getattr(keys, k).keyring() for k in ring)
    pinned: Key = getattr(keys, pin)
    res = verify(tmp_path, keyring, pinned.fpr, *(getattr(keys, k) for k in signers))
    gpgv = subprocess.run(["gpgv", "--status-fd", "1", "--keyring", str(tmp_path / "ring.gpg"),
                           str(tmp_path / "data.asc"), str(tmp_path / "data")],
                          capture_output=True, text=True, check=False, timeout=60)
    verdict = judge(gpgv.stdout, [pinned.fpr])
    if not refusal:
        assert (res.returncode, res.stderr) == (0, "") and verdict.good
        return
    assert res.returncode == 1 and f": {refusal} by " in res.stderr and res.stderr.count("\n") == 1
    assert not verdict.good and verdict.status == refusal


@pytest.mark.spawns("gpg", "gpgconf", "sh")
def test_a_subkey_pin_keys_the_primary_that_carries_it(keys: Keys, tmp_path: Path) -> None:
    """A pin may name a signing subkey (verify-signature.sh and gpg_status take it): the
    keyring is its primary key, in the build and outside it, and the subkey's signature
    verifies against that pin."""
    k = keys.subkeyed
    assert k.subkey and k.subkey != k.fpr
    (tmp_path / "key.asc").write_bytes(keys.other.armored() + k.armored())
    res = script("pinned-keyring.sh", tmp_path / "key.asc", "http://k/x", tmp_path / "k.gpg",
                 k.subkey)
    assert (res.returncode, res.stderr) == (0, "")
    assert shown(tmp_path / "k.gpg", tmp_path) == [k.fpr]
    ring = keyrings.export_pinned((tmp_path / "key.asc").read_bytes(), [k.subkey.lower()], "u")
    assert shown(ring, tmp_path) == [k.fpr]
    ok = verify(tmp_path / "v", (tmp_path / "k.gpg").read_bytes(), k.subkey, k)
    assert (ok.returncode, ok.stderr) == (0, "")


@pytest.mark.spawns("gpg", "gpgconf", "sh")
def test_a_subkey_pin_whose_subkey_has_expired_is_refused(keys: Keys, tmp_path: Path) -> None:
    k = keys.stale_subkey
    (tmp_path / "key.asc").write_bytes(k.armored())
    res = script("pinned-keyring.sh", tmp_path / "key.asc", "http://k/x", tmp_path / "k.gpg",
                 k.subkey)
    assert res.returncode == 1 and not (tmp_path / "k.gpg").exists()
    assert res.stderr == (f"pinned-keyring.sh: the pinned key {k.subkey} (a subkey of {k.fpr}) "
                          "from http://k/x has expired; fix: pin the key its owner signs with "
                          "now (or a refreshed copy of it)\n")
    with pytest.raises(ArchiveError, match=rf"^the pinned key {k.subkey} \(a subkey of {k.fpr}\) "
                       "from u has expired; fix: "):
        keyrings.export_pinned(k.armored(), [k.subkey], "u")


def path_without(tmp_path: Path, missing: str) -> dict[str, str]:
    """A PATH of the tools the scripts use, ``missing`` left out."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("awk", "mktemp", "rm", "sort", "tr", "mv", "sed", "gpg", "gpgv", "gpgconf"):
        found = shutil.which(tool)
        if tool != missing and found:
            (bin_dir / tool).symlink_to(found)
    return {"PATH": str(bin_dir)}


@pytest.mark.spawns("gpg", "sh")
def test_a_missing_gpg_or_gpgv_is_named_not_read_as_a_bad_file(keys: Keys, tmp_path: Path) -> None:
    (tmp_path / "key.asc").write_bytes(keys.good.armored())
    res = script("pinned-keyring.sh", tmp_path / "key.asc", "http://k/x", tmp_path / "k.gpg",
                 keys.good.fpr, env=path_without(tmp_path / "a", "gpg"))
    assert (res.returncode, res.stderr) == (1, "pinned-keyring.sh: gpg not found on PATH; fix: "
                                               "install gnupg in this stage (apt-get install gnupg)\n")
    data = b"data\n"
    (tmp_path / "data").write_bytes(data)
    (tmp_path / "data.asc").write_bytes(keys.good.detach_sign(data))
    (tmp_path / "ring.gpg").write_bytes(keys.good.keyring())
    res = script("verify-signature.sh", tmp_path / "ring.gpg", keys.good.fpr, "https://x/data.asc",
                 tmp_path / "data.asc", tmp_path / "data", env=path_without(tmp_path / "b", "gpgv"))
    assert (res.returncode, res.stderr) == (1, "verify-signature.sh: https://x/data.asc: gpgv not "
                                               "found on PATH; fix: install gpgv in this stage "
                                               "(apt-get install gpgv)\n")


@pytest.mark.spawns("gpg", "gpgconf")
def test_hostkit_mirror_refuses_a_tarball_signed_by_an_expired_key(keys: Keys, tmp_path: Path) -> None:
    data = tmp_path / "Python-3.13.5.tar.xz"
    data.write_bytes(b"tarball\n")
    (tmp_path / "sig.asc").write_bytes(keys.expired.detach_sign(data.read_bytes()))
    (tmp_path / "key.asc").write_bytes(keys.expired.armored())
    with TempGpg() as g:
        g.import_key(tmp_path / "key.asc")
        with pytest.raises(HostkitError, match=r"^gpg --verify Python-3\.13\.5\.tar\.xz: signature "
                           rf"refused: EXPKEYSIG by {keys.expired.fpr} \(the signing key has expired\)$"):
            g.verify(tmp_path / "sig.asc", data)

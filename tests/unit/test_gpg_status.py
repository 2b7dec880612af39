"""gpg_status.judge: gpgv's status lines judged as apt judges a signature (no gpg run here:
the lines are what gpgv 2.2 printed for each case)."""

from __future__ import annotations

import pytest

from orchestrator.apt.gpg_status import judge, pinnable_keys, primary_keys

FPR = "0EE927713E7598A53794FDA6A8BEA9D563E38217"
SUB = "4CB50190207B4758A3F73A796ED0E7B82643E131"  # a signing subkey of PRIMARY
PRIMARY = "B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8"
OTHER = "CB52FEF3FD2DCD0CEDDA6A2300F22BEA68DE3142"


def validsig(fpr: str, primary: str = "", digest: int = 8) -> str:
    return (f"[GNUPG:] VALIDSIG {fpr} 2026-12-05 1796436704 0 4 0 22 {digest} 01 "
            f"{primary or fpr}\n")


def good(fpr: str, primary: str = "", digest: int = 8) -> str:
    return ("[GNUPG:] NEWSIG\n"
            f"[GNUPG:] KEY_CONSIDERED {primary or fpr} 0\n"
            "[GNUPG:] SIG_ID d/8e8G57o+9FfEZ335ny+Sfsw1k 2026-12-05 1796436704\n"
            f"[GNUPG:] GOODSIG {fpr[-16:]} Archive Key <a@localhost>\n"
            + validsig(fpr, primary, digest))


# What gpgv 2.2.40 prints for a signature by a key that expired after signing: it exits 0.
EXPIRED = ("[GNUPG:] NEWSIG\n"
           f"[GNUPG:] KEY_CONSIDERED {FPR} 0\n"
           "[GNUPG:] KEYEXPIRED 1577923200\n"
           "[GNUPG:] SIG_ID 6AEbxd0qP/UhCZqqtkSI4uIizvU 2020-01-01 1577840400\n"
           f"[GNUPG:] EXPKEYSIG {FPR[-16:]} Exp <e@x>\n"
           f"[GNUPG:] VALIDSIG {FPR} 2020-01-01 1577840400 0 4 0 22 8 01 {FPR}\n")


def test_a_good_signature_is_accepted_and_names_its_primary_key() -> None:
    v = judge(good(FPR))
    assert v.good and v.key == FPR and v.signers == (FPR,) and v.status == ""
    by_subkey = judge(good(SUB, PRIMARY))
    assert by_subkey.good and by_subkey.signers == (PRIMARY,)
    # pinned: the primary or the signing subkey's fingerprint
    assert judge(good(SUB, PRIMARY), [PRIMARY]).good
    assert judge(good(SUB, PRIMARY), [SUB.lower()]).good
    # Debian's InRelease: several good signatures
    assert judge(good(FPR) + good(SUB, PRIMARY)).signers == (FPR, PRIMARY)


def test_a_signature_by_an_expired_key_is_refused_though_gpgv_exits_0() -> None:
    v = judge(EXPIRED)
    assert not v.good
    assert (v.status, v.key) == ("EXPKEYSIG", FPR)
    assert v.describe() == f"EXPKEYSIG by {FPR} (the signing key has expired)"
    # a second, good signature does not make up for it (stricter than apt, on purpose)
    assert judge(good(OTHER) + EXPIRED).status == "EXPKEYSIG"


@pytest.mark.parametrize(("line", "status", "key"), [
    (f"[GNUPG:] REVKEYSIG {FPR[-16:]} Rev <r@x>\n" + validsig(FPR), "REVKEYSIG", FPR),
    (f"[GNUPG:] EXPSIG {FPR[-16:]} Exp <e@x>\n" + validsig(FPR), "EXPSIG", FPR),
    (f"[GNUPG:] BADSIG {FPR[-16:]} Good <g@x>\n", "BADSIG", FPR[-16:]),
    # gpgv: ERRSIG then NO_PUBKEY for a key the keyring lacks: named NO_PUBKEY
    (f"[GNUPG:] ERRSIG {OTHER[-16:]} 22 8 01 1796436704 9 {OTHER}\n"
     f"[GNUPG:] NO_PUBKEY {OTHER[-16:]}\n", "NO_PUBKEY", OTHER[-16:]),
    # an ERRSIG alone (an algorithm gpgv cannot check): its fingerprint field names the key
    (f"[GNUPG:] ERRSIG {OTHER[-16:]} 99 8 01 1796436704 4 {OTHER}\n", "ERRSIG", OTHER),
])
def test_revoked_bad_unknown_and_unchecked_signatures_are_refused(line: str, status: str,
                                                                  key: str) -> None:
    v = judge(line)
    assert (v.good, v.status, v.key) == (False, status, key)
    beside_a_good_one = judge(good(SUB, PRIMARY) + line)
    if status == "NO_PUBKEY":  # a key the keyring does not have: ignored beside a good one
        assert beside_a_good_one.good and beside_a_good_one.signers == (PRIMARY,)
    else:
        assert beside_a_good_one.status == status


def test_an_unknown_second_key_is_no_excuse_for_a_signature_by_another_than_the_pin() -> None:
    unknown = f"[GNUPG:] ERRSIG {OTHER[-16:]} 22 8 01 1796436704 9 {OTHER}\n" \
              f"[GNUPG:] NO_PUBKEY {OTHER[-16:]}\n"
    assert judge(good(FPR) + unknown, [FPR]).good
    assert judge(good(SUB, PRIMARY) + unknown, [FPR]).status == "NO_PUBKEY"


def test_weak_digests_are_refused_as_apt_refuses_them() -> None:
    v = judge(good(FPR, digest=2))
    assert (v.good, v.status, v.key) == (False, "WEAK_DIGEST", FPR)
    assert "SHA1" in v.reason
    assert judge(good(FPR, digest=10)).good  # SHA512


def test_a_good_signature_by_another_key_than_the_pinned_one_is_refused() -> None:
    v = judge(good(OTHER), [FPR])
    assert (v.good, v.status, v.key) == (False, "NOT_PINNED", OTHER)
    assert FPR in v.reason


def test_nothing_good_is_refused() -> None:
    assert judge("").status == "NO_GOODSIG"
    assert judge("[GNUPG:] NODATA 1\n[GNUPG:] NODATA 2\n").status == "NODATA"
    # a VALIDSIG without its GOODSIG, a GOODSIG of another key id: no good signature
    assert judge(validsig(FPR)).status == "NO_GOODSIG"
    assert judge(f"[GNUPG:] GOODSIG {OTHER[-16:]} x\n" + validsig(FPR)).status == "NO_GOODSIG"
    # not status lines at all
    assert judge("gpgv: Good signature from \"x\"\nGOODSIG x\n").status == "NO_GOODSIG"


def test_primary_keys_reads_fingerprint_and_validity_of_primary_keys_only() -> None:
    colons = (f"pub:e:255:22:A8BEA9D563E38217:1577836800:1577923200::u:::sc:::::ed25519:::0:\n"
              f"fpr:::::::::{FPR}:\n"
              "uid:e::::1577836800::X::Exp <e@x>::::::::::0:\n"
              "pub:-:4096:1:B7C5D7D6350947F8:1:::-:::scSC::::::23::0:\n"
              f"fpr:::::::::{PRIMARY}:\n"
              "sub:-:4096:1:6ED0E7B82643E131:1:::::s::::::23:\n"
              f"fpr:::::::::{SUB}:\n"
              "pub:r:255:22:00F22BEA68DE3142:1:::-:::sc:::::ed25519:::0:\n"
              f"fpr:::::::::{OTHER.lower()}:\n")
    assert primary_keys(colons) == {FPR: "e", PRIMARY: "-", OTHER: "r"}
    assert primary_keys("") == {}


def test_pinnable_keys_maps_primaries_and_subkeys_to_their_primary_and_validity() -> None:
    """A subkey pin names its primary; an expired subkey, or any subkey of a revoked primary,
    is unusable."""
    stale = "1111111111111111111111111111111111111111"
    revoked_sub = "2222222222222222222222222222222222222222"
    colons = ("pub:-:4096:1:B7C5D7D6350947F8:1:::-:::scSC::::::23::0:\n"
              f"fpr:::::::::{PRIMARY}:\n"
              "uid:-::::1::X::Archive <a@x>::::::::::0:\n"
              "sub:-:4096:1:6ED0E7B82643E131:1:::::s::::::23:\n"
              f"fpr:::::::::{SUB.lower()}:\n"
              "sub:e:4096:1:1111111111111111:1:2::::s::::::23:\n"
              f"fpr:::::::::{stale}:\n"
              "pub:r:255:22:00F22BEA68DE3142:1:::-:::sc:::::ed25519:::0:\n"
              f"fpr:::::::::{OTHER}:\n"
              "sub:-:255:22:2222222222222222:1:::::s:::::ed25519::\n"
              f"fpr:::::::::{revoked_sub}:\n")
    assert pinnable_keys(colons) == {PRIMARY: (PRIMARY, "-"), SUB: (PRIMARY, "-"),
                                     stale: (PRIMARY, "e"), OTHER: (OTHER, "r"),
                                     revoked_sub: (OTHER, "r")}
    assert pinnable_keys("") == {}

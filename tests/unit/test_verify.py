"""Verifying published images (orchestrator.supplychain.verify) and `orchestrator verify REF...`, against
the in-memory registry and the fake cosign: what is checked where (index, platform manifests),
one line per reference, exit 1 when any fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import runner, settings
from orchestrator.errors import RegistryAuthError
from orchestrator.registry import Registry
from orchestrator.supplychain import signing, verify
from tests.fakes.fake_cosign import FakeCosign
from tests.fakes.fake_registry import FakeRegistry
from tests.unit.helpers import run_cli, with_env

REPO = "org/python"
BOTH = ("linux/amd64", "linux/arm64")


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with FakeRegistry() as registry:
        yield registry


@pytest.fixture
def keys(tmp_path: Path) -> signing.Keys:
    (tmp_path / "cosign.key").write_text("k")
    (tmp_path / "cosign.pub").write_text("p")
    return signing.Keys(str(tmp_path / "cosign.key"), str(tmp_path / "cosign.pub"))


@pytest.fixture
def cosign_fake() -> FakeCosign:
    return FakeCosign()


def client(fake: FakeRegistry) -> Registry:
    return Registry(fake.address, attempts=1, timeout=5)


def sign_and_attest(fake: FakeRegistry, cosign: signing.Cosign, digest: str, tmp_path: Path, *,
                    sbom_on: tuple[str, ...] = BOTH, provenance: bool = True) -> None:
    """What release/attest.py does (without syft): signatures, SBOMs and OpenVEX documents per
    platform, provenance."""
    name = f"{fake.address}/{REPO}"
    plats = client(fake).platform_manifests(REPO, digest) or {}
    refs = [digest] + [d for d in plats.values() if d != digest]
    cosign.sign([f"{name}@{d}" for d in refs])
    predicate = tmp_path / "predicate.json"
    predicate.write_text('{"spdxVersion": "SPDX-2.3", "buildDefinition": {}, "runDetails": {}}')
    vex = tmp_path / "vex.json"
    vex.write_text('{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [{"vulnerability"'
                   ': {"name": "CVE-2099-1007"}, "status": "not_affected"}]}')
    for plat, d in plats.items():
        if plat in sbom_on:
            cosign.attest(f"{name}@{d}", predicate, "spdxjson")
            cosign.attest(f"{name}@{d}", vex, "openvex")
    if provenance:
        cosign.attest(f"{name}@{digest}", predicate, "slsaprovenance1")


@pytest.fixture
def signed(fake: FakeRegistry, keys: signing.Keys, cosign_fake: FakeCosign, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> signing.Cosign:
    with_env(COSIGN_PASSWORD="")
    cosign = signing.Cosign(keys, settings.get().child_env({}), run=cosign_fake)
    digest = fake.put_image(REPO, "3.13-runtime", "1", BOTH)
    sign_and_attest(fake, cosign, digest, tmp_path)
    return cosign


def test_a_signed_multi_platform_image_verifies(fake: FakeRegistry, signed: signing.Cosign) -> None:
    ref = f"{fake.address}/{REPO}:3.13-runtime"
    v = verify.verify_ref(signed, ref, lambda host: client(fake))
    digest = fake.tags(REPO)["3.13-runtime"]
    assert v.ok and v.digest == digest
    assert [c.name for c in v.checks] == ["signature", "signature linux/amd64", "signature linux/arm64",
                                          "sbom linux/amd64", "sbom linux/arm64",
                                          "openvex linux/amd64", "openvex linux/arm64", "provenance"]
    assert v.line() == (f"verified  {ref} ({digest}): signature, signature linux/amd64, signature "
                        "linux/arm64, sbom linux/amd64, sbom linux/arm64, openvex linux/amd64 "
                        "(not_affected: CVE-2099-1007), openvex linux/arm64 (not_affected: "
                        "CVE-2099-1007), provenance")
    by_digest = verify.verify_ref(signed, f"{fake.address}/{REPO}@{digest}", lambda host: client(fake))
    assert by_digest.ok and by_digest.line().startswith(f"verified  {fake.address}/{REPO}@{digest}: ")


def test_a_tag_re_pointed_to_an_unsigned_digest_fails(fake: FakeRegistry, signed: signing.Cosign) -> None:
    unsigned = fake.put_image(REPO, "3.13-runtime", "tampered", ("linux/amd64",))
    ref = f"{fake.address}/{REPO}:3.13-runtime"
    v = verify.verify_ref(signed, ref, lambda host: client(fake))
    assert not v.ok and v.digest == unsigned
    assert v.line() == (f"FAILED    {ref} ({unsigned}): signature: no signatures found; sbom "
                        "linux/amd64: no matching attestations; provenance: no matching attestations")


def test_a_platform_without_its_sbom_fails(fake: FakeRegistry, keys: signing.Keys,
                                           cosign_fake: FakeCosign, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    with_env(COSIGN_PASSWORD="")
    cosign = signing.Cosign(keys, settings.get().child_env({}), run=cosign_fake)
    digest = fake.put_image(REPO, "t", "2", BOTH)
    sign_and_attest(fake, cosign, digest, tmp_path, sbom_on=("linux/amd64",), provenance=False)
    v = verify.verify_digest(cosign, client(fake), REPO, digest)
    assert v.problems() == ["sbom linux/arm64: no matching attestations",
                            "provenance: no matching attestations"]
    assert verify.verify_digest(cosign, client(fake), REPO, digest, provenance=False).problems() == [
        "sbom linux/arm64: no matching attestations"]
    # the OpenVEX document is shown, never required (it only sets findings aside)
    ok = verify.verify_digest(cosign, client(fake), REPO, digest, provenance=False)
    assert "openvex linux/arm64" not in " ".join(ok.problems())
    assert ok.vex == {"linux/amd64": frozenset({"CVE-2099-1007"})}


def test_another_key_does_not_verify(fake: FakeRegistry, signed: signing.Cosign,
                                     cosign_fake: FakeCosign) -> None:
    other = signing.Cosign(signing.Keys(None, "/somewhere/else.pub"), {}, run=cosign_fake)
    v = verify.verify_ref(other, f"{fake.address}/{REPO}:3.13-runtime", lambda host: client(fake))
    assert v.problems()[0] == ("signature: no matching signatures: invalid signature when "
                               "validating ASN.1 encoded signature")
    assert len(v.problems()) == 6


def test_a_single_platform_image_is_checked_once(fake: FakeRegistry, keys: signing.Keys,
                                                 cosign_fake: FakeCosign, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with_env(COSIGN_PASSWORD="")
    cosign = signing.Cosign(keys, settings.get().child_env({}), run=cosign_fake)
    digest = fake.put_image(REPO, "single", "3")
    sign_and_attest(fake, cosign, digest, tmp_path)
    v = verify.verify_digest(cosign, client(fake), REPO, digest)
    assert v.ok and [c.name for c in v.checks] == ["signature", "sbom linux/amd64",
                                                   "openvex linux/amd64", "provenance"]


def test_unknown_tags_and_digests(fake: FakeRegistry, signed: signing.Cosign) -> None:
    v = verify.verify_ref(signed, f"{fake.address}/{REPO}:nope", lambda host: client(fake))
    assert v.line() == (f"FAILED    {fake.address}/{REPO}:nope: manifest: tag nope not in "
                        f"{fake.address}/{REPO}")
    missing = "sha256:" + "9" * 64
    v = verify.verify_digest(signed, client(fake), REPO, missing)
    assert not v.ok and v.problems() == ["manifest: not in the registry"]


def test_refused_credentials_are_not_a_failed_check(fake: FakeRegistry, signed: signing.Cosign) -> None:
    fake.credentials = ("ci", "secret")
    with pytest.raises(RegistryAuthError):
        verify.verify_ref(signed, f"{fake.address}/{REPO}:3.13-runtime", lambda host: client(fake))


def test_promote_gate(fake: FakeRegistry, signed: signing.Cosign) -> None:
    gate = verify.promote_gate(signed, client(fake))
    assert gate(REPO, fake.tags(REPO)["3.13-runtime"]) is None
    unsigned = fake.put_image(REPO, "x", "unsigned")
    assert gate(REPO, unsigned) == (
        f"{fake.address}/{REPO}@{unsigned} is unsigned or does not verify (signature: no signatures "
        "found; sbom linux/amd64: no matching attestations; provenance: no matching attestations); "
        "sign and attest it (push with signing: in images.yaml) or set signing.required: false")


# --------------------------------------------------------------------------- the command


def test_verify_command_with_key(fake: FakeRegistry, signed: signing.Cosign, cosign_fake: FakeCosign,
                                 keys: signing.Keys, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "run", cosign_fake)
    good = f"{fake.address}/{REPO}:3.13-runtime"
    code, out, _ = run_cli(["verify", "--key", keys.public_key, good], capsys)
    assert code == 0 and out.startswith(f"verified  {good} (sha256:")
    verifies = [c for c in cosign_fake.calls if c[1].startswith("verify")]
    assert verifies and all(c[c.index("--key") + 1] == keys.public_key for c in verifies)
    bad = f"{fake.address}/{REPO}@" + fake.put_image(REPO, "y", "unsigned")
    code, out, _ = run_cli(["verify", "--key", keys.public_key, good, bad], capsys)
    lines = out.splitlines()
    assert code == 1 and len(lines) == 2
    assert lines[0].startswith("verified  ") and lines[1].startswith(f"FAILED    {bad}: signature: ")


def test_verify_command_takes_the_key_from_images_yaml(
        fake: FakeRegistry, signed: signing.Cosign, cosign_fake: FakeCosign, keys: signing.Keys,
        minimal_text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "run", cosign_fake)
    config = tmp_path / "images.yaml"  # next to cosign.key / cosign.pub of the keys fixture
    config.write_text(minimal_text + "\nsigning: {key: cosign.key}\n")
    ref = f"{fake.address}/{REPO}:3.13-runtime"
    code, out, err = run_cli(["verify", "--config", str(config), ref], capsys)
    assert code == 0, out + err
    config.write_text(minimal_text)
    code, _, err = run_cli(["verify", "--config", str(config), ref], capsys)
    assert code == 2 and err == (f"error: {config}: no signing: section to take the public key from; "
                                 "pass --key cosign.pub (or env://VAR, a KMS URI) or add signing: "
                                 "to it\n")


def test_verify_command_without_provenance(
        fake: FakeRegistry, keys: signing.Keys, cosign_fake: FakeCosign, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with_env(COSIGN_PASSWORD="")
    cosign = signing.Cosign(keys, settings.get().child_env({}), run=cosign_fake)
    digest = fake.put_image(REPO, "old", "4")
    sign_and_attest(fake, cosign, digest, tmp_path, provenance=False)
    monkeypatch.setattr(runner, "run", cosign_fake)
    ref = f"{fake.address}/{REPO}:old"
    assert run_cli(["verify", "--key", keys.public_key, ref], capsys)[0] == 1
    assert run_cli(["verify", "--key", keys.public_key, "--no-provenance", ref], capsys)[0] == 0


def test_an_image_without_openvex_verifies_and_says_so(fake: FakeRegistry, keys: signing.Keys,
                                                       cosign_fake: FakeCosign, tmp_path: Path) -> None:
    """No scan.vex rule applies (or pushed before OpenVEX): verified, its line says none."""
    with_env(COSIGN_PASSWORD="")
    cosign = signing.Cosign(keys, settings.get().child_env({}), run=cosign_fake)
    digest = fake.put_image(REPO, "novex", "4")
    name = f"{fake.address}/{REPO}"
    cosign.sign([f"{name}@{digest}"])
    predicate = tmp_path / "p.json"
    predicate.write_text('{"spdxVersion": "SPDX-2.3"}')
    cosign.attest(f"{name}@{digest}", predicate, "spdxjson")
    cosign.attest(f"{name}@{digest}", predicate, "slsaprovenance1")
    v = verify.verify_digest(cosign, client(fake), REPO, digest)
    assert v.ok and v.vex == {}
    assert v.line() == (f"verified  {name}@{digest}: signature, sbom linux/amd64, openvex "
                        "linux/amd64 (none), provenance")

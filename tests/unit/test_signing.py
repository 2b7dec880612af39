"""cosign wrappers (orchestrator.supplychain.signing): the exact argv and environment for a private
registry without a transparency log, key references and passwords, typed errors, and the
parsing of what verify and verify-attestation answer (tests/fakes/fake_cosign.py)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator import runner, settings
from orchestrator.config.publish import Signing
from orchestrator.errors import CommandError, ConfigError, SupplyChainError, UsageError
from orchestrator.supplychain import signing
from tests.fakes.fake_cosign import FakeCosign
from tests.unit.helpers import with_env

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
LOCAL = "127.0.0.1:5000/org/python"
REMOTE = "registry.example.org/org/python"


@pytest.fixture
def keydir(tmp_path: Path) -> Path:
    (tmp_path / "cosign.key").write_text("encrypted private key")
    (tmp_path / "cosign.pub").write_text("public key")
    return tmp_path


def cosign_for(keydir: Path, fake: FakeCosign, **kw: Any) -> signing.Cosign:
    keys = signing.keys_for(Signing(key="cosign.key", **kw), keydir)
    return signing.Cosign(keys, settings.get().child_env({}), run=fake)


def test_keys_for_resolves_files_next_to_images_yaml(keydir: Path) -> None:
    keys = signing.keys_for(Signing(key="cosign.key"), keydir)
    assert keys == signing.Keys(str(keydir / "cosign.key"), str(keydir / "cosign.pub"),
                                "COSIGN_PASSWORD", False)
    kms = signing.keys_for(Signing(key="awskms:///alias/x", tlog=True), keydir)
    assert kms == signing.Keys("awskms:///alias/x", "awskms:///alias/x", "COSIGN_PASSWORD", True)
    env = signing.keys_for(Signing(key="env://K", public_key="env://P", password_env="PW"), keydir)
    assert env == signing.Keys("env://K", "env://P", "PW", False)


def test_a_missing_public_key_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        signing.keys_for(Signing(key="keys/ci.key"), tmp_path, "cfg/images.yaml")
    assert str(info.value) == (f"cfg/images.yaml: signing.public_key: {tmp_path}/keys/ci.pub does not "
                               "exist; commit the public key (cosign.pub) or pass --key")


def test_verify_key_option(keydir: Path) -> None:
    assert signing.keys_from_option(str(keydir / "cosign.pub")) == signing.Keys(
        None, str(keydir / "cosign.pub"))
    assert signing.keys_from_option("gcpkms://k", tlog=True).tlog
    with pytest.raises(UsageError, match=r"--key nope\.pub: no such file"):
        signing.keys_from_option("nope.pub")


def test_sign_by_digest_without_tlog_on_a_loopback_registry(keydir: Path) -> None:
    with_env(COSIGN_PASSWORD="s3cret")
    fake = FakeCosign()
    cosign_for(keydir, fake).sign([f"{LOCAL}@{D1}", f"{LOCAL}@{D2}"])
    assert fake.calls == [["cosign", "sign", "--key", str(keydir / "cosign.key"),
                           "--tlog-upload=false", "--yes", "--allow-http-registry=true",
                           f"{LOCAL}@{D1}", f"{LOCAL}@{D2}"]]
    env = fake.envs[0]
    assert env["COSIGN_PASSWORD"] == "s3cret"
    assert env["DOCKER_CONFIG"] == str(settings.get().docker_config)
    assert fake.signatures == {D1: {str(keydir / "cosign.pub")}, D2: {str(keydir / "cosign.pub")}}


def test_sign_on_an_https_registry_and_with_a_transparency_log(keydir: Path) -> None:
    with_env(COSIGN_PASSWORD="")
    fake = FakeCosign()
    cosign_for(keydir, fake, tlog=True).sign([f"{REMOTE}@{D1}"])
    assert fake.calls[0][4:] == ["--tlog-upload=true", "--yes", f"{REMOTE}@{D1}"]
    assert fake.envs[0]["COSIGN_PASSWORD"] == ""  # a key without a password


def test_the_password_comes_from_password_env(keydir: Path) -> None:
    with_env(CI_SIGNING_PASSWORD="from-ci", COSIGN_PASSWORD="not-this-one")
    fake = FakeCosign()
    cosign_for(keydir, fake, password_env="CI_SIGNING_PASSWORD").sign([f"{LOCAL}@{D1}"])
    assert fake.envs[0]["COSIGN_PASSWORD"] == "from-ci"


def test_cosign_runs_in_the_environment_it_is_given_and_finds_the_password_there(
        keydir: Path) -> None:
    """Not the process's settings: the caller passes Settings.child_env (cli, attest.cosign_for)."""
    fake = FakeCosign()
    env = {"DOCKER_CONFIG": "/run/ci/docker", "CI_SIGNING_PASSWORD": "given"}
    keys = signing.keys_for(Signing(key="cosign.key", password_env="CI_SIGNING_PASSWORD"), keydir)
    cosign = signing.Cosign(keys, env, run=fake)
    cosign.sign([f"{LOCAL}@{D1}"])
    cosign.verify(f"{LOCAL}@{D1}")
    assert fake.envs == [{**env, "COSIGN_PASSWORD": "given"}, env]
    assert "CI_SIGNING_PASSWORD" not in settings.get().environ


def test_a_missing_password_is_said_before_cosign_runs(keydir: Path) -> None:
    fake = FakeCosign()
    with pytest.raises(SupplyChainError) as info:
        cosign_for(keydir, fake, password_env="CI_SIGNING_PASSWORD").sign([f"{LOCAL}@{D1}"])
    assert str(info.value) == (
        f"environment: CI_SIGNING_PASSWORD is not set: cosign needs the password of signing.key "
        f"({keydir / 'cosign.key'}); set it (an empty string for a key without one)")
    assert fake.calls == [] and info.value.exit_code == 3


def test_a_missing_key_file_is_said_before_cosign_runs(keydir: Path) -> None:
    with_env(COSIGN_PASSWORD="x")
    (keydir / "cosign.key").unlink()
    fake = FakeCosign()
    with pytest.raises(SupplyChainError, match=r"signing.key: .*/cosign.key does not exist; write "
                                               r"the private key there before the push"):
        cosign_for(keydir, fake).sign([f"{LOCAL}@{D1}"])
    assert fake.calls == []


def test_a_kms_key_needs_no_password(keydir: Path) -> None:
    fake = FakeCosign()
    keys = signing.keys_for(Signing(key="hashivault://python-images"), keydir)
    signing.Cosign(keys, settings.get().child_env({}), run=fake).sign([f"{REMOTE}@{D1}"])
    assert fake.calls[0][2:4] == ["--key", "hashivault://python-images"]
    assert "COSIGN_PASSWORD" not in fake.envs[0]
    assert fake.signatures == {D1: {"hashivault://python-images"}}


def test_signing_a_tag_is_refused(keydir: Path) -> None:
    with_env(COSIGN_PASSWORD="x")
    fake = FakeCosign()
    with pytest.raises(SupplyChainError, match="not a digest reference"):
        cosign_for(keydir, fake).sign([f"{LOCAL}:3.13-runtime"])
    with pytest.raises(SupplyChainError, match="not a digest reference"):
        cosign_for(keydir, fake).verify(f"{LOCAL}:3.13-runtime")
    assert fake.calls == []


def test_attest_replaces_the_attestation_of_the_same_type(keydir: Path, tmp_path: Path) -> None:
    with_env(COSIGN_PASSWORD="x")
    fake = FakeCosign()
    cosign = cosign_for(keydir, fake)
    predicate = tmp_path / "sbom.spdx.json"
    predicate.write_text('{"spdxVersion": "SPDX-2.3"}')
    cosign.attest(f"{LOCAL}@{D1}", predicate, "spdxjson")
    assert fake.calls[0] == ["cosign", "attest", "--key", str(keydir / "cosign.key"),
                             "--tlog-upload=false", "--yes", "--replace", "--type", "spdxjson",
                             "--predicate", str(predicate), "--allow-http-registry=true",
                             f"{LOCAL}@{D1}"]
    cosign.attest(f"{LOCAL}@{D1}", predicate, "spdxjson")
    assert len(fake.attestations[D1]) == 1
    with pytest.raises(SupplyChainError, match="unknown predicate type 'spdx-json'"):
        cosign.attest(f"{LOCAL}@{D1}", predicate, "spdx-json")


def test_a_cosign_failure_is_a_typed_error_with_cosigns_reason(keydir: Path) -> None:
    with_env(COSIGN_PASSWORD="x")
    fake = FakeCosign(fail={"sign": "Error: signing [x]: PUT https://h/v2/: UNAUTHORIZED\n"
                                    "error during command execution: signing ...\n"})
    with pytest.raises(SupplyChainError) as info:
        cosign_for(keydir, fake).sign([f"{REMOTE}@{D1}"])
    assert str(info.value) == (f"cosign sign of {REMOTE}@{D1} failed (exit 1): signing [x]: PUT "
                               "https://h/v2/: UNAUTHORIZED")


@pytest.mark.spawns("cosign")
def test_cosign_not_installed(keydir: Path) -> None:
    with_env(COSIGN_PASSWORD="x")
    keys = signing.keys_for(Signing(key="cosign.key"), keydir)
    cosign = signing.Cosign(keys, settings.get().child_env({}), binary="/nonexistent/cosign")
    with pytest.raises(SupplyChainError, match=r"failed \(exit 127\): /nonexistent/cosign: not found"):
        cosign.sign([f"{LOCAL}@{D1}"])
    with pytest.raises(CommandError, match="not found"):  # verify: exit 3, not "unsigned"
        cosign.verify(f"{LOCAL}@{D1}")


@pytest.mark.parametrize("host", ["127.evil.example", "127.evil.example:5000", "127.0.0.1.nip.io"])
def test_a_name_that_only_starts_with_127_gets_no_plain_http(keydir: Path, host: str) -> None:
    with_env(COSIGN_PASSWORD="x")
    fake = FakeCosign()
    cosign_for(keydir, fake).sign([f"{host}/org/python@{D1}"])
    assert "--allow-http-registry=true" not in fake.calls[0]


def test_verify_flags_and_answers(keydir: Path) -> None:
    with_env(COSIGN_PASSWORD="x")
    fake = FakeCosign()
    cosign = cosign_for(keydir, fake)
    assert cosign.verify(f"{LOCAL}@{D1}") == signing.Verified(f"{LOCAL}@{D1}", False,
                                                             "no signatures found")
    assert fake.calls[0] == ["cosign", "verify", "--key", str(keydir / "cosign.pub"),
                             "--insecure-ignore-tlog=true", "--allow-http-registry=true",
                             f"{LOCAL}@{D1}"]
    cosign.sign([f"{LOCAL}@{D1}"])
    assert cosign.verify(f"{LOCAL}@{D1}").ok
    other = signing.Cosign(signing.Keys(None, "/elsewhere/cosign.pub"), {}, run=fake)
    assert other.verify(f"{LOCAL}@{D1}").reason == (
        "no matching signatures: invalid signature when validating ASN.1 encoded signature")
    tlog = signing.Cosign(signing.Keys(None, str(keydir / "cosign.pub"), tlog=True), {}, run=fake)
    tlog.verify(f"{REMOTE}@{D1}")
    assert fake.calls[-1] == ["cosign", "verify", "--key", str(keydir / "cosign.pub"), f"{REMOTE}@{D1}"]


def test_verify_attestation_returns_the_statements(keydir: Path, tmp_path: Path) -> None:
    with_env(COSIGN_PASSWORD="x")
    fake = FakeCosign()
    cosign = cosign_for(keydir, fake)
    ref = f"{LOCAL}@{D1}"
    assert cosign.verify_attestation(ref, "spdxjson").reason == "no matching attestations"
    predicate = tmp_path / "p.json"
    predicate.write_text('{"buildDefinition": {}, "runDetails": {}}')
    cosign.attest(ref, predicate, "slsaprovenance1")
    wrong = cosign.verify_attestation(ref, "spdxjson")
    assert wrong.reason == ("none of the attestations matched the predicate type: spdxjson, found: "
                            "https://slsa.dev/provenance/v1")
    got = cosign.verify_attestation(ref, "slsaprovenance1")
    assert got.ok and [s["predicate"] for s in got.statements] == [
        {"buildDefinition": {}, "runDetails": {}}]
    assert fake.calls[-1][:7] == ["cosign", "verify-attestation", "--key", str(keydir / "cosign.pub"),
                                  "--insecure-ignore-tlog=true", "--type", "slsaprovenance1"]


def _answer(stdout: str) -> Any:
    def run(argv: list[str], **kw: Any) -> runner.Completed:
        return runner.Completed(argv, 0, stdout, "", 0.1)
    return run


def test_an_attestation_about_another_digest_does_not_count() -> None:
    statement = {"predicateType": "https://spdx.dev/Document",
                 "subject": [{"name": "x", "digest": {"sha256": "2" * 64}}], "predicate": {}}
    envelope = {"payload": base64.b64encode(json.dumps(statement).encode()).decode()}
    cosign = signing.Cosign(signing.Keys(None, "k.pub"), {}, run=_answer(json.dumps(envelope) + "\n"))
    got = cosign.verify_attestation(f"{LOCAL}@{D1}", "spdxjson")
    assert not got.ok and got.reason == f"no https://spdx.dev/Document attestation about {D1}"


def test_unreadable_verify_attestation_output() -> None:
    cosign = signing.Cosign(signing.Keys(None, "k.pub"), {}, run=_answer('{"payload": "%%%"}\n'))
    got = cosign.verify_attestation(f"{LOCAL}@{D1}", "spdxjson")
    assert not got.ok and got.reason.startswith("unreadable attestation output (not a DSSE envelope")


def test_cosign_error_picks_the_error_line() -> None:
    assert signing.cosign_error("WARNING: x\nError: no signatures found\nerror during ...") == (
        "no signatures found")
    assert signing.cosign_error("panic: boom\n") == "panic: boom"
    assert signing.cosign_error("") == "cosign failed without a message"

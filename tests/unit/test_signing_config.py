"""images.yaml ``signing:``: key references (file, env://, KMS URI), the public key verify
uses, one exact line per problem (exit 2), and the schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from orchestrator.config import grammar, loader
from orchestrator.config.model import Loaded
from orchestrator.config.publish import Signing
from orchestrator.errors import ConfigError, ConfigProblems
from tests.unit.helpers import REPO, TODAY, line_of, run_cli, write_config


def _load(tmp_path: Path, minimal_text: str, signing: str) -> Loaded:
    return loader.load(write_config(tmp_path, minimal_text + "\n" + signing + "\n"), TODAY)


def _errors(tmp_path: Path, minimal_text: str, signing: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, minimal_text, signing)
    return info.value.lines()


def test_no_signing_section_means_none(tmp_path: Path, minimal_text: str) -> None:
    assert loader.load(write_config(tmp_path, minimal_text), TODAY).config.signing is None


def test_defaults(tmp_path: Path, minimal_text: str) -> None:
    s = _load(tmp_path, minimal_text, "signing: {key: keys/cosign.key}").config.signing
    assert s == Signing(key="keys/cosign.key", public_key=None,
                               password_env="COSIGN_PASSWORD", tlog=False, required=True)


@pytest.mark.parametrize("key", ["cosign.key", "/run/secrets/cosign.key", "env://COSIGN_PRIVATE_KEY",
                                 "awskms:///alias/python-images", "gcpkms://projects/p/locations/"
                                 "global/keyRings/r/cryptoKeys/k/versions/1",
                                 "azurekms://vault.vault.azure.net/key", "hashivault://python-images"])
def test_accepted_key_references(tmp_path: Path, minimal_text: str, key: str) -> None:
    extra = ", public_key: env://COSIGN_PUBLIC_KEY" if key.startswith("env://") else ""
    assert _load(tmp_path, minimal_text, f'signing: {{key: "{key}"{extra}}}').config.signing is not None


@pytest.mark.parametrize(("key", "expected"), [
    ("cosign.key", "cosign.pub"),
    ("keys/ci.key", "keys/ci.pub"),
    ("awskms:///alias/x", "awskms:///alias/x"),
    ("hashivault://k", "hashivault://k"),
    ("env://K", None),
    ("signing-key", None),
])
def test_default_public_key(key: str, expected: str | None) -> None:
    assert grammar.default_public_key(key) == expected


@pytest.mark.parametrize(("signing", "key", "message"), [
    ("{key: cosign.pub}", "signing.key",
     "cosign.pub is a public key; signing.key takes the private key (e.g. cosign.key); put the .pub "
     "file in signing.public_key"),
    ("{key: 'env://1BAD', public_key: p.pub}", "signing.key",
     "'env://1BAD': '1BAD' is not an environment variable name; write env://NAME, e.g. "
     "env://COSIGN_PRIVATE_KEY"),
    ("{key: 'hashivault://'}", "signing.key",
     "'hashivault://' names no key; write hashivault://<key>, as cosign documents it"),
    ("{key: 'k8s://ns/key'}", "signing.key",
     "k8s:// is not a key reference the orchestrator passes to cosign; use a file path or one of "
     "env://, awskms://, gcpkms://, azurekms://, hashivault://"),
    ("{key: 'https://keys.example.org/cosign.key'}", "signing.key",
     "https:// is not a key reference the orchestrator passes to cosign; use a file path or one of "
     "env://, awskms://, gcpkms://, azurekms://, hashivault://"),
    ("{key: ''}", "signing.key",
     "the value is empty; write a file path relative to images.yaml (e.g. cosign.key), env://VAR or "
     "a KMS URI (awskms://, gcpkms://, azurekms://, hashivault://)"),
    ("{key: 'env://K'}", "signing.public_key",
     "required here: an env:// key gives cosign no public key to verify with; add public_key: the "
     "committed cosign.pub (or env://VAR, a KMS URI, an https:// URL)"),
    ("{key: signing-key}", "signing.public_key",
     "required here: signing-key does not end in .key, so no .pub file is implied; add public_key: "
     "the committed cosign.pub (or env://VAR, a KMS URI, an https:// URL)"),
    ("{key: c.key, public_key: 'ftp://x/c.pub'}", "signing.public_key",
     "ftp:// is not a key reference the orchestrator passes to cosign; use a file path or one of "
     "env://, awskms://, gcpkms://, azurekms://, hashivault://, https://"),
    ("{key: c.key, password_env: 'A-B'}", "signing.password_env",
     "'A-B' is not an environment variable name; use letters, digits and '_', not starting with a "
     "digit (e.g. MY_VAR)"),
])
def test_one_exact_line_per_problem(tmp_path: Path, minimal_text: str, signing: str, key: str,
                                    message: str) -> None:
    text = minimal_text + "\nsigning: " + signing + "\n"
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        loader.load(path, TODAY)
    assert info.value.lines() == [f"{path}:{line_of(text, 'signing:')}: {key}: {message}"]


def test_every_problem_of_the_section_is_reported(tmp_path: Path, minimal_text: str) -> None:
    with pytest.raises(ConfigProblems) as info:
        _load(tmp_path, minimal_text, "signing: {key: 'env://1X', public_key: 'ftp://x', "
                                      "password_env: 'a b'}")
    assert [line.split(": ")[1] for line in info.value.lines()] == [
        "signing.key", "signing.public_key", "signing.password_env"]


def test_unknown_key_did_you_mean(tmp_path: Path, minimal_text: str) -> None:
    lines = _errors(tmp_path, minimal_text, "signing:\n  key: c.key\n  requird: false")
    text = minimal_text + "\nsigning:\n  key: c.key\n  requird: false\n"
    assert lines == [f"{tmp_path / 'images.yaml'}:{line_of(text, 'requird')}: signing.requird: "
                     'unknown key; did you mean "required"?']


def test_validate_exits_2(tmp_path: Path, minimal_text: str,
                          capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, minimal_text + "\nsigning: {key: cosign.pub}\n")
    code, _, err = run_cli(["validate", "--config", str(path)], capsys)
    assert code == 2 and "signing.key: cosign.pub is a public key" in err


def test_schema_describes_signing(minimal_text: str) -> None:
    schema = json.loads((REPO / "images.schema.json").read_text())
    data = yaml.safe_load(minimal_text)
    jsonschema.validate({**data, "signing": {"key": "cosign.key", "tlog": False}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "signing": {"key": "cosign.key", "tlogg": False}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "signing": {"public_key": "cosign.pub"}}, schema)

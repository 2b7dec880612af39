"""Registry logins found as docker finds them (orchestrator.registry.credentials), with a fake
runner in place of the docker-credential-* programs: auths (auth, identitytoken), credsStore,
credHelpers (per registry, ahead of credsStore), Docker Hub's v1 key, and the one-line errors."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import CommandError, ExitCode, RegistryAuthError
from orchestrator.registry.credentials import HUB_KEY, Credential, lookup
from orchestrator.runner import Completed


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def config(tmp_path: Path, doc: dict[str, Any]) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(doc))
    return tmp_path


class Helpers:
    """docker-credential-<name> get: the answers each helper gives, by server URL."""

    def __init__(self, logins: dict[str, dict[str, tuple[str, str]]], fail: str = "") -> None:
        self.logins, self.fail = logins, fail
        self.calls: list[tuple[list[str], str | None]] = []

    def __call__(self, argv: list[str], *, check: bool = True, input: str | None = None,
                 timeout: float | None = None, env: dict[str, str] | None = None) -> Completed:
        self.calls.append((list(argv), input))
        name = argv[0].removeprefix("docker-credential-")
        if name not in self.logins:
            raise CommandError(list(argv), 127, f"{argv[0]}: not found")
        if self.fail:
            return Completed(list(argv), 1, "", self.fail, 0.0)
        found = self.logins[name].get(input or "")
        if found is None:
            return Completed(list(argv), 1, "credentials not found in native keychain\n", "", 0.0)
        answer = {"ServerURL": input, "Username": found[0], "Secret": found[1]}
        return Completed(list(argv), 0, json.dumps(answer), "", 0.0)


def test_auths_entry_with_user_and_password(tmp_path: Path) -> None:
    cfg = config(tmp_path, {"auths": {"registry.test:5000": {"auth": b64("ci:s3cret")}}})
    found = lookup(cfg, "registry.test:5000", run=Helpers({}))
    assert found.credential == Credential("ci", "s3cret", "",
                                          f'{cfg}/config.json auths["registry.test:5000"]')


def test_auths_keys_with_a_scheme_or_a_path_match_the_host(tmp_path: Path) -> None:
    cfg = config(tmp_path, {"auths": {"https://registry.test/v2/": {"auth": b64("ci:pw")}}})
    assert lookup(cfg, "registry.test").credential is not None
    assert lookup(cfg, "registry.test:5000").credential is None


def test_an_identity_token_in_auths(tmp_path: Path) -> None:
    cfg = config(tmp_path, {"auths": {"registry.test": {"auth": b64("ci:"), "identitytoken": "rt-1"}}})
    cred = lookup(cfg, "registry.test").credential
    assert cred is not None and (cred.username, cred.password, cred.identity_token) == ("ci", "", "rt-1")


def test_a_password_and_an_identity_token_are_both_kept(tmp_path: Path) -> None:
    """docker keeps both: the password answers Basic, the identity token is a refresh token."""
    cfg = config(tmp_path, {"auths": {"registry.test": {"auth": b64("ci:pw"), "identitytoken": "rt-1"}}})
    cred = lookup(cfg, "registry.test").credential
    assert cred is not None and (cred.username, cred.password, cred.identity_token) == ("ci", "pw", "rt-1")


@pytest.mark.parametrize("host", ["docker.io", "index.docker.io", "registry-1.docker.io"])
def test_docker_hub_is_looked_up_under_its_v1_key(tmp_path: Path, host: str) -> None:
    cfg = config(tmp_path, {"auths": {HUB_KEY: {"auth": b64("hubuser:hubpw")}}})
    cred = lookup(cfg, host).credential
    assert cred is not None and (cred.username, cred.password) == ("hubuser", "hubpw")


def test_creds_store_runs_the_helper_with_the_server_url(tmp_path: Path) -> None:
    cfg = config(tmp_path, {"credsStore": "pass", "auths": {HUB_KEY: {}}})
    helpers = Helpers({"pass": {HUB_KEY: ("hubuser", "from-pass")}})
    found = lookup(cfg, "docker.io", run=helpers, env={"PATH": "/opt/helpers"})
    assert found.credential is not None and found.credential.password == "from-pass"
    assert found.credential.source == f"docker-credential-pass (credsStore in {cfg}/config.json)"
    assert helpers.calls == [(["docker-credential-pass", "get"], HUB_KEY)]


def test_cred_helpers_win_over_creds_store_for_their_registry(tmp_path: Path) -> None:
    cfg = config(tmp_path, {"credsStore": "desktop", "credHelpers": {"registry.test": "ecr-login"},
                            "auths": {"registry.test": {"auth": b64("file:ignored")}}})
    helpers = Helpers({"ecr-login": {"registry.test": ("AWS", "ecr-pw")},
                       "desktop": {"other.test": ("me", "desktop-pw")}})
    cred = lookup(cfg, "registry.test", run=helpers).credential
    assert cred is not None and (cred.username, cred.password) == ("AWS", "ecr-pw")
    assert cred.source == f'docker-credential-ecr-login (credHelpers["registry.test"] in {cfg}/config.json)'
    assert lookup(cfg, "other.test", run=helpers).credential == Credential(
        "me", "desktop-pw", "", f"docker-credential-desktop (credsStore in {cfg}/config.json)")


def test_a_helper_username_token_means_an_identity_token(tmp_path: Path) -> None:
    cfg = config(tmp_path, {"credHelpers": {"registry.test": "acr"}})
    helpers = Helpers({"acr": {"registry.test": ("<token>", "rt-2")}})
    cred = lookup(cfg, "registry.test", run=helpers).credential
    assert cred is not None and (cred.username, cred.password, cred.identity_token) == ("", "", "rt-2")


def test_a_helper_that_answers_an_empty_login_means_anonymous(tmp_path: Path) -> None:
    """Exit 0 with an empty Username and Secret: docker reads it as no login (anonymous)."""
    cfg = config(tmp_path, {"credsStore": "desktop"})
    found = lookup(cfg, "registry.test", run=Helpers({"desktop": {"registry.test": ("", "")}}))
    assert found.credential is None
    assert found.looked_at == (f"docker-credential-desktop (credsStore in {cfg}/config.json): an "
                               "empty login for registry.test")


def test_a_helper_without_a_login_for_the_server_is_no_credential(tmp_path: Path) -> None:
    cfg = config(tmp_path, {"credsStore": "pass"})
    found = lookup(cfg, "registry.test", run=Helpers({"pass": {}}))
    assert found.credential is None
    assert found.looked_at == (f"docker-credential-pass (credsStore in {cfg}/config.json): "
                               "no login for registry.test")


def test_nothing_configured(tmp_path: Path) -> None:
    found = lookup(tmp_path, "registry.test")
    assert found.credential is None
    assert found.looked_at == (f"{tmp_path}/config.json (no auths entry, credsStore or credHelpers "
                               "for registry.test)")


@pytest.mark.parametrize(("doc", "helpers", "message"), [
    ({"credsStore": "gone"}, Helpers({}),
     r"^registry registry\.test: credential helper docker-credential-gone \(credsStore in .*/config\.json\) "
     r"could not run \(docker-credential-gone: not found\); install docker-credential-gone on PATH or "
     r"remove credsStore from .*/config\.json$"),
    ({"credHelpers": {"registry.test": "broken"}}, Helpers({"broken": {}}, fail="keychain locked\n"),
     r"^registry registry\.test: credential helper docker-credential-broken "
     r"\(credHelpers\[\"registry\.test\"\] in .*\) failed for registry\.test \(keychain locked\); "
     r"run `docker login registry\.test` or fix"),
    ({"auths": {"registry.test": {"auth": "%%%"}}}, Helpers({}),
     r'^.*/config\.json: auths\["registry\.test"\]\.auth is not base64 of user:password; run `docker login '
     r"registry\.test` again$"),
])
def test_what_cannot_be_read_is_a_one_line_registry_error(tmp_path: Path, doc: dict[str, Any],
                                                          helpers: Helpers, message: str) -> None:
    cfg = config(tmp_path, doc)
    with pytest.raises(RegistryAuthError, match=message) as err:
        lookup(cfg, "registry.test", run=helpers)
    assert err.value.exit_code == ExitCode.REGISTRY and "\n" not in str(err.value)


def test_a_config_that_is_not_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(RegistryAuthError, match=r"config\.json is not JSON .*; fix it .*DOCKER_CONFIG"):
        lookup(tmp_path, "registry.test")


@pytest.mark.parametrize("name", ["../../bin/sh", "/bin/sh", "x/y", "..", " desktop", "a\nb"])
@pytest.mark.parametrize("setting", ["credHelpers", "credsStore"])
def test_a_helper_name_with_path_characters_is_never_run(tmp_path: Path, name: str,
                                                         setting: str) -> None:
    """docker-credential-<name> is looked up on PATH; a name with a "/" would make it a path
    (relative to the working directory, or anywhere): refused before anything runs."""
    doc = ({"credHelpers": {"registry.test": name}} if setting == "credHelpers"
           else {"credsStore": name})
    helpers = Helpers({name: {"registry.test": ("u", "p")}})
    with pytest.raises(RegistryAuthError, match=r"is not a credential helper name") as err:
        lookup(config(tmp_path, doc), "registry.test", run=helpers)
    assert helpers.calls == []
    assert err.value.exit_code == ExitCode.REGISTRY and "\n" not in str(err.value)
    assert setting in str(err.value) and "fix" in str(err.value)

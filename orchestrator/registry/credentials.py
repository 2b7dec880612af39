"""Registry credentials, found where and as docker finds them (docker/cli configfile).

``$DOCKER_CONFIG/config.json`` (settings.docker_config): ``credHelpers[<server>]`` names the
helper for one registry, else ``credsStore`` the helper for all, else ``auths[<server>]``
holds ``auth`` (base64 ``user:password``) and/or ``identitytoken``, both kept, as docker
keeps them: the password for HTTP Basic, the identity token only as an OAuth2 refresh token
for a token service. A helper is the program ``docker-credential-<name>``: ``get`` with the
server URL on stdin prints ``{"ServerURL", "Username", "Secret"}``; the username ``<token>``
means the secret is an identity token; an empty username and secret mean no login (anonymous,
as docker reads it). Docker Hub is stored under its v1 key ``https://index.docker.io/v1/``
whichever of its names the image uses.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import runner
from orchestrator.errors import CommandError, RegistryAuthError

HUB_KEY = "https://index.docker.io/v1/"
HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
TOKEN_USER = "<token>"  # a helper's username for "the secret is an identity token"
# a helper's name: a word, so docker-credential-<name> is looked up on PATH, never a path
HELPER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Credential:
    username: str
    password: str  # for HTTP Basic (at the registry, or at its token service)
    identity_token: str = ""  # an OAuth2 refresh token, for a token service only
    source: str = ""  # where it was found, for error messages (never a secret)


@dataclass(frozen=True)
class Lookup:
    """What a look-up found (``credential``; None: nothing) and where it looked (``looked_at``)."""

    credential: Credential | None
    looked_at: str


Runner = Callable[..., runner.Completed]


def server_key(host: str) -> str:
    """The key docker stores ``host``'s login under (what `docker login` wrote)."""
    return HUB_KEY if host in HUB_HOSTS else host


def _hostname(key: str) -> str:
    """``https://host:5000/v1/`` -> ``host:5000`` (docker's ConvertToHostname)."""
    return key.removeprefix("https://").removeprefix("http://").split("/", 1)[0]


def _matches(key: str, host: str) -> bool:
    want = HUB_KEY if host in HUB_HOSTS else host
    return key == want or _hostname(key) == _hostname(want) or (
        host in HUB_HOSTS and _hostname(key) in HUB_HOSTS)


def _read_config(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise RegistryAuthError(f"cannot read {path} ({exc.strerror}); fix its permissions or "
                                "point DOCKER_CONFIG at another directory") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RegistryAuthError(f"{path} is not JSON ({exc}); fix it (or run `docker login` "
                                "again), or point DOCKER_CONFIG at another directory") from None
    if not isinstance(data, dict):
        raise RegistryAuthError(f"{path} is not a JSON object; fix it or point DOCKER_CONFIG "
                                "at another directory")
    return data


def _helper(data: dict[str, Any], host: str) -> tuple[str, str] | None:
    """(helper name, which setting named it) for ``host``: credHelpers first, then credsStore."""
    helpers = data.get("credHelpers") or {}
    if isinstance(helpers, dict):
        for key, name in helpers.items():
            if _matches(str(key), host) and name:
                return str(name), f'credHelpers["{key}"]'
    store = data.get("credsStore")
    return (str(store), "credsStore") if store else None


def _from_auths(data: dict[str, Any], host: str, path: Path) -> Lookup:
    auths = data.get("auths") or {}
    entries = [(str(k), v) for k, v in auths.items() if _matches(str(k), host) and isinstance(v, dict)]
    for key, entry in sorted(entries, key=lambda kv: kv[0] != server_key(host)):
        user, password = str(entry.get("username") or ""), str(entry.get("password") or "")
        if entry.get("auth"):
            try:
                raw = base64.b64decode(str(entry["auth"]), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise RegistryAuthError(f'{path}: auths["{key}"].auth is not base64 of user:password; '
                                        f"run `docker login {host}` again") from None
            user, _, password = raw.partition(":")
        where = f'{path} auths["{key}"]'
        token = str(entry.get("identitytoken") or "")
        if user or password or token:
            return Lookup(Credential(user, password, token, where), where)
    return Lookup(None, f"{path} (no auths entry, credsStore or credHelpers for {server_key(host)})")


def _from_helper(name: str, setting: str, host: str, path: Path, run: Runner,
                 env: dict[str, str] | None) -> Lookup:
    if not HELPER_NAME.fullmatch(name):
        raise RegistryAuthError(f"registry {host}: {setting} in {path} names {name!r}, which is not "
                                "a credential helper name (docker-credential-<name> is found on "
                                "PATH; a name with a '/' would be a path); fix: name the helper, "
                                f"e.g. \"desktop\", or remove {setting}")
    program, key = f"docker-credential-{name}", server_key(host)
    where = f"{program} ({setting} in {path})"
    try:
        done = run([program, "get"], check=False, input=key, timeout=60, env=env)
    except CommandError as exc:
        raise RegistryAuthError(f"registry {host}: credential helper {where} could not run "
                                f"({exc.stderr.strip() or exc.returncode}); install {program} on "
                                f"PATH or remove {setting} from {path}") from None
    if done.returncode != 0:
        said = (done.stdout.strip() or done.stderr.strip()).splitlines()
        if said and "credentials not found" in said[-1].lower():
            return Lookup(None, f"{where}: no login for {key}")
        reason = said[-1] if said else f"exit {done.returncode}"
        raise RegistryAuthError(f"registry {host}: credential helper {where} failed for {key} "
                                f"({reason}); run `docker login {host}` or fix the helper")
    try:
        answer = json.loads(done.stdout)
        user, secret = str(answer["Username"]), str(answer["Secret"])
    except (ValueError, KeyError, TypeError):
        raise RegistryAuthError(f"registry {host}: credential helper {where} printed no "
                                "{ServerURL, Username, Secret} JSON; fix or replace the helper") from None
    if user == TOKEN_USER:
        return Lookup(Credential("", "", secret, where), where)
    if not user and not secret:  # docker reads this as no login: anonymous
        return Lookup(None, f"{where}: an empty login for {key}")
    return Lookup(Credential(user, secret, "", where), where)


def lookup(docker_config: Path, host: str, *, run: Runner = runner.run,
           env: dict[str, str] | None = None) -> Lookup:
    """``host``'s login as docker would use it; ``env`` is the helper's environment (its PATH
    finds the helper). Errors (an unreadable config, a helper that fails) are RegistryAuthError."""
    path = docker_config / "config.json"
    data = _read_config(path)
    helper = _helper(data, host)
    if helper is not None:
        return _from_helper(*helper, host, path, run, env)
    return _from_auths(data, host, path)

"""The registry's auth challenges (``WWW-Authenticate``) answered as docker answers them.

Basic: the username and password, to the registry only (an identity token is never a
password: a login that has only one cannot answer Basic). Bearer (the distribution token
spec): a token from the challenge's ``realm`` for its ``service`` and the request's scope; an
identity token goes to the realm as an OAuth2 refresh token (POST ``grant_type=refresh_token``),
else the username and password (GET with Basic); with no login an anonymous token is asked
for (public images). A login is never sent to a plain-HTTP realm other than a loopback one,
nor re-sent by a redirect to another origin (transport).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from urllib.parse import urlencode

from orchestrator.errors import RegistryAuthError, RegistryError
from orchestrator.registry.credentials import Credential
from orchestrator.registry.transport import Transport, is_loopback, origin

CLIENT_ID = "python-base-orchestrator"


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" | "bearer" | whatever the registry said, lower-cased
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge:
    scheme, _, rest = header.strip().partition(" ")
    return Challenge(scheme.lower(), {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)})


def basic(credential: Credential) -> str:
    raw = f"{credential.username}:{credential.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def basic_for(host: str, credential: Credential) -> str:
    """The Basic answer to ``host``'s challenge; an identity token alone cannot give one."""
    if credential.identity_token and not credential.password:
        raise RegistryAuthError(
            f"registry {host} asks for a username and password (HTTP Basic), but the login from "
            f"{credential.source} is an identity token, which only a token service takes; run "
            f"`docker login {host}` with a username and password")
    return basic(credential)


def _token_request(challenge: Challenge, scope: str,
                   credential: Credential | None) -> tuple[str, str, dict[str, str], bytes | None]:
    """(method, url, headers, body) of the token request."""
    realm = challenge.params["realm"]
    service = challenge.params.get("service", "")
    scope = scope or challenge.params.get("scope", "")
    if credential is not None and credential.identity_token:
        form = {"grant_type": "refresh_token", "refresh_token": credential.identity_token,
                "service": service, "client_id": CLIENT_ID}
        if scope:
            form["scope"] = scope
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return "POST", realm, headers, urlencode(form).encode()
    query = {"service": service, **({"scope": scope} if scope else {})}
    headers = {"Authorization": basic(credential)} if credential is not None else {}
    return "GET", f"{realm}?{urlencode(query)}", headers, None


def bearer_token(transport: Transport, host: str, challenge: Challenge, scope: str,
                 credential: Credential | None, looked_at: str) -> str:
    """A token for ``scope`` from the challenge's realm, as ``Authorization`` header value."""
    realm = challenge.params.get("realm", "")
    try:
        scheme, realm_host, _ = origin(realm)
    except RegistryError:
        scheme = realm_host = ""
    if scheme not in ("http", "https") or not realm_host:
        raise RegistryAuthError(f"registry {host} named no usable token service ({realm!r}); "
                                "check the registry's auth settings")
    if credential is not None and scheme == "http" and not is_loopback(realm_host):
        raise RegistryAuthError(f"registry {host}: refusing to send the login from "
                                f"{credential.source} to the plain-HTTP token service {realm}; "
                                "serve the token service over HTTPS")
    method, url, headers, body = _token_request(challenge, scope, credential)
    resp = transport.send(method, url, headers, body, origin(realm))
    if resp.status_code in (400, 401, 403):
        raise RegistryAuthError(_refusal(host, resp.status_code, realm, credential, looked_at))
    if resp.status_code != 200:
        raise RegistryError(f"token service {realm} of registry {host} answered HTTP "
                            f"{resp.status_code}; try again later")
    try:
        doc = resp.json()
        token = str(doc.get("token") or doc.get("access_token") or "")
    except (ValueError, AttributeError):
        token = ""
    if not token:
        raise RegistryError(f"token service {realm} of registry {host} sent no token; "
                            "check the registry's auth settings")
    return f"Bearer {token}"


def _refusal(host: str, status: int, realm: str, credential: Credential | None,
             looked_at: str) -> str:
    if credential is None:
        return (f"registry {host} needs a login and none was found (looked at {looked_at}); "
                f"run `docker login {host}`")
    return (f"token service {realm} refused the login for registry {host} from "
            f"{credential.source} (HTTP {status}); run `docker login {host}` again")

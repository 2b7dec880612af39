"""The registry client (OCI distribution API) and docker's way of finding logins.

``client``: Registry, the API; ``transport``: requests + urllib3 Retry, redirects without
foreign Authorization; ``auth``: Basic and token (Bearer) challenges; ``credentials``:
config.json, credsStore, credHelpers, identity tokens.
"""

from __future__ import annotations

from functools import partial

from orchestrator.registry import credentials
from orchestrator.registry.client import INDEX_TYPES, MANIFEST_TYPES, Registry, Response
from orchestrator.registry.credentials import Credential, Lookup
from orchestrator.registry.transport import Proxies, scheme_for
from orchestrator.settings import Settings

__all__ = ["INDEX_TYPES", "MANIFEST_TYPES", "Credential", "Lookup", "Proxies", "Registry",
           "Response", "registry_for", "scheme_for"]


def registry_for(host: str, settings: Settings) -> Registry:
    """A client for ``host`` with the login docker would use for it (looked up at the first
    auth challenge: a registry that asks for none never runs a credential helper); the docker
    config, the environment of credential helpers and the proxies as ``settings`` read them."""
    lookup = partial(credentials.lookup, settings.docker_config, host,
                     env=settings.child_env({}))
    return Registry(host, lookup=lookup,
                    proxies=Proxies(settings.http_proxy, settings.https_proxy, settings.no_proxy))

"""A small OCI distribution (registry v2) client: digests, labels, manifests, retagging.

One requests.Session per client; retries (connection errors, 5xx, 429 with Retry-After) in
``transport``; auth challenges in ``auth``; logins from ``credentials`` (as docker finds them).
A 401/403 that a login cannot fix, a missing login and a rate limit that outlasts the retries
are RegistryAuthError/RegistryError (exit 4) with one line: the registry, the login looked at
and the fix.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import requests

from orchestrator.config import grammar
from orchestrator.errors import RegistryAuthError, RegistryError
from orchestrator.naming import OCI
from orchestrator.registry.auth import basic_for, bearer_token, parse_challenge
from orchestrator.registry.credentials import HUB_HOSTS, Credential, Lookup
from orchestrator.registry.transport import Proxies, RetryPolicy, Transport, origin, scheme_for

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
MAX_TAG_PAGES = 1000
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
# the image spec's empty descriptor ({}), and what Registry.untag's placeholders are
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_JSON = b"{}"
EMPTY_DIGEST = "sha256:" + hashlib.sha256(EMPTY_JSON).hexdigest()
PLACEHOLDER = "placeholder while the registry removes the tag "


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]  # case-insensitive when it comes from the registry
    body: bytes


@dataclass
class Registry:
    host: str
    credentials: tuple[str, str] | Credential | None = None  # else ``lookup`` finds them
    attempts: int = 5
    backoff: float = 0.5
    timeout: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    max_wait: float = 120.0  # seconds of retry waits per request, Retry-After included
    lookup: Callable[[], Lookup] | None = None  # run at the first auth challenge
    proxies: Proxies = field(default_factory=Proxies)
    _bearer: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _basic: str = field(default="", init=False, repr=False)
    _found: Lookup | None = field(default=None, init=False, repr=False)
    _transport: Transport = field(init=False, repr=False)

    def __post_init__(self) -> None:
        policy = RetryPolicy(self.attempts, self.backoff, self.max_wait, self.sleep, self.host)
        self._transport = Transport(self.host, policy, self.timeout, self.proxies)

    @property
    def api_host(self) -> str:
        return "registry-1.docker.io" if self.host in HUB_HOSTS else self.host

    @property
    def scheme(self) -> str:
        return scheme_for(self.host)

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.api_host}"

    def close(self) -> None:
        self._transport.close()

    # ----------------------------------------------------------------- requests and auth

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None,
        data: bytes | None = None, scope: str = "",
    ) -> Response:
        """``path`` on the registry (or a full URL, e.g. a Link); auth challenges answered."""
        url = path if "://" in path else f"{self.base_url}{path}"
        challenged = False
        while True:
            hdrs = dict(headers or {})
            authorization = self._bearer.get(scope) or self._basic
            if authorization:
                hdrs["Authorization"] = authorization
            r = self._transport.send(method, url, hdrs, data, origin(self.base_url))
            if r.status_code in (401, 403) and origin(r.url) != origin(self.base_url):
                raise RegistryError(self._foreign(method, url, r))
            if r.status_code == 401 and not challenged:
                challenged = True
                self._authenticate(r.headers.get("WWW-Authenticate", ""), scope)
                continue
            if r.status_code in (401, 403):
                raise RegistryAuthError(f"{method} {url}: HTTP {r.status_code}: {self._refused()}")
            if r.status_code == 429:
                raise RegistryError(self._rate_limited(method, url, r))
            return Response(r.status_code, r.headers, r.content)

    def _foreign(self, method: str, url: str, r: requests.Response) -> str:
        """A 401/403 from another host than the registry (its storage, a Link's host): never
        answered with the registry's login, nor a token fetched for it."""
        scheme, host, port = origin(r.url)
        where = f"{scheme}://{host}" + (f":{port}" if port not in (80, 443, None) else "")
        asked = r.headers.get("WWW-Authenticate", "").strip().split(" ", 1)[0]
        return (f"{method} {url}: {where}, another host than registry {self.host} (it was "
                f"sent there), answered HTTP {r.status_code}"
                + (f" asking for a {asked} login" if asked else "")
                + f"; the registry's login is never sent to another host; check registry "
                f"{self.host}'s storage and redirect settings")

    def _login(self) -> Lookup:
        if self._found is None:
            if isinstance(self.credentials, Credential):
                self._found = Lookup(self.credentials, self.credentials.source)
            elif self.credentials is not None:
                where = "the login given to this client"
                self._found = Lookup(Credential(*self.credentials, source=where), where)
            elif self.lookup is not None:
                self._found = self.lookup()
            else:
                self._found = Lookup(None, "no login given to this client")
        return self._found

    def _authenticate(self, header: str, scope: str) -> None:
        challenge = parse_challenge(header)
        found = self._login()
        if challenge.scheme == "bearer":
            self._bearer[scope] = bearer_token(self._transport, self.host, challenge, scope,
                                                    found.credential, found.looked_at)
        elif challenge.scheme == "basic":
            if found.credential is None:
                raise RegistryAuthError(self._refused())
            self._basic = basic_for(self.host, found.credential)
        else:
            raise RegistryAuthError(f"registry {self.host} asked for an unsupported login "
                                    f"({header.strip()[:80]!r}); {self._refused()}")

    def _refused(self) -> str:
        found = self._found
        if found is None:
            return (f"registry {self.host} refused us without asking for a login; run "
                    f"`docker login {self.host}` with an account that has access")
        if found.credential is None:
            return (f"registry {self.host} needs a login and none was found (looked at "
                    f"{found.looked_at}); run `docker login {self.host}`")
        return (f"registry {self.host} refused the login from {found.credential.source}; run "
                f"`docker login {self.host}` again (it may have expired or lack access)")

    def _rate_limited(self, method: str, url: str, r: requests.Response) -> str:
        tried, waited = self._transport.last.attempts, self._transport.last.waited
        after = r.headers.get("Retry-After")
        found = self._found
        login = (f"the login from {found.credential.source}" if found and found.credential
                 else f"no login ({found.looked_at})" if found else "no login")
        return (f"{method} {url}: registry {self.host} rate-limits us (HTTP 429) after {tried} "
                f"attempt(s) and {waited:g}s of waiting" + (f", Retry-After {after}" if after else "")
                + f"; used {login}; wait and re-run, or `docker login {self.host}` with an "
                "account that has a higher pull limit")

    # ----------------------------------------------------------------- API

    def manifest(self, repo: str, ref: str) -> tuple[bytes, str, str] | None:
        """(raw manifest, media type, digest) or None when the tag/digest does not exist."""
        r = self.request("GET", f"/v2/{repo}/manifests/{ref}", {"Accept": MANIFEST_TYPES},
                         scope=f"repository:{repo}:pull")
        if r.status == 404:
            return None
        if r.status != 200:
            raise RegistryError(f"GET manifest {self.host}/{repo}:{ref}: HTTP {r.status} {r.body[:200]!r}")
        computed = "sha256:" + hashlib.sha256(r.body).hexdigest()
        said = ref if grammar.DIGEST.fullmatch(ref) else r.headers.get("Docker-Content-Digest", "")
        if said and said != computed:
            raise RegistryError(f"GET manifest {self.host}/{repo}:{ref}: the answer is not the "
                                f"manifest {said} (its bytes hash to {computed}); refused, as docker "
                                f"refuses it; check registry {self.host} and its storage")
        mtype = r.headers.get("Content-Type", "").split(";")[0]
        return r.body, mtype, computed

    def digest(self, repo: str, ref: str) -> str | None:
        """The manifest digest of a tag (HEAD: no pull counted); GET + sha256 of the body only
        when the HEAD answer has no Docker-Content-Digest (e.g. redirected to storage)."""
        r = self.request("HEAD", f"/v2/{repo}/manifests/{ref}", {"Accept": MANIFEST_TYPES},
                         scope=f"repository:{repo}:pull")
        if r.status == 404:
            return None
        if r.status != 200:
            raise RegistryError(f"HEAD manifest {self.host}/{repo}:{ref}: HTTP {r.status}")
        said = r.headers.get("Docker-Content-Digest", "")
        if grammar.DIGEST.fullmatch(said):
            return said
        found = self.manifest(repo, ref)
        return found[2] if found else None

    def put_manifest(self, repo: str, ref: str, body: bytes, media_type: str) -> str:
        r = self.request("PUT", f"/v2/{repo}/manifests/{ref}", {"Content-Type": media_type}, body,
                         scope=f"repository:{repo}:pull,push")
        if r.status not in (200, 201):
            raise RegistryError(f"PUT manifest {self.host}/{repo}:{ref}: HTTP {r.status} {r.body[:300]!r}")
        return r.headers.get("Docker-Content-Digest", "sha256:" + hashlib.sha256(body).hexdigest())

    def tag(self, repo: str, digest: str, tag: str) -> None:
        """Point ``tag`` at the manifest ``digest`` (already in the repository)."""
        found = self.manifest(repo, digest)
        if found is None:
            raise RegistryError(f"{self.host}/{repo}@{digest} is not in the registry; cannot tag {tag}")
        body, mtype, _ = found
        self.put_manifest(repo, tag, body, mtype)

    def untag(self, repo: str, tag: str) -> bool:
        """Remove ``tag``, never the manifest it points at: the distribution spec's DELETE of
        the tag where the registry supports it (distribution 3, Harbor, zot); where it does not
        (distribution 2.x answers 405), or our login may not delete, the tag is first pointed
        at a placeholder of its own (an empty OCI artifact naming the tag) and the placeholder
        is deleted by digest, which takes the tag with it. True when the tag is gone; False
        when the registry deletes nothing (deletion disabled): the tag stays, on the
        placeholder, so what it held is reachable by digest only."""
        self._delete(repo, tag)
        if self.digest(repo, tag) is None:
            return True  # gone, or never there (a 404 to the DELETE is believed only after this)
        body = self._placeholder(repo, tag)
        placeholder = self.put_manifest(repo, tag, body, OCI_MANIFEST)
        return self._delete(repo, placeholder)

    def _delete(self, repo: str, ref: str) -> bool:
        """DELETE the manifest (a digest) or the tag ``ref``: True when it is gone (202, or
        404: not there), False when the registry or our login does not delete."""
        try:
            r = self.request("DELETE", f"/v2/{repo}/manifests/{ref}",
                             scope=f"repository:{repo}:delete")
        except RegistryAuthError:
            return False  # a login that may push but not delete
        return r.status in (200, 202, 404)

    def _placeholder(self, repo: str, tag: str) -> bytes:
        """An empty OCI artifact of its own for ``tag`` (its config and layer the empty
        descriptor the image spec defines), its blob uploaded when the repository lacks it."""
        if self.request("HEAD", f"/v2/{repo}/blobs/{EMPTY_DIGEST}",
                        scope=f"repository:{repo}:pull").status != 200:
            self.upload_blob(repo, EMPTY_JSON)
        empty = {"mediaType": EMPTY_TYPE, "digest": EMPTY_DIGEST, "size": len(EMPTY_JSON)}
        return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": empty,
                           "layers": [empty], "annotations": {OCI.description: PLACEHOLDER + tag}},
                          sort_keys=True).encode()

    def upload_blob(self, repo: str, data: bytes) -> str:
        """Upload ``data`` as a blob of ``repo`` (POST, then PUT with its digest); its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        scope = f"repository:{repo}:pull,push"
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/", scope=scope)
        location = r.headers.get("Location", "")
        if r.status != 202 or not location:
            raise RegistryError(f"POST blob upload {self.host}/{repo}: HTTP {r.status} "
                                f"{r.body[:200]!r}")
        url = urljoin(f"{self.base_url}/v2/{repo}/blobs/uploads/", location)
        url += ("&" if "?" in url else "?") + f"digest={digest}"
        r = self.request("PUT", url, {"Content-Type": "application/octet-stream"}, data,
                         scope=scope)
        if r.status not in (201, 204):
            raise RegistryError(f"PUT blob {self.host}/{repo}@{digest}: HTTP {r.status} "
                                f"{r.body[:200]!r}")
        return digest

    def blob(self, repo: str, digest: str) -> bytes:
        r = self.request("GET", f"/v2/{repo}/blobs/{digest}", scope=f"repository:{repo}:pull")
        if r.status != 200:
            raise RegistryError(f"GET blob {self.host}/{repo}@{digest}: HTTP {r.status}")
        computed = "sha256:" + hashlib.sha256(r.body).hexdigest()
        if computed != digest:
            raise RegistryError(f"GET blob {self.host}/{repo}@{digest}: the answer is not the blob "
                                f"{digest} (its bytes hash to {computed}); refused; check registry "
                                f"{self.host} and its storage")
        return r.body

    def image_config(self, repo: str, ref: str) -> dict[str, Any] | None:
        """The image config (labels live in config.Labels) of a single-platform image."""
        found = self.manifest(repo, ref)
        if found is None:
            return None
        body, mtype, _ = found
        doc = json.loads(body)
        if mtype in INDEX_TYPES or "manifests" in doc:
            plat = [m for m in doc["manifests"]
                    if m.get("platform", {}).get("architecture") == "amd64"] or doc["manifests"]
            return self.image_config(repo, plat[0]["digest"])
        cfg: dict[str, Any] = json.loads(self.blob(repo, doc["config"]["digest"]))
        return cfg

    def platform_manifests(self, repo: str, ref: str) -> dict[str, str] | None:
        """{"linux/arm64": manifest digest, ...} of a tag or digest (None: not there). An index
        lists its platforms (attestation manifests, platform unknown/unknown, are left out); a
        single-platform image is read from its config."""
        found = self.manifest(repo, ref)
        if found is None:
            return None
        body, mtype, digest = found
        doc = json.loads(body)
        if mtype in INDEX_TYPES or "manifests" in doc:
            out = {}
            for m in doc["manifests"]:
                plat = m.get("platform") or {}
                name = f"{plat.get('os', '?')}/{plat.get('architecture', '?')}"
                if plat.get("variant"):
                    name += "/" + plat["variant"]
                if name != "unknown/unknown":
                    out[name] = m["digest"]
            return out
        cfg = json.loads(self.blob(repo, doc["config"]["digest"]))
        return {f"{cfg.get('os', 'linux')}/{cfg.get('architecture', 'amd64')}": digest}

    def platform_configs(self, repo: str, ref: str) -> dict[str, dict[str, Any]] | None:
        """{platform: image config} of a tag or digest (None: not there)."""
        manifests = self.platform_manifests(repo, ref)
        if manifests is None:
            return None
        out = {}
        for plat, digest in manifests.items():
            found = self.manifest(repo, digest)
            if found is None:
                raise RegistryError(f"{self.host}/{repo}@{digest} ({plat}) is listed by {ref} "
                                    "but missing")
            doc = json.loads(found[0])
            out[plat] = json.loads(self.blob(repo, doc["config"]["digest"]))
        return out

    def platform_sizes(self, repo: str, ref: str) -> dict[str, int]:
        """{platform: compressed size (config + layers as stored)}; empty when not there."""
        return {plat: self.manifest_size(repo, digest) or 0
                for plat, digest in (self.platform_manifests(repo, ref) or {}).items()}

    def manifest_size(self, repo: str, ref: str) -> int | None:
        """Compressed size: config + layers as stored in the registry."""
        found = self.manifest(repo, ref)
        if found is None:
            return None
        doc = json.loads(found[0])
        if "layers" not in doc:
            return None
        return int(doc["config"]["size"]) + sum(int(x["size"]) for x in doc["layers"])

    def layer_digests(self, repo: str, ref: str) -> list[str]:
        found = self.manifest(repo, ref)
        if found is None:
            return []
        return [x["digest"] for x in json.loads(found[0]).get("layers", [])]

    def tags(self, repo: str) -> list[str]:
        """Every tag of ``repo``: the pages a registry splits the list into (``Link: <...>;
        rel="next"``) are followed."""
        path, tags = f"/v2/{repo}/tags/list", list[str]()
        for page in range(MAX_TAG_PAGES):
            r = self.request("GET", path, scope=f"repository:{repo}:pull")
            if r.status == 404 and page == 0:
                return []
            if r.status != 200:
                raise RegistryError(f"GET tags {self.host}/{repo}: HTTP {r.status}")
            tags += json.loads(r.body).get("tags") or []
            following = [link["url"] for link in
                         requests.utils.parse_header_links(r.headers.get("Link", ""))
                         if link.get("rel") == "next" and link.get("url")]
            if not following:
                return sorted(set(tags))
            path = urljoin(f"{self.base_url}/v2/{repo}/tags/list", following[0])
        raise RegistryError(f"GET tags {self.host}/{repo}: more than {MAX_TAG_PAGES} pages; "
                            "check the registry's pagination (Link headers)")

    def ping(self) -> None:
        r = self.request("GET", "/v2/")
        if r.status not in (200, 401):
            raise RegistryError(f"registry {self.host} answered HTTP {r.status} on /v2/")

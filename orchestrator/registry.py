"""A small OCI distribution (registry v2) client: digests, labels, manifests, retagging.

Retries with exponential backoff on connection errors and 5xx; 401/403 become a
RegistryAuthError that names the registry and how to log in.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import log, settings
from orchestrator.errors import RegistryAuthError, RegistryError

_log = log.get("registry")

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


def split_ref(ref: str) -> tuple[str, str, str]:
    """'host:5000/org/python:3.13-runtime' -> (host:5000, org/python, 3.13-runtime or sha256:..)."""
    name, _, digest = ref.partition("@")
    first, _, rest = name.partition("/")
    if not rest or not ("." in first or ":" in first or first == "localhost"):
        host, path = "docker.io", name
    else:
        host, path = first, rest
    if host == "docker.io" and "/" not in path.split(":")[0]:
        path = "library/" + path
    repo, tag = path, "latest"
    if ":" in path.rsplit("/", 1)[-1]:
        repo, _, tag = path.rpartition(":")
    return host, repo, digest or tag


def docker_credentials(docker_config: Path, host: str) -> tuple[str, str] | None:
    try:
        data = json.loads((docker_config / "config.json").read_text())
    except (OSError, ValueError):
        return None
    for key in (host, f"https://{host}", f"http://{host}", f"https://{host}/v1/"):
        auth = data.get("auths", {}).get(key, {}).get("auth")
        if auth:
            user, _, password = base64.b64decode(auth).decode().partition(":")
            return user, password
    return None


def scheme_for(host: str) -> str:
    """Plain HTTP for loopback registries only (as dockerd and cosign treat them), else HTTPS."""
    h = host.split(":", maxsplit=1)[0]
    return "http" if h in ("localhost", "127.0.0.1", "::1") or h.startswith("127.") else "https"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Registry:
    host: str
    credentials: tuple[str, str] | None = None
    attempts: int = 5
    backoff: float = 0.5
    timeout: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    _token: dict[str, str] = field(default_factory=dict)

    @property
    def api_host(self) -> str:
        return "registry-1.docker.io" if self.host == "docker.io" else self.host

    @property
    def scheme(self) -> str:
        return scheme_for(self.host)

    def _login_hint(self) -> str:
        return (f"registry {self.host} refused the credentials or has none for us; "
                f"run `docker login {self.host}` (credentials are read from DOCKER_CONFIG/config.json)")

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None,
        data: bytes | None = None, scope: str = "",
    ) -> Response:
        url = f"{self.scheme}://{self.api_host}{path}"
        hdrs = dict(headers or {})
        authed = False
        for attempt in range(1, self.attempts + 1):
            if scope in self._token:
                hdrs["Authorization"] = self._token[scope]
            req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return Response(resp.status, dict(resp.headers.items()), resp.read())
            except urllib.error.HTTPError as exc:
                body = exc.read()
                if exc.code in (401, 403):
                    if exc.code == 401 and not authed:
                        authed = True
                        self._authenticate(exc.headers.get("WWW-Authenticate", ""), scope)
                        continue
                    hint = self._login_hint()
                    raise RegistryAuthError(f"{method} {url}: HTTP {exc.code}: {hint}") from None
                if exc.code >= 500 and attempt < self.attempts:
                    self._wait(attempt, f"HTTP {exc.code}", url)
                    continue
                return Response(exc.code, dict(exc.headers.items()), body)
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                why = (f"no answer within {self.timeout:g}s" if isinstance(reason, TimeoutError)
                       else str(reason))
                if attempt < self.attempts:
                    self._wait(attempt, why, url)
                    continue
                raise RegistryError(
                    f"{method} {url}: registry {self.host} unreachable after {self.attempts} "
                    f"attempts ({why}); check that it runs and the address in images.yaml "
                    "(publish.registry)"
                ) from None
        raise RegistryError(f"{method} {url}: gave up after {self.attempts} attempts")

    def _wait(self, attempt: int, why: str, url: str) -> None:
        delay = self.backoff * 2 ** (attempt - 1)
        _log.warning("registry retry", url=url, why=why, attempt=attempt, sleep=delay)
        self.sleep(delay)

    def _authenticate(self, challenge: str, scope: str) -> None:
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            if not self.credentials:
                raise RegistryAuthError(f"{self._login_hint()}")
            raw = ":".join(self.credentials).encode()
            self._token[scope] = "Basic " + base64.b64encode(raw).decode()
            return
        if scheme.lower() != "bearer":
            raise RegistryAuthError(f"unsupported auth challenge {challenge!r}; {self._login_hint()}")
        fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
        query = {"service": fields.get("service", "")}
        if scope or fields.get("scope"):
            query["scope"] = scope or fields["scope"]
        url = f"{fields['realm']}?{urllib.parse.urlencode(query)}"
        req = urllib.request.Request(url)
        if self.credentials:
            raw = ":".join(self.credentials).encode()
            req.add_header("Authorization", "Basic " + base64.b64encode(raw).decode())
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                token = json.loads(resp.read())
        except (urllib.error.URLError, ValueError) as exc:
            raise RegistryAuthError(f"token service {fields.get('realm')} failed ({exc}); "
                                    f"{self._login_hint()}") from None
        self._token[scope] = "Bearer " + (token.get("token") or token.get("access_token", ""))

    # ----------------------------------------------------------------- API

    def manifest(self, repo: str, ref: str) -> tuple[bytes, str, str] | None:
        """(raw manifest, media type, digest) or None when the tag/digest does not exist."""
        r = self.request("GET", f"/v2/{repo}/manifests/{ref}", {"Accept": MANIFEST_TYPES},
                         scope=f"repository:{repo}:pull")
        if r.status == 404:
            return None
        if r.status != 200:
            raise RegistryError(f"GET manifest {self.host}/{repo}:{ref}: HTTP {r.status} {r.body[:200]!r}")
        digest = r.headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(r.body).hexdigest()
        mtype = r.headers.get("Content-Type", "").split(";")[0]
        return r.body, mtype, digest

    def digest(self, repo: str, ref: str) -> str | None:
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

    def blob(self, repo: str, digest: str) -> bytes:
        r = self.request("GET", f"/v2/{repo}/blobs/{digest}", scope=f"repository:{repo}:pull")
        if r.status != 200:
            raise RegistryError(f"GET blob {self.host}/{repo}@{digest}: HTTP {r.status}")
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
        r = self.request("GET", f"/v2/{repo}/tags/list", scope=f"repository:{repo}:pull")
        if r.status == 404:
            return []
        if r.status != 200:
            raise RegistryError(f"GET tags {self.host}/{repo}: HTTP {r.status}")
        return sorted(json.loads(r.body).get("tags") or [])

    def ping(self) -> None:
        r = self.request("GET", "/v2/")
        if r.status not in (200, 401):
            raise RegistryError(f"registry {self.host} answered HTTP {r.status} on /v2/")


def registry_for(host: str) -> Registry:
    """A client for ``host`` with the credentials `docker login` stored for it."""
    return Registry(host, docker_credentials(settings.get().docker_config, host))

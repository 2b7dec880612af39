"""An in-memory OCI distribution registry on 127.0.0.1 for unit tests (no Docker).

It speaks enough of the distribution API for ``orchestrator.registry.Registry`` and for
blob + manifest pushes: ``/v2/``, GET/HEAD/PUT/DELETE ``manifests/<tag|digest>``, GET/HEAD
``blobs/<digest>``, POST/PATCH/PUT ``blobs/uploads/``, ``tags/list``. Like a real registry it
refuses a manifest whose blobs are missing or whose digest does not match its reference. It
keeps every request (``requests``) and every value each tag ever had (``history``), so tests
can check the order of operations and that no tag was lost or moved where it must not be.

Options: ``credentials`` makes it require HTTP Basic auth (401 + challenge without them),
``read_only`` answers 403 to every write. ``token_auth`` makes it a token-auth registry (the
distribution token spec): it asks for a Bearer token from its own ``/token`` service, which
issues one for the requested scope to ``credentials`` (GET with Basic) or to a refresh token in
``refresh_tokens`` (POST ``grant_type=refresh_token``). ``storage`` (tests.fakes.fake_storage.Storage)
makes manifest and blob reads answer 307 to that other host, as registries send reads to S3 or
a CDN. ``page_size`` splits ``tags/list`` into pages linked by ``Link: <...>; rel="next"``.
``calls`` keeps every request with its headers. ``deletes`` is what DELETE may remove:
"tags" (distribution 3: a tag, or a manifest by digest with the tags on it), "digests"
(distribution 2.x with deletion enabled: a tag is refused, as the local registry of the e2e
tests refuses it) or "none" (deletion disabled: 405 UNSUPPORTED). ``token_redirect``: the
token service answers every request with a 307 to this URL (a token service that moved, or
one that would send the login elsewhere).
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    from tests.fakes.fake_storage import Storage

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_ROUTES = [
    ("base", re.compile(r"^/v2/$")),
    ("manifest", re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")),
    ("upload", re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<id>[^/]*)$")),
    ("blob", re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>sha256:[0-9a-f]{64})$")),
    ("tags", re.compile(r"^/v2/(?P<name>.+)/tags/list$")),
]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Repo:
    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # digest -> body, type
    tags: dict[str, str] = field(default_factory=dict)  # tag -> digest
    blobs: set[str] = field(default_factory=set)  # digests linked into this repository


@dataclass
class Call:
    method: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _error(status: int, code: str, message: str) -> Answer:
    body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
    return Answer(status, body, {"Content-Type": "application/json"})


class FakeRegistry:
    def __init__(self, credentials: tuple[str, str] | None = None, read_only: bool = False, *,
                 token_auth: bool = False, refresh_tokens: tuple[str, ...] = (),
                 storage: Storage | None = None, page_size: int | None = None,
                 deletes: Literal["tags", "digests", "none"] = "tags") -> None:
        self.credentials, self.read_only = credentials, read_only
        self.deletes = deletes
        self.no_delete = False  # every DELETE: 403, as to a login that may push but not delete
        self.token_auth, self.refresh_tokens = token_auth, refresh_tokens
        self.storage, self.page_size = storage, page_size
        self.token_redirect = ""
        self.tokens: dict[str, str] = {}  # issued token -> the scope it grants
        self.calls: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers)
        self.repos: dict[str, Repo] = {}
        self.blobs: dict[str, bytes] = {}
        self.uploads: dict[str, tuple[str, bytearray]] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) in arrival order
        self.history: dict[tuple[str, str], list[str]] = {}  # (repo, tag) -> digests it held
        self.lock = threading.Lock()
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def address(self) -> str:
        assert self._httpd is not None, "registry not started"
        return f"127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> FakeRegistry:
        registry = self

        class Handler(_Handler):
            fake = registry

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    # ------------------------------------------------------------------ inspection

    def tags(self, repo: str) -> dict[str, str]:
        """tag -> digest, as the registry holds them now."""
        with self.lock:
            return dict(self.repos.get(repo, Repo()).tags)

    def has_manifest(self, repo: str, digest: str) -> bool:
        """Whether the registry holds the manifest ``digest`` (tagged or not)."""
        with self.lock:
            return digest in self.repos.get(repo, Repo()).manifests

    def writes(self, repo: str) -> list[str]:
        """The references manifests were PUT to, in order."""
        prefix = f"/v2/{repo}/manifests/"
        return [p[len(prefix):] for m, p in self.requests if m == "PUT" and p.startswith(prefix)]

    def put_image(self, repo: str, tag: str, seed: str,
                  platforms: tuple[str, ...] = ("linux/amd64",)) -> str:
        """Store an image without HTTP (for tests that read it): one manifest per platform under
        an OCI index when there are several; returns the digest ``tag`` points to."""
        with self.lock:
            r = self.repos.setdefault(repo, Repo())
            entries = []
            for plat in platforms:
                os_, arch = plat.split("/")[:2]
                layer = f"{repo} {seed} {plat}\n".encode()
                cfg = json.dumps({"os": os_, "architecture": arch, "config": {"Labels": {}},
                                  "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]}}).encode()
                for blob in (layer, cfg):
                    self.blobs[sha256(blob)] = blob
                    r.blobs.add(sha256(blob))
                body = json.dumps({
                    "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               "size": len(cfg), "digest": sha256(cfg)},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                "size": len(layer), "digest": sha256(layer)}]}).encode()
                r.manifests[sha256(body)] = (body, OCI_MANIFEST)
                entries.append({"mediaType": OCI_MANIFEST, "digest": sha256(body), "size": len(body),
                                "platform": {"os": os_, "architecture": arch}})
            if len(entries) == 1:
                digest = entries[0]["digest"]
            else:
                body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                   "manifests": entries}).encode()
                digest = sha256(body)
                r.manifests[digest] = (body, OCI_INDEX)
            assert isinstance(digest, str)
            r.tags[tag] = digest
            self.history.setdefault((repo, tag), []).append(digest)
            return digest

    # ------------------------------------------------------------------ API

    def answer(self, path: str, call: Call) -> Answer:
        with self.lock:
            self.requests.append((call.method, path))
            self.calls.append((call.method, path, dict(call.headers)))
            if path == "/token" and self.token_redirect:
                return Answer(307, b"", {"Location": self.token_redirect})
            if path == "/token":
                return self._issue_token(call)
            denied = self._bearer(call.method, path, call.headers) if self.token_auth \
                else self._auth(call.method, call.headers)
            if denied is not None:
                return denied
            for kind, pattern in _ROUTES:
                m = pattern.match(path)
                if m:
                    handler = getattr(self, f"_{kind}")
                    result: Answer = handler(call, **m.groupdict())
                    return result
            return _error(404, "NOT_FOUND", path)

    def _basic_ok(self, headers: dict[str, str]) -> bool:
        assert self.credentials is not None
        raw = ":".join(self.credentials).encode()
        return headers.get("authorization") == "Basic " + base64.b64encode(raw).decode()

    def _issue_token(self, call: Call) -> Answer:
        """The token service: a token for the asked scope, to the login or a refresh token."""
        form = dict(parse_qsl(call.body.decode())) if call.method == "POST" else call.query
        if call.method == "POST":
            ok = (form.get("grant_type") == "refresh_token"
                  and form.get("refresh_token") in self.refresh_tokens)
        else:
            ok = self.credentials is None or self._basic_ok(call.headers)
        if not ok:
            return _error(401, "UNAUTHORIZED", "bad login for the token service")
        token = uuid.uuid4().hex
        self.tokens[token] = form.get("scope", "")
        return Answer(200, json.dumps({"token": token, "access_token": token}).encode(),
                      {"Content-Type": "application/json"})

    def _bearer(self, method: str, path: str, headers: dict[str, str]) -> Answer | None:
        """None when the request carries a token of ours for its repository and action."""
        found = [m for _, p in _ROUTES if (m := p.match(path)) and "name" in p.groupindex]
        name = found[0].group("name") if found else ""
        action = {"POST": "push", "PUT": "push", "PATCH": "push", "DELETE": "delete"}.get(
            method, "pull")
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme == "Bearer" and token in self.tokens:
            _, _, granted = self.tokens[token].partition(":")
            repo, _, actions = granted.rpartition(":")
            if not name or (repo == name and action in actions.split(",")):
                return None
        a = _error(401, "UNAUTHORIZED", "authentication required")
        scope = f',scope="repository:{name}:{action}"' if name else ""
        a.headers["WWW-Authenticate"] = (f'Bearer realm="http://{self.address}/token",'
                                         f'service="fake-registry"{scope}')
        return a

    def _auth(self, method: str, headers: dict[str, str]) -> Answer | None:
        if self.credentials is not None:
            raw = ":".join(self.credentials).encode()
            if headers.get("authorization") != "Basic " + base64.b64encode(raw).decode():
                a = _error(401, "UNAUTHORIZED", "authentication required")
                a.headers["WWW-Authenticate"] = 'Basic realm="fake-registry"'
                return a
        if (self.read_only and method in ("POST", "PUT", "PATCH", "DELETE")) \
                or (self.no_delete and method == "DELETE"):
            return _error(403, "DENIED", "requested access to the resource is denied")
        return None

    def _base(self, call: Call) -> Answer:
        return Answer(200, b"{}", {"Content-Type": "application/json"})

    def _manifest(self, call: Call, name: str, ref: str) -> Answer:
        repo = self.repos.setdefault(name, Repo())
        if call.method == "PUT":
            return self._put_manifest(name, repo, ref, call.body,
                                      call.headers.get("content-type", MANIFEST))
        if call.method == "DELETE":
            return self._delete_manifest(repo, ref)
        digest = ref if ref.startswith("sha256:") else repo.tags.get(ref)
        if digest is None or digest not in repo.manifests:
            return _error(404, "MANIFEST_UNKNOWN", f"manifest unknown: {name}:{ref}")
        data, mtype = repo.manifests[digest]
        if self.storage is not None:
            return self.storage.redirect(f"/manifests/{digest}", data, mtype)
        return Answer(200, data, {"Content-Type": mtype, "Docker-Content-Digest": digest})

    def _put_manifest(self, name: str, repo: Repo, ref: str, body: bytes, mtype: str) -> Answer:
        digest = sha256(body)
        if ref.startswith("sha256:") and ref != digest:
            return _error(400, "DIGEST_INVALID", f"{ref} is not the digest of the body ({digest})")
        try:
            doc: dict[str, Any] = json.loads(body)
        except ValueError:
            return _error(400, "MANIFEST_INVALID", "not JSON")
        wanted = [doc["config"], *doc.get("layers", [])] if "config" in doc else []
        missing = [d["digest"] for d in wanted if d["digest"] not in repo.blobs]
        missing += [m["digest"] for m in doc.get("manifests", []) if m["digest"] not in repo.manifests]
        if missing:
            return _error(400, "MANIFEST_BLOB_UNKNOWN", f"blob unknown to registry: {missing[0]}")
        repo.manifests[digest] = (body, doc.get("mediaType", mtype))
        if not ref.startswith("sha256:"):
            repo.tags[ref] = digest
            self.history.setdefault((name, ref), []).append(digest)
        return Answer(201, b"", {"Docker-Content-Digest": digest,
                                 "Location": f"/v2/{name}/manifests/{digest}"})

    def _delete_manifest(self, repo: Repo, ref: str) -> Answer:
        """A tag, or a manifest by digest and every tag on it (as distribution deletes one)."""
        if self.deletes == "none":
            return _error(405, "UNSUPPORTED", "The operation is unsupported.")
        if not ref.startswith("sha256:"):
            if self.deletes == "digests":  # distribution 2.x parses the reference as a digest
                return _error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
            if repo.tags.pop(ref, None) is None:
                return _error(404, "MANIFEST_UNKNOWN", f"manifest unknown: {ref}")
            return Answer(202)
        if repo.manifests.pop(ref, None) is None:
            return _error(404, "MANIFEST_UNKNOWN", f"manifest unknown: {ref}")
        for tag in [t for t, d in repo.tags.items() if d == ref]:
            del repo.tags[tag]
        return Answer(202)

    def _blob(self, call: Call, name: str, digest: str) -> Answer:
        repo = self.repos.setdefault(name, Repo())
        if digest not in repo.blobs:
            return _error(404, "BLOB_UNKNOWN", f"blob unknown: {digest}")
        data = self.blobs[digest]
        if self.storage is not None:
            return self.storage.redirect(f"/blobs/{digest}", data, "application/octet-stream")
        return Answer(200, data, {"Content-Type": "application/octet-stream",
                                  "Docker-Content-Digest": digest})

    def _upload(self, call: Call, name: str, id: str) -> Answer:
        method, query, body = call.method, call.query, call.body
        if method == "POST" and not id:
            new = str(uuid.uuid4())
            self.uploads[new] = (name, bytearray(body))
            return Answer(202, b"", {"Location": f"/v2/{name}/blobs/uploads/{new}",
                                     "Docker-Upload-UUID": new, "Range": "0-0"})
        if id not in self.uploads or self.uploads[id][0] != name:
            return _error(404, "BLOB_UPLOAD_UNKNOWN", f"blob upload unknown: {id}")
        self.uploads[id][1].extend(body)
        if method == "PATCH":
            return Answer(202, b"", {"Location": f"/v2/{name}/blobs/uploads/{id}"})
        if method != "PUT":
            return _error(405, "UNSUPPORTED", method)
        data = bytes(self.uploads.pop(id)[1])
        if sha256(data) != query.get("digest"):
            return _error(400, "DIGEST_INVALID", f"upload is {sha256(data)}, not {query.get('digest')}")
        self.blobs[sha256(data)] = data
        self.repos.setdefault(name, Repo()).blobs.add(sha256(data))
        return Answer(201, b"", {"Docker-Content-Digest": sha256(data),
                                 "Location": f"/v2/{name}/blobs/{sha256(data)}"})

    def _tags(self, call: Call, name: str) -> Answer:
        if name not in self.repos or not self.repos[name].tags:
            return _error(404, "NAME_UNKNOWN", f"repository name not known: {name}")
        tags = sorted(self.repos[name].tags)
        size = int(call.query.get("n") or self.page_size or len(tags))
        after = [t for t in tags if t > call.query.get("last", "")]
        doc = {"name": name, "tags": after[:size]}
        headers = {"Content-Type": "application/json"}
        if len(after) > size:
            headers["Link"] = f'</v2/{name}/tags/list?n={size}&last={after[size - 1]}>; rel="next"'
        return Answer(200, json.dumps(doc).encode(), headers)


class _Handler(http.server.BaseHTTPRequestHandler):
    fake: FakeRegistry

    def _any(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        a = self.fake.answer(url.path, Call(self.command, dict(parse_qsl(url.query)), headers, body))
        self.send_response(a.status)
        for k, v in a.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(a.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(a.body)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any

    def log_message(self, format: str, *args: Any) -> None:
        pass

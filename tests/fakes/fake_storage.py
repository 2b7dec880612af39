"""A storage host on another loopback address (127.0.0.2), where a fake registry redirects
its manifest and blob reads (as registries send them to S3 pre-signed URLs or a CDN).

Like a pre-signed URL it refuses a request that carries an ``Authorization`` header (S3:
"Only one auth mechanism allowed"); it keeps every request with its headers (``calls``) and
the bodies of those that had one (``bodies``) so a test can assert that no credential ever
arrived. It sends no Docker-Content-Digest. ``challenge``: answer every request 401 with this
``WWW-Authenticate`` (a storage host that asks for a login of its own).
"""

from __future__ import annotations

import http.server
import threading
from typing import Any

from tests.fakes.fake_registry import Answer


class Storage:
    def __init__(self, host: str = "127.0.0.2") -> None:
        self.host = host
        self.files: dict[str, tuple[bytes, str]] = {}  # path -> body, content type
        self.calls: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers)
        self.bodies: list[bytes] = []  # the request bodies that arrived
        self.challenge = ""  # when set: 401 with this WWW-Authenticate to every request
        self.lock = threading.Lock()
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "storage not started"
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    def authorizations(self) -> list[str]:
        """Every Authorization header that reached this host (there must be none)."""
        with self.lock:
            return [h["authorization"] for _, _, h in self.calls if "authorization" in h]

    def redirect(self, path: str, body: bytes, content_type: str) -> Answer:
        """The registry's answer: a 307 to a copy of ``body`` here (a pre-signed URL)."""
        with self.lock:
            self.files[path] = (body, content_type)
        return Answer(307, b"", {"Location": f"{self.url}{path}?X-Amz-Signature=fake"})

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Answer:
        with self.lock:
            self.calls.append((method, path, headers))
            if body:
                self.bodies.append(body)
            if self.challenge:
                return Answer(401, b"login required", {"WWW-Authenticate": self.challenge})
            if "authorization" in headers:
                return Answer(400, b"<Error><Code>InvalidArgument</Code><Message>Only one auth "
                              b"mechanism allowed</Message></Error>", {"Content-Type": "application/xml"})
            if path not in self.files:
                return Answer(404, b"NoSuchKey", {"Content-Type": "text/plain"})
            body, content_type = self.files[path]
            return Answer(200, body, {"Content-Type": content_type})

    def __enter__(self) -> Storage:
        storage = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                a = storage.answer(self.command, self.path.split("?", 1)[0], headers, body)
                self.send_response(a.status)
                for k, v in a.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(a.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(a.body)

            do_GET = do_HEAD = do_POST = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer((self.host, 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

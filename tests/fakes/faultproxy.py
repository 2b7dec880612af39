"""A fault-injecting HTTP proxy for tests: loopback only, bounded, every fault on cue.

Put it in front of a registry (or any HTTP/1.1 server) and give it rules (each line is an
example on its own)::

    with FaultProxy("127.0.0.1:5000") as proxy:
        proxy.add(Rule("reset", after=3))               # "down" after 3 requests went through
        mark = proxy.add(Rule("forward", method="PUT", path=r"/manifests/", nth=1))
        proxy.add(Rule("reset", armed_by=mark))         # "down" right after the first manifest PUT
        proxy.add(Rule("status", method="PUT", path=r"/manifests/", nth=2, status=500))
        stall = proxy.add(Rule("stall", path=r"/blobs/uploads/"))
        ...  # talk to proxy.address; stall.hit.wait() says a request is being held
        proxy.wait_fired(stall, 2)                       # ... and the second one (after a client timeout)
        stall.release.set()                              # let it go on (or reset it: then="reset")

Every request is read in full before a rule is applied, so a fault never depends on timing.
Rules are checked in order; each rule counts the requests its ``method`` and ``path`` regexes
match (``matched``); it fires on a matching request when more than ``after`` matched before it,
it is the ``nth`` match (if given) and it fired fewer than ``times`` times (if given). The first
rule that fires decides what happens to the request; with none it is forwarded (action
"forward" marks a request, e.g. to arm another rule with ``armed_by``). Each client
connection carries one request (answers say ``Connection: close``). ``records`` lists what
happened to every request; ``count()`` counts them. A connection that opens with a TLS record
gets a plain HTTP 400 (recorded as action "not-http"), as from Go's HTTP server: dockerd tries
HTTPS first even for an insecure registry and falls back to HTTP on that answer.

Bounds: 127.0.0.1 only, at most ``max_connections`` connections at a time (more are closed at
once), request heads of 64 KiB, bodies of 64 MiB, ``io_timeout`` on every socket, and a stall
lasts at most ``max_hold`` seconds; ``stop()`` releases every stall and joins every thread.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

MAX_LINE = 8192
MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "content-length"}
_REASONS = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}

Action = Literal["status", "reset", "stall", "forward"]


class ProxyError(Exception):
    """A request the proxy will not handle (too large, malformed)."""


@dataclass
class Rule:
    action: Action
    method: str = ".*"  # regex, full match on the method
    path: str = ""  # regex, searched in the request target (path and query)
    after: int = 0  # fire only once more than this many matching requests passed
    nth: int | None = None  # fire only on the nth matching request (1-based)
    times: int | None = None  # fire at most this many times
    status: int = 500  # action "status"
    headers: dict[str, str] = field(default_factory=dict)  # action "status"
    body: bytes = b'{"errors":[{"code":"UNKNOWN","message":"injected by faultproxy"}]}'
    hold: float | None = None  # action "stall": seconds, None = until released
    then: Literal["forward", "reset"] = "forward"  # action "stall": after the hold
    armed_by: Rule | None = None  # counts and fires only once that rule has fired
    matched: int = 0
    fired: int = 0
    hit: threading.Event = field(default_factory=threading.Event)  # set each time it fires
    release: threading.Event = field(default_factory=threading.Event)  # ends a stall

    def matches(self, method: str, target: str) -> bool:
        return bool(re.fullmatch(self.method, method)) and bool(re.search(self.path, target))

    def due(self) -> bool:
        """Whether the request just counted in ``matched`` gets this rule's fault."""
        if self.matched <= self.after or (self.nth is not None and self.matched != self.nth):
            return False
        return self.times is None or self.fired < self.times


@dataclass(frozen=True)
class Record:
    method: str
    target: str
    action: str  # forward | status | reset | stall+forward | stall+reset | upstream-error
    status: int  # the status the client got (0: none)


@dataclass
class Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes


class FaultProxy:
    def __init__(self, upstream: str, *, max_connections: int = 32, io_timeout: float = 30.0,
                 max_hold: float = 60.0) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.io_timeout, self.max_hold = io_timeout, max_hold
        self.rules: list[Rule] = []
        self.records: list[Record] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._stopping = threading.Event()
        self._server: socket.socket | None = None
        self._threads: set[threading.Thread] = set()
        self._clients: set[socket.socket] = set()
        self._idle = threading.Condition(self._lock)  # notified when a connection ends
        self._fired = threading.Condition(self._lock)  # notified when a rule fires

    # ------------------------------------------------------------------ control

    @property
    def address(self) -> str:
        assert self._server is not None, "proxy not started"
        return f"127.0.0.1:{self._server.getsockname()[1]}"

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)  # lets the accept loop see stop()
        self._spawn(self._accept_loop)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            for rule in self.rules:
                rule.release.set()
            for client in self._clients:
                _shutdown(client)
            threads = list(self._threads)
        for t in threads:
            t.join(timeout=10)
        if self._server is not None:
            self._server.close()

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Drop every rule (releasing its stalls): from now on requests pass."""
        with self._lock:
            for rule in self.rules:
                rule.release.set()
            self.rules.clear()

    def wait_idle(self, timeout: float = 10) -> bool:
        """Wait until no client connection is open (each freed its slot); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._clients, timeout)

    def wait_fired(self, rule: Rule, times: int = 1, timeout: float = 10) -> bool:
        """Wait until ``rule`` fired at least ``times`` times; False on timeout. A client that
        timed out cannot tell whether its request reached the proxy yet: wait on this before
        counting."""
        with self._fired:
            return self._fired.wait_for(lambda: rule.fired >= times, timeout)

    def count(self, method: str = ".*", path: str = "", action: str = "forward") -> int:
        with self._lock:
            return sum(1 for r in self.records if re.fullmatch(method, r.method)
                       and re.search(path, r.target) and r.action == action)

    # ------------------------------------------------------------------ serving

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.add(t)
        t.start()

    def _accept_loop(self) -> None:
        assert self._server is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._slots.acquire(blocking=False):
                conn.close()  # bounded: too many connections at once
                continue
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(self.io_timeout)
        with self._lock:
            self._clients.add(conn)
        try:
            if _tls_hello(conn):
                self._record(Request("", "", [], b""), "not-http", 400)
                return
            with conn.makefile("rb") as rfile:
                req = _read_request(rfile)
            if req is not None:
                self._handle(req, conn)
        except (OSError, ProxyError, ValueError):
            pass
        finally:
            conn.close()
            self._slots.release()
            with self._idle:
                self._clients.discard(conn)
                self._threads.discard(threading.current_thread())
                self._idle.notify_all()

    def _pick(self, req: Request) -> Rule | None:
        with self._lock:
            chosen = None
            armed = [r.armed_by is None or r.armed_by.fired > 0 for r in self.rules]  # before this one
            for rule, ready in zip(self.rules, armed, strict=True):
                if not ready or not rule.matches(req.method, req.target):
                    continue
                rule.matched += 1
                if chosen is None and rule.due():
                    rule.fired += 1
                    chosen = rule
                    self._fired.notify_all()
            return chosen

    def _record(self, req: Request, action: str, status: int) -> None:
        with self._lock:
            self.records.append(Record(req.method, req.target, action, status))

    def _handle(self, req: Request, conn: socket.socket) -> None:
        """Apply the rule that fires, if any. The record is written before the client can see
        the outcome, so a test that got its answer can count on ``records``."""
        rule = self._pick(req)
        action = "forward"
        if rule is not None:
            rule.hit.set()
            if rule.action == "status":
                self._record(req, "status", rule.status)
                _send_status(conn, rule)
                return
            if rule.action == "stall":
                rule.release.wait(self.max_hold if rule.hold is None
                                  else min(rule.hold, self.max_hold))
                action = "stall+forward"
            if rule.action == "reset" or (rule.action == "stall" and (
                    rule.then == "reset" or self._stopping.is_set())):
                self._record(req, "reset" if rule.action == "reset" else "stall+reset", 0)
                _reset(conn)
                return
        try:
            self._forward(req, conn, action)
        except (OSError, ValueError, IndexError):
            _reset(conn)

    def _forward(self, req: Request, conn: socket.socket, action: str) -> None:
        """Send the request upstream (Connection: close) and relay the answer."""
        recorded = False
        try:
            with socket.create_connection(self.upstream, timeout=self.io_timeout) as up:
                head = [f"{req.method} {req.target} HTTP/1.1"]
                head += [f"{k}: {v}" for k, v in req.headers if k.lower() not in _HOP]
                if req.body or req.method in ("POST", "PUT", "PATCH"):
                    head.append(f"Content-Length: {len(req.body)}")
                head.append("Connection: close")
                up.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + req.body)
                with up.makefile("rb") as rfile:
                    status_line = rfile.readline(MAX_LINE)
                    out = [status_line]
                    for line in _head_lines(rfile):
                        if line.split(b":", 1)[0].strip().lower() not in (b"connection",
                                                                          b"keep-alive"):
                            out.append(line)
                    self._record(req, action, int(status_line.split()[1]))
                    recorded = True
                    conn.sendall(b"".join(out) + b"Connection: close\r\n\r\n")
                    while chunk := rfile.read1(65536):
                        conn.sendall(chunk)
        except (OSError, ValueError, IndexError):
            if not recorded:
                self._record(req, "upstream-error", 0)
            raise


# ---------------------------------------------------------------------- HTTP bits


def _head_lines(rfile: BinaryIO) -> list[bytes]:
    """Header lines up to the blank line (bounded)."""
    lines: list[bytes] = []
    total = 0
    while True:
        line = rfile.readline(MAX_LINE)
        total += len(line)
        if total > MAX_HEAD:
            raise ProxyError("header too large")
        if line in (b"\r\n", b"\n", b""):
            return lines
        lines.append(line)


def _read_request(rfile: BinaryIO) -> Request | None:
    first = rfile.readline(MAX_LINE)
    if not first.strip():
        return None
    method, target, _ = first.decode("latin-1").rstrip("\r\n").split(" ", 2)
    headers = []
    for line in _head_lines(rfile):
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    fields = {k.lower(): v for k, v in headers}
    if "chunked" in fields.get("transfer-encoding", "").lower():
        body = _read_chunked(rfile)
    else:
        length = int(fields.get("content-length", "0"))
        if length > MAX_BODY:
            raise ProxyError("body too large")
        body = rfile.read(length)
        if len(body) != length:
            raise ProxyError("client closed mid-body")
    return Request(method, target, headers, body)


def _read_chunked(rfile: BinaryIO) -> bytes:
    body = bytearray()
    while True:
        size = int(rfile.readline(MAX_LINE).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            _head_lines(rfile)  # trailers
            return bytes(body)
        if len(body) + size > MAX_BODY:
            raise ProxyError("body too large")
        body += rfile.read(size)
        rfile.readline(MAX_LINE)


def _tls_hello(conn: socket.socket) -> bool:
    """A TLS record (a ClientHello) instead of a request: read it, answer as Go's net/http
    server answers bytes that are not HTTP (a plain ``HTTP/1.1 400``), and say so. A client
    that may fall back to plain HTTP does so on that answer: dockerd, for an insecure registry,
    tries HTTPS first and falls back only when the TLS record it reads back starts ``HTTP/``."""
    if conn.recv(1, socket.MSG_PEEK) != b"\x16":  # a TLS handshake record's content type
        return False
    head = _recv_exactly(conn, 5)
    if len(head) == 5:  # the whole record: no unread byte turns the close into a reset
        _recv_exactly(conn, struct.unpack("!H", head[3:5])[0])
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 b"Connection: close\r\n\r\n400 Bad Request")
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)
    return True


def _recv_exactly(conn: socket.socket, n: int) -> bytes:
    """``n`` bytes, or fewer if the client closed first."""
    data = b""
    while len(data) < n and (chunk := conn.recv(min(n - len(data), 65536))):
        data += chunk
    return data


def _send_status(conn: socket.socket, rule: Rule) -> None:
    head = [f"HTTP/1.1 {rule.status} {_REASONS.get(rule.status, 'Injected')}",
            "Content-Type: application/json", f"Content-Length: {len(rule.body)}",
            "Connection: close"]
    head += [f"{k}: {v}" for k, v in rule.headers.items()]
    conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + rule.body)


def _reset(conn: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the client sees 'connection reset by peer'."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def _shutdown(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)

"""The fault proxy itself, against a tiny in-process HTTP server: every fault on cue."""

from __future__ import annotations

import http.client
import http.server
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.faultproxy import FaultProxy, Rule


class Echo(http.server.BaseHTTPRequestHandler):
    """Answers every request with what it saw; remembers (method, path, body)."""

    seen: list[tuple[str, str, bytes]]

    def _any(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append((self.command, self.path, body))
        out = json.dumps({"method": self.command, "path": self.path, "body": body.decode(),
                          "connection": self.headers.get("Connection")}).encode()
        self.send_response(200)
        self.send_header("X-Upstream", "echo")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_PUT = do_POST = _any

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    seen: list[tuple[str, str, bytes]] = []
    handler = type("Handler", (Echo,), {"seen": seen})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()


def call(address: str, method: str = "GET", path: str = "/", body: Any = None,
         timeout: float = 10, headers: dict[str, str] | None = None,
         ) -> tuple[int, dict[str, str], bytes]:
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        chunked = (headers or {}).get("Transfer-Encoding") == "chunked"
        conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def test_forwards_requests_and_answers_unchanged_and_counts_them(upstream: Any) -> None:
    address, seen = upstream
    with FaultProxy(address) as proxy:
        assert proxy.address.startswith("127.0.0.1:")
        status, headers, body = call(proxy.address, "PUT", "/v2/x/manifests/t?a=1", b"payload")
        assert status == 200 and headers["X-Upstream"] == "echo"
        assert headers["Connection"] == "close"
        doc = json.loads(body)
        assert doc == {"method": "PUT", "path": "/v2/x/manifests/t?a=1", "body": "payload",
                       "connection": "close"}
        call(proxy.address, "GET", "/v2/")
        assert proxy.count() == 2
        assert proxy.count(method="PUT", path="/manifests/") == 1
    assert seen == [("PUT", "/v2/x/manifests/t?a=1", b"payload"), ("GET", "/v2/", b"")]


def test_after_n_requests_every_connection_is_reset(upstream: Any) -> None:
    address, seen = upstream
    with FaultProxy(address) as proxy:
        rule = proxy.add(Rule("reset", after=2))
        assert call(proxy.address, path="/1")[0] == 200
        assert call(proxy.address, path="/2")[0] == 200
        for n in (3, 4):
            with pytest.raises(ConnectionError):
                call(proxy.address, path=f"/{n}")
        assert (rule.matched, rule.fired) == (4, 2)
        assert [r.action for r in proxy.records] == ["forward", "forward", "reset", "reset"]
    assert [p for _, p, _ in seen] == ["/1", "/2"]


def test_a_marker_rule_arms_another_one(upstream: Any) -> None:
    """'Down right after the first manifest PUT': the PUT itself passes, everything after is reset."""
    address, seen = upstream
    with FaultProxy(address) as proxy:
        mark = proxy.add(Rule("forward", method="PUT", path="/manifests/", nth=1))
        down = proxy.add(Rule("reset", armed_by=mark))
        assert call(proxy.address, "GET", "/v2/r/manifests/a")[0] == 200  # not armed yet
        assert call(proxy.address, "PUT", "/v2/r/manifests/a", b"1")[0] == 200  # the mark
        for method in ("GET", "PUT"):
            with pytest.raises(ConnectionError):
                call(proxy.address, method, "/v2/r/manifests/a", b"2")
        assert (mark.fired, down.matched, down.fired) == (1, 2, 2)
    assert [(m, p) for m, p, _ in seen] == [("GET", "/v2/r/manifests/a"), ("PUT", "/v2/r/manifests/a")]


def test_the_nth_matching_request_gets_the_status_and_never_reaches_upstream(upstream: Any) -> None:
    address, seen = upstream
    with FaultProxy(address) as proxy:
        proxy.add(Rule("status", method="PUT", path=r"/manifests/", nth=2, status=401,
                       headers={"WWW-Authenticate": 'Basic realm="r"'}))
        assert call(proxy.address, "GET", "/v2/r/manifests/a")[0] == 200  # GET: no match
        assert call(proxy.address, "PUT", "/v2/r/manifests/a", b"1")[0] == 200  # 1st match
        status, headers, body = call(proxy.address, "PUT", "/v2/r/manifests/b", b"2")
        assert status == 401 and headers["WWW-Authenticate"] == 'Basic realm="r"'
        assert b"injected by faultproxy" in body
        assert call(proxy.address, "PUT", "/v2/r/manifests/c", b"3")[0] == 200  # 3rd: passes
        assert proxy.count(action="status") == 1
    assert [p for m, p, _ in seen if m == "PUT"] == ["/v2/r/manifests/a", "/v2/r/manifests/c"]


def test_times_bounds_a_fault_and_first_firing_rule_wins(upstream: Any) -> None:
    address, _ = upstream
    with FaultProxy(address) as proxy:
        first = proxy.add(Rule("status", status=503, times=2))
        second = proxy.add(Rule("status", status=500))
        got = [call(proxy.address)[0] for _ in range(4)]
        assert got == [503, 503, 500, 500]
        assert (first.matched, first.fired, second.matched, second.fired) == (4, 2, 4, 2)


def test_a_stalled_request_is_held_until_released(upstream: Any) -> None:
    address, seen = upstream
    with FaultProxy(address) as proxy:
        stall = proxy.add(Rule("stall", method="PUT", path=r"/blobs/uploads/"))
        result: list[int] = []
        client = threading.Thread(target=lambda: result.append(
            call(proxy.address, "PUT", "/v2/r/blobs/uploads/1?digest=d", b"blob")[0]))
        client.start()
        assert stall.hit.wait(10), "the upload never reached the proxy"
        assert seen == [] and result == []  # held: upstream has not seen it, client has no answer
        stall.release.set()
        client.join(10)
        assert result == [200]
        assert seen == [("PUT", "/v2/r/blobs/uploads/1?digest=d", b"blob")]
        assert [r.action for r in proxy.records] == ["stall+forward"]


def test_a_stall_makes_a_client_time_out_and_can_end_in_a_reset(upstream: Any) -> None:
    address, seen = upstream
    with FaultProxy(address) as proxy:
        stall = proxy.add(Rule("stall", then="reset"))
        with pytest.raises(TimeoutError):
            call(proxy.address, timeout=0.2)
        # the client gave up: whether its request reached the proxy yet, only the proxy says
        assert proxy.wait_fired(stall, 1, timeout=10), "the request never reached the proxy"
        stall.release.set()
        assert proxy.wait_idle(10)
    assert seen == []
    assert [r.action for r in proxy.records] == ["stall+reset"]


def test_a_stall_with_a_hold_lasts_that_long_then_forwards(upstream: Any) -> None:
    address, _ = upstream
    with FaultProxy(address) as proxy:
        proxy.add(Rule("stall", hold=0.3))
        start = time.monotonic()
        assert call(proxy.address)[0] == 200
        assert time.monotonic() - start >= 0.3


def test_stop_releases_stalls_and_returns(upstream: Any) -> None:
    address, seen = upstream
    proxy = FaultProxy(address)
    proxy.start()
    stall = proxy.add(Rule("stall"))
    errors: list[BaseException] = []

    def client() -> None:
        try:
            call(proxy.address)
        except (ConnectionError, OSError) as exc:
            errors.append(exc)

    t = threading.Thread(target=client)
    t.start()
    assert stall.hit.wait(10)
    start = time.monotonic()
    proxy.stop()
    t.join(10)
    assert time.monotonic() - start < 5 and not t.is_alive()
    assert len(errors) == 1 and seen == []  # a stopped proxy forwards nothing held


def test_connections_beyond_the_bound_are_closed_at_once(upstream: Any) -> None:
    address, _ = upstream
    with FaultProxy(address, max_connections=1) as proxy:
        stall = proxy.add(Rule("stall", nth=1))
        t = threading.Thread(target=lambda: call(proxy.address))
        t.start()
        assert stall.hit.wait(10)
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
            call(proxy.address, timeout=5)
        stall.release.set()
        t.join(10)
        assert proxy.wait_idle(10)
        assert call(proxy.address)[0] == 200  # the slot is free again


def test_chunked_bodies_are_forwarded(upstream: Any) -> None:
    address, seen = upstream
    with FaultProxy(address) as proxy:
        status, _, _ = call(proxy.address, "POST", "/up", body=iter([b"ab", b"cd"]),
                            headers={"Transfer-Encoding": "chunked"})
        assert status == 200
    assert seen == [("POST", "/up", b"abcd")]


def test_wait_fired_waits_for_the_nth_firing(upstream: Any) -> None:
    address, _ = upstream
    with FaultProxy(address) as proxy:
        stall = proxy.add(Rule("stall", hold=0.2))
        assert not proxy.wait_fired(stall, 1, timeout=0.05)  # nothing sent yet
        clients = [threading.Thread(target=call, args=(proxy.address,)) for _ in range(2)]
        for t in clients:
            t.start()
        assert proxy.wait_fired(stall, 2, timeout=10) and stall.fired == 2
        assert not proxy.wait_fired(stall, 3, timeout=0.05)
        for t in clients:
            t.join(10)


def test_an_unreachable_upstream_is_a_reset() -> None:
    """The upstream is a port bound (so no one else takes it) that does not listen: refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as unlistened:
        unlistened.bind(("127.0.0.1", 0))
        port = unlistened.getsockname()[1]
        with FaultProxy(f"127.0.0.1:{port}") as proxy:
            with pytest.raises(ConnectionError):
                call(proxy.address)
            assert [r.action for r in proxy.records] == ["upstream-error"]


def test_a_tls_hello_gets_a_plain_http_400_as_from_gos_http_server(upstream: Any) -> None:
    """dockerd tries HTTPS first even for an insecure registry, and falls back to HTTP only when
    the answer to its hello starts ``HTTP/``; the proxy must say so, not drop the connection."""
    address, seen = upstream
    with FaultProxy(address) as proxy:
        where = ("127.0.0.1", int(proxy.address.rsplit(":", 1)[1]))
        hello = b"\x16\x03\x01\x00\x08" + b"\x01\x00\x00\x04" + b"abcd"  # header + 8 bytes
        with socket.create_connection(where, timeout=10) as raw:
            raw.sendall(hello)
            answer = b""
            while chunk := raw.recv(4096):  # a clean close after the answer, no reset
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        context = ssl.create_default_context()
        with socket.create_connection(where, timeout=10) as raw, \
                pytest.raises(ssl.SSLError):
            context.wrap_socket(raw, server_hostname="127.0.0.1")
        status, _, _ = call(proxy.address, "GET", "/v2/")  # plain HTTP still goes through
        assert status == 200
        assert [(r.action, r.status) for r in proxy.records] == [
            ("not-http", 400), ("not-http", 400), ("forward", 200)]
    assert seen == [("GET", "/v2/", b"")]

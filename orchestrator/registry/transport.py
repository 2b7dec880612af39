"""HTTP for the registry client: one requests.Session (one connection pool) per client,
urllib3's Retry for connection errors, 5xx and 429, redirects followed here.

Why here and not in requests: ``Authorization`` may only go to the origin it belongs to (the
registry, or its token service), so redirects are followed one hop at a time and the header
is dropped on any hop to another scheme, host or port (storage hosts, CDNs, pre-signed URLs).
A request body is never re-sent to another origin (a 307/308 would: a token request's body
is the refresh token), and a redirect to anything but an http(s) URL is an error. The retry
waits of one request, its redirect hops included, share one budget.
The session trusts nothing from the environment (``trust_env`` off: no ~/.netrc logins, no
proxy variables read behind settings' back); proxies come from settings, CAs from the system
store (as docker and the former urllib client used them).
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    InvalidHeader,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ResponseError,
    TimeoutError,
)
from urllib3.util.retry import Retry

from orchestrator import log
from orchestrator.errors import RegistryError, RegistryUnreachable

_log = log.get("registry")

REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


def is_loopback(host: str) -> bool:
    """``host`` (host[:port], [v6]:port or a bare name) is this machine: ``localhost`` or a
    loopback IP address (127.0.0.0/8, ::1), never a name that merely starts with ``127.``."""
    if host.startswith("["):
        name = host[1:].partition("]")[0]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def scheme_for(host: str) -> str:
    """Plain HTTP for loopback registries only (as dockerd and cosign treat them), else HTTPS."""
    return "http" if is_loopback(host) else "https"


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of ``url``; RegistryError for a port that is no port (a registry
    may send any ``Location``)."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        raise RegistryError(f"{url}: not a usable URL (its port is not a number from 0 to "
                            "65535)") from None
    return parts.scheme, (parts.hostname or "").lower(), port or default


@dataclass
class Spent:
    """What one logical request took, all its redirect hops together: the requests made and
    the seconds waited between them."""

    attempts: int = 0
    waited: float = 0.0


_SPENT: ContextVar[Spent | None] = ContextVar("registry_spent", default=None)


@contextmanager
def one_request() -> Iterator[Spent]:
    """The retry waits made inside share one budget (``RetryPolicy.max_wait``)."""
    spent = Spent()
    token = _SPENT.set(spent)
    try:
        yield spent
    finally:
        _SPENT.reset(token)


@dataclass(frozen=True)
class Proxies:
    """Proxy settings (settings.py reads them): ``http``/``https`` proxy URLs and ``no_proxy``."""

    http: str = ""
    https: str = ""
    no_proxy: str = ""

    def for_url(self, url: str) -> dict[str, str]:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        proxy = self.https if parts.scheme == "https" else self.http
        if not proxy or is_loopback(host) or self._bypassed(host, parts.port):
            return {}
        return {parts.scheme: proxy}

    def _bypassed(self, host: str, port: int | None) -> bool:
        for entry in (e.strip().lower() for e in self.no_proxy.split(",") if e.strip()):
            if entry == "*":
                return True
            name, _, want_port = entry.partition(":")
            if want_port and str(port) != want_port:
                continue
            name = name.lstrip(".")
            if host == name or host.endswith("." + name):
                return True
        return False


@dataclass
class RetryPolicy:
    attempts: int  # requests made at most, the first included
    backoff: float  # seconds before the first retry; doubles with each retry
    max_wait: float  # seconds one request may spend waiting between its attempts, in all
    sleep: Callable[[float], None]
    host: str = ""  # the registry, for the log


class BoundedRetry(Retry):
    """urllib3's Retry with the registry's rules: backoff ``b * 2**(n-1)`` from the first retry,
    a 429/503's Retry-After honoured, every wait through ``policy.sleep`` (tests pass a fake),
    and the waits of one request bounded by ``policy.max_wait``: a Retry-After that would pass
    it ends the retries at once (the caller gets that answer). A Retry-After shorter than the
    backoff (0, or a date already past) waits the backoff. Inside ``one_request`` the budget
    is that request's, across its redirect hops (each hop is a request of its own to urllib3)."""

    policy: RetryPolicy | None = None
    waited: float = 0.0  # seconds waited so far in this hop (Spent: the whole request)
    delay: float = 0.0  # the wait before the next attempt

    def new(self, **kw: Any) -> Self:
        fresh = super().new(**kw)
        fresh.policy, fresh.waited = self.policy, self.waited
        return fresh

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> Self:
        fresh = super().increment(method, url, response, error, _pool, _stacktrace)
        policy = self.policy
        if policy is None:
            return fresh
        fresh.delay = self._wait_for(fresh, response, policy)
        if self._spent() + fresh.delay > policy.max_wait:
            why = f"waiting {fresh.delay:g}s more would pass the {policy.max_wait:g}s retry budget"
            raise MaxRetryError(_pool, url, error or ResponseError(why)) from error
        why = f"HTTP {response.status}" if response is not None else str(error)
        _log.warning("registry retry", registry=policy.host, url=url, why=why,
                     attempt=len(fresh.history), sleep=fresh.delay)
        return fresh

    def _spent(self) -> float:
        spent = _SPENT.get()
        return spent.waited if spent is not None else self.waited

    @staticmethod
    def _wait_for(fresh: BoundedRetry, response: Any, policy: RetryPolicy) -> float:
        backoff = float(policy.backoff * 2 ** (len(fresh.history) - 1))
        if response is not None and response.status in (429, 503):
            try:
                after = fresh.get_retry_after(response)
            except InvalidHeader:
                after = None
            if after is not None:
                return max(float(after), backoff)
        return backoff

    def sleep(self, response: Any = None) -> None:
        """The wait before the next attempt (urllib3 calls it only when one follows)."""
        spent = _SPENT.get()
        if spent is not None:
            spent.attempts += 1
        if self.policy is not None and self.delay > 0:
            self.policy.sleep(self.delay)
            self.waited += self.delay
            if spent is not None:
                spent.waited += self.delay


def _system_cas() -> str | bool:
    paths = ssl.get_default_verify_paths()
    return paths.cafile or paths.capath or True


@dataclass
class Transport:
    host: str  # the registry, for messages
    policy: RetryPolicy
    timeout: float
    proxies: Proxies = field(default_factory=Proxies)
    session: requests.Session = field(init=False, repr=False)
    last: Spent = field(default_factory=Spent, init=False)  # what the last send() took

    def __post_init__(self) -> None:
        retry = BoundedRetry(total=max(self.policy.attempts - 1, 0), connect=None, read=None,
                             status=None, allowed_methods=None,
                             status_forcelist=RETRIED_STATUSES, raise_on_status=False,
                             respect_retry_after_header=True)
        retry.policy = self.policy
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = _system_cas()
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        self.session.close()

    def send(self, method: str, url: str, headers: Mapping[str, str], data: bytes | None,
             auth_origin: tuple[str, str, int | None] | None) -> requests.Response:
        """One request, its redirects followed: ``Authorization`` goes only to ``auth_origin``,
        a body only to the origin of ``url``; the retry waits of all hops share one budget."""
        with one_request() as self.last:
            for _ in range(MAX_REDIRECTS + 1):
                hdrs = dict(headers)
                if origin(url) != auth_origin:
                    hdrs = {k: v for k, v in hdrs.items() if k.lower() != "authorization"}
                self.last.attempts += 1
                resp = self._once(method, url, hdrs, data)
                location = resp.headers.get("Location")
                if resp.status_code not in REDIRECTS or not location:
                    return resp
                resp.close()
                target = self._redirect(method, url, urljoin(url, location), resp.status_code)
                if resp.status_code == 303 or (resp.status_code in (301, 302) and method == "POST"):
                    method, data = "GET", None
                elif data is not None and origin(target) != origin(url):
                    raise RegistryError(
                        f"{method} {url}: redirected (HTTP {resp.status_code}) to {target}, "
                        "another origin; a request body (a token request's refresh token, an "
                        f"upload) is sent only where it was addressed; check registry {self.host}'s "
                        "auth and storage settings")
                url = target
        raise RegistryError(f"{method} {url}: registry {self.host} redirected more than "
                            f"{MAX_REDIRECTS} times; check the registry's storage settings")

    def _redirect(self, method: str, url: str, target: str, status: int) -> str:
        """``target`` when it is an http(s) URL with a usable origin, else a RegistryError."""
        scheme = urlsplit(target).scheme
        try:
            usable = scheme in ("http", "https") and bool(origin(target)[1])
        except RegistryError:
            usable = False
        if not usable:
            raise RegistryError(f"{method} {url}: registry {self.host} redirected (HTTP {status}) "
                                f"to {target[:200]!r}, not a usable http(s) URL; check the "
                                "registry's storage settings")
        return target

    def _once(self, method: str, url: str, headers: dict[str, str],
              data: bytes | None) -> requests.Response:
        try:
            return self.session.request(method, url, headers=headers, data=data,
                                        timeout=self.timeout, allow_redirects=False,
                                        proxies=self.proxies.for_url(url))
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                requests.exceptions.MissingSchema) as exc:
            raise RegistryError(f"{method} {url}: not a usable URL for registry {self.host} "
                                f"({self._why(exc)})") from None
        except requests.RequestException as exc:
            raise RegistryUnreachable(
                f"{method} {url}: registry {self.host} unreachable after {self.policy.attempts} "
                f"attempts ({self._why(exc)}); check that it runs and the address in images.yaml "
                "(publish.registry or sources.base_registry)") from None

    def _why(self, exc: requests.RequestException) -> str:
        """One short line: what the last attempt ran into."""
        reason: Any = exc.args[0] if exc.args else exc
        reason = getattr(reason, "reason", reason)  # MaxRetryError: the last attempt's error
        if isinstance(reason, NewConnectionError):  # a ConnectTimeoutError subclass, no timeout
            text = str(reason).split(": ", 1)[-1]
        elif isinstance(exc, requests.Timeout) or isinstance(reason, TimeoutError):
            text = f"no answer within {self.timeout:g}s"
        elif isinstance(reason, ProtocolError) and len(reason.args) == 2:
            inner = reason.args[1]
            text = f"{str(reason.args[0]).rstrip('.')}: {getattr(inner, 'strerror', None) or inner}"
        else:
            text = str(reason)
        return " ".join(text.split())

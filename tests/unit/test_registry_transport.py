"""The registry client's transport and auth helpers, without a network: which hosts get plain
HTTP, which URLs go through a proxy (as settings read them), challenge parsing, the token
request for a login or an identity token, and the retry policy's waits."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs

import pytest

from orchestrator import settings
from orchestrator.errors import ExitCode, RegistryAuthError, RegistryError
from orchestrator.registry import registry_for
from orchestrator.registry.auth import Challenge, _token_request, bearer_token, parse_challenge
from orchestrator.registry.credentials import Credential
from orchestrator.registry.transport import (
    BoundedRetry,
    Proxies,
    RetryPolicy,
    Transport,
    origin,
    scheme_for,
)


@pytest.mark.parametrize(("host", "scheme"), [
    ("127.0.0.1:5000", "http"), ("127.0.0.2:80", "http"), ("localhost:5000", "http"),
    ("[::1]:5000", "http"), ("registry.test", "https"), ("10.0.0.1:5000", "https"),
    ("docker.io", "https"), ("127.255.0.9", "http"), ("::1", "http"),
    ("127.evil.example", "https"), ("127.evil.example:5000", "https"),
    ("127.0.0.1.nip.io:5000", "https"), ("localhost.evil.example", "https"),
    ("[::ffff:10.0.0.1]:5000", "https"),
])
def test_plain_http_for_loopback_registries_only(host: str, scheme: str) -> None:
    assert scheme_for(host) == scheme


def test_an_origin_is_scheme_host_and_port() -> None:
    assert origin("https://Registry.test/v2/") == origin("https://registry.test:443/x") \
        == ("https", "registry.test", 443)
    assert origin("http://registry.test/v2/") != origin("https://registry.test/v2/")
    assert origin("http://127.0.0.1:5000/v2/") != origin("http://127.0.0.2:5000/v2/")


@pytest.mark.parametrize("url", ["https://h:99999/", "https://h:port/", "http://h:-1/"])
def test_a_url_whose_port_is_no_port_is_a_registry_error(url: str) -> None:
    with pytest.raises(RegistryError) as err:
        origin(url)
    assert str(err.value) == f"{url}: not a usable URL (its port is not a number from 0 to 65535)"
    assert type(err.value) is RegistryError and err.value.exit_code == ExitCode.REGISTRY


def test_names_that_only_look_like_loopback_get_no_login_over_plain_http() -> None:
    """A token service on http://127.evil.example is a remote host: no login goes there, and
    such a registry host is proxied like any other."""
    challenge = Challenge("bearer", {"realm": "http://127.evil.example/token", "service": "r"})
    transport = Transport("registry.test", RetryPolicy(1, 0.5, 10, lambda s: None), 5)
    with pytest.raises(RegistryAuthError, match=r"^registry registry\.test: refusing to send the "
                       r"login from here to the plain-HTTP token service http://127\.evil"):
        bearer_token(transport, "registry.test", challenge, "", Credential("u", "p", source="here"),
                     "here")
    transport.close()
    assert Proxies("http://proxy:8080").for_url("http://127.evil.example/v2/") == {
        "http": "http://proxy:8080"}
    assert Proxies("http://proxy:8080").for_url("http://127.0.0.3:5000/v2/") == {}


def test_proxies_come_from_settings_and_skip_loopback_and_no_proxy() -> None:
    st = settings.Settings.from_environ({"https_proxy": "http://proxy:3128",
                                         "HTTP_PROXY": "http://proxy:8080",
                                         "NO_PROXY": "internal.test,.corp.test,mirror.test:5000"})
    p = Proxies(st.http_proxy, st.https_proxy, st.no_proxy)
    assert p.for_url("https://registry-1.docker.io/v2/") == {"https": "http://proxy:3128"}
    assert p.for_url("http://registry.test/v2/") == {"http": "http://proxy:8080"}
    assert p.for_url("http://127.0.0.1:5000/v2/") == {}
    assert p.for_url("https://internal.test/v2/") == {}
    assert p.for_url("https://a.corp.test/v2/") == {}
    assert p.for_url("http://mirror.test:5000/v2/") == {}
    assert p.for_url("http://mirror.test:5001/v2/") == {"http": "http://proxy:8080"}
    assert Proxies("x", "y", "*").for_url("https://anything.test/") == {}
    assert Proxies().for_url("https://registry.test/") == {}


def test_registry_for_takes_the_proxies_and_the_docker_config_from_the_settings_given(
        tmp_path: Path) -> None:
    st = settings.Settings.from_environ({"DOCKER_CONFIG": str(tmp_path),
                                         "HTTPS_PROXY": "http://proxy:3128"})
    reg = registry_for("registry.test", st)
    assert reg.proxies.https == "http://proxy:3128" and reg.lookup is not None
    assert reg.lookup().looked_at.startswith(f"{tmp_path}/config.json")
    assert registry_for("docker.io", st).base_url == "https://registry-1.docker.io"
    assert settings.get().https_proxy == ""  # the process's settings have none: st gave it


def test_challenges_parse() -> None:
    c = parse_challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                        'scope="repository:library/debian:pull"')
    assert c == Challenge("bearer", {"realm": "https://auth.docker.io/token",
                                     "service": "registry.docker.io",
                                     "scope": "repository:library/debian:pull"})
    assert parse_challenge('Basic realm="Registry Realm"') == Challenge("basic", {"realm": "Registry Realm"})


def test_the_token_request_for_a_login_an_identity_token_and_no_login() -> None:
    c = Challenge("bearer", {"realm": "https://auth.test/token", "service": "reg",
                             "scope": "repository:a:pull"})
    method, url, headers, body = _token_request(c, "repository:b:pull,push", Credential("u", "p"))
    assert (method, url, body) == ("GET", "https://auth.test/token?service=reg&scope=repository%3Ab%3Apull%2Cpush",
                                   None)
    assert headers == {"Authorization": "Basic dTpw"}
    method, url, headers, body = _token_request(c, "", Credential("", "", identity_token="rt"))
    assert (method, url, "Authorization" in headers) == ("POST", "https://auth.test/token", False)
    assert body is not None and parse_qs(body.decode()) == {
        "grant_type": ["refresh_token"], "refresh_token": ["rt"], "service": ["reg"],
        "client_id": ["python-base-orchestrator"], "scope": ["repository:a:pull"]}
    assert _token_request(c, "", None)[2] == {}


def _retry(max_wait: float = 60.0) -> tuple[BoundedRetry, list[float]]:
    sleeps: list[float] = []
    retry = BoundedRetry(total=4, allowed_methods=None, status_forcelist={429, 500}, raise_on_status=False)
    retry.policy = RetryPolicy(5, 0.5, max_wait, sleeps.append, "registry.test")
    return retry, sleeps


def _answer(status: int, retry_after: str | None = None) -> SimpleNamespace:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return SimpleNamespace(status=status, headers=headers, get_redirect_location=lambda: None)


def test_backoff_doubles_and_retry_after_wins() -> None:
    retry, sleeps = _retry()
    for answer in (_answer(500), _answer(500), _answer(429, "7"), _answer(429, "bogus")):
        retry = retry.increment("GET", "/v2/", response=answer)
        retry.sleep()
    assert sleeps == [0.5, 1.0, 7.0, 4.0] and retry.waited == 12.5


@pytest.mark.parametrize("after", ["0", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_a_retry_after_of_now_or_a_past_date_waits_the_backoff(after: str) -> None:
    retry, sleeps = _retry()
    for _ in range(3):
        retry = retry.increment("GET", "/v2/", response=_answer(429, after))
        retry.sleep()
    assert sleeps == [0.5, 1.0, 2.0]


def test_a_wait_past_the_budget_ends_the_retries() -> None:
    from urllib3.exceptions import MaxRetryError

    retry, sleeps = _retry(max_wait=10)
    retry = retry.increment("GET", "/v2/", response=_answer(429, "6"))
    retry.sleep()
    with pytest.raises(MaxRetryError, match="retry budget"):
        retry.increment("GET", "/v2/", response=_answer(429, "6"))
    assert sleeps == [6.0]

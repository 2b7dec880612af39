"""The registry client against real HTTP servers on loopback addresses (no Docker): a registry
on 127.0.0.1 (tests.fakes.fake_registry) that wants a login, Basic or a token from its token
service, and sends manifest and blob reads with a 307 to a storage host on 127.0.0.2
(tests.fakes.fake_storage, which refuses and records any Authorization, as a pre-signed URL would).
Logins come from a DOCKER_CONFIG of the test's own: auths, credsStore and credHelpers naming
``docker-credential-testhelper``, a script put on PATH. Every server binds port 0.

Last, a black-box run of ``python -m orchestrator lock`` against such a registry.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator import settings
from orchestrator.errors import ExitCode, RegistryAuthError, RegistryError
from orchestrator.lock.sources import resolve_base
from orchestrator.registry import Registry, registry_for
from tests.fakes.fake_registry import FakeRegistry
from tests.fakes.fake_storage import Storage
from tests.fakes.faultproxy import FaultProxy, Rule

REPO = "library/ubuntu"
ROOT = Path(__file__).resolve().parents[2]
HELPER = """\
#!{python}
import json, pathlib, sys
here = pathlib.Path(__file__).resolve().parent
server = sys.stdin.read().strip()
with open(here / "asked.log", "a") as log:
    log.write(" ".join(sys.argv[1:]) + " " + server + "\\n")
logins = json.loads((here / "logins.json").read_text())
if sys.argv[1:] == ["get"] and server in logins:
    user, secret = logins[server]
    print(json.dumps({{"ServerURL": server, "Username": user, "Secret": secret}}))
else:
    print("credentials not found in native keychain")
    sys.exit(1)
"""


@dataclass
class Logins:
    """A DOCKER_CONFIG and a PATH with docker-credential-testhelper, for this test only."""

    docker_config: Path
    bin: Path

    def config(self, doc: dict[str, Any]) -> None:
        (self.docker_config / "config.json").write_text(json.dumps(doc))

    def helper(self, logins: dict[str, tuple[str, str]]) -> None:
        (self.bin / "logins.json").write_text(json.dumps(logins))

    def asked(self) -> list[str]:
        log = self.bin / "asked.log"
        return log.read_text().splitlines() if log.exists() else []

    def env(self) -> dict[str, str]:
        return {"DOCKER_CONFIG": str(self.docker_config),
                "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"}


@pytest.fixture
def logins(tmp_path: Path) -> Iterator[Logins]:
    found = Logins(tmp_path / "docker", tmp_path / "bin")
    found.docker_config.mkdir()
    found.bin.mkdir()
    script = found.bin / "docker-credential-testhelper"
    script.write_text(HELPER.format(python=sys.executable))
    script.chmod(0o755)
    found.helper({})
    old = settings._settings
    settings.override(settings.Settings.from_environ({"ORCH_DATE": "20261121", **found.env()}))
    yield found
    settings._settings = old


@pytest.fixture
def storage() -> Iterator[Storage]:
    with Storage("127.0.0.2") as s:
        yield s


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def authorizations(fake: FakeRegistry, path_part: str) -> list[str]:
    return [h.get("authorization", "") for _, p, h in fake.calls if path_part in p]


def test_basic_auth_registry_redirects_to_storage_without_the_password(
        logins: Logins, storage: Storage) -> None:
    with FakeRegistry(credentials=("ci", "s3cret"), storage=storage) as fake:
        want = fake.put_image(REPO, "24.04", "1")
        logins.config({"auths": {fake.address: {"auth": basic("ci", "s3cret")}}})
        assert registry_for(fake.address, settings.get()).digest(REPO, "24.04") == want
    assert storage.authorizations() == []
    assert [(m, p) for m, p, _ in storage.calls] == [("HEAD", f"/manifests/{want}"),
                                                      ("GET", f"/manifests/{want}")]
    assert "Basic " + basic("ci", "s3cret") in authorizations(fake, "/manifests/")


def test_token_auth_with_a_credential_helper_on_path(logins: Logins, storage: Storage) -> None:
    with FakeRegistry(credentials=("robot", "helper-pw"), token_auth=True, storage=storage) as fake:
        want = fake.put_image(REPO, "24.04", "1", platforms=("linux/amd64", "linux/arm64"))
        logins.config({"credHelpers": {fake.address: "testhelper"}, "auths": {fake.address: {}}})
        logins.helper({fake.address: ("robot", "helper-pw")})
        reg = registry_for(fake.address, settings.get())
        assert reg.digest(REPO, "24.04") == want
        configs = reg.platform_configs(REPO, "24.04")  # manifests and blobs, all via storage
        assert configs is not None and sorted(configs) == ["linux/amd64", "linux/arm64"]
    assert storage.authorizations() == [] and len(storage.calls) >= 6
    assert logins.asked() == [f"get {fake.address}"]  # one look-up, at the first challenge
    token_calls = [h for _, p, h in fake.calls if p == "/token"]
    assert [h.get("authorization") for h in token_calls] == ["Basic " + basic("robot", "helper-pw")]
    bearers = {a for a in authorizations(fake, "/v2/") if a}
    assert bearers and all(a.startswith("Bearer ") for a in bearers)  # the password: token service only
    assert fake.tokens and set(fake.tokens.values()) == {f"repository:{REPO}:pull"}


def test_creds_store_and_the_docker_hub_key(logins: Logins, storage: Storage) -> None:
    with FakeRegistry(credentials=("hub", "pw"), token_auth=True, storage=storage) as fake:
        want = fake.put_image(REPO, "24.04", "1")
        logins.config({"credsStore": "testhelper"})
        logins.helper({fake.address: ("hub", "pw"), "https://index.docker.io/v1/": ("other", "x")})
        assert registry_for(fake.address, settings.get()).digest(REPO, "24.04") == want
    assert storage.authorizations() == [] and logins.asked() == [f"get {fake.address}"]


@pytest.mark.parametrize("where", ["helper", "auths"])
def test_identity_tokens_are_refresh_tokens_for_the_token_service(
        logins: Logins, storage: Storage, where: str) -> None:
    with FakeRegistry(credentials=("unused", "unused"), token_auth=True, refresh_tokens=("rt-42",),
                      storage=storage) as fake:
        want = fake.put_image(REPO, "24.04", "1")
        if where == "helper":
            logins.config({"credHelpers": {fake.address: "testhelper"}})
            logins.helper({fake.address: ("<token>", "rt-42")})
        else:
            logins.config({"auths": {fake.address: {"auth": basic("me", ""), "identitytoken": "rt-42"}}})
        assert registry_for(fake.address, settings.get()).digest(REPO, "24.04") == want
    assert [(m, h.get("authorization")) for m, p, h in fake.calls if p == "/token"] == [("POST", None)]
    assert storage.authorizations() == []


def test_digests_are_read_with_head(logins: Logins) -> None:
    with FakeRegistry() as fake:
        want = fake.put_image(REPO, "24.04", "1")
        assert registry_for(fake.address, settings.get()).digest(REPO, "24.04") == want
        assert registry_for(fake.address, settings.get()).digest(REPO, "nope") is None
    assert [m for m, p in fake.requests if "/manifests/" in p] == ["HEAD", "HEAD"]


def test_tags_follow_the_link_pages(logins: Logins) -> None:
    with FakeRegistry(page_size=2) as fake:
        for tag in ("a", "b", "c", "d", "e"):
            fake.put_image(REPO, tag, tag)
        assert registry_for(fake.address, settings.get()).tags(REPO) == ["a", "b", "c", "d", "e"]
        assert len([p for _, p in fake.requests if p.endswith("/tags/list")]) == 3


def test_429_with_retry_after_is_waited_out(logins: Logins) -> None:
    with FakeRegistry() as fake, FaultProxy(fake.address) as proxy:
        want = fake.put_image(REPO, "24.04", "1")
        proxy.add(Rule("status", method="HEAD", path="/manifests/", status=429,
                       headers={"Retry-After": "7"}, times=2))
        sleeps: list[float] = []
        assert Registry(proxy.address, sleep=sleeps.append).digest(REPO, "24.04") == want
    assert sleeps == [7.0, 7.0]


def test_a_rate_limit_that_outlasts_the_retries_is_one_line(logins: Logins) -> None:
    with FakeRegistry() as fake, FaultProxy(fake.address) as proxy:
        proxy.add(Rule("status", path="/manifests/", status=429, headers={"Retry-After": "3"}))
        sleeps: list[float] = []
        address = proxy.address
        with pytest.raises(RegistryError) as err:
            Registry(address, attempts=4, sleep=sleeps.append).digest(REPO, "24.04")
    assert sleeps == [3.0, 3.0, 3.0] and proxy.count(action="status") == 4
    text = str(err.value)
    assert err.value.exit_code == ExitCode.REGISTRY and "\n" not in text
    assert text.startswith(f"HEAD http://{address}/v2/{REPO}/manifests/24.04: registry "
                           f"{address} rate-limits us (HTTP 429) after 4 attempt(s) and 9s of waiting")
    assert "Retry-After 3; used no login" in text and f"`docker login {address}`" in text


def test_a_retry_after_beyond_the_wait_budget_ends_the_retries_at_once(logins: Logins) -> None:
    with FakeRegistry() as fake, FaultProxy(fake.address) as proxy:
        proxy.add(Rule("status", path="/manifests/", status=429, headers={"Retry-After": "3600"}))
        sleeps: list[float] = []
        with pytest.raises(RegistryError, match=r"rate-limits us \(HTTP 429\) after 1 attempt"):
            Registry(proxy.address, sleep=sleeps.append).digest(REPO, "24.04")
    assert sleeps == [] and proxy.count(action="status") == 1


def test_503_with_retry_after_is_waited_out(logins: Logins) -> None:
    with FakeRegistry() as fake, FaultProxy(fake.address) as proxy:
        want = fake.put_image(REPO, "24.04", "1")
        proxy.add(Rule("status", path="/manifests/", status=503, headers={"Retry-After": "2"}, times=1))
        sleeps: list[float] = []
        assert Registry(proxy.address, sleep=sleeps.append).digest(REPO, "24.04") == want
    assert sleeps == [2.0]


def test_no_login_anywhere_is_one_line_naming_what_was_looked_at(logins: Logins) -> None:
    logins.config({})
    with FakeRegistry(credentials=("ci", "pw"), token_auth=True) as fake, \
            pytest.raises(RegistryAuthError) as err:
        registry_for(fake.address, settings.get()).digest(REPO, "24.04")
    assert str(err.value) == (
        f"registry {fake.address} needs a login and none was found (looked at "
        f"{logins.docker_config}/config.json (no auths entry, credsStore or credHelpers for "
        f"{fake.address})); run `docker login {fake.address}`")
    assert err.value.exit_code == ExitCode.REGISTRY


def test_a_refused_login_names_where_it_came_from(logins: Logins) -> None:
    with FakeRegistry(credentials=("ci", "pw")) as fake:
        logins.config({"credHelpers": {fake.address: "testhelper"}})
        logins.helper({fake.address: ("ci", "expired")})
        with pytest.raises(RegistryAuthError) as err:
            registry_for(fake.address, settings.get()).digest(REPO, "24.04")
    assert str(err.value) == (
        f"HEAD http://{fake.address}/v2/{REPO}/manifests/24.04: HTTP 401: registry {fake.address} "
        "refused the login from docker-credential-testhelper (credHelpers"
        f'["{fake.address}"] in {logins.docker_config}/config.json); run `docker login '
        f"{fake.address}` again (it may have expired or lack access)")


# ---- what a login is never sent to ---------------------------------------------------------


def test_a_login_asked_for_by_the_storage_host_is_never_given(logins: Logins,
                                                              storage: Storage) -> None:
    """Storage answers 401 with a Bearer realm of its own: the registry's login goes neither
    to it nor to that realm, and no token it hands out comes back to the registry."""
    with FakeRegistry(credentials=("ci", "s3cret"), storage=storage) as fake:
        want = fake.put_image(REPO, "24.04", "1")
        logins.config({"auths": {fake.address: {"auth": basic("ci", "s3cret")}}})
        storage.challenge = f'Bearer realm="{storage.url}/token",service="storage"'
        with pytest.raises(RegistryError) as err:
            registry_for(fake.address, settings.get()).digest(REPO, "24.04")
    assert storage.authorizations() == []
    assert [(m, p) for m, p, _ in storage.calls] == [("HEAD", f"/manifests/{want}")]  # no /token
    assert type(err.value) is RegistryError and err.value.exit_code == ExitCode.REGISTRY
    assert str(err.value) == (
        f"HEAD http://{fake.address}/v2/{REPO}/manifests/24.04: {storage.url}, another host than "
        f"registry {fake.address} (it was sent there), answered HTTP 401 asking for a Bearer "
        f"login; the registry's login is never sent to another host; check registry "
        f"{fake.address}'s storage and redirect settings")


@pytest.mark.parametrize("login", ["identity token", "password"])
def test_a_token_request_redirected_to_another_origin(logins: Logins, storage: Storage,
                                                      login: str) -> None:
    """A refresh token is a POST body: a 307 would re-send it; it is refused. A GET with Basic
    follows the redirect without its Authorization (and gets no token there)."""
    with FakeRegistry(credentials=("robot", "pw"), token_auth=True, refresh_tokens=("rt-42",)) as fake:
        fake.put_image(REPO, "24.04", "1")
        fake.token_redirect = f"{storage.url}/token"
        entry = {"identitytoken": "rt-42"} if login == "identity token" else {"auth": basic("robot", "pw")}
        logins.config({"auths": {fake.address: entry}})
        with pytest.raises(RegistryError) as err:
            registry_for(fake.address, settings.get()).digest(REPO, "24.04")
    assert storage.authorizations() == [] and storage.bodies == []
    assert err.value.exit_code == ExitCode.REGISTRY and "\n" not in str(err.value)
    if login == "password":
        assert [m for m, _, _ in storage.calls] == ["GET"]
        return
    assert storage.calls == []
    assert str(err.value) == (
        f"POST http://{fake.address}/token: redirected (HTTP 307) to {storage.url}/token, another "
        "origin; a request body (a token request's refresh token, an upload) is sent only where "
        f"it was addressed; check registry {fake.address}'s auth and storage settings")


def test_basic_auth_takes_the_password_beside_an_identity_token(logins: Logins) -> None:
    with FakeRegistry(credentials=("me", "pw")) as fake:
        want = fake.put_image(REPO, "24.04", "1")
        logins.config({"auths": {fake.address: {"auth": basic("me", "pw"), "identitytoken": "rt-9"}}})
        assert registry_for(fake.address, settings.get()).digest(REPO, "24.04") == want
    assert set(authorizations(fake, "/manifests/")) == {"", "Basic " + basic("me", "pw")}


def test_basic_auth_with_an_identity_token_alone_is_one_line(logins: Logins) -> None:
    with FakeRegistry(credentials=("me", "pw")) as fake:
        logins.config({"credHelpers": {fake.address: "testhelper"}})
        logins.helper({fake.address: ("<token>", "rt-9")})
        with pytest.raises(RegistryAuthError) as err:
            registry_for(fake.address, settings.get()).digest(REPO, "24.04")
    assert all("rt-9" not in base64.b64decode(a.split()[-1]).decode()
               for a in authorizations(fake, "/") if a)
    assert str(err.value) == (
        f"registry {fake.address} asks for a username and password (HTTP Basic), but the login "
        f'from docker-credential-testhelper (credHelpers["{fake.address}"] in '
        f"{logins.docker_config}/config.json) is an identity token, which only a token service "
        f"takes; run `docker login {fake.address}` with a username and password")


@pytest.mark.parametrize("location", ["https://127.0.0.2:99999/blob", "ftp://127.0.0.2/blob"])
def test_a_redirect_to_an_unusable_url_is_a_registry_error_not_unreachable(
        logins: Logins, location: str) -> None:
    """lock leaves a digest unpinned only for an unreachable registry; this is not one."""
    with FakeRegistry() as fake, FaultProxy(fake.address) as proxy:
        fake.put_image(REPO, "24.04", "1")
        proxy.add(Rule("status", method="HEAD", path="/manifests/", status=307,
                       headers={"Location": location}))
        with pytest.raises(RegistryError) as err:
            resolve_base(f"{proxy.address}/{REPO}:24.04", Registry)
        address = proxy.address
    assert type(err.value) is RegistryError and err.value.exit_code == ExitCode.REGISTRY
    assert str(err.value) == (
        f"HEAD http://{address}/v2/{REPO}/manifests/24.04: registry {address} redirected (HTTP "
        f"307) to {location!r}, not a usable http(s) URL; check the registry's storage settings")


def test_the_wait_budget_is_one_requests_across_its_redirect_hops(logins: Logins) -> None:
    """6 s waited before a redirect, 6 more asked for after it: past the 10 s budget."""
    with FakeRegistry() as fake, FaultProxy(fake.address) as proxy:
        fake.put_image(REPO, "24.04", "1")
        for path in ("hop=2", r"/24\.04$"):
            proxy.add(Rule("status", method="HEAD", path=path, status=429, times=1,
                           headers={"Retry-After": "6"}))
        proxy.add(Rule("status", method="HEAD", path=r"/24\.04$", status=307, times=1,
                       headers={"Location": f"/v2/{REPO}/manifests/24.04?hop=2"}))
        sleeps: list[float] = []
        with pytest.raises(RegistryError) as err:
            Registry(proxy.address, max_wait=10, sleep=sleeps.append).digest(REPO, "24.04")
    assert sleeps == [6.0] and proxy.count(action="status") == 3
    assert "rate-limits us (HTTP 429) after 3 attempt(s) and 6s of waiting" in str(err.value)


# ---- black box: `orchestrator lock` ---------------------------------------------------------

CONFIG = """\
schema_version: 1
publish: {{registry: "{registry}", repository: org/python}}
sources: {{base_registry: "{registry}"}}
distros:
  noble:
    family: ubuntu
    release: "24.04"
    image: library/ubuntu:24.04
    system_python: "3.12"
    methods: [deadsnakes]
    packages: {{runtime: [ca-certificates], build: [gcc], dev: [gcc]}}
pythons:
  - version: "3.13"
variants: {{runtime: {{size_budget_mb: 160}}, dev: {{size_budget_mb: 520}}}}
tags:
  default_distro: noble
  moving:
    - {{template: "{{minor}}-{{variant}}", only_default: true}}
"""


def test_lock_resolves_the_base_digest_through_a_credential_helper_and_a_redirect(
        logins: Logins, storage: Storage, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    with FakeRegistry(credentials=("robot", "helper-pw"), token_auth=True, storage=storage) as fake:
        want = fake.put_image(REPO, "24.04", "noble")
        logins.config({"credHelpers": {fake.address: "testhelper"}})
        logins.helper({fake.address: ("robot", "helper-pw")})
        (work / "images.yaml").write_text(CONFIG.format(registry=fake.address))
        env = {k: v for k, v in os.environ.items() if k not in ("CI", "ORCH_LOG_FORMAT")}
        env.update(logins.env(), ORCH_DATE="20261121", ORCH_LOG_FORMAT="console",
                   PYTHONPATH=str(ROOT))
        done = subprocess.run([sys.executable, "-m", "orchestrator", "lock", "--config", "images.yaml"],
                              cwd=work, env=env, capture_output=True, text=True, timeout=120,
                              check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lock = yaml.safe_load((work / "images.lock").read_text())
    assert lock["bases"]["noble"] == {"image": f"{fake.address}/{REPO}:24.04", "digest": want}
    assert storage.calls, "the registry's redirect to 127.0.0.2 was followed"
    assert storage.authorizations() == []
    assert logins.asked() == [f"get {fake.address}"]


def test_lock_fails_with_exit_4_when_no_login_is_found(logins: Logins, tmp_path: Path) -> None:
    with FakeRegistry(credentials=("robot", "pw"), token_auth=True) as fake:
        fake.put_image(REPO, "24.04", "noble")
        logins.config({"credsStore": "testhelper"})
        (tmp_path / "images.yaml").write_text(CONFIG.format(registry=fake.address))
        env = {k: v for k, v in os.environ.items() if k not in ("CI", "ORCH_LOG_FORMAT")}
        env.update(logins.env(), ORCH_DATE="20261121", ORCH_LOG_FORMAT="console",
                   PYTHONPATH=str(ROOT))
        done = subprocess.run([sys.executable, "-m", "orchestrator", "lock", "--config", "images.yaml"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                              check=False)
    assert done.returncode == 4, done.stdout + done.stderr
    assert not (tmp_path / "images.lock").exists()
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: registry {fake.address} needs a login and none was found (looked at "
        f"docker-credential-testhelper (credsStore in {logins.docker_config}/config.json): no login "
        f"for {fake.address}); run `docker login {fake.address}`")

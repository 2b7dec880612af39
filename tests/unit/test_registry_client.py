"""The registry client against the in-memory registry, with faults injected by the proxy:
auth refusals, retries with backoff on 5xx and connection resets, stalled requests."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Literal

import pytest

from orchestrator.errors import ExitCode, RegistryAuthError, RegistryError, RegistryUnreachable
from orchestrator.registry import Registry
from tests.fakes.fake_engine import FakeEngine, synthetic_image
from tests.fakes.fake_registry import FakeRegistry
from tests.fakes.faultproxy import FaultProxy, Rule

REPO = "team/python"


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with FakeRegistry() as registry:
        yield registry


@pytest.fixture
def proxy(fake: FakeRegistry) -> Iterator[FaultProxy]:
    with FaultProxy(fake.address) as p:
        yield p


def client(host: str, sleeps: list[float], attempts: int = 5, timeout: float = 10,
           credentials: tuple[str, str] | None = None) -> Registry:
    return Registry(host, credentials, attempts=attempts, backoff=0.5, timeout=timeout,
                    sleep=sleeps.append)


def push(host: str, tag: str, sleeps: list[float], seed: str = "1", **kw: object) -> str:
    engine = FakeEngine(lambda h: client(h, sleeps, **kw))  # type: ignore[arg-type]
    engine.load("candidate", synthetic_image("cell", seed, {"k": seed}))
    with engine.temp_tag("candidate", f"{host}/{REPO}:{tag}") as ref:
        return engine.push(ref)


def test_the_fake_registry_round_trips_through_the_real_client(fake: FakeRegistry) -> None:
    sleeps: list[float] = []
    digest = push(fake.address, "1.0", sleeps)
    reg = client(fake.address, sleeps)
    assert reg.digest(REPO, "1.0") == digest == synthetic_image("cell", "1", {"k": "1"}).digest
    assert reg.image_config(REPO, "1.0")["config"]["Labels"] == {"k": "1"}  # type: ignore[index]
    reg.tag(REPO, digest, "latest")
    assert reg.tags(REPO) == ["1.0", "latest"]
    assert reg.manifest(REPO, "nope") is None and reg.tags("other/repo") == []
    assert reg.manifest_size(REPO, digest) == sum(
        len(b) for b in (b"shared base layer\n", b"cell 1\n")) + len(
        synthetic_image("cell", "1", {"k": "1"}).config)
    with pytest.raises(RegistryError, match="not in the registry"):
        reg.tag(REPO, "sha256:" + "0" * 64, "x")
    assert sleeps == []


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retried_with_exponential_backoff(fake: FakeRegistry, proxy: FaultProxy,
                                                 status: int) -> None:
    sleeps: list[float] = []
    digest = push(fake.address, "1.0", sleeps)
    proxy.add(Rule("status", method="HEAD", path="/manifests/", status=status, times=3))
    assert client(proxy.address, sleeps).digest(REPO, "1.0") == digest
    assert sleeps == [0.5, 1.0, 2.0]
    assert proxy.count(action="status") == 3 and proxy.count(path="/manifests/") == 1


def test_5xx_on_every_attempt_is_a_registry_error(fake: FakeRegistry, proxy: FaultProxy) -> None:
    sleeps: list[float] = []
    proxy.add(Rule("status", method="GET", path="/manifests/", status=500))
    with pytest.raises(RegistryError, match=r"GET manifest .*: HTTP 500") as err:
        client(proxy.address, sleeps, attempts=3).manifest(REPO, "1.0")
    assert err.value.exit_code == ExitCode.REGISTRY and int(err.value.exit_code) == 4
    assert sleeps == [0.5, 1.0] and proxy.count(action="status") == 3


def test_connection_resets_are_retried(fake: FakeRegistry, proxy: FaultProxy) -> None:
    sleeps: list[float] = []
    proxy.add(Rule("reset", method="PUT", times=2))  # the first blob PUT, then its retry
    digest = push(proxy.address, "1.0", sleeps)
    assert sleeps == [0.5, 1.0]
    assert fake.tags(REPO) == {"1.0": digest}
    assert proxy.count(action="reset") == 2


def test_a_registry_that_stays_down_is_unreachable_with_exit_code_4(proxy: FaultProxy) -> None:
    sleeps: list[float] = []
    proxy.add(Rule("reset"))
    with pytest.raises(RegistryError, match=r"GET http://127\.0\.0\.1:\d+/v2/: registry .* "
                       r"unreachable after 4 attempts .*check that it runs") as err:
        client(proxy.address, sleeps, attempts=4).ping()
    assert type(err.value) is RegistryUnreachable and err.value.exit_code == 4
    assert sleeps == [0.5, 1.0, 2.0] and proxy.count(action="reset") == 4


def test_404_is_an_answer_not_retried(fake: FakeRegistry, proxy: FaultProxy) -> None:
    sleeps: list[float] = []
    assert client(proxy.address, sleeps).digest(REPO, "missing") is None
    assert sleeps == [] and proxy.count() == 1


def test_401_without_credentials_names_the_registry_and_how_to_log_in() -> None:
    with FakeRegistry(credentials=("ci", "s3cret")) as fake:
        with pytest.raises(RegistryAuthError) as err:
            client(fake.address, []).ping()
        assert f"run `docker login {fake.address}`" in str(err.value)
        assert err.value.exit_code == ExitCode.REGISTRY
        with pytest.raises(RegistryAuthError, match=r"HTTP 401: .*docker login"):
            client(fake.address, [], credentials=("ci", "wrong")).ping()
        sleeps: list[float] = []
        digest = push(fake.address, "1.0", sleeps, credentials=("ci", "s3cret"))
        assert fake.tags(REPO) == {"1.0": digest} and sleeps == []


def test_403_on_a_push_is_an_auth_error_at_once(fake: FakeRegistry) -> None:
    fake.read_only = True
    sleeps: list[float] = []
    with pytest.raises(RegistryAuthError, match=r"POST .*: HTTP 403: .*docker login"):
        push(fake.address, "1.0", sleeps)
    assert sleeps == [] and fake.tags(REPO) == {}


def test_a_401_injected_by_the_proxy_is_an_auth_error(fake: FakeRegistry,
                                                      proxy: FaultProxy) -> None:
    proxy.add(Rule("status", method="PUT", path="/manifests/", status=401,
                   headers={"WWW-Authenticate": 'Basic realm="proxy"'}))
    with pytest.raises(RegistryAuthError, match="docker login"):
        push(proxy.address, "1.0", [])
    assert fake.tags(REPO) == {}


def test_a_stalled_request_times_out_with_a_clear_error(fake: FakeRegistry,
                                                        proxy: FaultProxy) -> None:
    stall = proxy.add(Rule("stall", method="HEAD", path="/manifests/", then="reset"))
    sleeps: list[float] = []
    start = time.monotonic()
    with pytest.raises(RegistryError, match=r"HEAD http://127\.0\.0\.1:\d+/v2/team/python/manifests/"
                       r"1\.0: registry .* unreachable after 2 attempts \(no answer within 0\.3s\)"):
        client(proxy.address, sleeps, attempts=2, timeout=0.3).digest(REPO, "1.0")
    assert time.monotonic() - start < 5
    assert proxy.wait_fired(stall, 2) and stall.fired == 2 and sleeps == [0.5]


def test_a_stalled_blob_upload_fails_the_push_and_writes_no_tag(fake: FakeRegistry,
                                                                proxy: FaultProxy) -> None:
    proxy.add(Rule("stall", method="PUT", path="/blobs/uploads/", then="reset"))
    with pytest.raises(RegistryError, match=r"PUT .*/blobs/uploads/.*no answer within 0\.3s"):
        push(proxy.address, "1.0", [], attempts=2, timeout=0.3)
    assert fake.tags(REPO) == {} and fake.writes(REPO) == []


# ----------------------------------------------------------------- content addressing


def test_a_manifest_read_by_digest_must_hash_to_that_digest(fake: FakeRegistry) -> None:
    """A registry (or the storage host it redirects to) that answers a digest with other bytes
    is refused, as docker refuses it: the platform list the verify gate checks and the body a
    tag is moved to are the signed digest's, never a substitute (here an index that leaves
    linux/arm64 out, so that platform's signature and SBOM would go unchecked)."""
    digest = fake.put_image(REPO, "3.14", "1", ("linux/amd64", "linux/arm64"))
    reg = client(fake.address, [])
    assert set(reg.platform_manifests(REPO, digest) or {}) == {"linux/amd64", "linux/arm64"}
    body, mtype = fake.repos[REPO].manifests[digest]
    doc = json.loads(body)
    doc["manifests"] = doc["manifests"][:1]
    fake.repos[REPO].manifests[digest] = (json.dumps(doc).encode(), mtype)
    with pytest.raises(RegistryError, match=f"not the manifest {digest}") as info:
        reg.platform_manifests(REPO, digest)
    assert info.value.exit_code is ExitCode.REGISTRY and "\n" not in str(info.value)
    with pytest.raises(RegistryError, match="not the manifest"):
        reg.tag(REPO, digest, "3.14-moved")
    assert "3.14-moved" not in fake.tags(REPO)
    with pytest.raises(RegistryError, match="not the manifest"):  # by tag: the header's digest
        reg.manifest(REPO, "3.14")


def test_a_blob_must_hash_to_its_digest(fake: FakeRegistry) -> None:
    digest = fake.put_image(REPO, "3.14", "1")
    reg = client(fake.address, [])
    config = json.loads(fake.repos[REPO].manifests[digest][0])["config"]["digest"]
    fake.blobs[config] = json.dumps({"os": "linux", "architecture": "s390x"}).encode()
    with pytest.raises(RegistryError, match=f"not the blob {config}"):
        reg.image_config(REPO, "3.14")


def test_a_token_for_one_repository_is_never_sent_for_another() -> None:
    """A bearer token is asked for per repository and action (its scope) and sent only with
    requests in that scope: reading team/b after team/a sends no team/a token to team/b."""
    with FakeRegistry(("u", "p"), token_auth=True) as fake:
        fake.put_image("team/a", "1", "a")
        fake.put_image("team/b", "1", "b")
        reg = client(fake.address, [], credentials=("u", "p"))
        assert reg.digest("team/a", "1") and reg.digest("team/b", "1") and reg.digest("team/a", "1")
        sent = [(path, h["authorization"].removeprefix("Bearer ")) for _, path, h in fake.calls
                if h.get("authorization", "").startswith("Bearer ")]
        assert {p.split("/")[3] for p, _ in sent} == {"b", "a"}
        for path, token in sent:
            assert fake.tokens[token] == f"repository:team/{path.split('/')[3]}:pull", path


@pytest.mark.parametrize("deletes", ["tags", "digests", "none"])
def test_untag_removes_a_tag_never_the_image_it_names(deletes: Literal["tags", "digests", "none"]
                                                     ) -> None:
    """distribution 3 deletes the tag itself; distribution 2.x only manifests by digest, so the
    tag is pointed at a placeholder of its own, which is then deleted (and the tag with it);
    with deletion disabled the tag stays on the placeholder: the image is reachable by digest
    only, and untag says False. The image and its other tags are never touched."""
    with FakeRegistry(("u", "p"), token_auth=True, deletes=deletes) as fake:
        digest = fake.put_image(REPO, "_staging-cell", "1", ("linux/amd64", "linux/arm64"))
        fake.put_image(REPO, "other", "1", ("linux/amd64", "linux/arm64"))
        reg = client(fake.address, [], credentials=("u", "p"))
        assert reg.untag(REPO, "_staging-cell") is (deletes != "none")
        assert reg.digest(REPO, "other") == digest and fake.has_manifest(REPO, digest)
        tags = fake.tags(REPO)
        if deletes != "none":
            assert tags == {"other": digest}
            placeholders = [d for d in fake.history.get((REPO, "_staging-cell"), [])[1:]]
            assert all(not fake.has_manifest(REPO, d) for d in placeholders)
            assert len(placeholders) == (1 if deletes == "digests" else 0)
            assert reg.untag(REPO, "_staging-cell") is True  # not there: nothing to do
            return
        held = tags.pop("_staging-cell")
        assert tags == {"other": digest} and held != digest
        body = json.loads(reg.manifest(REPO, held)[0])  # type: ignore[index]
        assert body["annotations"] == {
            "org.opencontainers.image.description":
                "placeholder while the registry removes the tag _staging-cell"}
        assert reg.platform_manifests(REPO, held) == {"linux/amd64": held}  # no image of ours
        deleting = [s for s in fake.tokens.values() if s.endswith(":delete")]
        assert deleting == [f"repository:{REPO}:delete"] * len(deleting) and deleting


def test_untag_with_a_login_that_may_not_delete_points_the_tag_at_a_placeholder() -> None:
    with FakeRegistry(deletes="tags") as fake:
        digest = fake.put_image(REPO, "_staging-cell", "1")
        fake.no_delete = True
        reg = client(fake.address, [])
        assert reg.untag(REPO, "_staging-cell") is False
        assert fake.tags(REPO)["_staging-cell"] != digest and fake.has_manifest(REPO, digest)

"""The Docker boundary without Docker: docker-py stand-ins that behave like the real client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import docker.errors
import pytest

from orchestrator.engine.docker_engine import DockerEngine
from orchestrator.errors import EngineError, ExitCode, RegistryError

DIGEST = "sha256:" + "ab" * 32


class FakeAPI:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.calls = 0

    def push(self, repo: str, tag: str, stream: bool, decode: bool) -> Iterator[dict[str, Any]]:
        self.calls += 1
        yield from self.items


class FakeContainers:
    def create(self, *args: Any, **kwargs: Any) -> Any:
        raise docker.errors.APIError("500 Server Error: no match for platform in manifest")


class FakeClient:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.api = FakeAPI(items)
        self.containers = FakeContainers()


def _engine(items: list[dict[str, Any]]) -> DockerEngine:
    engine = DockerEngine.__new__(DockerEngine)  # no daemon: only the attributes the methods use
    engine.client = FakeClient(items)  # type: ignore[assignment]
    engine.builder = None
    return engine


def test_push_reads_the_digest_from_the_containerd_store_status_line() -> None:
    """The containerd image store sends no aux record, only '<tag>: digest: ... size: N'."""
    engine = _engine([{"status": "The push refers to repository [127.0.0.1:5000/x/y]"},
                      {"status": "Pushed", "id": "9f442c2e36bd"},
                      {"status": f"3.13-runtime: digest: {DIGEST} size: 1609"}])
    assert engine.push("127.0.0.1:5000/x/y:3.13-runtime") == DIGEST


def test_push_prefers_the_aux_digest_of_the_classic_store() -> None:
    engine = _engine([{"aux": {"Tag": "t", "Digest": DIGEST, "Size": 1}},
                      {"status": f"t: digest: {DIGEST} size: 1"}])
    assert engine.push("r.test/x:t") == DIGEST


def test_a_push_that_reports_no_digest_fails_with_a_reason() -> None:
    engine = _engine([{"status": "Pushed"}])
    with pytest.raises(RegistryError, match="the engine reported no digest for the push"):
        engine.push("r.test/x:t", attempts=2, backoff=0)
    assert engine.client.api.calls == 2  # type: ignore[attr-defined]


def test_a_docker_error_while_running_a_smoke_container_is_an_engine_error() -> None:
    engine = _engine([])
    with pytest.raises(EngineError) as exc:
        engine.run("orchestrator-candidate/x:latest", ["python3", "--version"],
                   platform="linux/arm64")
    assert exc.value.exit_code == ExitCode.TOOL
    assert "linux/arm64" in str(exc.value) and "no match for platform" in str(exc.value)
    with pytest.raises(EngineError, match=r"cannot create a container of .* \(linux/arm64\)"):
        engine.read_tree("orchestrator-candidate/x:latest", "/opt/org/python/3.13", "linux/arm64")

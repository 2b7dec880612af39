"""The Docker engine's push retries without a daemon and without waiting: DockerEngine made
by its own constructor over stand-ins for docker-py's client (``docker.from_env``) and
python-on-whales' (``DockerClient``), with the ``sleep`` the constructor takes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests.exceptions

from orchestrator.engine import docker_engine
from orchestrator.engine.docker_engine import DockerEngine
from orchestrator.errors import RegistryError

DIGEST = "sha256:" + "cd" * 32
REF = "127.0.0.1:5000/team/python:3.13-runtime"
# What dockerd streams when the registry answers a blob or manifest PUT with a 500
SERVER_ERROR = {"errorDetail": {"message": "received unexpected HTTP status: 500"},
                "error": "received unexpected HTTP status: 500 Internal Server Error"}
PUSHED = [{"status": "The push refers to repository [127.0.0.1:5000/team/python]"},
          {"status": "Pushed", "id": "9f442c2e36bd"},
          {"status": f"3.13-runtime: digest: {DIGEST} size: 1609"}]
DROPPED = requests.exceptions.ConnectionError("('Connection aborted.', RemoteDisconnected())")

Attempt = list[dict[str, Any]] | BaseException


class PushAPI:
    """docker-py's low-level ``api.push(stream=True, decode=True)``: each call plays the next
    scripted attempt (its stream items, or an exception raised while streaming)."""

    def __init__(self, attempts: list[Attempt]) -> None:
        self.attempts = attempts
        self.calls: list[tuple[str, str]] = []

    def push(self, repo: str, tag: str, stream: bool, decode: bool) -> Iterator[dict[str, Any]]:
        assert stream and decode
        self.calls.append((repo, tag))
        attempt = self.attempts[len(self.calls) - 1]
        if isinstance(attempt, BaseException):
            raise attempt
        yield from attempt


class DockerPy:
    """``docker.from_env(timeout=...)``'s client as far as the engine uses it for a push."""

    def __init__(self, attempts: list[Attempt]) -> None:
        self.api = PushAPI(attempts)
        self.pinged = False

    def ping(self) -> bool:
        self.pinged = True
        return True


def _engine(monkeypatch: pytest.MonkeyPatch, attempts: list[Attempt],
            sleeps: list[float]) -> tuple[DockerEngine, DockerPy]:
    client = DockerPy(attempts)

    def from_env(timeout: int) -> DockerPy:
        return client

    monkeypatch.setattr("docker.from_env", from_env)
    monkeypatch.setattr(docker_engine, "DockerClient", object)
    engine = DockerEngine(sleep=sleeps.append)
    assert client.pinged, "the constructor checks that the engine answers"
    return engine, client


def test_a_retried_push_waits_the_doubling_backoff_without_sleeping(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    engine, client = _engine(monkeypatch, [DROPPED, [SERVER_ERROR], PUSHED], sleeps)
    start = time.monotonic()
    assert engine.push(REF) == DIGEST
    assert client.api.calls == [("127.0.0.1:5000/team/python", "3.13-runtime")] * 3
    assert sleeps == [1.0, 2.0]  # backoff * 2 ** (attempt - 1), after each failed attempt
    assert time.monotonic() - start < 0.5, "the injected sleep was bypassed"


def test_a_push_that_never_succeeds_waits_between_attempts_not_after_the_last(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    engine, client = _engine(monkeypatch, [DROPPED, DROPPED, [SERVER_ERROR]], sleeps)
    with pytest.raises(RegistryError, match=r"failed after 3 attempts: received unexpected "
                                            r"HTTP status: 500") as exc:
        engine.push(REF, attempts=3, backoff=0.25)
    assert len(client.api.calls) == 3
    assert sleeps == [0.25, 0.5]
    assert "Connection aborted" not in str(exc.value)  # the last attempt's error is named


def test_a_refused_push_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    denied = [{"error": "denied: requested access to the resource is denied"}]
    engine, client = _engine(monkeypatch, [denied], sleeps)
    with pytest.raises(RegistryError, match=r"refused us .*docker login 127\.0\.0\.1:5000"):
        engine.push(REF)
    assert len(client.api.calls) == 1
    assert sleeps == []


def test_without_a_sleep_the_engine_waits_for_real(monkeypatch: pytest.MonkeyPatch) -> None:
    client = DockerPy([])
    monkeypatch.setattr("docker.from_env", lambda timeout: client)
    monkeypatch.setattr(docker_engine, "DockerClient", object)
    assert DockerEngine().sleep is time.sleep

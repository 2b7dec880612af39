"""The engine's two calls for the performance record, over docker-py stand-ins: run_program
(the program as the entrypoint, read-only bind mounts, read-only root, tmpfs /tmp, always
removed) and pull (by digest, on a platform; a refusal says to log in)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker.errors
import docker.types
import pytest

from orchestrator.engine import Mount
from orchestrator.engine.docker_engine import DockerEngine
from orchestrator.errors import EngineError, RegistryError

DIGEST = "sha256:" + "ab" * 32


class Container:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")

    def wait(self, timeout: float) -> dict[str, int]:
        self.calls.append("wait")
        return {"StatusCode": 0}

    def logs(self, stdout: bool, stderr: bool) -> bytes:
        return b"BENCH-RESULT {}\n"

    def remove(self, force: bool) -> None:
        self.calls.append("remove")


class Containers:
    def __init__(self) -> None:
        self.created: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.container = Container()

    def create(self, *args: Any, **kwargs: Any) -> Container:
        self.created.append((args, kwargs))
        return self.container


class Image:
    id = "sha256:" + "cd" * 32


class Images:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.pulled: list[tuple[str, str | None]] = []

    def pull(self, ref: str, platform: str | None = None) -> Image:
        self.pulled.append((ref, platform))
        if self.error is not None:
            raise self.error
        return Image()


class Client:
    def __init__(self, containers: Any = None, images: Any = None) -> None:
        self.containers, self.images = containers, images


def _engine(client: Client) -> DockerEngine:
    engine = DockerEngine.__new__(DockerEngine)  # no daemon: only the attributes used
    engine.client = client  # type: ignore[assignment]
    return engine


def test_run_program_makes_the_program_the_entrypoint_with_read_only_mounts(tmp_path: Path) -> None:
    containers = Containers()
    out = _engine(Client(containers)).run_program(
        "cand/x:latest", ["/opt/acme/python/3.14/bin/python3", "/perf/runner.py", "--quiet"],
        mounts=(Mount(tmp_path, "/perf"),), user="10001", env={"HOME": "/tmp"},
        platform="linux/amd64", timeout=60)
    assert (out.exit_code, out.output) == (0, "BENCH-RESULT {}\n")
    ((args, kwargs),) = containers.created
    assert args == ("cand/x:latest", ["/perf/runner.py", "--quiet"])
    assert kwargs["entrypoint"] == ["/opt/acme/python/3.14/bin/python3"]
    assert kwargs["mounts"] == [docker.types.Mount("/perf", str(tmp_path), type="bind",
                                                   read_only=True)]
    assert kwargs["read_only"] is True and kwargs["network_mode"] == "none"
    assert kwargs["tmpfs"] == {"/tmp": "rw,size=64m"}
    assert (kwargs["user"], kwargs["environment"], kwargs["platform"]) == (
        "10001", {"HOME": "/tmp"}, "linux/amd64")
    assert containers.container.calls == ["start", "wait", "remove"]


def test_a_relative_mount_source_is_made_absolute(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    containers = Containers()
    _engine(Client(containers)).run_program("x:t", ["/usr/bin/python3", "-V"],
                                            mounts=(Mount(Path("work/perf"), "/pyperf"),))
    ((_, kwargs),) = containers.created
    assert kwargs["mounts"][0]["Source"] == str(tmp_path / "work" / "perf")


def test_pull_by_digest_on_a_platform() -> None:
    images = Images()
    got = _engine(Client(images=images)).pull(f"r.test/team/python@{DIGEST}", "linux/amd64")
    assert got == Image.id and images.pulled == [(f"r.test/team/python@{DIGEST}", "linux/amd64")]


def test_a_refused_pull_says_to_log_in_and_any_other_is_the_engines() -> None:
    refused = Images(docker.errors.APIError("unauthorized: authentication required"))
    with pytest.raises(RegistryError, match=r"registry r.test refused us .*`docker login r.test`"):
        _engine(Client(images=refused)).pull(f"r.test/team/python@{DIGEST}")
    gone = Images(docker.errors.NotFound("manifest unknown"))
    with pytest.raises(EngineError, match=rf"cannot pull r.test/team/python@{DIGEST} "
                       r"\(linux/amd64\): manifest unknown"):
        _engine(Client(images=gone)).pull(f"r.test/team/python@{DIGEST}", "linux/amd64")

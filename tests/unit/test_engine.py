"""The Docker boundary without Docker: docker-py stand-ins that behave like the real client."""

from __future__ import annotations

import json
import shutil
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests.exceptions
from python_on_whales.client_config import ClientNotFoundError, ParsingError
from python_on_whales.exceptions import DockerException as WhalesError

from orchestrator.cli import release_cmds
from orchestrator.engine import BuildFailed
from orchestrator.engine.docker_engine import DockerEngine
from orchestrator.errors import EngineError, ExitCode, OrchestratorError, RegistryError
from tests.unit.helpers import FIXTURES, run_cli

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
    def __init__(self, items: list[dict[str, Any]], containers: Any = None,
                 images: Any = None) -> None:
        self.api = FakeAPI(items)
        self.containers = containers or FakeContainers()
        self.images = images


def _engine(items: list[dict[str, Any]], containers: Any = None,
            images: Any = None) -> DockerEngine:
    engine = DockerEngine.__new__(DockerEngine)  # no daemon: only the attributes the methods use
    engine.client = FakeClient(items, containers, images)  # type: ignore[assignment]
    engine.builder = None
    engine.sleep = _no_sleep
    return engine


def _no_sleep(seconds: float) -> None:
    """A push retry's wait, not waited (test_engine_push_retry.py counts them)."""


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


# ---- every Docker client error comes out typed -----------------------------------------------

class Boom:
    """A Docker client, or any part of one, whose every call raises ``exc``."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def __getattr__(self, name: str) -> Boom:
        return Boom(self.exc)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise self.exc


DOCKER_PY_ERRORS = [
    docker.errors.APIError("500 Server Error: Internal Server Error (\"driver failed\")"),
    docker.errors.NotFound("404 Client Error: no such container"),
    docker.errors.InvalidArgument("bad argument"),
    requests.exceptions.ConnectionError("('Connection aborted.', ConnectionResetError(104))"),
    docker.errors.StreamParseError("Expecting value: line 1 column 1 (char 0)"),
]
WHALES_ERRORS = [
    WhalesError(["docker", "buildx", "build"], 1, b"", b"ERROR: no builder"),
    ClientNotFoundError(),
    ParsingError("unexpected output"),
]


def _boom_engine(docker_py: BaseException, whales: BaseException) -> DockerEngine:
    engine = DockerEngine.__new__(DockerEngine)
    engine.client = Boom(docker_py)  # type: ignore[assignment]
    engine.whales = Boom(whales)  # type: ignore[assignment]
    engine.builder = None
    engine.sleep = _no_sleep
    return engine


def _calls(tmp_path: Path) -> dict[str, Callable[[DockerEngine], object]]:
    """Every operation of the Engine protocol (and the buildx check), one call each."""
    def temp_tag(e: DockerEngine) -> None:
        with e.temp_tag("orchestrator-candidate/x:latest", "r.test/x:t"):
            pass

    return {
        "check_buildx": lambda e: e.check_buildx(),
        "build": lambda e: e.build(tmp_path, dockerfile=tmp_path / "Dockerfile", target="t",
                                   tags=["x:t"], args={}, labels={}, network=None, cache_from=[],
                                   cache_to=[], log_path=tmp_path / "build.log"),
        "build_dockerfile": lambda e: e.build_dockerfile("FROM scratch\n", "x:t", network=None,
                                                         log_path=tmp_path / "label.log"),
        "inspect": lambda e: e.inspect("x:t"),
        "exists": lambda e: e.exists("x:t"),
        "tag": lambda e: e.tag("x:t", "r.test/x:t"),
        "remove": lambda e: e.remove("x:t"),
        "temp_tag": temp_tag,
        "push": lambda e: e.push("r.test/x:t", attempts=2, backoff=0),
        "run": lambda e: e.run("x:t", ["python3", "--version"], platform="linux/arm64"),
        "read_tree": lambda e: e.read_tree("x:t", "/opt/org/python/3.13", "linux/amd64"),
        "run_program": lambda e: e.run_program("x:t", ["/opt/org/python/3.13/bin/python3", "-V"],
                                               platform="linux/amd64"),
        "pull": lambda e: e.pull("r.test/x@" + DIGEST, platform="linux/amd64"),
    }


@pytest.mark.parametrize("error", DOCKER_PY_ERRORS + WHALES_ERRORS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("operation", list(_calls(Path("/tmp"))))
def test_no_docker_client_error_leaves_the_engine_untyped(
        tmp_path: Path, operation: str, error: BaseException) -> None:
    """docker-py's and python-on-whales' errors become EngineError (BuildFailed for builds)
    or, for pushes, RegistryError: never the client's own exception, never exit 1."""
    docker_py = error if not isinstance(error, tuple(type(e) for e in WHALES_ERRORS)) \
        else docker.errors.APIError("500")
    whales = error if isinstance(error, tuple(type(e) for e in WHALES_ERRORS)) \
        else WhalesError(["docker"], 1)
    engine = _boom_engine(docker_py, whales)
    with pytest.raises(OrchestratorError) as exc:
        _calls(tmp_path)[operation](engine)
    expected = RegistryError if operation == "push" else EngineError
    assert isinstance(exc.value, expected)
    assert exc.value.exit_code in (ExitCode.TOOL, ExitCode.REGISTRY)
    if operation in ("build", "build_dockerfile"):
        assert isinstance(exc.value, BuildFailed)


def test_an_image_that_is_not_there_is_not_an_error() -> None:
    engine = _boom_engine(docker.errors.ImageNotFound("404 no such image"), WhalesError([], 1))
    assert engine.exists("x:t") is False
    engine.remove("x:t")  # nothing to remove
    with pytest.raises(EngineError, match="is not in the engine's store"):
        engine.inspect("x:t")


class WaitingContainer:
    """A container whose wait() raises ``exc``; records kill() and remove()."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")

    def wait(self, timeout: float) -> dict[str, int]:
        raise self.exc

    def kill(self) -> None:
        self.calls.append("kill")

    def logs(self, stdout: bool, stderr: bool) -> bytes:
        return b"partial output\n"

    def remove(self, force: bool) -> None:
        self.calls.append("remove")


def _waiting_engine(container: WaitingContainer) -> DockerEngine:
    class Containers:
        def create(self, *args: Any, **kwargs: Any) -> WaitingContainer:
            return container

    return _engine([], containers=Containers())


@pytest.mark.parametrize("timeout_error", [
    requests.exceptions.ReadTimeout("Read timed out. (read timeout=5)"),
    requests.exceptions.ConnectionError(
        "UnixHTTPConnectionPool(host='localhost', port=None): Read timed out. (read timeout=5)"),
])
def test_a_wait_that_times_out_kills_the_container_and_exits_124(
        timeout_error: BaseException) -> None:
    container = WaitingContainer(timeout_error)
    out = _waiting_engine(container).run("x:t", ["sleep", "999"], timeout=5)
    assert out.exit_code == 124 and "[killed after 5s]" in out.output
    assert container.calls == ["start", "kill", "remove"]


@pytest.mark.parametrize("wait_error", [
    docker.errors.APIError("500 Server Error: container gone"),
    requests.exceptions.ConnectionError("('Connection aborted.', ConnectionRefusedError(111))"),
])
def test_a_wait_that_fails_otherwise_is_an_engine_error_not_a_timeout(
        wait_error: BaseException) -> None:
    """Before, any OSError from wait (docker-py's APIError is one) read as "timed out"."""
    container = WaitingContainer(wait_error)
    with pytest.raises(EngineError, match=r"container of x:t \(python3 --version\)"):
        _waiting_engine(container).run("x:t", ["python3", "--version"], timeout=5)
    assert container.calls == ["start", "remove"]


# ---- the command line: a docker-py error in a smoke test is exit 3, one line, no traceback ---

class StoreImages:
    """The image store holds the candidate (its id is the one `build` recorded)."""

    def get(self, ref: str) -> Any:
        return types.SimpleNamespace(attrs={"Id": IMAGE_ID, "Size": 1, "Config": {}})


IMAGE_ID = "sha256:" + "cd" * 32
CELL = "3.13-source-bookworm-runtime"


@pytest.mark.spawns("git")
def test_a_docker_error_during_the_smoke_tests_is_exit_3_without_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(FIXTURES / "features", tmp_path, dirs_exist_ok=True)
    state = tmp_path / ".orchestrator" / "state" / f"{CELL}.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"id": CELL, "image_id": IMAGE_ID, "size_bytes": 1}))
    # containers.create answers "500 Server Error: no match for platform in manifest"
    engine = _engine([], images=StoreImages())
    monkeypatch.setattr(release_cmds, "engine_for", lambda args, loaded: engine)
    code, _, err = run_cli(["test", "--config", str(tmp_path / "images.yaml"), "--only", CELL],
                           capsys)
    assert code == ExitCode.TOOL
    assert f"error: cannot create a container of orchestrator-candidate/{CELL}:latest" in err
    assert "no match for platform" in err and "Traceback" not in err


class RecordingWhales:
    """python-on-whales as far as ``DockerEngine.build`` uses it: buildx.build writes what
    BuildKit would (the metadata file, and the OCI tar for an ``oci`` output); image.load
    records the archive it got (and whether it still existed then)."""

    def __init__(self, load_error: BaseException | None = None) -> None:
        self.build_kwargs: dict[str, Any] = {}
        self.loaded: list[tuple[Path, bool]] = []
        self.load_error = load_error
        self.buildx, self.image = self, self

    def build(self, context: Path, **kwargs: Any) -> Iterator[str]:
        self.build_kwargs = kwargs
        kwargs["metadata_file"].write_text(json.dumps({"containerimage.config.digest": DIGEST}))
        output = kwargs.get("output")
        if output:
            Path(output["dest"]).write_bytes(b"oci layout tar")
        yield "#1 DONE 0.1s"

    def load(self, archive: Path, quiet: bool = False) -> list[str]:
        self.loaded.append((Path(archive), Path(archive).exists()))
        if self.load_error is not None:
            raise self.load_error
        return ["x:t"]


class TaggingImages:
    def __init__(self, known: set[str]) -> None:
        self.known, self.tagged = known, list[tuple[str, str]]()

    def get(self, ref: str) -> Any:
        if ref not in self.known:
            raise docker.errors.ImageNotFound(ref)
        images = self

        class Image:
            def tag(self, repo: str, tag: str) -> bool:
                images.tagged.append((ref, f"{repo}:{tag}"))
                return True
        return Image()


def _build(engine: DockerEngine, tmp_path: Path, rewrite: bool) -> str:
    return engine.build(tmp_path, dockerfile=tmp_path / "Dockerfile", target="t",
                        tags=["x:t", "y:t"], args={"SOURCE_DATE_EPOCH": "1764547200"},
                        labels={}, network=None, cache_from=[], cache_to=[],
                        log_path=tmp_path / "logs" / "c.build.log",
                        rewrite_timestamps=rewrite).image_id


def test_a_build_with_rewritten_timestamps_goes_through_an_oci_layout_and_docker_load(
        tmp_path: Path) -> None:
    """--load cannot rewrite timestamps on BuildKit 0.13 (it conflicts with unpack): the
    build writes an OCI layout with rewrite-timestamp, docker load imports it, the other tags
    follow, and the tar is deleted."""
    whales, images = RecordingWhales(), TaggingImages({"x:t"})
    engine = _engine([], images=images)
    engine.whales = whales  # type: ignore[assignment]
    assert _build(engine, tmp_path, rewrite=True) == DIGEST
    output = whales.build_kwargs["output"]
    assert output["type"] == "oci" and output["rewrite-timestamp"] == "true"
    assert output["name"] == "x:t"
    assert "load" not in whales.build_kwargs and "tags" not in whales.build_kwargs
    ((archive, existed),) = whales.loaded
    assert archive == Path(output["dest"]) and existed and not archive.exists()
    assert not archive.is_relative_to(tmp_path)  # not among the logs CI keeps
    assert images.tagged == [("x:t", "y:t")]


def test_a_build_without_rewritten_timestamps_loads_directly(tmp_path: Path) -> None:
    whales = RecordingWhales()
    engine = _engine([], images=TaggingImages(set()))
    engine.whales = whales  # type: ignore[assignment]
    assert _build(engine, tmp_path, rewrite=False) == DIGEST
    assert whales.build_kwargs["load"] is True and whales.build_kwargs["tags"] == ["x:t", "y:t"]
    assert "output" not in whales.build_kwargs and whales.loaded == []


@pytest.mark.parametrize("load_error", [WhalesError(["docker", "load"], 1, b"", b"unexpected EOF"),
                                        None], ids=["load-fails", "tag-missing"])
def test_a_docker_load_that_fails_or_tags_nothing_is_a_failed_build(
        tmp_path: Path, load_error: BaseException | None) -> None:
    whales = RecordingWhales(load_error)
    engine = _engine([], images=TaggingImages(set()))  # the tag never appears
    engine.whales = whales  # type: ignore[assignment]
    with pytest.raises(BuildFailed) as exc:
        _build(engine, tmp_path, rewrite=True)
    assert "docker load" in str(exc.value)
    ((archive, _),) = whales.loaded
    assert not archive.exists()


def test_a_docker_error_while_tagging_after_the_load_fails_the_cell_only(tmp_path: Path) -> None:
    """Not an EngineError that stops the whole run: a BuildFailed, as for any failed build."""
    class BrokenTag(TaggingImages):
        def get(self, ref: str) -> Any:
            if ref == "x:t" and self.tagged == []:
                self.tagged.append(("lookup", ref))
                return super().get(ref)
            raise docker.errors.APIError("500 Server Error: boom")

    engine = _engine([], images=BrokenTag({"x:t"}))
    engine.whales = RecordingWhales()  # type: ignore[assignment]
    with pytest.raises(BuildFailed, match="after docker load"):
        _build(engine, tmp_path, rewrite=True)

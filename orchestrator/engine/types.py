"""What the rest of the package may ask of an image engine: the ``Engine`` protocol and its
result types. ``docker_engine.DockerEngine`` implements it over Docker; tests use
``tests.fakes.fake_engine.FakeEngine``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from orchestrator.errors import EngineError


@dataclass(frozen=True)
class BuildOutcome:
    image_id: str
    seconds: float
    compiled: tuple[str, ...]
    ran_stages: tuple[str, ...]
    log_path: Path


@dataclass(frozen=True)
class RunOutcome:
    exit_code: int
    output: str
    seconds: float


@dataclass(frozen=True)
class ImageInfo:
    id: str
    size: int
    labels: dict[str, str]
    layers: tuple[str, ...] = ()  # diff ids
    env: tuple[str, ...] = ()
    user: str = ""


@dataclass(frozen=True)
class Mount:
    """A host directory bind-mounted read-only into a container."""

    source: Path
    target: str


class BuildFailed(EngineError):
    def __init__(self, summary: str, log_path: Path) -> None:
        super().__init__(f"build failed (log: {log_path}):\n{summary}")
        self.summary, self.log_path = summary, log_path


class Engine(Protocol):
    """Builds images, runs throwaway containers, and manages the local image store.

    Every failure is an ``EngineError`` (``BuildFailed`` for builds) or, for pushes the
    registry refuses, a ``RegistryError``: never an exception of a Docker client library.
    """

    def build(
        self,
        context: Path,
        *,
        dockerfile: Path,
        target: str,
        tags: list[str],
        args: dict[str, str],
        labels: dict[str, str],
        network: str | None,
        cache_from: list[str],
        cache_to: list[str],
        log_path: Path,
        on_line: Callable[[str], None] | None = None,
        platforms: list[str] | None = None,
        rewrite_timestamps: bool = False,
    ) -> BuildOutcome:
        """Build one stage of a Dockerfile into the local store; the log goes to ``log_path``.
        ``rewrite_timestamps``: file times in the new layers clamped to the
        SOURCE_DATE_EPOCH build arg."""
        ...

    def build_dockerfile(self, dockerfile: str, tag: str, *, network: str | None,
                         log_path: Path, context: Path | None = None,
                         platforms: list[str] | None = None) -> str:
        """Build a small Dockerfile given as text; returns the image id."""
        ...

    def export_oci(self, context: Path, *, dockerfile: Path, target: str, args: dict[str, str],
                   labels: dict[str, str], network: str | None, dest: Path, log_path: Path,
                   platforms: list[str] | None = None, no_cache: bool = True) -> Path:
        """Build one stage into an OCI layout tar at ``dest`` (not into the store), file
        times clamped to the SOURCE_DATE_EPOCH build arg; returns ``dest``."""
        ...

    def inspect(self, ref: str) -> ImageInfo: ...

    def exists(self, ref: str) -> bool: ...

    def tag(self, image: str, ref: str) -> None: ...

    def remove(self, ref: str) -> None: ...

    def temp_tag(self, image: str, ref: str) -> AbstractContextManager[str]:
        """``ref`` names ``image`` inside the ``with`` block only."""
        ...

    def push(self, ref: str) -> str:
        """Push ``ref`` (repo:tag); returns the manifest digest."""
        ...

    def run(self, image: str, argv: list[str], *, user: str | None = None,
            read_only: bool = False, network: str | None = "host", timeout: float = 300,
            env: dict[str, str] | None = None, platform: str | None = None) -> RunOutcome:
        """Run a throwaway container; always removed, killed after ``timeout`` seconds."""
        ...

    def run_program(self, image: str, argv: list[str], *, mounts: Sequence[Mount] = (),
                    user: str | None = None, network: str | None = "none", timeout: float = 300,
                    env: dict[str, str] | None = None, platform: str | None = None) -> RunOutcome:
        """Run ``argv[0]`` (an absolute path) as the container's entrypoint with ``argv[1:]``,
        whatever the image's own entrypoint and whether or not it has a shell; ``mounts``
        read-only, the root file system read-only with a tmpfs /tmp; always removed, killed
        after ``timeout`` seconds."""
        ...

    def pull(self, ref: str, platform: str | None = None) -> str:
        """Pull ``ref`` (host/repo@sha256:... or :tag; ``platform``'s image of an index) into
        the local store; returns its image id."""
        ...

    def read_tree(self, image: str, path: str, platform: str | None = None) -> bytes:
        """A tar archive of ``path`` in ``image``, read without starting a container."""
        ...

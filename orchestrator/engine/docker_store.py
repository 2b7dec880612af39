"""The image store, containers and pushes over docker-py: ``DockerStore``, the base of
``DockerEngine`` (docker_engine.py, which adds BuildKit builds through python-on-whales). With
docker_engine.py the only module that imports a Docker client."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import docker
import docker.errors
import docker.types
import requests.exceptions
from docker.models.containers import Container

from orchestrator import imageref, log
from orchestrator.engine.types import ImageInfo, Mount, RunOutcome
from orchestrator.errors import EngineError, RegistryError

_log = log.get("engine")
HINT = "start the engine (scripts/provision-host.sh starts dockerd, the registry and the mirror)"

_PUSHED = re.compile(r"^(\S+): digest: (sha256:[0-9a-f]{64}) size: \d+$")
# What docker-py raises, which no caller of the engine may see: DockerException (its APIError
# is also a requests HTTPError), requests' and urllib3's errors (OSError) and StreamParseError
# (a RuntimeError).
DOCKER_PY_ERRORS = (docker.errors.DockerException, docker.errors.StreamParseError, OSError)


class DockerStore:
    """Images, containers and pushes of the Docker engine, through docker-py."""

    def __init__(self, *, sleep: Callable[[float], None] = time.sleep) -> None:
        """``sleep``: how the push waits between retries (tests pass one that records)."""
        self.sleep = sleep
        try:
            self.client = docker.from_env(timeout=600)
            self.client.ping()
        except DOCKER_PY_ERRORS as exc:
            raise EngineError(f"no Docker engine answers ({exc}); {HINT}") from None

    # ------------------------------------------------------------------ images

    def inspect(self, ref: str) -> ImageInfo:
        try:
            img = self.client.images.get(ref)
        except docker.errors.ImageNotFound:
            raise EngineError(f"image {ref} is not in the engine's store") from None
        except DOCKER_PY_ERRORS as exc:
            raise EngineError(f"cannot inspect {ref}: {exc}") from None
        attrs: dict[str, Any] = img.attrs
        cfg = attrs.get("Config") or {}
        return ImageInfo(
            id=attrs["Id"], size=int(attrs.get("Size", 0)), labels=dict(cfg.get("Labels") or {}),
            layers=tuple(attrs.get("RootFS", {}).get("Layers", [])),
            env=tuple(cfg.get("Env") or []), user=str(cfg.get("User") or ""),
        )

    def exists(self, ref: str) -> bool:
        try:
            self.client.images.get(ref)
        except docker.errors.ImageNotFound:
            return False
        except DOCKER_PY_ERRORS as exc:
            raise EngineError(f"cannot look up {ref}: {exc}") from None
        return True

    def tag(self, image: str, ref: str) -> None:
        parsed = imageref.parse(ref)
        repo, tag = parsed.name, parsed.tag_or_latest
        try:
            tagged = self.client.images.get(image).tag(repo, tag)
        except DOCKER_PY_ERRORS as exc:
            raise EngineError(f"could not tag {image} as {ref}: {exc}") from None
        if not tagged:
            raise EngineError(f"could not tag {image} as {ref}")

    def remove(self, ref: str) -> None:
        try:
            self.client.images.remove(ref, noprune=True)
        except docker.errors.ImageNotFound:
            pass
        except DOCKER_PY_ERRORS as exc:
            raise EngineError(f"could not remove {ref}: {exc}") from None

    def push(self, ref: str, attempts: int = 4, backoff: float = 1.0) -> str:
        """Push ``ref`` (repo:tag); returns the manifest digest. Retries connection errors."""
        parsed = imageref.parse(ref)
        repo, tag = parsed.name, parsed.tag_or_latest
        last = ""
        for attempt in range(1, attempts + 1):
            digest = ""
            last = ""
            try:
                for item in self.client.api.push(repo, tag, stream=True, decode=True):
                    if "error" in item or "errorDetail" in item:
                        last = str(item.get("error") or item.get("errorDetail"))
                    aux = item.get("aux") or {}
                    digest = aux.get("Digest", digest)
                    # The containerd image store reports no aux record, only the status line
                    # "<tag>: digest: sha256:... size: N" (the classic store sends both).
                    said = _PUSHED.match(str(item.get("status", "")))
                    if said and said.group(1) == tag:
                        digest = digest or said.group(2)
            except DOCKER_PY_ERRORS as exc:
                last = str(exc)
            if digest and not last:
                return str(digest)
            if not digest and not last:
                last = "the engine reported no digest for the push"
            if "unauthorized" in last.lower() or "denied" in last.lower():
                host = parsed.host
                raise RegistryError(f"push {ref}: registry {host} refused us ({last}); "
                                    f"run `docker login {host}`")
            if attempt < attempts:
                _log.warning("push retry", ref=ref, attempt=attempt, error=last)
                self.sleep(backoff * 2 ** (attempt - 1))
        raise RegistryError(f"push {ref} failed after {attempts} attempts: {last}")

    # ------------------------------------------------------------------ containers

    def run(
        self,
        image: str,
        argv: list[str],
        *,
        user: str | None = None,
        read_only: bool = False,
        network: str | None = "host",
        timeout: float = 300,
        env: dict[str, str] | None = None,
        platform: str | None = None,
    ) -> RunOutcome:
        """Run a throwaway container (of ``platform``'s image of a multi-platform ``image``);
        always removed, killed after ``timeout`` seconds."""
        start = time.monotonic()
        try:
            container = self.client.containers.create(
                image, argv, user=user, read_only=read_only, network_mode=network,
                environment=env or {}, tmpfs={"/tmp": "rw,exec,size=512m"} if read_only else None,
                platform=platform,
            )
        except DOCKER_PY_ERRORS as exc:
            where = f" ({platform})" if platform else ""
            raise EngineError(f"cannot create a container of {image}{where}: {exc}") from None
        return self._finish(container, image, argv, timeout, start)

    def run_program(self, image: str, argv: list[str], *, mounts: Sequence[Mount] = (),
                    user: str | None = None, network: str | None = "none", timeout: float = 300,
                    env: dict[str, str] | None = None, platform: str | None = None) -> RunOutcome:
        """``argv[0]`` as the entrypoint (a minimal image has no shell, and python3 as its own
        entrypoint), ``mounts`` bind-mounted read-only, a read-only root and a tmpfs /tmp."""
        start = time.monotonic()
        # docker wants an absolute source (the work dir may be relative to images.yaml's)
        binds = [docker.types.Mount(m.target, str(m.source.absolute()), type="bind",
                                    read_only=True) for m in mounts]
        try:
            container = self.client.containers.create(
                image, argv[1:], entrypoint=[argv[0]], user=user, read_only=True,
                network_mode=network, environment=env or {}, mounts=binds,
                tmpfs={"/tmp": "rw,size=64m"}, platform=platform,
            )
        except DOCKER_PY_ERRORS as exc:
            where = f" ({platform})" if platform else ""
            raise EngineError(f"cannot create a container of {image}{where}: {exc}") from None
        return self._finish(container, image, argv, timeout, start)

    def _finish(self, container: Container, image: str, argv: list[str], timeout: float,
                start: float) -> RunOutcome:
        """Start a created container, wait for it (``timeout``), read its output, remove it."""
        try:
            container.start()
            code = _wait(container, timeout)
            out = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
            if code == 124:
                out += f"\n[killed after {timeout}s]"
        except DOCKER_PY_ERRORS as exc:
            raise EngineError(f"container of {image} ({' '.join(argv)[:80]}): {exc}") from None
        finally:
            with contextlib.suppress(*DOCKER_PY_ERRORS):
                container.remove(force=True)
        return RunOutcome(code, out, time.monotonic() - start)

    def pull(self, ref: str, platform: str | None = None) -> str:
        """``ref`` (by digest or tag) pulled into the local store; its image id."""
        try:
            img = self.client.images.pull(ref, platform=platform)
        except DOCKER_PY_ERRORS as exc:
            text = str(exc)
            if "unauthorized" in text.lower() or "denied" in text.lower():
                host = imageref.parse(ref).host
                raise RegistryError(f"pull {ref}: registry {host} refused us ({text}); run "
                                    f"`docker login {host}`") from None
            raise EngineError(f"cannot pull {ref}{f' ({platform})' if platform else ''}: "
                              f"{text}") from None
        return str(img.id)

    def read_tree(self, image: str, path: str, platform: str | None = None) -> bytes:
        """A tar archive of ``path`` in ``image`` (``platform``'s image of an index), read from
        a created, never started container: needs no shell or tool in the image."""
        try:
            container = self.client.containers.create(image, ["/nonexistent"], platform=platform)
        except DOCKER_PY_ERRORS as exc:
            raise EngineError(f"cannot create a container of {image} ({platform}): {exc}") from None
        try:
            stream, _ = container.get_archive(path)
            return b"".join(stream)
        except DOCKER_PY_ERRORS as exc:
            raise EngineError(f"cannot read {path} from {image} ({platform}): {exc}") from None
        finally:
            with contextlib.suppress(*DOCKER_PY_ERRORS):
                container.remove(force=True)

    @contextmanager
    def temp_tag(self, image: str, ref: str) -> Iterator[str]:
        self.tag(image, ref)
        try:
            yield ref
        finally:
            self.remove(ref)


def _wait(container: Container, timeout: float) -> int:
    """The container's exit code; 124 (and the container killed) when ``timeout`` passed.
    docker-py's wait ends in requests' ReadTimeout, or over the unix socket in a
    ConnectionError around urllib3's "Read timed out"; any other error is the engine's."""
    try:
        result = container.wait(timeout=timeout)
    except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as exc:
        if not (isinstance(exc, requests.exceptions.ReadTimeout) or "timed out" in str(exc)):
            raise
        container.kill()
        return 124
    return int(result.get("StatusCode", -1))

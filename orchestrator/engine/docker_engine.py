"""The Docker engine: the only module that imports docker (docker-py) and python_on_whales.

BuildKit builds go through python-on-whales (buildx bake / build); containers, image
inspection and pushes through docker-py.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import docker.errors
import docker.types
import requests.exceptions
from docker.models.containers import Container
from python_on_whales import DockerClient
from python_on_whales.client_config import ClientNotFoundError, ParsingError
from python_on_whales.exceptions import DockerException

from orchestrator import imageref, log, naming
from orchestrator.engine.buildlog import BuildLog
from orchestrator.engine.types import BuildFailed, BuildOutcome, Engine, ImageInfo, Mount, RunOutcome
from orchestrator.errors import EngineError, RegistryError

_log = log.get("engine")
HINT = "start the engine (scripts/provision-host.sh starts dockerd, the registry and the mirror)"

_PUSHED = re.compile(r"^(\S+): digest: (sha256:[0-9a-f]{64}) size: \d+$")
# What the Docker clients raise, which no caller of the engine may see. docker-py:
# DockerException (its APIError is also a requests HTTPError), requests' and urllib3's errors
# (OSError) and StreamParseError (a RuntimeError); python-on-whales: DockerException, and
# ClientNotFoundError / ParsingError beside it.
DOCKER_PY_ERRORS = (docker.errors.DockerException, docker.errors.StreamParseError, OSError)
WHALES_ERRORS = (DockerException, ClientNotFoundError, ParsingError)


class DockerEngine:
    """The ``Engine`` protocol over Docker: builds with buildx, the rest with docker-py."""

    def __init__(self, builder: str | None = None, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        """``sleep``: how the push waits between retries (tests pass one that records)."""
        self.builder = builder
        self.sleep = sleep
        self.whales = DockerClient()
        try:
            self.client = docker.from_env(timeout=600)
            self.client.ping()
        except DOCKER_PY_ERRORS as exc:
            raise EngineError(f"no Docker engine answers ({exc}); {HINT}") from None

    # ------------------------------------------------------------------ checks

    def check_buildx(self) -> str:
        try:
            info: Any = self.whales.buildx.version()
            version = str(info["version"]) if isinstance(info, dict) else str(info).strip()
        except WHALES_ERRORS as exc:
            raise EngineError(f"docker buildx is not available ({exc}); {HINT}") from None
        return version

    # ------------------------------------------------------------------ build

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
        """Build one stage into the engine's image store; the plain log is kept at ``log_path``.

        Uses ``buildx build`` with the values of the target in docker-bake.json: bake 0.13
        cannot set a target's network, and builds need ``--network host`` to reach mirrors
        served on loopback.

        ``rewrite_timestamps``: file times in the new layers clamped to SOURCE_DATE_EPOCH.
        BuildKit 0.13 refuses it with ``--load`` ("conflicts with unpack", moby/buildkit#4230)
        and fails with ``push=true`` (#4793): the image goes to an OCI layout tar, which
        ``docker load`` imports as is (same digests)."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        meta = log_path.with_suffix(".metadata.json")
        meta.unlink(missing_ok=True)
        start = time.monotonic()
        # The tar (the whole image) stays out of the logs, which CI keeps as artifacts.
        with tempfile.TemporaryDirectory(prefix="orchestrator-oci-") as tmp:
            archive = Path(tmp) / "image.oci.tar"
            out: dict[str, Any] = {"load": True, "tags": tags}
            if rewrite_timestamps:
                out = {"output": {"type": "oci", "dest": str(archive),
                                  "rewrite-timestamp": "true", "name": tags[0]}}
            blog = self._buildx(
                log_path, on_line, context, file=dockerfile, target=target,
                build_args=args, labels=labels, network=network,
                metadata_file=meta, platforms=platforms or None,
                cache_from=[_cache_spec(c) for c in cache_from] or None,
                cache_to=_cache_spec(cache_to[0]) if cache_to else None, **out,
            )
            if rewrite_timestamps:
                self._load_archive(archive, tags, log_path)
        seconds = time.monotonic() - start
        image_id = ""
        if meta.exists():
            data = json.loads(meta.read_text())
            # The config digest is the image id; with the containerd image store only the
            # manifest digest may be reported, which the engine also resolves.
            image_id = str(data.get("containerimage.config.digest")
                           or data.get("containerimage.digest", ""))
        if not image_id:
            raise BuildFailed("BuildKit reported no image (metadata file empty)", log_path)
        return BuildOutcome(image_id, seconds, tuple(blog.compiled_stages()),
                            tuple(sorted({s for s, _ in blog.executed})), log_path)

    def export_oci(self, context: Path, *, dockerfile: Path, target: str, args: dict[str, str],
                   labels: dict[str, str], network: str | None, dest: Path, log_path: Path,
                   platforms: list[str] | None = None, no_cache: bool = True) -> Path:
        """Build ``target`` into an OCI layout tar at ``dest``, file times clamped to the
        SOURCE_DATE_EPOCH build arg (``rewrite-timestamp``), no provenance attestation (it
        records the build's start and end). Nothing enters the image store."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.unlink(missing_ok=True)
        self._buildx(
            log_path, None, context, file=dockerfile, target=target, build_args=args,
            labels=labels, network=network, cache=not no_cache, provenance=False,
            platforms=platforms or None,
            output={"type": "oci", "dest": str(dest), "rewrite-timestamp": "true"},
        )
        if not dest.is_file():
            raise BuildFailed(f"BuildKit wrote no OCI layout to {dest}", log_path)
        return dest

    def _load_archive(self, archive: Path, tags: list[str], log_path: Path) -> None:
        """``docker load`` an OCI layout tar BuildKit wrote for ``tags[0]``, tag the rest,
        delete the tar. Every failure is this cell's failed build."""
        if not archive.is_file():
            raise BuildFailed(f"BuildKit wrote no OCI layout to {archive}", log_path)
        try:
            loaded = self.whales.image.load(archive, quiet=True)
            present = self.exists(tags[0])
            for ref in tags[1:] if present else []:
                self.tag(tags[0], ref)
        except WHALES_ERRORS as exc:
            raise BuildFailed(f"docker load {archive.name} failed: {exc}", log_path) from None
        except EngineError as exc:
            raise BuildFailed(f"after docker load {archive.name}: {exc}", log_path) from None
        finally:
            archive.unlink(missing_ok=True)
        if not present:
            raise BuildFailed(f"docker load {archive.name} gave {loaded or 'nothing'}, "
                              f"not {tags[0]}", log_path)

    def _buildx(self, log_path: Path, on_line: Callable[[str], None] | None, context: Path,
                **options: Any) -> BuildLog:
        """``buildx build`` with the plain progress log streamed to ``log_path``."""
        blog = BuildLog()
        with log_path.open("w") as fh:
            try:
                stream: Any = self.whales.buildx.build(
                    context, progress="plain", builder=self.builder, stream_logs=True,
                    **options)
                for raw in stream:
                    line = str(raw).rstrip("\n")
                    fh.write(line + "\n")
                    blog.feed(line)
                    if on_line:
                        on_line(line)
            except WHALES_ERRORS as exc:
                fh.write(f"\n{exc}\n")
                raise BuildFailed(blog.error_summary() or str(exc), log_path) from None
        return blog

    def build_dockerfile(self, dockerfile: str, tag: str, *, network: str | None,
                         log_path: Path, context: Path | None = None,
                         platforms: list[str] | None = None) -> str:
        """Build a small Dockerfile (labels pass, downstream app tests). Returns the image id."""
        with tempfile.TemporaryDirectory() as tmp:
            ctx = context or Path(tmp)
            df = Path(tmp) / naming.DOCKERFILE
            df.write_text(dockerfile)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("w") as fh:
                try:
                    stream: Any = self.whales.buildx.build(
                        ctx, file=df, tags=[tag], load=True, network=network, progress="plain",
                        builder=self.builder, stream_logs=True, platforms=platforms or None,
                    )
                    for raw in stream:
                        fh.write(str(raw))
                except WHALES_ERRORS as exc:
                    fh.write(f"\n{exc}\n")
                    raise BuildFailed(_tail(log_path), log_path) from None
        return self.inspect(tag).id

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


def _cache_spec(text: str) -> dict[str, str]:
    """'type=registry,ref=r/cache,mode=max' -> the dict python-on-whales expects."""
    return dict(part.split("=", 1) for part in text.split(",") if "=" in part)


def _tail(path: Path, n: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


if TYPE_CHECKING:
    def _is_an_engine(engine: DockerEngine) -> Engine:
        return engine  # mypy: DockerEngine satisfies the Engine protocol

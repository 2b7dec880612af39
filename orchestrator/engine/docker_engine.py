"""The Docker engine: ``DockerEngine``, the ``Engine`` protocol over Docker. BuildKit builds go
through python-on-whales (buildx build) here; containers, image inspection and pushes through
docker-py in its base, ``DockerStore`` (docker_store.py). These two modules are the only ones
that import a Docker client.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from python_on_whales import DockerClient
from python_on_whales.client_config import ClientNotFoundError, ParsingError
from python_on_whales.exceptions import DockerException

from orchestrator import naming
from orchestrator.engine.buildlog import BuildLog
from orchestrator.engine.docker_store import HINT, DockerStore
from orchestrator.engine.types import BuildFailed, BuildOutcome, Engine
from orchestrator.errors import EngineError

# What python-on-whales raises, which no caller of the engine may see: DockerException, and
# ClientNotFoundError / ParsingError beside it (docker-py's: docker_store.DOCKER_PY_ERRORS).
WHALES_ERRORS = (DockerException, ClientNotFoundError, ParsingError)


class DockerEngine(DockerStore):
    """The ``Engine`` protocol over Docker: builds with buildx, the rest with docker-py."""

    def __init__(self, builder: str | None = None, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        """``sleep``: how the push waits between retries (tests pass one that records)."""
        self.builder = builder
        self.whales = DockerClient()
        super().__init__(sleep=sleep)

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


def _cache_spec(text: str) -> dict[str, str]:
    """'type=registry,ref=r/cache,mode=max' -> the dict python-on-whales expects."""
    return dict(part.split("=", 1) for part in text.split(",") if "=" in part)


def _tail(path: Path, n: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


if TYPE_CHECKING:
    def _is_an_engine(engine: DockerEngine) -> Engine:
        return engine  # mypy: DockerEngine satisfies the Engine protocol

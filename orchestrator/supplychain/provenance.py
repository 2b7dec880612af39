"""SLSA provenance v1 written by the orchestrator: an in-toto Statement v1 whose predicate says
who built an image (builder id), from what (the cell, its Dockerfile target, platforms and build
args), with which pinned inputs (base image digest, CPython tarball URL + sha256, images.lock
and the rendered Dockerfile by sha256, the git revision) and when. Pure: the caller gathers the
inputs (release/attest.py); ``cosign attest --type slsaprovenance1`` takes ``predicate(...)``
and writes its own statement header around it (subject: the digest it attests to).

Field names are SLSA v1.0's (https://slsa.dev/provenance/v1): cosign unmarshals the predicate
into in-toto-golang's slsa_provenance/v1 types and requires buildDefinition and runDetails.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import __version__, imageref, timestamps

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
# What the build was: render images.yaml + images.lock into a Dockerfile, build one target
# with BuildKit (docker buildx) for the platforms, push by digest. A URN: the build type
# names this recipe and its version, and is documented here.
BUILD_TYPE = "urn:python-base-orchestrator:buildtype:dockerfile-target:v1"
BUILDER_NAME = "python-base-orchestrator"


@dataclass(frozen=True)
class Source:
    """A pinned input file fetched from the network (CPython tarball, pyenv release)."""

    name: str
    url: str
    sha256: str


@dataclass(frozen=True)
class VulnerabilityDb:
    """The vulnerability DB the release's scan gate checked the image with (scan: in
    images.yaml): recorded as a byproduct of the run, since it vouched for what was published."""

    uri: str  # scan.db.url or file
    sha256: str  # the archive's, as scan.db.sha256 pins it
    built: str  # its build date (ISO 8601, UTC)
    schema: str  # e.g. v6.1.10
    scanner: str  # e.g. grype 0.121.3


@dataclass(frozen=True)
class Inputs:
    cell: str  # 3.13-source-bookworm-runtime
    target: str  # the Dockerfile stage built
    dockerfile: str  # generated/bookworm/Dockerfile (relative to images.yaml)
    dockerfile_sha256: str
    platforms: tuple[str, ...]
    build_args: Mapping[str, str]
    profile: str
    base_image: str  # docker.io/library/debian:bookworm-slim
    base_digest: str  # sha256:...
    lock_sha256: str  # images.lock
    config_sha256: str  # images.yaml
    builder_id: str
    started: dt.datetime
    finished: dt.datetime
    sources: tuple[Source, ...] = ()  # CPython tarball (and pyenv for python-build)
    revision: str = ""  # git commit of the images.yaml repository
    repository: str = ""  # its URL (label org.opencontainers.image.source)
    invocation_id: str = ""  # e.g. the CI job URL
    labels: Mapping[str, str] = field(default_factory=dict)
    vulnerability_db: VulnerabilityDb | None = None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _hex(digest: str) -> str:
    return digest.removeprefix("sha256:")


def _image_purl(image: str) -> str:
    """docker.io/library/debian:bookworm-slim -> pkg:docker/library/debian@bookworm-slim?
    repository_url=docker.io (purl-spec docker type)."""
    ref = imageref.parse(image)
    return f"pkg:docker/{ref.repository}@{ref.tag_or_latest}?repository_url={ref.host}"


def predicate(inp: Inputs) -> dict[str, Any]:
    """The SLSA v1 provenance predicate."""
    deps: list[dict[str, Any]] = [{
        "uri": _image_purl(inp.base_image), "digest": {"sha256": _hex(inp.base_digest)},
        "name": "base-image",
    }]
    deps += [{"uri": s.url, "digest": {"sha256": s.sha256}, "name": s.name} for s in inp.sources]
    if inp.repository:
        src: dict[str, Any] = {"uri": f"git+{inp.repository}", "name": "source"}
        if inp.revision:
            src["digest"] = {"gitCommit": inp.revision}
        deps.append(src)
    deps += [{"name": "images.yaml", "digest": {"sha256": inp.config_sha256}},
             {"name": "images.lock", "digest": {"sha256": inp.lock_sha256}},
             {"name": inp.dockerfile, "digest": {"sha256": inp.dockerfile_sha256}}]
    external: dict[str, Any] = {
        "cell": inp.cell, "target": inp.target, "dockerfile": inp.dockerfile,
        "platforms": list(inp.platforms), "buildArgs": dict(sorted(inp.build_args.items())),
        "profile": inp.profile,
    }
    if inp.repository:
        external["source"] = {"uri": inp.repository, "revision": inp.revision}
    metadata = {"startedOn": timestamps.rfc3339(inp.started),
                "finishedOn": timestamps.rfc3339(inp.finished)}
    if inp.invocation_id:
        metadata = {"invocationId": inp.invocation_id, **metadata}
    run_details: dict[str, Any] = {
        "builder": {"id": inp.builder_id, "version": {BUILDER_NAME: __version__}},
        "metadata": metadata,
    }
    db = inp.vulnerability_db
    if db is not None:
        run_details["byproducts"] = [{
            "name": "vulnerability-db", "uri": db.uri, "digest": {"sha256": db.sha256},
            "annotations": {"built": db.built, "schema": db.schema, "scanner": db.scanner},
        }]
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": external,
            "internalParameters": {"labels": dict(sorted(inp.labels.items()))},
            "resolvedDependencies": deps,
        },
        "runDetails": run_details,
    }


def statement(subjects: Sequence[tuple[str, str]], inp: Inputs) -> dict[str, Any]:
    """The in-toto Statement v1: ``subjects`` are (name, sha256:digest), e.g. the pushed index
    and each platform manifest."""
    if not subjects:
        raise ValueError("a provenance statement needs at least one subject")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": _hex(d)}} for name, d in subjects],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate(inp),
    }

"""SLSA provenance v1 in an in-toto Statement v1 (orchestrator.supplychain.provenance): pure, exact."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from pathlib import Path

import pytest

from orchestrator import __version__
from orchestrator.supplychain import provenance

T0 = dt.datetime(2026, 11, 21, 3, 0, 0, tzinfo=dt.UTC)
SHA = "1e66a7945a48390ee4c2a4268a0e4185884059a13c4aab6d148aa208deea4a76"
URL = "https://www.python.org/ftp/python/3.13.15/Python-3.13.15.tar.xz"
BASE = "sha256:" + "b" * 64
INPUTS = provenance.Inputs(
    cell="3.13-source-bookworm-runtime", target="runtime-3.13-source",
    dockerfile="generated/bookworm/Dockerfile", dockerfile_sha256="d" * 64,
    platforms=("linux/amd64", "linux/arm64"),
    build_args={"SECURITY_REFRESH": "20261121T030000", "PGO": "0"}, profile="release",
    base_image="docker.io/library/debian:bookworm-slim", base_digest=BASE,
    lock_sha256="1" * 64, config_sha256="2" * 64,
    builder_id="https://gitlab.example.org/platform/python-base-images/-/runners/7",
    started=T0, finished=T0 + dt.timedelta(minutes=12, seconds=5),
    sources=(provenance.Source("Python-3.13.15.tar.xz", URL, SHA),),
    revision="0123456789abcdef0123456789abcdef01234567",
    repository="https://gitlab.example.org/platform/python-base-images",
    invocation_id="https://gitlab.example.org/platform/python-base-images/-/jobs/42",
    labels={"org.opencontainers.image.vendor": "Example Org"},
)


def test_predicate_is_slsa_v1() -> None:
    assert provenance.predicate(INPUTS) == {
        "buildDefinition": {
            "buildType": "urn:python-base-orchestrator:buildtype:dockerfile-target:v1",
            "externalParameters": {
                "cell": "3.13-source-bookworm-runtime", "target": "runtime-3.13-source",
                "dockerfile": "generated/bookworm/Dockerfile",
                "platforms": ["linux/amd64", "linux/arm64"],
                "buildArgs": {"PGO": "0", "SECURITY_REFRESH": "20261121T030000"},
                "profile": "release",
                "source": {"uri": "https://gitlab.example.org/platform/python-base-images",
                           "revision": "0123456789abcdef0123456789abcdef01234567"},
            },
            "internalParameters": {"labels": {"org.opencontainers.image.vendor": "Example Org"}},
            "resolvedDependencies": [
                {"uri": "pkg:docker/library/debian@bookworm-slim?repository_url=docker.io",
                 "digest": {"sha256": "b" * 64}, "name": "base-image"},
                {"uri": URL, "digest": {"sha256": SHA}, "name": "Python-3.13.15.tar.xz"},
                {"uri": "git+https://gitlab.example.org/platform/python-base-images",
                 "name": "source", "digest": {"gitCommit": "0123456789abcdef0123456789abcdef01234567"}},
                {"name": "images.yaml", "digest": {"sha256": "2" * 64}},
                {"name": "images.lock", "digest": {"sha256": "1" * 64}},
                {"name": "generated/bookworm/Dockerfile", "digest": {"sha256": "d" * 64}},
            ],
        },
        "runDetails": {
            "builder": {"id": "https://gitlab.example.org/platform/python-base-images/-/runners/7",
                        "version": {"python-base-orchestrator": __version__}},
            "metadata": {
                "invocationId": "https://gitlab.example.org/platform/python-base-images/-/jobs/42",
                "startedOn": "2026-11-21T03:00:00Z", "finishedOn": "2026-11-21T03:12:05Z"},
        },
    }


def test_statement_names_every_subject() -> None:
    st = provenance.statement([("r.example/org/python", "sha256:" + "a" * 64),
                               ("r.example/org/python", "sha256:" + "c" * 64)], INPUTS)
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert st["predicateType"] == "https://slsa.dev/provenance/v1"
    assert st["subject"] == [{"name": "r.example/org/python", "digest": {"sha256": "a" * 64}},
                             {"name": "r.example/org/python", "digest": {"sha256": "c" * 64}}]
    assert st["predicate"] == provenance.predicate(INPUTS)
    with pytest.raises(ValueError, match="at least one subject"):
        provenance.statement([], INPUTS)


def test_without_repository_revision_or_invocation() -> None:
    bare = dataclasses.replace(INPUTS, repository="", revision="", invocation_id="", sources=())
    pred = provenance.predicate(bare)
    assert [d.get("name") for d in pred["buildDefinition"]["resolvedDependencies"]] == [
        "base-image", "images.yaml", "images.lock", "generated/bookworm/Dockerfile"]
    assert "source" not in pred["buildDefinition"]["externalParameters"]
    assert pred["runDetails"]["metadata"] == {"startedOn": "2026-11-21T03:00:00Z",
                                              "finishedOn": "2026-11-21T03:12:05Z"}


def test_times_are_utc_and_must_have_a_zone() -> None:
    cet = dt.timezone(dt.timedelta(hours=1))
    later = dataclasses.replace(INPUTS, started=dt.datetime(2026, 11, 21, 4, 0, tzinfo=cet))
    assert provenance.predicate(later)["runDetails"]["metadata"]["startedOn"] == "2026-11-21T03:00:00Z"
    naive = dataclasses.replace(INPUTS, started=dt.datetime(2026, 11, 21, 4, 0))
    with pytest.raises(ValueError, match="no time zone"):
        provenance.predicate(naive)


@pytest.mark.parametrize(("image", "purl"), [
    ("docker.io/library/debian:bookworm-slim",
     "pkg:docker/library/debian@bookworm-slim?repository_url=docker.io"),
    ("127.0.0.1:5000/e2e/ubuntu:noble", "pkg:docker/e2e/ubuntu@noble?repository_url=127.0.0.1:5000"),
    ("mirror.test:5000/library/debian", "pkg:docker/library/debian@latest?repository_url=mirror.test:5000"),
])
def test_base_image_purl(image: str, purl: str) -> None:
    pred = provenance.predicate(dataclasses.replace(INPUTS, base_image=image))
    assert pred["buildDefinition"]["resolvedDependencies"][0]["uri"] == purl


def test_sha256_file(tmp_path: Path) -> None:
    f = tmp_path / "images.lock"
    f.write_bytes(b"x" * (3 << 20))
    assert provenance.sha256_file(f) == hashlib.sha256(b"x" * (3 << 20)).hexdigest()


def test_the_vulnerability_db_of_the_scan_gate_is_a_byproduct() -> None:
    db = provenance.VulnerabilityDb("https://mirror.example.org/grype/db.tar.zst", "e" * 64,
                                    "2026-11-20T06:00:00Z", "v6.1.10", "grype 0.121.3")
    pred = provenance.predicate(dataclasses.replace(INPUTS, vulnerability_db=db))
    assert pred["runDetails"]["byproducts"] == [{
        "name": "vulnerability-db", "uri": "https://mirror.example.org/grype/db.tar.zst",
        "digest": {"sha256": "e" * 64},
        "annotations": {"built": "2026-11-20T06:00:00Z", "schema": "v6.1.10",
                        "scanner": "grype 0.121.3"}}]
    assert pred["buildDefinition"] == provenance.predicate(INPUTS)["buildDefinition"]
    assert "byproducts" not in provenance.predicate(INPUTS)["runDetails"]

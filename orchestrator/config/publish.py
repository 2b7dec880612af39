"""Where images go and what guards them: the publish (registry and repository), signing
(cosign), scan (grype, its pinned DB, the gate and its ignore rules) and perf (the performance
record and its gate) sections of images.yaml."""

from __future__ import annotations

import datetime as dt
import typing
from typing import Literal

from pydantic import Field

from orchestrator.config.base import NAME_RE, FrozenModel


class Publish(FrozenModel):
    registry: str = Field(description="Registry host[:port] images are pushed to")
    repository: str = Field(description="Repository in that registry, e.g. org/python")
    org: str = Field(
        "org", pattern=NAME_RE,
        description="Install prefix /opt/<org>/python/X.Y and label namespace org.<org>.base-image",
    )


class Signing(FrozenModel):
    """cosign signatures and attestations (SBOM, provenance) of every pushed image, and the
    verify gate of promote. Checks: config/checks/signing.py."""

    key: str = Field(
        description="The cosign signing key: a file (relative to images.yaml; written from a CI "
        "secret at push time), env://VAR (cosign reads the key from that variable), or a KMS "
        "URI passed to cosign as is (awskms://, gcpkms://, azurekms://, hashivault://)",
    )
    public_key: str | None = Field(
        None, description="What verify checks against: a file (relative to images.yaml, "
        "committed), env://VAR, https:// URL or a KMS URI; default: the key file with .pub "
        "instead of .key, or the KMS key itself",
    )
    password_env: str = Field(
        "COSIGN_PASSWORD",
        description="Environment variable holding the key's password (file and env:// keys)",
    )
    tlog: bool = Field(
        False, description="Upload signatures to a Rekor transparency log and require them on "
        "verify; false for a private registry (no public log may see its image names)",
    )
    required: bool = Field(
        True, description="promote refuses to move a tag to a digest whose signature, SBOM "
        "attestation or provenance does not verify",
    )


# --------------------------------------------------------------------------- scan:

Severity = Literal["negligible", "low", "medium", "high", "critical"]
SEVERITIES: tuple[str, ...] = typing.get_args(Severity)


class ScanDb(FrozenModel):
    """The grype vulnerability DB archive (grype's `db import` format) the scan uses: its
    checksum is pinned, nothing is updated behind the scan's back."""

    url: str | None = Field(
        None, description="https:// (or http://) URL of the archive, e.g. a mirror of "
        "grype's vulnerability-db_v6.*.tar.zst; downloaded once into the cache")
    file: str | None = Field(
        None, description="The archive as a file (relative to images.yaml, or absolute)")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$",
                        description="sha256 of the archive (refused when it differs)")


class IgnoreRule(FrozenModel):
    """A finding the gate leaves out until the rule expires (the report still lists it)."""

    advisory: str = Field(min_length=1, description="e.g. CVE-2025-1234 or GHSA-xxxx-xxxx-xxxx")
    package: str | None = Field(None, description="Only this package (default: any)")
    cells: str | None = Field(None, description="Only cells matching this glob (default: all)")
    reason: str = Field(min_length=10, description="Why it does not apply (at least 10 characters)")
    expires: dt.date = Field(description="From this day on the rule no longer applies")


# The parts of an image a VEX rule may name: what the build may leave out, as the smoke test's
# probe (orchestrator/smoke/checks/components.py) reports them, one key each.
VexComponent = Literal["cpython-tests", "idle", "tkinter", "ensurepip", "pip", "headers",
                       "compilers"]
VEX_COMPONENTS: tuple[str, ...] = typing.get_args(VexComponent)


class VexRule(FrozenModel):
    """An advisory whose vulnerable code lives only in ``component``: an image the build left
    without it is ``not_affected`` (its OpenVEX attestation says so, with the reason)."""

    advisory: str = Field(min_length=1, description="e.g. CVE-2025-1234 or GHSA-xxxx-xxxx-xxxx")
    component: VexComponent = Field(
        description="cpython-tests (Lib/test), idle (idlelib), tkinter, ensurepip (its bundled "
        "pip wheel), pip, headers (Python.h), compilers (the C toolchain: gcc, cc, g++, cc1, ld, "
        "as; the statement names the packages of gcc's and binutils' sources the image ships, "
        "e.g. libgcc-s1)")
    reason: str = Field(
        min_length=10, description="Where in the component the flaw is (the VEX impact "
        "statement, at least 10 characters)")


class Scan(FrozenModel):
    """`orchestrator scan`: grype on every published image, per platform, with a pinned DB."""

    db: ScanDb
    max_age_days: int = Field(
        5, ge=1, le=365, description="A DB built longer ago than this is refused (grype's "
        "default is 5 days)")
    fail_on: Severity = Field(
        "critical", description="The gate: a fixable finding at or above this severity fails "
        "the scan (exit 1)")
    ignore: tuple[IgnoreRule, ...] = ()
    vex: tuple[VexRule, ...] = Field(
        (), description="Advisories that concern one component a build may leave out: the "
        "OpenVEX attestation of every image whose smoke test found that component absent says "
        "not_affected (supplychain/vex.py), and the scanner reads it back")


# --------------------------------------------------------------------------- perf:

# The pyperf workloads the orchestrator ships (orchestrator/perf/workloads/<name>.py, each
# module's NAME); tests/unit/test_perf.py checks the two agree.
Workload = Literal["dict_str", "generators", "json_roundtrip", "nbody", "regex_log", "scheduler"]
WORKLOADS: tuple[str, ...] = typing.get_args(Workload)


class Perf(FrozenModel):
    """A performance record per image and the gate on it (orchestrator/perf/,
    release/perf.py): before the push, the candidate and the image its first public tag holds
    run the same pyperf workloads in interleaved rounds on the build host's native platform;
    the figures are attested beside the SBOM; a candidate slower than ``max_slowdown`` times
    the published one is not pushed. Checks: config/checks/perf.py."""

    enabled: bool = Field(
        False, description="Measure every image before it is pushed (adds minutes per image: "
        "off by default)")
    rounds: int = Field(
        3, ge=2, le=20, description="Interleaved rounds: each runs the candidate and the "
        "published image once, alternating which goes first")
    processes: int = Field(
        2, ge=1, le=20, description="pyperf worker processes per workload and run "
        "(pyperf --processes)")
    values: int = Field(
        3, ge=1, le=50, description="Timed values per worker process (pyperf --values)")
    max_slowdown: float = Field(
        1.05, description="Refuse a candidate whose geometric mean over the workloads of "
        "candidate median / published median is above this (1.05: more than 5 % slower); "
        "keep it above the noise the records show")
    workloads: tuple[Workload, ...] = Field(
        (), description="The workloads to run (default: all of them): dict_str, generators, "
        "json_roundtrip, nbody, regex_log, scheduler")

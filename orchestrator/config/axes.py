"""The matrix's axes in images.yaml: the methods, variants and platforms (the Literal types
the rest of the package uses), the distros with their packages, the pythons, the variants'
budgets and the include/exclude cell rules. ``matrix`` expands them into cells."""

from __future__ import annotations

import datetime as dt
import typing
from typing import Literal

from pydantic import Field

from orchestrator.config.base import FrozenModel

Method = Literal["source", "python-build", "deadsnakes"]
VariantName = Literal["runtime", "dev", "minimal"]
Platform = Literal["linux/amd64", "linux/arm64"]
PLATFORMS: tuple[str, ...] = typing.get_args(Platform)
METHODS: tuple[str, ...] = typing.get_args(Method)
VARIANTS: tuple[str, ...] = typing.get_args(VariantName)
# What a minimal image carries beside the libraries its tree links: these data packages of
# runtime-base, whole (validation wants them in packages.runtime; planning adds the optional
# ones runtime-base has).
MINIMAL_DATA_PACKAGES = ("ca-certificates", "tzdata")


class Packages(FrozenModel):
    runtime: tuple[str, ...] = Field(description="Shared libraries and files every image needs")
    runtime_for_python: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description='Extra runtime packages only images of one Python minor need, e.g. '
        '{"3.12": [libnsl2]} for the nis module (removed in 3.13)',
    )
    build: tuple[str, ...] = Field(description="Compilers and -dev packages for building CPython")
    dev: tuple[str, ...] = Field(description="What the dev variant adds for building wheels")


class Distro(FrozenModel):
    family: Literal["debian", "ubuntu"]
    release: str = Field(description='Release number, e.g. "12" or "24.04"')
    image: str = Field(description="Base image reference without registry, e.g. debian:bookworm-slim")
    eol: dt.date | None = Field(None, description="End of support; default: the built-in table")
    methods: tuple[Method, ...] = Field(min_length=1)
    system_python: str | None = Field(
        None, description="The minor the distro itself ships (the PPA does not publish it)"
    )
    packages: Packages
    platforms: tuple[Platform, ...] | None = Field(
        None, min_length=1,
        description="Platforms of this distro's images; default: the top-level platforms",
    )


class PythonEntry(FrozenModel):
    version: str = Field(description='"3.13" (newest patch, resolved by lock) or "3.13.5" (pinned)')
    configure_opts: tuple[str, ...] = ()
    freethreaded: bool = Field(
        False,
        description="Also build the free-threaded interpreter (configure --disable-gil, python3.Xt; "
        "3.13+, methods source and python-build): cells and tags <minor>t, e.g. 3.13t-runtime, "
        "each a compile of its own, installed to /opt/<org>/python/3.13t",
    )
    unsigned: str | None = Field(
        None,
        description="Why this Python's source tarball may be locked and built without its "
        "OpenPGP signature (.asc): releases before 3.14 are PGP-signed and images.lock must "
        "pin the signature and the release manager's key, unless this says why not, e.g. "
        '"the mirror withdrew the .asc: the release key expired". Shown as a warning by plan '
        "and validate; not for 3.14+, which have no .asc (Sigstore only, PEP 761)",
    )


class Variant(FrozenModel):
    """runtime and dev (FROM runtime); minimal: FROM scratch, the tree and the files of the
    libraries it links, no shell and no package manager (not for deadsnakes cells)."""

    size_budget_mb: int = Field(gt=0, description="Uncompressed image size budget (MB)")


class CellRule(FrozenModel):
    distro: str | None = None
    python: str | None = None
    method: Method | None = None
    variant: VariantName | None = None

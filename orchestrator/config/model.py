"""images.yaml as a whole: ``ImagesConfig`` (the top-level model, its plain fields and the
runtime user) and ``Loaded``, a validated file; ``loader`` reads and validates a file into
them. Each section's models live in a module of their own: ``axes`` (the Literal types,
distros, pythons, variants, cell rules), ``tags``, ``build`` (and the profiles), ``sources``,
``publish`` (and signing, scan, perf). Leaves: they import no loader, check or planner."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from packaging.version import Version
from pydantic import Field

from orchestrator.config.axes import CellRule, Distro, Platform, PythonEntry, Variant, VariantName
from orchestrator.config.base import NAME_RE, FrozenModel
from orchestrator.config.build import Build, Profile
from orchestrator.config.publish import Perf, Publish, Scan, Signing
from orchestrator.config.sources import Sources
from orchestrator.config.tags import Tags
from orchestrator.config.yamlsafe import Path_, line

__all__ = ["VERSION_RE", "ImagesConfig", "Loaded", "User", "minor_of"]

VERSION_RE = re.compile(r"^3\.\d{1,2}(\.\d{1,3})?$")


class User(FrozenModel):
    name: str = Field("app", pattern=NAME_RE)
    uid: int = Field(10001, ge=0, description="Must not be 0: runtime images run as non-root")
    gid: int = Field(10001, ge=0)
    home: str = "/home/app"


class ImagesConfig(FrozenModel):
    schema_version: Literal[1]
    publish: Publish
    sources: Sources = Sources()
    distros: dict[Annotated[str, Field(pattern=NAME_RE)], Distro] = Field(min_length=1)
    pythons: tuple[PythonEntry, ...] = Field(min_length=1)
    max_pythons: int = Field(3, ge=1, description="add-python refuses to go beyond this")
    variants: dict[VariantName, Variant]
    include: tuple[CellRule, ...] = ()
    exclude: tuple[CellRule, ...] = ()
    tags: Tags
    platforms: tuple[Platform, ...] = Field(
        ("linux/amd64",), min_length=1,
        description="Platforms every image is built for; each tag is one OCI index listing them",
    )
    # Mutable defaults go through Field(default): pydantic copies them for each instance and the
    # schema shows them (default_factory would hide them there); a bare {} trips ruff's RUF012,
    # which does not see that FrozenModel is a pydantic model.
    profiles: dict[str, Profile] = Field({
        "release": Profile(pgo=True, lto=True, frame_pointers=True),
        # the test package and test C modules are neither built nor installed (prep would
        # delete them): less to compile and to byte-compile three times in `make install`.
        # release keeps them: PGO's training run uses the test suite.
        "fast": Profile(pgo=False, lto=False, configure_opts=("--disable-test-modules",)),
    })
    default_profile: str = "release"
    build: Build = Build()
    runtime_user: User = User()
    env: dict[str, str] = Field({})
    labels: dict[str, str] = Field({})
    ca_certificates: tuple[str, ...] = Field(
        (), description="Extra CA certificates (PEM files, relative to images.yaml) to trust"
    )
    dev_tools: tuple[str, ...] = Field(
        ("build==1.3.0", "wheel==0.45.1", "auditwheel==6.4.2"),
        description="pip requirements the dev variant installs (pin them)",
    )
    signing: Signing | None = Field(
        None, description="Sign pushed images and attest their SBOM and provenance with cosign",
    )
    scan: Scan | None = Field(
        None, description="`orchestrator scan`: grype on every published image with a pinned "
        "vulnerability DB, and the severity that fails it",
    )
    perf: Perf = Field(
        Perf(), description="A performance record per image (pyperf workloads, candidate against "
        "the published image) attested beside the SBOM, and the gate that refuses a slower one",
    )

    def python(self, minor: str) -> PythonEntry:
        for p in self.pythons:
            if minor_of(p.version) == minor:
                return p
        raise KeyError(minor)


def minor_of(version: str) -> str:
    v = Version(version)
    return f"{v.major}.{v.minor}"



@dataclass(frozen=True)
class Loaded:
    """A validated images.yaml: the model plus where it came from and what to warn about."""

    config: ImagesConfig
    path: Path
    warnings: tuple[str, ...] = ()
    lines: dict[Path_, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def output_dir(self) -> Path:
        return self.root / self.config.build.output_dir

    def line(self, path: Path_) -> int | None:
        return line(self.lines, path)

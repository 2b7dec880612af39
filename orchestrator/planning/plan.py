"""The plan: pure data, built before any side effect; printable as a table and as JSON.

It owns how each cell is built, decided from images.yaml and images.lock alone: the profile,
the platforms and the architectures cross-compiled for, the install prefix, the CPython
version, frozen modules, PIE and the optimizations each platform gets. render reads them here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from orchestrator import naming, table
from orchestrator.config import eol, matrix
from orchestrator.config.axes import MINIMAL_DATA_PACKAGES
from orchestrator.config.build import TAIL_CALL_MINOR, Profile
from orchestrator.config.matrix import Cell
from orchestrator.config.model import ImagesConfig, Loaded
from orchestrator.errors import UsageError
from orchestrator.lock.lockfile import Lock
from orchestrator.planning import build_cache
from orchestrator.planning.build_cache import DEFAULT_OPTIONS, NO_CACHE, CacheOptions, CellCache


@dataclass(frozen=True)
class PlannedImage:
    id: str
    distro: str
    python: str  # the matrix minor: 3.13, or 3.13t for the free-threaded build
    version: str  # the CPython version (3.13.15 for 3.13t too)
    method: str
    variant: str  # runtime | dev | minimal (FROM scratch, no shell)
    target: str
    bake_target: str
    dockerfile: str
    build: str | None  # id of the CPython build it uses (None: deadsnakes, no compile)
    base: str
    repository: str
    tags: tuple[str, ...]
    immutable_tag: str
    # The immutable tag of a same-day re-release with new content, "{n}" for its number
    # (publish takes the first free one): <date> becomes <date>.<n>.
    immutable_revision: str
    depends_on: str | None  # dev images depend on their runtime stage
    size_budget_mb: int
    python_eol_days: int | None
    distro_eol_days: int | None
    # Stdlib modules frozen into the interpreter beyond CPython's own (build.freeze_modules;
    # source builds only): the smoke tests check they really load frozen.
    frozen_modules: tuple[str, ...] = ()
    pie: bool | None = None  # build.pie; None: not our compile (deadsnakes)
    cache: CellCache = NO_CACHE  # registry build cache refs (build.cache, --cache-*)
    # Platforms of this image (one OCI index per tag); the first is the native one.
    platforms: tuple[str, ...] = ("linux/amd64",)
    # What the compile of each platform was built with (label .optimizations): cross builds
    # cannot run PGO.
    optimizations: dict[str, str] | None = None
    freethreaded: bool = False  # configure --disable-gil: python3.Xt, sys._is_gil_enabled() False

    @property
    def cell(self) -> Cell:
        return Cell(self.python, self.method, self.distro, self.variant)

    @property
    def base_minor(self) -> str:
        """The CPython minor (3.13 for 3.13t)."""
        return matrix.base_minor(self.python)

    @property
    def has_shell(self) -> bool:
        """False for a minimal image: checks and label reads run python (its entrypoint) or
        read files through the engine's archive API."""
        return self.variant != "minimal"


@dataclass(frozen=True)
class PlannedBuild:
    id: str  # e.g. bookworm/python-3.13-source
    distro: str
    python: str
    version: str
    method: str
    images: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    config: str
    profile: str
    date: str
    shard: str
    images: tuple[PlannedImage, ...]
    builds: tuple[PlannedBuild, ...]

    def image(self, image_id: str) -> PlannedImage:
        return next(i for i in self.images if i.id == image_id)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def table(self) -> str:
        rows = [("ID", "VERSION", "BUILD", "PLATFORMS", "TAGS", "EOL(days)")]
        for i in self.images:
            eol_days = min(d for d in (i.python_eol_days, i.distro_eol_days, 10**6) if d is not None)
            tags = ", ".join(i.tags[:2]) + (f" (+{len(i.tags) - 2})" if len(i.tags) > 2 else "")
            plats = ",".join(p.removeprefix("linux/") for p in i.platforms)
            rows.append((i.id, i.version, i.build or "-", plats, tags,
                         str(eol_days) if eol_days < 10**6 else "?"))
        lines = table.columns(rows)
        flavours = [f"{n} {what}" for n, what in (
            (sum(i.variant == "minimal" for i in self.images), "minimal"),
            (sum(i.freethreaded for i in self.images), "free-threaded")) if n]
        lines.append(f"{len(self.images)} images{' (' + ', '.join(flavours) + ')' if flavours else ''}, "
                     f"{len(self.builds)} CPython builds, profile {self.profile}, shard {self.shard}")
        return "\n".join(lines) + "\n"


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return (1, 1)
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text}: expected I/N, e.g. 2/4") from None
    if not 1 <= i <= n:
        raise UsageError(f"--shard {text}: I must be between 1 and N")
    return (i, n)


def build(
    loaded: Loaded,
    lock: Lock,
    *,
    only: list[str] | None = None,
    profile: str | None = None,
    today: dt.date,
    shard: str | None = None,
    ci: bool = False,
    cache: CacheOptions = DEFAULT_OPTIONS,
) -> Plan:
    config = loaded.config
    profile_name = profile or config.default_profile
    profile_of(config, profile_name)
    all_cells = matrix.expand(config)
    cells = matrix.select(all_cells, only)
    # Dev images need their runtime stage (built implicitly as part of the dev target).
    shard_i, shard_n = parse_shard(shard)
    # Shard by CPython build so that one compile never happens on two runners.
    groups = sorted({_group(c) for c in cells})
    mine = {g for k, g in enumerate(groups) if k % shard_n == shard_i - 1}
    cells = [c for c in cells if _group(c) in mine]
    repo = naming.repository_ref(config.publish.registry, config.publish.repository)
    images = []
    builds: dict[str, list[str]] = {}
    for c in cells:
        version = image_version(lock, c)
        moving, immutable = matrix.tags_for(config, c, version, today, all_cells)
        build_ids = _build_ids(config, c)
        for b in build_ids:
            builds.setdefault(b, []).append(c.id)
        bid = build_ids[0] if build_ids else None
        runtime_id = Cell(c.minor, c.method, c.distro, "runtime").id
        images.append(PlannedImage(
            id=c.id, distro=c.distro, python=c.minor, version=version, method=c.method,
            variant=c.variant, target=c.target, bake_target=naming.bake_target(c.id),
            dockerfile=f"{config.build.output_dir}/{naming.dockerfile_path(c.distro)}", build=bid,
            base=lock.base(c.distro).pinned, repository=repo, tags=tuple(moving),
            immutable_tag=immutable,
            immutable_revision=matrix.immutable_revision(config, c, version, today),
            depends_on=runtime_id if c.variant == "dev" and any(x.id == runtime_id for x in cells)
            else None,
            size_budget_mb=config.variants[c.variant].size_budget_mb,  # type: ignore[index]
            python_eol_days=eol.days_left(eol.python_eol(c.base_minor), today),
            distro_eol_days=eol.days_left(
                config.distros[c.distro].eol or eol.DISTRO_EOL.get(c.distro), today),
            frozen_modules=frozen_modules_for(config, c), pie=pie_for(config, c),
            cache=build_cache.for_cell(config, c.id, c.distro, profile_name, ci=ci, options=cache),
            platforms=platforms_for(config, c),
            optimizations=optimizations_for(config, c, profile_name),
            freethreaded=c.freethreaded,
        ))
    by_id = {i.id: i for i in images}
    planned_builds = tuple(
        PlannedBuild(bid, first.distro, first.python, first.version, first.method, tuple(ids))
        for bid, ids in sorted(builds.items())
        for first in [by_id[ids[0]]]
    )
    return Plan(str(loaded.path), profile_name, today.isoformat(), f"{shard_i}/{shard_n}",
                tuple(images), planned_builds)


def _build_ids(config: ImagesConfig, c: Cell) -> list[str]:
    """The CPython builds a cell uses: its native compile first, then a cross compile for
    each other platform (a build of its own: its own stage); none for deadsnakes."""
    if not c.compiles:
        return []
    return [naming.stage_id(c.distro, c.stages.compile),
            *(naming.stage_id(c.distro, c.stages.cross(a.name)) for a in cross_arches_for(config, [c]))]


def _group(c: Cell) -> str:
    return f"{c.distro}/{c.stage_suffix}"


# ---- how each cell is built ---------------------------------------------------------------

@dataclass(frozen=True)
class Arch:
    """A target architecture as Debian, the GNU toolchain and readelf name it."""

    name: str  # Debian / OCI architecture: amd64, arm64
    platform: str  # linux/arm64
    triplet: str  # GNU multiarch triplet: aarch64-linux-gnu
    elf_machine: str  # readelf --file-header "Machine:"


ARCHES = {
    "linux/amd64": Arch("amd64", "linux/amd64", "x86_64-linux-gnu", "Advanced Micro Devices X86-64"),
    "linux/arm64": Arch("arm64", "linux/arm64", "aarch64-linux-gnu", "AArch64"),
}


def profile_of(config: ImagesConfig, name: str | None) -> Profile:
    name = name or config.default_profile
    try:
        return config.profiles[name]
    except KeyError:
        raise UsageError(f'--profile {name}: no such profile in images.yaml (profiles:); '
                         f"use one of: {', '.join(config.profiles)}") from None


def frozen_modules_for(config: ImagesConfig, cell: Cell) -> tuple[str, ...]:
    """build.freeze_modules reach only interpreters compiled from source (not pyenv's recipe)."""
    return config.build.freeze_modules if cell.method == "source" else ()


def pie_for(config: ImagesConfig, cell: Cell) -> bool | None:
    """build.pie for interpreters we compile; None for deadsnakes (the PPA's own binary)."""
    return config.build.pie if cell.compiles else None


def platforms_for(config: ImagesConfig, cell: Cell) -> tuple[str, ...]:
    """The platforms a cell's images are built for: the distro's (or the top-level) platforms;
    python-build cannot cross-compile, so its cells get only the native platform."""
    native = config.build.native_platform
    plats = config.distros[cell.distro].platforms or config.platforms
    if cell.method == "python-build":  # validation refuses a distro without the native one
        return tuple(p for p in plats if p == native)
    # the native platform first: reports, size budgets and package diffs read it
    return tuple(sorted(plats, key=lambda p: (p != native, p)))


def optimizations_for(config: ImagesConfig, cell: Cell, profile: str) -> dict[str, str] | None:
    """{platform: "pgo+lto" | "lto" | "pgo" | "none"} of a compiled cell under ``profile``:
    cross-compiled platforms cannot run PGO (it runs the target). A clang profile's native
    compile (method source) says "clang+" and what it got: pgo, thinlto, bolt, tail-call,
    jit-yes-off (clang_options_for). None: not our compile."""
    if not cell.compiles:
        return None
    prof = profile_of(config, profile)
    out = {}
    for plat in platforms_for(config, cell):
        native = plat == config.build.native_platform
        pgo = prof.pgo and native
        if native and cell.method == "source" and prof.toolchain == "clang":
            opts = clang_options_for(prof, cell)
            out[plat] = "+".join(["clang", *(["pgo"] if pgo else []),
                                  *(["thinlto"] if prof.lto else []), *opts])
            continue
        out[plat] = "+".join(x for x, on in (("pgo", pgo), ("lto", prof.lto)) if on) or "none"
    return out


def clang_options_for(prof: Profile, cell: Cell) -> list[str]:
    """What a clang profile's options give the native compile of ``cell``: bolt; tail-call and
    jit-yes-off on CPython 3.14+ only (the JIT not on the free-threaded build)."""
    if prof.toolchain != "clang" or cell.method != "source":
        return []
    new = matrix.minor_key(cell.base_minor)[:2] >= TAIL_CALL_MINOR
    return [x for x, on in (("bolt", prof.bolt), ("tail-call", prof.tail_call and new),
                            ("jit-yes-off", prof.jit == "yes-off" and new and not cell.freethreaded))
            if on]


def cross_arches_for(config: ImagesConfig, cells: Iterable[Cell]) -> tuple[Arch, ...]:
    """Architectures CPython is cross-compiled for, among ``cells`` (method source only)."""
    native = config.build.native_platform
    plats = {p for c in cells if c.method == "source" for p in platforms_for(config, c)}
    return tuple(ARCHES[p] for p in sorted(plats) if p != native)


# Taken into a minimal image beside MINIMAL_DATA_PACKAGES when runtime-base has them.
MINIMAL_OPTIONAL_PACKAGES = ("netbase",)  # /etc/services, /etc/protocols


def minimal_packages(config: ImagesConfig, distro: str) -> tuple[str, ...]:
    runtime = config.distros[distro].packages.runtime
    return MINIMAL_DATA_PACKAGES + tuple(p for p in MINIMAL_OPTIONAL_PACKAGES if p in runtime)


def prefix_for(config: ImagesConfig, minor: str) -> str:
    """Where CPython ``minor`` is installed: /opt/org/python/3.13 (3.13t: its own tree)."""
    return f"/opt/{config.publish.org}/python/{minor}"


def image_version(lock: Lock, cell: Cell) -> str:
    """The CPython version an image carries: the locked patch; the PPA's own (X.Y) for deadsnakes."""
    return lock.python(cell.base_minor).version if cell.compiles else cell.minor

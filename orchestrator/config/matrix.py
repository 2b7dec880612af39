"""Matrix expansion: distro x python x method x variant, plus includes, minus excludes."""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orchestrator import naming
from orchestrator.config.model import minor_of
from orchestrator.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from orchestrator.config.axes import CellRule
    from orchestrator.config.model import ImagesConfig, Loaded

# The free-threaded build of a minor is a minor of its own in the matrix: "3.13t" (CPython's
# ABI flag, the name of its interpreter python3.13t and of its lib/python3.13t).
FREETHREADED = "t"


def base_minor(minor: str) -> str:
    """The CPython release line a matrix minor carries: 3.13t -> 3.13."""
    return minor.removesuffix(FREETHREADED)


def is_freethreaded(minor: str) -> bool:
    return minor.endswith(FREETHREADED)


@dataclass(frozen=True, order=True)
class Cell:
    """One image: stable id ``<minor>-<method>-<distro>-<variant>``; ``minor`` is "3.13t" for
    the free-threaded build of 3.13."""

    minor: str
    method: str
    distro: str
    variant: str

    @property
    def id(self) -> str:
        return f"{self.minor}-{self.method}-{self.distro}-{self.variant}"

    @property
    def build_key(self) -> tuple[str, str, str]:
        """What one CPython build (and prep) is shared by: (distro, minor, method)."""
        return (self.distro, self.minor, self.method)

    @property
    def stages(self) -> naming.BuildStages:
        """The stages of its CPython build and of its images."""
        return naming.BuildStages(self.minor, self.method)

    @property
    def stage_suffix(self) -> str:
        return self.stages.suffix

    @property
    def target(self) -> str:
        """The Dockerfile stage that produces this image."""
        return self.stages.image(self.variant)

    @property
    def compiles(self) -> bool:
        return self.method != "deadsnakes"

    @property
    def base_minor(self) -> str:
        """The CPython minor (3.13 for 3.13t): what images.lock, EOL dates and pythons[] know."""
        return base_minor(self.minor)

    @property
    def freethreaded(self) -> bool:
        return is_freethreaded(self.minor)


def _matches(rule: CellRule, distro: str, minor: str, method: str, variant: str | None) -> bool:
    return (
        (rule.distro is None or rule.distro == distro)
        and (rule.python is None or rule.python == minor)
        and (rule.method is None or rule.method == method)
        and (rule.variant is None or variant is None or rule.variant == variant)
    )


def python_minors(config: ImagesConfig) -> list[str]:
    """The matrix's minors: each pythons entry's, then its free-threaded one (3.13, 3.13t)."""
    out = []
    for p in config.pythons:
        out.append(minor_of(p.version))
        if p.freethreaded:
            out.append(minor_of(p.version) + FREETHREADED)
    return out


def expand(config: ImagesConfig) -> list[Cell]:
    """All cells, sorted by (minor, method, distro, variant) for a stable order."""
    minors = python_minors(config)
    variants = list(config.variants)
    cells: set[Cell] = set()
    for distro, d in config.distros.items():
        for minor in minors:
            for method in d.methods:
                for variant in variants:
                    cells.add(Cell(minor, method, distro, variant))
    for rule in config.include:
        assert rule.distro and rule.python and rule.method
        for variant in [rule.variant] if rule.variant else variants:
            cells.add(Cell(rule.python, rule.method, rule.distro, variant))
    cells = {
        c for c in cells
        if not any(_matches(r, c.distro, c.minor, c.method, c.variant) for r in config.exclude)
    }
    return sorted(cells, key=lambda c: (minor_key(c.minor), c.method, c.distro, c.variant))


def minor_key(minor: str) -> tuple[int, ...]:
    """Sort key of a Python minor: "3.9" before "3.13", "3.13" before "3.13t"."""
    return (*(int(x) for x in base_minor(minor).split(".")), int(is_freethreaded(minor)))


def select(cells: Iterable[Cell], patterns: Iterable[str] | None) -> list[Cell]:
    """Cells whose id matches any of the --only globs (all cells when none given)."""
    cells = list(cells)
    pats = [p for p in (patterns or []) if p]
    if not pats:
        return cells
    chosen = [c for c in cells if any(fnmatch.fnmatchcase(c.id, p) for p in pats)]
    if not chosen:
        raise UsageError(
            f"--only {' '.join(pats)} matches no cell; ids look like {cells[0].id if cells else '-'}"
            " (orchestrator plan lists them)"
        )
    return chosen


def default_distro(config: ImagesConfig, minor: str) -> str:
    """The distro behind a minor's short tags: tags.defaults[minor] or tags.default_distro."""
    chosen = config.tags.defaults.get(minor)
    return chosen.distro if chosen is not None else config.tags.default_distro


def default_method(config: ImagesConfig, minor: str, cells: list[Cell] | None = None) -> str | None:
    """The method behind a minor's short tags (3.13-runtime) on its default distro.

    tags.defaults[minor].method if set, else tags.default_method when the matrix has it for
    this minor, else the first of the distro's methods that it has (e.g. 3.13 built only with
    python-build).
    """
    distro = default_distro(config, minor)
    have = {c.method for c in (cells if cells is not None else expand(config))
            if c.distro == distro and c.minor == minor}
    chosen = config.tags.defaults.get(minor)
    if chosen is not None and chosen.method is not None:
        return chosen.method if chosen.method in have else None
    if config.tags.default_method in have:
        return config.tags.default_method
    order = list(config.distros[distro].methods) + sorted(have) if distro in config.distros else []
    return next((m for m in order if m in have), None)


def is_default(config: ImagesConfig, cell: Cell, cells: list[Cell] | None = None) -> bool:
    return (cell.distro == default_distro(config, cell.minor)
            and cell.method == default_method(config, cell.minor, cells))


def tags_for(
    config: ImagesConfig, cell: Cell, version: str, date: dt.date, cells: list[Cell] | None = None
) -> tuple[list[str], str]:
    """(moving tags, immutable tag) of a cell built from CPython ``version`` on ``date``."""
    fields = tag_fields(config, cell, version, date)
    moving = [
        t.template.format(**fields)
        for t in config.tags.moving
        if not t.only_default or is_default(config, cell, cells)
    ]
    return list(dict.fromkeys(moving)), config.tags.immutable.format(**fields)


# Stands for the number of a same-day re-release in PlannedImage.immutable_revision; braces
# cannot occur in an OCI tag, so the placeholder is never part of a real tag.
REVISION = "{n}"


def immutable_revision(config: ImagesConfig, cell: Cell, version: str, date: dt.date) -> str:
    """The immutable tag of a re-release on the same day, with REVISION for its number (1, 2...).

    {date} becomes <date>.<n>: 3.13.15.20261121.1-runtime-bookworm keeps the date inside the
    version, where Renovate and Dependabot order it (the template
    {version}-{variant}-{distro}{method}-{date} gives the former 3.13.15-runtime-bookworm-20261121.1).
    """
    fields = tag_fields(config, cell, version, date)
    fields["date"] += "." + REVISION
    return config.tags.immutable.format(**fields)


def revision_tag(immutable_revision: str, n: int) -> str:
    return immutable_revision.replace(REVISION, str(n))


def tag_fields(config: ImagesConfig, cell: Cell, version: str, date: dt.date) -> dict[str, str]:
    """The values of the tag template placeholders ({minor}, {version}, ...) for one cell."""
    suffix = config.tags.method_suffix.get(cell.method, cell.method)  # type: ignore[call-overload]
    return {
        "minor": cell.minor,
        # a free-threaded image's version is pyenv's name for its build: 3.13.15t
        "version": version + FREETHREADED if cell.freethreaded else version,
        "variant": cell.variant,
        "distro": cell.distro,
        "method": f"-{suffix}" if suffix and cell.method != config.tags.default_method else "",
        "date": date.strftime(config.tags.date_format),
    }


def _nominal_version(config: ImagesConfig, minor: str) -> str:
    minor = base_minor(minor)
    for p in config.pythons:
        if minor_of(p.version) == minor:
            return p.version if p.version.count(".") == 2 else f"{minor}.0"
    return f"{minor}.0"


def check(loaded: Loaded) -> None:
    """Matrix-level validation: deadsnakes coverage, empty matrix, tag collisions."""
    config, file = loaded.config, str(loaded.path)
    cells = expand(config)
    for c in cells:
        d = config.distros[c.distro]
        if c.method == "deadsnakes" and d.family != "ubuntu":
            raise ConfigError(file, "include", f"deadsnakes is an Ubuntu PPA and {c.distro} is "
                              f"{d.family}", "use source or python-build", loaded.line(("include",)))
        if c.method == "deadsnakes":
            _check_deadsnakes_flavours(loaded, c)
        if c.method == "deadsnakes" and d.system_python == c.minor:
            raise ConfigError(
                file, f"distros.{c.distro}.methods",
                f"the deadsnakes PPA does not publish Python {c.minor} for {c.distro} "
                f"(Ubuntu {d.release} ships {c.minor} itself)",
                f'add exclude: [{{distro: {c.distro}, python: "{c.minor}", method: deadsnakes}}] '
                "and use method source or python-build for it (or the distro's python3 package)",
                loaded.line(("distros", c.distro, "methods")),
            )
    if not cells:
        raise ConfigError(file, "exclude", "the matrix is empty: every cell is excluded",
                          "remove an exclude rule or add a distro/python", loaded.line(("exclude",)))
    owner: dict[str, Cell] = {}
    date = dt.date(2000, 1, 1)
    for c in cells:
        moving, immutable = tags_for(config, c, _nominal_version(config, c.minor), date, cells)
        for tag in [*moving, immutable]:
            other = owner.get(tag)
            if other is not None and other != c:
                raise ConfigError(
                    file, "tags", f'cells {other.id} and {c.id} both produce the tag "{tag}"',
                    "make the templates include {distro}, {method} and {variant}, "
                    "or give the methods distinct method_suffix values",
                    loaded.line(("tags",)),
                )
            owner[tag] = c


def _check_deadsnakes_flavours(loaded: Loaded, c: Cell) -> None:
    """Neither flavour is built from the PPA: minimal copies the CPython tree stage, which a
    deadsnakes image does not have, and the PPA's free-threaded packages are not what the
    deadsnakes method installs or checks."""
    file = str(loaded.path)
    if c.freethreaded:
        i = next(i for i, p in enumerate(loaded.config.pythons) if minor_of(p.version) == c.base_minor)
        raise ConfigError(
            file, f"pythons[{i}].freethreaded",
            f"{c.id}: the deadsnakes PPA ships its free-threaded build as python{c.base_minor}-nogil, "
            f"a second interpreter beside python{c.base_minor} in /usr (deadsnakes/action --nogil); "
            "the deadsnakes method installs and smoke-tests only python3.X, and the e2e test PPA "
            "carries no -nogil package to check it against",
            f'add exclude: [{{python: "{c.minor}", method: deadsnakes}}] '
            "(method source or python-build builds it)",
            loaded.line(("pythons", i, "freethreaded")))
    if c.variant == "minimal":
        raise ConfigError(
            file, "variants.minimal",
            f"{c.id}: a minimal image is FROM scratch plus the CPython tree stage that runtime and "
            "dev copy; a deadsnakes image has no such tree (the PPA's packages install into /usr "
            "of the runtime image, by maintainer scripts that need a shell)",
            "add exclude: [{method: deadsnakes, variant: minimal}] (minimal images are built by "
            "method source or python-build)",
            loaded.line(("variants", "minimal")))


def warnings(loaded: Loaded) -> list[str]:
    config = loaded.config
    cells = expand(config)
    out = []
    for minor in python_minors(config):
        if not any(c.minor == minor and is_default(config, c, cells) for c in cells):
            out.append(
                f"pythons: {minor} has no cell on the default distro/method "
                f"({default_distro(config, minor)}/{config.tags.default_method}); "
                f"its short tags (e.g. {minor}-runtime) will not be published; "
                f'set tags.defaults: {{"{minor}": {{distro: ..., method: ...}}}} to a distro that has it'
            )
    return out

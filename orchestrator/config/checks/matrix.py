"""Matrix-level checks of images.yaml: the tags the templates produce are valid OCI tags,
max_pythons holds; include/exclude rules that do nothing, and an immutable tag that update bots
cannot order, are warned about; and the expansion's own check and warnings (config/matrix.py),
so that semantic reaches every matrix-level check through this module."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

from orchestrator import naming
from orchestrator.config import grammar, matrix
from orchestrator.config.axes import MINIMAL_DATA_PACKAGES
from orchestrator.config.matrix import Cell
from orchestrator.config.yamlsafe import Path_, Problems, fmt

if TYPE_CHECKING:
    from orchestrator.config.axes import CellRule
    from orchestrator.config.model import ImagesConfig, Loaded

# A date whose every strftime field is as wide as it gets (two-digit month, day, hour...).
_SAMPLE_DATE = dt.datetime(2026, 12, 31, 23, 59, 59)


def check(loaded: Loaded, report: Problems) -> None:
    """Every matrix-level problem into ``report``; the tags of each cell only when the settings
    they come from have none; when none is found, the expansion's own check (matrix.check:
    deadsnakes coverage, an empty matrix, two cells with one tag), which raises the first."""
    c, before = loaded.config, len(report.problems)
    if not c.variants:
        report(("variants",), "no variant is listed, so the matrix is empty",
               "add runtime (and dev), e.g. variants: {runtime: {size_budget_mb: 160}}")
    if len(c.pythons) > c.max_pythons:
        report(("pythons",), f"{len(c.pythons)} Pythons are listed but max_pythons is {c.max_pythons}",
               "retire one (orchestrator retire-python X.Y) or raise max_pythons")
    for method, suffix in c.tags.method_suffix.items():
        if not grammar.TAG_PART.fullmatch(suffix):
            report(("tags", "method_suffix", method), f'"{suffix}" cannot be part of a tag',
                   "use letters, digits, '.', '_' and '-' only")
    try:
        sample = _SAMPLE_DATE.strftime(c.tags.date_format)
    except ValueError as exc:
        sample, why = "", str(exc)
    else:
        why = f'gives "{sample}"'
    if not sample or not grammar.TAG_PART.fullmatch(sample):
        report(("tags", "date_format"), f'"{c.tags.date_format}" {why}, which cannot be part of a tag',
               'use strftime fields joined by letters, digits, ".", "_", "-", e.g. "%Y%m%d"')
    if len(report.problems) > before:
        return
    _template_tags(loaded, report)
    _minimal_packages(loaded, report)
    if len(report.problems) == before:
        matrix.check(loaded)


def _minimal_packages(loaded: Loaded, report: Problems) -> None:
    c = loaded.config
    distros = sorted({cell.distro for cell in matrix.expand(c) if cell.variant == "minimal"})
    for name in distros:
        runtime = c.distros[name].packages.runtime
        missing = [p for p in MINIMAL_DATA_PACKAGES if p not in runtime]
        if missing:
            path: Path_ = ("distros", name, "packages", "runtime")
            report(path, f"{name} has minimal images, which copy the CA bundle and the time zone "
                   f"database from runtime-base, but it does not install {', '.join(missing)}",
                   f"add {', '.join(missing)} to {fmt(path)}")


def _template_tags(loaded: Loaded, report: Problems) -> None:
    """Each template, filled in for every cell (with a two-digit patch), must give OCI tags,
    none of them one of the push's internal staging tags (naming.staging_tag)."""
    c = loaded.config
    cells = matrix.expand(c)
    templates: list[tuple[Path_, str, bool]] = [
        (("tags", "moving", i, "template"), t.template, t.only_default) for i, t in enumerate(c.tags.moving)
    ]
    templates.append((("tags", "immutable"), c.tags.immutable, False))
    for path, template, only_default in templates:
        for cell in cells:
            if only_default and not matrix.is_default(c, cell, cells):
                continue
            version, date = f"{cell.base_minor}.99", _SAMPLE_DATE.date()
            tag = template.format(**matrix.tag_fields(c, cell, version, date))
            if path == ("tags", "immutable"):  # its same-day re-releases too (publish stops at 99)
                revision = matrix.revision_tag(matrix.immutable_revision(c, cell, version, date), 99)
                tag = revision if grammar.oci_tag(tag) is None else tag
            bad = grammar.oci_tag(tag)
            if bad is None and naming.is_staging_tag(tag):
                bad = (f'"{tag}" starts with "{naming.STAGING_PREFIX}", the prefix of the '
                       "internal tags a push stages images under before they may be published",
                       'start the template with something else, e.g. "{minor}"')
            if bad:
                report(path, f"for {cell.id}: {bad[0]}", bad[1])
                break


def tag_warnings(loaded: Loaded, report: Problems) -> None:
    """The immutable tag must carry the build date inside its leading version (numbers and dots).

    Renovate's docker versioning and Dependabot read a tag as <numbers>[-<suffix>] and only
    propose tags with the same suffix: a date after the first "-" makes every build of a cell a
    different suffix, so a pinned immutable tag would never be updated.
    """
    c = loaded.config
    cells = matrix.expand(c)
    if not cells:
        return
    # a GIL build's tag if there is one (a free-threaded version ends in "t": 3.13.99t)
    cell, date = next((x for x in cells if not x.freethreaded), cells[0]), _SAMPLE_DATE.date()
    tag = c.tags.immutable.format(**matrix.tag_fields(c, cell, f"{cell.base_minor}.99", date))
    head = tag.partition("-")[0]
    if re.fullmatch(r"[0-9]+(?:\.[0-9]+)*", head) and date.strftime(c.tags.date_format) in head:
        return
    report.warn(("tags", "immutable"), f'"{tag}" does not start with the version and the date '
                '(numbers and dots before the first "-"): Renovate and Dependabot read the rest as '
                "a suffix, so pins of it never get updates; "
                'use "{version}.{date}-{variant}-{distro}{method}" and a date_format of digits')


def _added_by(rule: CellRule, c: ImagesConfig) -> set[Cell]:
    assert rule.distro and rule.python and rule.method
    variants = [rule.variant] if rule.variant else list(c.variants)
    return {Cell(rule.python, rule.method, rule.distro, v) for v in variants}


def warnings(loaded: Loaded, report: Problems) -> None:
    """The expansion's warnings (matrix.warnings: a minor without a default cell); include rules
    that add nothing or are excluded again; exclude rules that match nothing."""
    for w in matrix.warnings(loaded):
        report.warnings.append(f"{report.file}: {w}")
    c = loaded.config
    minors = matrix.python_minors(c)
    product = {Cell(m, meth, name, v) for name, d in c.distros.items() for m in minors
               for meth in d.methods for v in c.variants}
    everything = set(product)
    for i, rule in enumerate(c.include):
        added = _added_by(rule, c)
        everything |= added
        if added <= product:
            report.warn(("include", i), f"adds no cell ({rule.distro}/{rule.python}/{rule.method} "
                        "is in the matrix already); remove it")
            continue
        for j, ex in enumerate(c.exclude):
            if all(_matches(ex, cell) for cell in added - product):
                report.warnings.append(f"{report.file}: include[{i}] and exclude[{j}] cancel each "
                                       "other (every cell the include adds is excluded); remove "
                                       "both or narrow the exclude")
                break
    for j, ex in enumerate(c.exclude):
        if not any(_matches(ex, cell) for cell in everything):
            report.warn(("exclude", j), "matches no cell; remove it or fix its "
                        "distro/python/method/variant")


def _matches(rule: CellRule, cell: Cell) -> bool:
    return all(want is None or want == have for want, have in (
        (rule.distro, cell.distro), (rule.python, cell.minor), (rule.method, cell.method),
        (rule.variant, cell.variant)))

"""Matrix expansion, include/exclude, stable ids, --only selection and tags."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

from orchestrator.config import loader, matrix
from orchestrator.config.matrix import Cell
from orchestrator.config.model import ImagesConfig, Loaded
from orchestrator.errors import ExitCode, UsageError
from orchestrator.lock.lockfile import Lock
from tests.unit.helpers import TODAY, edit, run_cli, write_config


def _load(tmp_path: Path, text: str, today: dt.date = TODAY) -> ImagesConfig:
    return loader.load(write_config(tmp_path, text), today=today).config


def _ids(cells: list[Cell]) -> list[str]:
    return [c.id for c in cells]


# --------------------------------------------------------------------------- expansion


def test_repo_matrix_has_30_cells(repo_loaded: Loaded) -> None:
    cells = matrix.expand(repo_loaded.config)
    assert len(cells) == 30
    assert len(set(cells)) == 30
    # 4 distros x 3 pythons x source x 2 variants = 24, + noble deadsnakes (3.13, 3.14) x 2 = 4,
    # + the python-build include (bookworm 3.13) x 2 = 2; noble 3.12 deadsnakes is excluded.
    assert sum(c.method == "source" for c in cells) == 24
    assert sorted(c.id for c in cells if c.method != "source") == [
        "3.13-deadsnakes-noble-dev",
        "3.13-deadsnakes-noble-runtime",
        "3.13-python-build-bookworm-dev",
        "3.13-python-build-bookworm-runtime",
        "3.14-deadsnakes-noble-dev",
        "3.14-deadsnakes-noble-runtime",
    ]


def test_minimal_matrix(minimal_path: Path) -> None:
    cells = matrix.expand(loader.load(minimal_path, today=TODAY).config)
    assert _ids(cells) == [
        "3.12-source-bookworm-dev",
        "3.12-source-bookworm-runtime",
        "3.12-source-noble-dev",
        "3.12-source-noble-runtime",
        "3.13-deadsnakes-noble-dev",
        "3.13-deadsnakes-noble-runtime",
        "3.13-python-build-bookworm-dev",
        "3.13-python-build-bookworm-runtime",
        "3.13-source-bookworm-dev",
        "3.13-source-bookworm-runtime",
        "3.13-source-noble-dev",
        "3.13-source-noble-runtime",
    ]


def test_cell_id_and_stage_names() -> None:
    cell = Cell("3.13", "python-build", "bookworm", "dev")
    assert cell.id == "3.13-python-build-bookworm-dev"
    assert cell.target == "dev-3.13-python-build"
    assert cell.stage_suffix == "3.13-python-build"
    assert cell.build_key == ("bookworm", "3.13", "python-build")
    assert cell.compiles
    assert not Cell("3.13", "deadsnakes", "noble", "runtime").compiles


def test_ids_sorted_numerically_by_minor(tmp_path: Path, minimal_text: str) -> None:
    # 3.9 < 3.10 numerically but not as strings; both still supported on 2025-01-01.
    text = edit(minimal_text, '  - version: "3.12"\n  - version: "3.13"\n',
                '  - version: "3.10"\n  - version: "3.9"\n')
    text = edit(text, 'python: "3.13", method: python-build', 'python: "3.10", method: python-build')
    text = edit(text, '- {distro: noble, python: "3.12", method: deadsnakes}',
                "- {distro: noble, method: deadsnakes}")
    cells = matrix.expand(_load(tmp_path, text, today=dt.date(2025, 1, 1)))
    minors = [c.minor for c in cells]
    assert minors == sorted(minors, key=lambda m: tuple(int(x) for x in m.split(".")))
    assert minors[0] == "3.9"
    assert minors[-1] == "3.10"


def test_expansion_is_stable_whatever_the_yaml_order(tmp_path: Path, minimal_text: str) -> None:
    reference = _ids(matrix.expand(_load(tmp_path, minimal_text)))
    swapped = edit(minimal_text, '  - version: "3.12"\n  - version: "3.13"\n',
                   '  - version: "3.13"\n  - version: "3.12"\n')
    swapped = edit(swapped, "  dev: {size_budget_mb: 520}\n", "")
    swapped = edit(swapped, "  runtime: {size_budget_mb: 160}\n",
                   "  dev: {size_budget_mb: 520}\n  runtime: {size_budget_mb: 160}\n")
    assert _ids(matrix.expand(_load(tmp_path, swapped))) == reference


def test_sorted_order_is_minor_method_distro_variant(repo_loaded: Loaded) -> None:
    cells = matrix.expand(repo_loaded.config)
    shuffled = list(cells)
    random.Random(4).shuffle(shuffled)
    assert sorted(shuffled) == cells  # Cell orders by (minor, method, distro, variant)


def test_include_adds_every_variant_unless_one_is_named(tmp_path: Path, minimal_text: str) -> None:
    cfg = _load(tmp_path, minimal_text)
    pybuild = [c.id for c in matrix.expand(cfg) if c.method == "python-build"]
    assert pybuild == ["3.13-python-build-bookworm-dev", "3.13-python-build-bookworm-runtime"]

    text = edit(minimal_text, "method: python-build}", "method: python-build, variant: runtime}")
    pybuild = [c.id for c in matrix.expand(_load(tmp_path, text)) if c.method == "python-build"]
    assert pybuild == ["3.13-python-build-bookworm-runtime"]


def test_include_of_an_existing_cell_adds_nothing(tmp_path: Path, minimal_text: str) -> None:
    before = matrix.expand(_load(tmp_path, minimal_text))
    text = edit(minimal_text, "include:\n", 'include:\n  - {distro: noble, python: "3.13", method: source}\n')
    assert matrix.expand(_load(tmp_path, text)) == before


def test_exclude_partial_rules(tmp_path: Path, minimal_text: str) -> None:
    rule = '  - {distro: noble, python: "3.12", method: deadsnakes}\n'
    # distro + variant: every dev image on noble goes, runtimes stay.
    text = edit(minimal_text, rule, rule + "  - {distro: noble, variant: dev}\n")
    noble = [c.id for c in matrix.expand(_load(tmp_path, text)) if c.distro == "noble"]
    assert noble == ["3.12-source-noble-runtime", "3.13-deadsnakes-noble-runtime",
                     "3.13-source-noble-runtime"]
    # python only: that minor is gone everywhere.
    text = edit(minimal_text, rule, rule + '  - {python: "3.12"}\n')
    assert {c.minor for c in matrix.expand(_load(tmp_path, text))} == {"3.13"}


def test_exclude_wins_over_include(tmp_path: Path, minimal_text: str) -> None:
    rule = '  - {distro: noble, python: "3.12", method: deadsnakes}\n'
    text = edit(minimal_text, rule, rule + "  - {method: python-build, variant: dev}\n")
    pybuild = [c.id for c in matrix.expand(_load(tmp_path, text)) if c.method == "python-build"]
    assert pybuild == ["3.13-python-build-bookworm-runtime"]


def test_python_minors_of_pinned_versions(tmp_path: Path, minimal_text: str) -> None:
    text = edit(minimal_text, '  - version: "3.13"\n', '  - version: "3.13.5"\n')
    cfg = _load(tmp_path, text)
    assert matrix.python_minors(cfg) == ["3.12", "3.13"]
    assert {c.minor for c in matrix.expand(cfg)} == {"3.12", "3.13"}


# --------------------------------------------------------------------------- --only


def test_select_without_patterns_is_everything(repo_loaded: Loaded) -> None:
    cells = matrix.expand(repo_loaded.config)
    assert matrix.select(cells, None) == cells
    assert matrix.select(cells, []) == cells
    assert matrix.select(cells, [""]) == cells


def test_select_globs(repo_loaded: Loaded) -> None:
    cells = matrix.expand(repo_loaded.config)
    assert _ids(matrix.select(cells, ["3.13-*-bookworm-*"])) == [
        "3.13-python-build-bookworm-dev",
        "3.13-python-build-bookworm-runtime",
        "3.13-source-bookworm-dev",
        "3.13-source-bookworm-runtime",
    ]
    assert _ids(matrix.select(cells, ["3.12-source-trixie-runtime"])) == ["3.12-source-trixie-runtime"]
    # Several globs: the union, in matrix order, each cell once.
    chosen = matrix.select(cells, ["*-noble-dev", "3.14-*-runtime", "3.14-source-noble-*"])
    assert _ids(chosen) == [
        "3.12-source-noble-dev",
        "3.13-deadsnakes-noble-dev",
        "3.13-source-noble-dev",
        "3.14-deadsnakes-noble-dev",
        "3.14-deadsnakes-noble-runtime",
        "3.14-source-bookworm-runtime",
        "3.14-source-noble-dev",
        "3.14-source-noble-runtime",
        "3.14-source-resolute-runtime",
        "3.14-source-trixie-runtime",
    ]
    # Globs are case-sensitive and match the whole id.
    assert _ids(matrix.select(cells, ["*deadsnakes*"])) == [c.id for c in cells if c.method == "deadsnakes"]


def test_select_glob_matching_nothing(repo_loaded: Loaded) -> None:
    cells = matrix.expand(repo_loaded.config)
    with pytest.raises(UsageError) as info:
        matrix.select(cells, ["3.99-*", "bookworm"])
    assert str(info.value) == (
        "--only 3.99-* bookworm matches no cell; ids look like 3.12-source-bookworm-dev "
        "(orchestrator plan lists them)"
    )
    assert info.value.exit_code == ExitCode.BAD_INPUT


def test_plan_only_matching_nothing_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.helpers import REPO

    code, out, err = run_cli(["plan", "--config", str(REPO / "images.yaml"), "--only", "2.7-*"], capsys)
    assert code == 2
    assert out == ""
    assert err.splitlines()[-1] == (
        "error: --only 2.7-* matches no cell; ids look like 3.12-source-bookworm-dev "
        "(orchestrator plan lists them)"
    )


# --------------------------------------------------------------------------- tags


@pytest.mark.parametrize(
    ("cell", "moving", "immutable"),
    [
        (Cell("3.13", "source", "bookworm", "runtime"),
         ["3.13-runtime", "3.13-runtime-bookworm", "3.13.13-runtime-bookworm"],
         "3.13.13.20261121-runtime-bookworm"),
        (Cell("3.13", "source", "bookworm", "dev"),
         ["3.13-dev", "3.13-dev-bookworm", "3.13.13-dev-bookworm"],
         "3.13.13.20261121-dev-bookworm"),
        (Cell("3.13", "python-build", "bookworm", "runtime"),
         ["3.13-runtime-bookworm-pybuild", "3.13.13-runtime-bookworm-pybuild"],
         "3.13.13.20261121-runtime-bookworm-pybuild"),
        (Cell("3.13", "source", "noble", "runtime"),
         ["3.13-runtime-noble", "3.13.13-runtime-noble"],
         "3.13.13.20261121-runtime-noble"),
        (Cell("3.13", "deadsnakes", "noble", "dev"),
         ["3.13-dev-noble-deadsnakes", "3.13.13-dev-noble-deadsnakes"],
         "3.13.13.20261121-dev-noble-deadsnakes"),
    ],
    ids=lambda v: v.id if isinstance(v, Cell) else None,
)
def test_tags(repo_loaded: Loaded, cell: Cell, moving: list[str], immutable: str) -> None:
    assert matrix.tags_for(repo_loaded.config, cell, "3.13.13", TODAY) == (moving, immutable)


def test_only_the_default_distro_and_method_get_short_tags(repo_loaded: Loaded) -> None:
    cfg = repo_loaded.config
    defaults = [c.id for c in matrix.expand(cfg) if matrix.is_default(cfg, c)]
    assert defaults == [f"{m}-source-bookworm-{v}" for m in ("3.12", "3.13", "3.14")
                        for v in ("dev", "runtime")]


def test_no_two_cells_share_a_tag(repo_loaded: Loaded, repo_lock: Lock) -> None:
    cfg = repo_loaded.config
    owner: dict[str, str] = {}
    for cell in matrix.expand(cfg):
        moving, immutable = matrix.tags_for(cfg, cell, repo_lock.python(cell.minor).version, TODAY)
        assert len(moving) == len(set(moving)), cell.id
        for tag in [*moving, immutable]:
            assert tag not in owner, f"{tag} is produced by {owner.get(tag)} and {cell.id}"
            owner[tag] = cell.id
    assert len(owner) > 24


@pytest.mark.parametrize(("template", "revision_2"), [
    ("{version}.{date}-{variant}-{distro}{method}", "3.13.5.20261121.2-runtime-bookworm"),
    ("{version}-{variant}-{distro}{method}-{date}", "3.13.5-runtime-bookworm-20261121.2"),
])
def test_a_same_day_re_release_numbers_the_date(tmp_path: Path, minimal_text: str, template: str,
                                                revision_2: str) -> None:
    cfg = _load(tmp_path, edit(minimal_text, "runtime_user:", f'  immutable: "{template}"\nruntime_user:'))
    cell = Cell("3.13", "source", "bookworm", "runtime")
    revision = matrix.immutable_revision(cfg, cell, "3.13.5", TODAY)
    assert matrix.revision_tag(revision, 2) == revision_2


DATE_AFTER_SUFFIX = (
    '"{tag}" does not start with the version and the date (numbers and dots before the first "-"): '
    "Renovate and Dependabot read the rest as a suffix, so pins of it never get updates; use "
    '"{{version}}.{{date}}-{{variant}}-{{distro}}{{method}}" and a date_format of digits')


@pytest.mark.parametrize(("tags", "tag"), [
    ('  immutable: "{version}.{date}-{variant}-{distro}{method}"\n', None),
    ('  immutable: "{version}.{date}-{variant}-{distro}{method}"\n  date_format: "%Y.%m.%d"\n', None),
    ('  immutable: "{version}-{variant}-{distro}{method}-{date}"\n', "3.12.99-dev-bookworm-20261231"),
    ('  immutable: "{version}.{date}-{variant}-{distro}{method}"\n  date_format: "%Y-%m-%d"\n',
     "3.12.99.2026-12-31-dev-bookworm"),
    ('  immutable: "{variant}-{distro}{method}-{version}.{date}"\n', "dev-bookworm-3.12.99.20261231"),
], ids=["date-in-version", "dotted-date", "date-last", "dashed-date", "variant-first"])
def test_an_immutable_tag_the_update_bots_cannot_order_warns(
        tmp_path: Path, minimal_text: str, tags: str, tag: str | None) -> None:
    path = write_config(tmp_path, edit(minimal_text, "runtime_user:", tags + "runtime_user:"))
    warnings = loader.load(path, today=TODAY).warnings
    expected = () if tag is None else (f"{path}: tags.immutable: " + DATE_AFTER_SUFFIX.format(tag=tag),)
    assert warnings == expected


def test_date_format_is_configurable(tmp_path: Path, minimal_text: str) -> None:
    text = edit(minimal_text, "runtime_user:", '  date_format: "%Y.%m.%d"\nruntime_user:')
    cfg = _load(tmp_path, text)
    _, immutable = matrix.tags_for(cfg, Cell("3.13", "source", "bookworm", "runtime"), "3.13.5", TODAY)
    assert immutable == "3.13.5.2026.11.21-runtime-bookworm"

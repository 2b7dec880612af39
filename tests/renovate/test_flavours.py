"""Issue 18's tags under Renovate's own code: the org matrix with the free-threaded build of
3.13 and 3.14 and the minimal variant switched on (matrices.config_copy(flavours=True)).

The free-threaded tags (3.13t-runtime, 3.13.15t-runtime-bookworm, 3.13.15t.<date>-...) carry
CPython's ABI flag after the version, where Renovate's docker versioning reads a pre-release:
without the preset's rules for them, a pin of 3.13t-runtime is moved to 3.13-runtime, the GIL
build, and an immutable free-threaded pin is never updated."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from orchestrator.config.matrix import minor_key
from tests.renovate import matrices
from tests.renovate.matrices import Cell, Registry
from tests.renovate.renovate import Renovate
from tests.renovate.test_renovate import first, lookup, newest

pytestmark = pytest.mark.renovate


@pytest.fixture(scope="module")
def flavours(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return matrices.releases(matrices.ORG, tmp_path_factory.mktemp("releases-flavours"), flavours=True)


@pytest.fixture
def preset_for(preset_text: dict[str, Any], flavours: Registry) -> dict[str, Any]:
    data = copy.deepcopy(preset_text)
    for rule in data["packageRules"]:
        rule["matchPackageNames"] = [flavours.name]
    return data


def _ft(cell: Cell) -> bool:
    return cell.python.endswith("t")


def _line(cell: Cell) -> tuple[str, str, str, bool]:
    return (*cell.line, _ft(cell))


def test_the_matrix_has_both_flavours(flavours: Registry) -> None:
    ids = {c.id for c in flavours.cells}
    assert {"3.13t-source-bookworm-runtime", "3.14t-source-noble-dev", "3.13-source-trixie-minimal",
            "3.14t-source-bookworm-minimal"} <= ids
    assert not any(c.method == "deadsnakes" and (_ft(c) or c.variant == "minimal")
                   for c in flavours.cells)


def test_a_free_threaded_pin_stays_free_threaded(
        renovate: Renovate, preset_for: dict[str, Any], flavours: Registry) -> None:
    """Immutable pins: the newest build of the cell and newer free-threaded minors; moving pins:
    their digest and the same tag of a newer minor; never a GIL tag or another line."""
    problems = []
    immutable = {i.immutable for i in flavours.images}
    for cell in (c for c in flavours.cells if _ft(c)):
        pinned = flavours.images_of(cell, "A")[0]
        updates = lookup(renovate, preset_for, flavours, pinned.immutable, pinned.digest)
        want = {(newest(flavours, cell).immutable, "patch")} | {
            (newest(flavours, other).immutable, "minor") for other in flavours.cells
            if _line(other) == _line(cell) and minor_key(other.python) > minor_key(cell.python)}
        got = {(u["newValue"], u["updateType"]) for u in updates}
        if got != want:
            problems.append(f"{pinned.immutable}: {sorted(got)}, want {sorted(want)}")
        for tag in pinned.moving:
            updates = lookup(renovate, preset_for, flavours, tag, pinned.digest)
            if ("digest", tag) not in {(u["updateType"], u["newValue"]) for u in updates}:
                problems.append(f"{tag}@A: no digest update in {updates}")
            for u in updates:  # a moving tag of the same line, never an immutable one
                if _line(flavours.owner(u["newValue"])) != _line(cell) or u["newValue"] in immutable:
                    problems.append(f"{tag}: proposes {u['newValue']} ({u['updateType']})")
    assert not problems, first(problems)


def test_a_gil_pin_never_gets_a_free_threaded_tag(
        renovate: Renovate, preset_for: dict[str, Any], flavours: Registry) -> None:
    problems = []
    for cell in (c for c in flavours.cells if not _ft(c) and c.distro == "bookworm"):
        pinned = flavours.images_of(cell, "A")[0]
        for tag in (pinned.immutable, *pinned.moving):
            for u in lookup(renovate, preset_for, flavours, tag, pinned.digest):
                owner = flavours.owner(u["newValue"])
                if _line(owner) != _line(cell):
                    problems.append(f"{tag}: proposes {u['newValue']}")
    assert not problems, first(problems)


def test_without_the_preset_a_free_threaded_pin_moves_to_the_gil_build(
        renovate: Renovate, flavours: Registry) -> None:
    """Why the preset has rules of its own for them (docs/tags-and-renovate.md)."""
    cell = next(c for c in flavours.cells if c.id == "3.13t-source-bookworm-runtime")
    pinned = flavours.images_of(cell, "A")[0]
    short = next(t for t in pinned.moving if t == "3.13t-runtime")
    proposed = {u["newValue"] for u in lookup(renovate, {}, flavours, short, pinned.digest)}
    assert proposed & {"3.13-runtime", "3.14-runtime"}, proposed
    assert lookup(renovate, {}, flavours, pinned.immutable, pinned.digest) == []


def test_minimal_pins_follow_minimal_tags(
        renovate: Renovate, preset_for: dict[str, Any], flavours: Registry) -> None:
    cell = next(c for c in flavours.cells if c.id == "3.13-source-bookworm-minimal")
    pinned = flavours.images_of(cell, "A")[0]
    got = {(u["newValue"], u["updateType"])
           for u in lookup(renovate, preset_for, flavours, pinned.immutable, pinned.digest)}
    assert (newest(flavours, cell).immutable, "patch") in got
    assert all(flavours.owner(tag).variant == "minimal" for tag, _ in got), got

"""Application teams' pins, judged by Renovate's own code (npm renovate@39.264.0).

The tags are those `orchestrator plan --json` gives for the org and e2e matrices over builds A
(2026-11-21), B (a rebuild on 2026-12-01), B.1 (new content the same day) and C (2026-12-05, a
patch release of every minor); see matrices.py. "docker" is Renovate's default versioning for
images (no preset); "preset" is whatever renovate/org-python.json's package rules choose for the
pinned tag. What docs/tags-and-renovate.md ("Keeping current") promises is what is checked here.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.version import Version

from tests.renovate import matrices
from tests.renovate.matrices import Cell, Image, Registry
from tests.renovate.renovate import Renovate

pytestmark = pytest.mark.renovate

ALL_BUILDS = ("A", "B", "B.1", "C")
# Renovate's docker versioning compares tags with as many numbers only: a same-day re-release
# (<date>.1, one number more) is followed with the preset only (test below).
BUILDS = {"docker": ("A", "B", "C"), "preset": ALL_BUILDS}
BOTS = ["docker", "preset"]
NO_PRESET: dict[str, Any] = {}


def versioning_for(renovate: Renovate, preset: dict[str, Any], reg: Registry, tag: str) -> str:
    rules = renovate.ask("rules", config=preset, dep={"depName": reg.name, "currentValue": tag})
    return str(rules["versioning"])


def judge(renovate: Renovate, bot: str, preset: dict[str, Any], reg: Registry,
          pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Renovate's verdict on each (pinned, candidate) pair under ``bot``'s versioning."""
    chosen: dict[str, str] = {}  # pinned tag -> its versioning
    for current, _ in pairs:
        if current not in chosen:
            chosen[current] = "docker" if bot == "docker" else versioning_for(renovate, preset, reg,
                                                                                current)
    by_versioning: dict[str, list[int]] = {}
    for i, (current, _) in enumerate(pairs):
        by_versioning.setdefault(chosen[current], []).append(i)
    out: list[dict[str, Any]] = [{} for _ in pairs]
    for vid, idx in by_versioning.items():
        answers = renovate.ask("versioning", versioning=vid, pairs=[pairs[i] for i in idx])
        for i, answer in zip(idx, answers, strict=True):
            out[i] = answer
    return out


def lookup(renovate: Renovate, config: dict[str, Any], reg: Registry, tag: str, digest: str | None,
           former: bool = False) -> list[dict[str, Any]]:
    dep = {"depName": reg.name, "currentValue": tag, "currentDigest": digest}
    result = renovate.ask("lookup", config=config, dep=dep, tags=reg.tags(former=former))
    assert "skipReason" not in result, result
    updates: list[dict[str, Any]] = result["updates"]
    return updates


def newest(reg: Registry, cell: Cell) -> Image:
    return reg.images_of(cell, "C")[0]


def shape(tag: str, img: Image) -> str:
    """A moving tag with its Python left out: 3.13-runtime -> {minor}-runtime."""
    # the minor first: a deadsnakes cell's version is its minor (3.12), whose tags are {minor}'s
    for value, name in ((img.cell.python, "{minor}"), (img.version, "{version}")):
        if tag.startswith(value + "-"):
            return name + tag[len(value):]
    raise AssertionError(f"{tag} does not start with {img.version} or {img.cell.python}")


def first(problems: list[str], n: int = 8) -> str:
    return f"{len(problems)} problems, e.g.:\n  " + "\n  ".join(problems[:n])


# ---------------------------------------------------------------------------- the preset


def test_the_preset_is_valid_renovate_configuration(renovate: Renovate, preset_path: Path) -> None:
    proc = renovate.validate(preset_path)
    assert proc.returncode == 0 and "Config validated successfully" in proc.stdout, proc.stdout


def test_the_preset_names_the_org_repository(preset_text: dict[str, Any]) -> None:
    publish = yaml.safe_load(matrices.ORG.read_text())["publish"]
    for rule in preset_text["packageRules"]:
        assert rule["matchPackageNames"] == [f"{publish['registry']}/{publish['repository']}"]
        assert rule["matchDatasources"] == ["docker"]


def test_the_preset_groups_pins_digests_and_chooses_a_versioning_per_tag(
        renovate: Renovate, preset: dict[str, Any], registry: Registry) -> None:
    # rules 3 to 5 are the free-threaded tags' (test_flavours.py)
    immutable_rule, former_rule = (r["versioning"] for r in preset["packageRules"][1:3])
    immutable = {i.immutable for i in registry.images}
    former = {i.immutable for i in registry.former.values()}
    checked = 0
    for tag in registry.tags(former=True):
        if registry.owner(tag).python.endswith("t"):
            continue  # the free-threaded cells' tags: test_flavours.py
        checked += 1
        rules = renovate.ask("rules", config=preset, dep={"depName": registry.name, "currentValue": tag})
        want = immutable_rule if tag in immutable else former_rule if tag in former else "docker"
        assert rules == {"versioning": want, "groupName": "org/python base images",
                         "schedule": ["* 6-11 * * *"], "pinDigests": True,
                         "separateMultipleMinor": True}, tag
    assert checked > 0


# ----------------------------------------------------------------------- immutable tags


@pytest.mark.parametrize("bot", BOTS)
def test_every_newer_build_of_a_cell_is_compatible_and_greater(
        renovate: Renovate, preset: dict[str, Any], registry: Registry, bot: str) -> None:
    pairs = [(old.immutable, new.immutable) for cell in registry.cells
             for old, new in itertools.combinations(registry.images_of(cell, *BUILDS[bot]), 2)]
    verdicts = judge(renovate, bot, preset, registry, pairs)
    problems = [f"{old} -> {new}: {v}" for (old, new), v in zip(pairs, verdicts, strict=True)
                if v != {"valid": [True, True], "compatible": True, "greater": True}]
    assert not problems, first(problems)


def test_docker_versioning_alone_does_not_follow_a_same_day_re_release(
        renovate: Renovate, registry: Registry) -> None:
    pairs = [(a.immutable, r.immutable) for cell in registry.cells
             for a, r in itertools.product(registry.images_of(cell, "A", "C"),
                                           registry.images_of(cell, "B.1"))]
    pairs += [(r, a) for a, r in pairs]
    verdicts = renovate.ask("versioning", versioning="docker", pairs=pairs)
    assert not any(v["compatible"] for v in verdicts)


@pytest.mark.parametrize("bot", BOTS)
def test_other_variants_distros_and_methods_are_never_compatible(
        renovate: Renovate, preset: dict[str, Any], registry: Registry, bot: str) -> None:
    """Only the same variant, distro and method; across minors that is a Python upgrade."""
    tags = [(i.immutable, i) for i in registry.images if i.build in BUILDS[bot]]
    pairs, expected = [], []
    for (t1, i1), (t2, i2) in itertools.permutations(tags, 2):
        if i1.cell == i2.cell:
            continue
        pairs.append((t1, t2))
        newer_python = Version(i2.cell.python) > Version(i1.cell.python)
        expected.append({"compatible": i1.cell.line == i2.cell.line,
                         "greater": i1.cell.line == i2.cell.line and newer_python})
    verdicts = judge(renovate, bot, preset, registry, pairs)
    problems = [f"{t1} -> {t2}: {v}, want {want}"
                for (t1, t2), v, want in zip(pairs, verdicts, expected, strict=True)
                if v["compatible"] != want["compatible"]
                or (want["compatible"] and v["greater"] != want["greater"])]
    assert not problems, first(problems)


@pytest.mark.parametrize("bot", BOTS)
def test_renovate_proposes_the_newest_build_of_the_same_cell(
        renovate: Renovate, preset: dict[str, Any], registry: Registry, bot: str) -> None:
    """From a build-A pin, with the preset: the newest build of its cell (patch release C) and
    one update per newer Python minor of the same variant, distro and method, nothing else.
    Without it (Renovate's defaults: one non-major update) only the newest of all of those."""
    config = preset if bot == "preset" else NO_PRESET
    problems = []
    for cell in registry.cells:
        pinned = registry.images_of(cell, "A")[0]
        updates = lookup(renovate, config, registry, pinned.immutable, pinned.digest)
        want = {(newest(registry, cell).immutable, "patch")} | {
            (newest(registry, other).immutable, "minor") for other in registry.cells
            if other.line == cell.line and Version(other.python) > Version(cell.python)}
        if bot == "docker":
            want = {max(want, key=lambda w: Version(w[0].partition("-")[0]))}
        got = {(u["newValue"], u["updateType"]) for u in updates}
        if got != want:
            problems.append(f"{pinned.immutable}: {sorted(got)}, want {sorted(want)}")
        digests = {u["newValue"]: u["newDigest"] for u in updates}
        if any(registry.tags()[tag] != digest for tag, digest in digests.items()):
            problems.append(f"{pinned.immutable}: digests {digests}")
    assert not problems, first(problems)


def test_a_pin_of_the_former_dated_tags_moves_to_the_newest_build(
        renovate: Renovate, preset: dict[str, Any], registry: Registry) -> None:
    """Tags like 3.13.15-runtime-bookworm-20261121 (still published): Renovate's docker
    versioning never proposes a newer build of them (issue 19; at most another minor built the
    same day, same suffix); the preset moves them to the newest tag of the current scheme."""
    problems = []
    for cell in registry.cells:
        old = registry.former[cell.id]
        docker = lookup(renovate, NO_PRESET, registry, old.immutable, old.digest, former=True)
        if any(registry.owner(u["newValue"]) == cell or u["updateType"] != "minor" for u in docker):
            problems.append(f"docker versioning alone updates {old.immutable}: {docker}")
        updates = lookup(renovate, preset, registry, old.immutable, old.digest, former=True)
        patch = [u["newValue"] for u in updates if u["updateType"] == "patch"]
        if patch != [newest(registry, cell).immutable]:
            problems.append(f"{old.immutable}: {patch}, want {newest(registry, cell).immutable}")
        others = {registry.owner(u["newValue"]).line for u in updates} - {cell.line}
        if others:
            problems.append(f"{old.immutable}: proposes other cells {others}")
    assert not problems, first(problems)


# -------------------------------------------------------------------------- moving tags


def test_moving_tags_only_follow_the_same_tag_of_a_newer_python(
        renovate: Renovate, preset: dict[str, Any], registry: Registry) -> None:
    """3.13-runtime -> 3.14-runtime, 3.13.15-runtime-bookworm -> 3.13.16-runtime-bookworm: never
    another variant, distro or method, never an immutable tag (and no immutable pin ever moves
    to a moving tag)."""
    moving: dict[str, tuple[str, Version]] = {}
    for img in registry.images:
        for tag in img.moving:
            moving[tag] = (shape(tag, img), Version(tag.partition("-")[0]))
    pairs = list(itertools.permutations(moving, 2))
    verdicts = renovate.ask("versioning", versioning="docker", pairs=pairs)
    problems = []
    for (t1, t2), v in zip(pairs, verdicts, strict=True):
        (s1, v1), (s2, v2) = moving[t1], moving[t2]
        if v["compatible"] != (s1 == s2) or (s1 == s2 and v["greater"] != (v2 > v1)):
            problems.append(f"{t1} -> {t2}: {v}")
    immutable = [i.immutable for i in registry.images]
    cross = [(m, i) for m in moving for i in immutable] + [(i, m) for m in moving for i in immutable]
    for bot in BOTS:
        for (t1, t2), v in zip(cross, judge(renovate, bot, preset, registry, cross), strict=True):
            if v["compatible"]:
                problems.append(f"{bot}: {t1} -> {t2} compatible")
    assert not problems, first(problems)


def test_a_digest_pinned_moving_tag_gets_the_newest_digest(
        renovate: Renovate, preset: dict[str, Any], registry: Registry) -> None:
    problems = []
    for img in registry.images_of_build("A"):
        for tag in img.moving:
            updates = lookup(renovate, preset, registry, tag, img.digest)
            digest = [u for u in updates if u["updateType"] == "digest"]
            if [(u["newValue"], u["newDigest"]) for u in digest] != [(tag, registry.tags()[tag])]:
                problems.append(f"{tag}@A: {digest}")
            moved = {shape(u["newValue"], _image_of(registry, u["newValue"]))
                     for u in updates if u["updateType"] != "digest"}
            if moved - {shape(tag, img)}:
                problems.append(f"{tag}: proposes {moved}")
    assert not problems, first(problems)


def _image_of(reg: Registry, tag: str) -> Image:
    return next(i for i in reversed(reg.images) if tag in i.moving)


# ------------------------------------------------------------------- a downstream Dockerfile


def test_renovate_updates_a_downstream_dockerfile(
        renovate: Renovate, preset: dict[str, Any], registry: Registry) -> None:
    """The example of docs/tags-and-renovate.md: one FROM pinned to an immutable tag, one to a
    moving tag's digest."""
    dev = next(i for i in registry.images_of_build("A")
               if i.cell.variant == "dev" and f"{i.cell.python}-dev" in i.moving)
    runtime = next(i for i in registry.images_of_build("A") if i.cell.variant == "runtime"
                   and i.cell.line[1:] == dev.cell.line[1:] and i.cell.python == dev.cell.python)
    short = f"{runtime.cell.python}-runtime"
    dockerfile = (f"FROM {registry.name}:{dev.immutable} AS build\n"
                  "RUN python3 -m venv /app/venv\n"
                  f"FROM {registry.name}:{short}@{runtime.digest}\n"
                  "COPY --from=build /app /app\n")
    deps = renovate.ask("extract", content=dockerfile)
    assert [(d["datasource"], d["depName"], d["currentValue"], d.get("currentDigest"))
            for d in deps] == [("docker", registry.name, dev.immutable, None),
                               ("docker", registry.name, short, runtime.digest)]
    result = [renovate.ask("lookup", config=preset, dep=dep, tags=registry.tags()) for dep in deps]
    dev_updates = {(u["updateType"], u["newValue"]) for u in result[0]["updates"]}
    assert ("patch", newest(registry, dev.cell).immutable) in dev_updates
    assert ("pinDigest", dev.immutable) in dev_updates  # pinDigests: the tag gets its digest
    runtime_updates = {(u["updateType"], u["newValue"], u.get("newDigest")) for u in result[1]["updates"]}
    assert ("digest", short, registry.tags()[short]) in runtime_updates

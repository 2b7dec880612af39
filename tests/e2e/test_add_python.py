"""Issue 28, item 5: the platform team's flow end to end, as the README tells it.

Start from a matrix that does not have 3.14 yet (bookworm: 3.13 with python-build, published),
then `add-python 3.14` (one reviewable diff), `lock` against the mirror, `release`: 3.14-runtime
and 3.14-dev exist as linux/amd64 + linux/arm64 indexes and passed the downstream-app checks on
both platforms. Then `retire-python 3.13` (the oldest minor) removes exactly its cells from the
plan and deletes no published tag. The flow itself runs once per session (conftest.team_flow);
its signed 3.14 release is also the multi-platform release the other tests check (CI budget).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import REPO, Result, registry

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BOTH = {"linux/amd64", "linux/arm64"}


def test_add_python_is_one_reviewable_diff_pinned_to_the_org_bytes(team_flow: dict[str, Any]) -> None:
    assert team_flow["first"].rc == 0, team_flow["first"].explain()
    add: Result = team_flow["add"]
    assert add.rc == 0, add.explain()
    assert re.search(r"^\+\s*- version: ['\"]?3\.14['\"]?\s*$", add.stdout, re.MULTILINE), add.stdout
    # the lock's change, said in the same output: python.org's 3.14.4
    assert re.search(r"^\s*sha256\s+d923c51303e38e249136fc1bdf3568d56ecb03214efdef48516176d3d7faaef8$",
                     add.stdout, re.MULTILINE), add.stdout
    added = set(team_flow["ids_after_add"]) - set(team_flow["ids_before_add"])
    assert added == {"3.14-source-bookworm-runtime", "3.14-source-bookworm-dev",
                     "3.14-source-bookworm-minimal"}, added
    assert team_flow["ids_before_add"] <= team_flow["ids_after_add"]
    assert team_flow["lock"].rc == 0, team_flow["lock"].explain()
    # the e2e lock pins exactly the bytes the organisation's lock pins for python.org's 3.14.4
    config: Path = team_flow["config"]
    e2e = yaml.safe_load(config.with_suffix(".lock").read_text())["pythons"]["3.14"]
    org = yaml.safe_load((REPO / "images.lock").read_text())["pythons"]["3.14"]
    assert (e2e["version"], e2e["sha256"]) == (org["version"], org["sha256"]) == (
        "3.14.4", "d923c51303e38e249136fc1bdf3568d56ecb03214efdef48516176d3d7faaef8")


def test_the_new_minor_is_published_for_both_platforms_and_passes_the_downstream_app(
        team_flow: dict[str, Any]) -> None:
    rel: Result = team_flow["release"]
    assert rel.rc == 0, rel.explain()
    reg, repo = registry(), team_flow["repo"]
    for tag in ("3.14-runtime", "3.14-dev", "3.14-minimal"):
        manifests = reg.platform_manifests(repo, tag)
        assert manifests is not None and set(manifests) == BOTH, (tag, manifests)
    checks = {c["check"]: c["ok"] for c in rel.cells()["3.14-source-bookworm-runtime"]["checks"]}
    for name in ("dev-venv-runs-in-runtime", "dev-venv-runs-in-runtime [linux/arm64]",
                 "new-in-3.14", "new-in-3.14 [linux/arm64]"):
        assert checks.get(name) is True, (name, checks)


def test_retiring_the_oldest_minor_removes_exactly_its_cells_and_no_tag(
        team_flow: dict[str, Any]) -> None:
    retire: Result = team_flow["retire"]
    assert retire.rc == 0, retire.explain()
    removed = set(team_flow["ids_after_add"]) - set(team_flow["ids_after_retire"])
    assert removed == {i for i in team_flow["ids_after_add"] if i.startswith("3.13-")}, removed
    assert removed and not set(team_flow["ids_after_retire"]) - set(team_flow["ids_after_add"])
    before, after = team_flow["tags_before_retire"], team_flow["tags_after_retire"]
    assert after == before, "retire-python must not touch the registry"
    assert any(t.startswith("3.13.15.") for t in after), sorted(after)  # immutable 3.13 tags stay

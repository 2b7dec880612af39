"""Issue 28, item 5: the platform team's flow end to end, as the README tells it.

Start from a matrix that does not have 3.14 yet (bookworm: 3.13 with python-build, published),
then `add-python 3.14` (one reviewable diff), `lock` against the mirror, `release`: 3.14-runtime
and 3.14-dev exist as linux/amd64 + linux/arm64 indexes and passed the downstream-app checks on
both platforms. Then `retire-python 3.13` (the oldest minor) removes exactly its cells from the
plan and deletes no published tag. The compiles come from the build cache of the main and the
multi-platform releases (same stages), so this adds smoke tests, not compiles, to `make test`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator import config as config_mod
from orchestrator import lock as lock_mod
from orchestrator import plan as plan_mod
from tests.e2e.conftest import REPO, SESSION_DATE, Result, make_multiplatform_config, orch, registry

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BOTH = {"linux/amd64", "linux/arm64"}


def _team_matrix(path: Path) -> None:
    """The e2e matrix as it was before 3.14: bookworm only, 3.13 built with python-build (as
    the org's `include` does), source for new minors."""
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    data["distros"] = {"bookworm": {**data["distros"]["bookworm"], "methods": ["source"]}}
    data["pythons"] = [p for p in data["pythons"] if p["version"].startswith("3.13.")]
    data["include"] = [{"distro": "bookworm", "python": "3.13", "method": "python-build"}]
    data["exclude"] = [{"python": "3.13", "method": "source"},
                       {"method": "python-build", "variant": "minimal"}]
    data["tags"].pop("defaults", None)
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=100))


def _plan_ids(config: Path) -> set[str]:
    today = SESSION_DATE
    loaded = config_mod.load(config, today)
    return {i.id for i in plan_mod.build(loaded, lock_mod.read(loaded), today=today).images}


def _tags(repo: str) -> dict[str, str | None]:
    reg = registry()
    return {t: reg.digest(repo, t) for t in reg.tags(repo)}


@pytest.fixture(scope="module")
def flow(e2e_bases: dict[str, str], tmp_path_factory: pytest.TempPathFactory,
         session_id: str) -> dict[str, Any]:
    ws = tmp_path_factory.mktemp("add-python")
    repo = f"e2e-{session_id}/team"
    config = make_multiplatform_config(ws, repo)
    _team_matrix(config)
    steps: dict[str, Any] = {"config": config, "repo": repo}
    for step in (("lock",), ("render",)):
        res = orch(*step, config=config)
        assert res.rc == 0, res.explain()
    steps["first"] = orch("release", config=config, report=ws / "first.json")
    steps["ids_before_add"] = _plan_ids(config)
    steps["yaml_before_add"] = config.read_text()
    steps["add"] = orch("add-python", "3.14", config=config)
    steps["yaml_after_add"] = config.read_text()
    steps["lock"] = orch("lock", config=config)
    steps["ids_after_add"] = _plan_ids(config)
    steps["release"] = orch("release", "--only", "3.14-*", config=config, report=ws / "release.json")
    steps["tags_before_retire"] = _tags(repo)
    steps["retire"] = orch("retire-python", "3.13", config=config)
    steps["ids_after_retire"] = _plan_ids(config)
    steps["tags_after_retire"] = _tags(repo)
    return steps


def test_add_python_is_one_reviewable_diff_pinned_to_the_org_bytes(flow: dict[str, Any]) -> None:
    assert flow["first"].rc == 0, flow["first"].explain()
    add: Result = flow["add"]
    assert add.rc == 0, add.explain()
    assert re.search(r"^\+\s*- version: ['\"]?3\.14['\"]?\s*$", add.stdout, re.MULTILINE), add.stdout
    # the lock's change, said in the same output: python.org's 3.14.4
    assert re.search(r"^\s*sha256\s+d923c51303e38e249136fc1bdf3568d56ecb03214efdef48516176d3d7faaef8$",
                     add.stdout, re.MULTILINE), add.stdout
    added = set(flow["ids_after_add"]) - set(flow["ids_before_add"])
    assert added == {"3.14-source-bookworm-runtime", "3.14-source-bookworm-dev",
                     "3.14-source-bookworm-minimal"}, added
    assert flow["ids_before_add"] <= flow["ids_after_add"]
    assert flow["lock"].rc == 0, flow["lock"].explain()
    # the e2e lock pins exactly the bytes the organisation's lock pins for python.org's 3.14.4
    config: Path = flow["config"]
    e2e = yaml.safe_load(config.with_suffix(".lock").read_text())["pythons"]["3.14"]
    org = yaml.safe_load((REPO / "images.lock").read_text())["pythons"]["3.14"]
    assert (e2e["version"], e2e["sha256"]) == (org["version"], org["sha256"]) == (
        "3.14.4", "d923c51303e38e249136fc1bdf3568d56ecb03214efdef48516176d3d7faaef8")


def test_the_new_minor_is_published_for_both_platforms_and_passes_the_downstream_app(
        flow: dict[str, Any]) -> None:
    rel: Result = flow["release"]
    assert rel.rc == 0, rel.explain()
    reg, repo = registry(), flow["repo"]
    for tag in ("3.14-runtime", "3.14-dev", "3.14-minimal"):
        manifests = reg.platform_manifests(repo, tag)
        assert manifests is not None and set(manifests) == BOTH, (tag, manifests)
    checks = {c["check"]: c["ok"] for c in rel.cells()["3.14-source-bookworm-runtime"]["checks"]}
    for name in ("dev-venv-runs-in-runtime", "dev-venv-runs-in-runtime [linux/arm64]",
                 "new-in-3.14", "new-in-3.14 [linux/arm64]"):
        assert checks.get(name) is True, (name, checks)


def test_retiring_the_oldest_minor_removes_exactly_its_cells_and_no_tag(flow: dict[str, Any]) -> None:
    retire: Result = flow["retire"]
    assert retire.rc == 0, retire.explain()
    removed = set(flow["ids_after_add"]) - set(flow["ids_after_retire"])
    assert removed == {i for i in flow["ids_after_add"] if i.startswith("3.13-")}, removed
    assert removed and not set(flow["ids_after_retire"]) - set(flow["ids_after_add"])
    before, after = flow["tags_before_retire"], flow["tags_after_retire"]
    assert after == before, "retire-python must not touch the registry"
    assert any(t.startswith("3.13.15.") for t in after), sorted(after)  # immutable 3.13 tags stay

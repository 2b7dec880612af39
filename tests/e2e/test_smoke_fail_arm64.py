"""An index is published only when every platform passed (issue 31 item 1, the e2e half): a real
multi-platform release of one cell whose smoke tests fail under QEMU only publishes nothing.

The switch is the orchestrator's test switch ``ORCH_SMOKE_FAIL_PLATFORM=linux/arm64`` (read in
orchestrator/settings.py): the smoke suite adds one check on that platform, run in the arm64
image under QEMU like the others, and fails it. The cell is 3.14-source-bookworm-minimal, the
cheapest of the multi-platform release (`make test`: the team flow's; `make test-full`: the
all-cells one): the same images.yaml and images.lock, only another repository, so its compiles
and stages come from BuildKit's cache and the time goes to its checks on both platforms.
Unit test of the same rule: tests/unit/test_smoketest_phase.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import COSIGN_PASSWORD, Result, orch, registry, tags

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CELL = "3.14-source-bookworm-minimal"
ARM64 = "linux/arm64"
FORCED = f"forced-failure [{ARM64}]"


def _repository(config: Path) -> str:
    return str(yaml.safe_load(config.read_text())["publish"]["repository"])


def _copy_with_repository(config: Path, dest: Path, repository: str) -> Path:
    """images.yaml (publish.repository replaced), images.lock and the signing key pair of
    ``config`` in ``dest``: the same cells, pins and stages, published elsewhere."""
    dest.mkdir(parents=True, exist_ok=True)
    data = yaml.safe_load(config.read_text())
    data["publish"]["repository"] = repository
    copy = dest / config.name
    copy.write_text(yaml.safe_dump(data, sort_keys=False, width=100))
    for name in (config.with_suffix(".lock").name, "cosign.key", "cosign.pub"):
        if (config.parent / name).is_file():
            shutil.copy2(config.parent / name, dest / name)
    return copy


def test_a_check_failing_under_qemu_only_publishes_nothing_of_the_multiplatform_cell(
        multiplatform: tuple[Path, Result], tmp_path: Path, session_id: str) -> None:
    source, first = multiplatform  # also what warms BuildKit's cache for the cell
    assert first.rc == 0, first.explain()
    assert first.cells()[CELL]["status"] == "ok" and set(first.cells()[CELL]["platforms"]) == {
        "linux/amd64", ARM64}, first.cells().get(CELL)
    published_before = tags(_repository(source))

    repo = f"e2e-{session_id}/smoke-fail"
    config = _copy_with_repository(source, tmp_path / "smoke-fail", repo)
    rendered = orch("render", config=config)
    assert rendered.rc == 0, rendered.explain()
    res = orch("release", "--only", CELL, config=config, report=tmp_path / "release.json",
               env={"ORCH_SMOKE_FAIL_PLATFORM": ARM64, "COSIGN_PASSWORD": COSIGN_PASSWORD,
                    # its own candidates: other tests' stay as their runs left them
                    "ORCH_CANDIDATE_PREFIX": f"e2e-{session_id}/smoke-fail-candidate"})

    assert res.rc == 1, res.explain()
    cell = res.cells()[CELL]
    # the report: failed in the test phase, on arm64, by the one check the switch adds
    assert (cell["status"], cell["phase"]) == ("failed", "test"), cell
    assert f"check {FORCED} failed: failed on purpose: ORCH_SMOKE_FAIL_PLATFORM={ARM64} is set" \
        in cell["message"], cell["message"]
    assert "the image ran on aarch64" in cell["message"]  # in the arm64 image, under QEMU
    checks = {c["check"]: c["ok"] for c in cell["checks"]}
    assert [name for name, ok in checks.items() if not ok] == [FORCED], checks
    native = {name for name in checks if "[" not in name}
    emulated = {name.removesuffix(f" [{ARM64}]") for name in checks
                if name.endswith(f"[{ARM64}]") and name != FORCED}
    assert native and emulated == native, native ^ emulated  # every real check passed on both
    assert f"why: test: check {FORCED} failed: failed on purpose" in res.stdout  # the summary
    # published nothing: no index, no tag, nothing signed
    assert (cell["publish"], cell["digest"], cell["tags_moved"], cell["signed"]) == (
        "", "", [], False), cell
    assert [c["id"] for c in res.report["cells"] if c["publish"] or c["digest"]] == []
    reg = registry()
    assert reg.tags(repo) == []
    for tag in [t for t in (*cell["tags"], cell["immutable_tag"]) if t]:
        assert reg.digest(repo, tag) is None, tag
    assert tags(_repository(source)) == published_before  # and the release it was copied from

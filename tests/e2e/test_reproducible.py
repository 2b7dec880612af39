"""Issue 16, item 5: `orchestrator check-reproducible` on one `fast` runtime image, for real:
two builds from cold caches (`--no-cache`) exported as OCI layouts with SOURCE_DATE_EPOCH and
`rewrite-timestamp`, compared platform by platform and layer by layer.

Not in `make test` (CI budget: two cold builds with a CPython compile each, about 15 min on
2 cores): `make test-full` runs it, or `ORCH_E2E_REPRO=1 pytest tests/e2e/test_reproducible.py`
after `make provision`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.conftest import FULL, make_config, orch

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.full,
              pytest.mark.skipif(not (FULL or os.environ.get("ORCH_E2E_REPRO")),
                                 reason="two cold builds: make test-full or ORCH_E2E_REPRO=1")]

CELL = "3.14-source-bookworm-runtime"
EPOCH = "1764547200"  # 2025-12-01: any fixed time; a CI job exports its commit's


def test_two_cold_builds_of_a_fast_runtime_image_are_bit_for_bit_identical(
        e2e_bases: dict[str, str], tmp_path_factory: pytest.TempPathFactory,
        session_id: str) -> None:
    ws = tmp_path_factory.mktemp("reproducible")
    config = make_config(ws, f"e2e-{session_id}/reproducible")
    for step in (("lock",), ("render",)):
        res = orch(*step, config=config)
        assert res.rc == 0, res.explain()
    out = ws / "reproducible.json"
    res = orch("check-reproducible", "--only", CELL, "--profile", "fast",
               "--platform", "linux/amd64", "--json", str(out), "--keep", config=config,
               env={"SOURCE_DATE_EPOCH": EPOCH})
    assert out.exists(), res.explain()
    (image,) = json.loads(out.read_text())["images"]
    assert image["image"] == CELL
    (amd64,) = image["platforms"]
    assert amd64["platform"] == "linux/amd64"
    assert amd64["identical"], res.stdout  # the differences, file by file
    assert amd64["first"] == amd64["second"] and amd64["first"].startswith("sha256:")
    assert amd64["identical_layers"] == amd64["layers"]
    assert res.rc == 0, res.explain()
    assert f"SOURCE_DATE_EPOCH={EPOCH}" in res.stdout
    for layout in image["layouts"]:
        assert Path(layout).stat().st_size > 10_000_000  # a real image: the CPython tree

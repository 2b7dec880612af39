"""Two CI runners that share only the registry: runner A builds a shard cold and exports the
registry build cache; runner B, a separate engine with no images and an empty BuildKit cache,
builds the same cells by importing it, compiling nothing, and gets the same layers.

Both runners are dockerds of their own (tests/e2e/engines.py) on the containerd image store,
started and stopped here; the host's engine is not used, so its caches neither help nor get
pruned. B's wall time as a ratio of A's is printed (target: <= 25 %).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import FULL, TRIXIE_AMD64_ONLY, Result, make_config, orch, registry
from tests.e2e.engines import Dockerd

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.full,
              pytest.mark.skipif(not FULL, reason="two cold engines: make test-full (CI budget)")]

SHARD = ["--only", "3.14-source-trixie-*"]  # one CPython build (runtime + dev)
RUNTIME = "3.14-source-trixie-runtime"


def _build(runner: Dockerd, config: Path, work: Path, cache_ref: str) -> Result:
    env = {**runner.env, "ORCH_WORK_DIR": str(work), "CI": "true"}
    res = orch("build", *SHARD, "--cache-from", cache_ref, "--cache-to", cache_ref,
               config=config, report=work / "build.json", env=env)
    assert res.rc == 0, res.explain()
    return res


def _layers(runner: Dockerd, work: Path, cell: str) -> list[str]:
    state = json.loads((work / "state" / f"{cell}.json").read_text())
    out = runner.docker("image", "inspect", "--format", "{{json .RootFS.Layers}}",
                        state["image_id"]).stdout
    layers: list[str] = json.loads(out)
    return layers


def test_runner_b_builds_from_runner_a_registry_cache_without_compiling(
    e2e_bases: dict[str, str], tmp_path: Path, session_id: str,
) -> None:
    config = make_config(tmp_path / "ws", f"e2e-{session_id}/runners")
    # one shard of one platform (amd64): a cross compile would double A's time, not the point
    text = config.read_text()
    if "  trixie:\n    platforms:" not in text and TRIXIE_AMD64_ONLY not in text:
        text = text.replace("  trixie:\n", "  trixie:\n    platforms: [linux/amd64]\n", 1)
    config.write_text(text)
    for step in (("lock",), ("render",)):
        assert orch(*step, config=config).rc == 0
    cache_ref = f"127.0.0.1:5000/e2e-{session_id}/runners/cache:{{profile}}-{{cell}}"

    with Dockerd("runner-a") as a:
        cold = _build(a, config, tmp_path / "a", cache_ref)
        a_layers = {c: _layers(a, tmp_path / "a", c) for c in cold.cells()}
    assert cold.report["compiles"] == ["trixie/python-3.14-source"], cold.report["compiles"]
    reg = registry()
    for cell in cold.cells():
        assert reg.digest(f"e2e-{session_id}/runners/cache", f"fast-{cell}"), cell

    with Dockerd("runner-b") as b:
        assert b.docker("image", "ls", "-q").stdout.strip() == "", "runner B must start empty"
        warm = _build(b, config, tmp_path / "b", cache_ref)
        b_layers = {c: _layers(b, tmp_path / "b", c) for c in warm.cells()}

    assert warm.report["compiles"] == [], "runner B compiled CPython despite the cache"
    for cell, layers in a_layers.items():
        # the unlabelled image's layers; the label pass adds none
        assert b_layers[cell] == layers, cell
    ratio = warm.seconds / cold.seconds
    print(f"\ntwo runners: A (cold, exports) {cold.seconds:.0f}s, B (imports) "
          f"{warm.seconds:.0f}s: B = {100 * ratio:.0f}% of A")
    (tmp_path.parent / "two-runners.json").write_text(json.dumps(
        {"a_seconds": cold.seconds, "b_seconds": warm.seconds, "ratio": ratio}))
    assert RUNTIME in warm.cells()

"""Registry faults on cue, against the REAL local registry (127.0.0.1:5000) behind the fault proxy.

Every test publishes a first release (seed 1) of four synthetic images with the real push path
(release.push.do_push, publish.*, the Registry client; blobs and manifests go up over the registry
API, no Docker build or push), then publishes new content (seed 2) while a fault hits, checks
that every tag present points at a tested image of its own cell and that no tag was lost (the
push's internal staging tags aside: a fault may keep one), and re-runs without the fault: the
re-run must complete, reusing what already went up, and leave no staging tag. Skipped only
when nothing listens on 127.0.0.1:5000 (and CI is not set); any other problem fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.errors import RegistryAuthError, RegistryError
from orchestrator.naming import is_staging_tag, staging_tag
from orchestrator.registry import Registry
from orchestrator.release.push import do_push
from orchestrator.release.report import Status
from tests import require
from tests.fakes.faultproxy import FaultProxy, Rule
from tests.fakes.publish_harness import (
    PUBLIC_PUT,
    STAGING_PUT,
    HarnessRun,
    Publisher,
    image_for,
    write_config,
)

pytestmark = pytest.mark.docker

REGISTRY = "127.0.0.1:5000"
ROOT = Path(__file__).resolve().parents[2]
RT13 = "3.13-source-bookworm-runtime"


@pytest.fixture(scope="module")
def registry_up() -> None:
    try:
        with urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=10) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError):
            require.unavailable(f"no registry listens on {REGISTRY} (connection refused)",
                                "start it with `scripts/host-services.sh start registry` "
                                "(made by `make provision`)")
        pytest.fail(f"registry {REGISTRY} does not answer on /v2/: {exc.reason}")
    if status not in (200, 401):
        pytest.fail(f"registry {REGISTRY} answered HTTP {status} on /v2/")


@dataclass
class World:
    proxy: FaultProxy
    pub: Publisher
    direct: Registry  # straight to the registry, for the checks
    repo: str

    def release(self, seed: str) -> HarnessRun:
        run = self.pub.run(seed=seed)
        do_push(run, all_or_nothing=False)
        return run

    def state(self) -> dict[str, str]:
        return {t: self.direct.digest(self.repo, t) or "" for t in self.direct.tags(self.repo)}


@pytest.fixture
def world(registry_up: None, tmp_path: Path) -> Iterator[World]:
    repo = f"faults-test/{uuid.uuid4().hex[:12]}"
    direct = Registry(REGISTRY, attempts=2, backoff=0.2)
    with FaultProxy(REGISTRY) as proxy:
        pub = Publisher(write_config(tmp_path / "cfg", proxy.address, repo), proxy.address,
                        tmp_path / "work")
        yield World(proxy, pub, direct, repo)
    for digest in set(World(proxy, pub, direct, repo).state().values()):  # best effort
        with contextlib.suppress(RegistryError):
            direct.request("DELETE", f"/v2/{repo}/manifests/{digest}")


def check_safe(w: World, run: HarnessRun, before: dict[str, str]) -> dict[str, str]:
    """Every tag present points at a tested image of its own cell; no tag was lost; immutable
    tags hold what they were first given. The internal staging tags a fault kept are left out
    (what they hold is no public tag's)."""
    now = {t: d for t, d in w.state().items() if not is_staging_tag(t)}
    assert set(before) <= set(now), f"tags lost: {sorted(set(before) - set(now))}"
    known = set()
    for img in run.plan.images:
        gen1, gen2 = (image_for(run, img.id, s).digest for s in ("1", "2"))
        for tag in img.tags:
            assert now[tag] in (gen1, gen2), (tag, "points at an image that was not tested")
        assert now[img.immutable_tag] == gen1
        assert now.get(img.immutable_tag + ".1", gen2) == gen2
        known |= {*img.tags, img.immutable_tag, img.immutable_tag + ".1"}
    assert set(now) <= known, f"unexpected tags: {sorted(set(now) - known)}"
    return now


def check_complete(w: World, run: HarnessRun) -> None:
    """The seed-2 release is fully published: public tags on it, both immutable tags kept."""
    assert run.report.exit_code == 0, [(c.id, c.message) for c in run.report.cells.values()]
    assert {c.status for c in run.report.cells.values()} <= {Status.OK, Status.UNCHANGED}
    expected: dict[str, str] = {}
    for img in run.plan.images:
        gen1, gen2 = (image_for(run, img.id, s).digest for s in ("1", "2"))
        expected |= {img.immutable_tag: gen1, img.immutable_tag + ".1": gen2}
        expected |= dict.fromkeys(img.tags, gen2)
    assert w.state() == expected


def failed(run: HarnessRun) -> dict[str, tuple[str, str]]:
    return {c.id: (c.phase, c.message) for c in run.report.cells.values()
            if c.status is Status.FAILED}


def test_registry_down_mid_push_then_rerun(world: World) -> None:
    w = world
    w.release("1")
    before = w.state()
    mark = w.proxy.add(Rule("forward", method="PUT", path=STAGING_PUT, nth=1))
    w.proxy.add(Rule("reset", armed_by=mark))  # down right after the first image went up
    second = w.pub.run(seed="2")
    do_push(second, all_or_nothing=False)
    assert mark.fired == 1 and w.proxy.count(action="reset") > 0
    assert {phase for phase, _ in failed(second).values()} == {"push"}
    assert len(failed(second)) == 4
    now = check_safe(w, second, before)
    assert now == before  # the one push that landed has no tag but its staging one
    assert sum(is_staging_tag(t) for t in w.state()) == 1
    w.proxy.clear()
    third = w.pub.run(seed="2")
    do_push(third, all_or_nothing=False)
    check_complete(w, third)
    assert len(third.engine.pushed) == 3  # the image that landed before the outage is reused


@pytest.mark.parametrize("times", [2, None], ids=["transient", "persistent"])
def test_5xx_on_a_manifest_put_during_tag_moves_then_rerun(world: World, times: int | None) -> None:
    w = world
    first = w.release("1")
    before = w.state()
    rule = w.proxy.add(Rule("status", method="PUT", path=r"/manifests/3\.13-runtime-bookworm$",
                            status=500, times=times))
    second = w.pub.run(seed="2")
    do_push(second, all_or_nothing=False)
    assert w.pub.sleeps[-2:] == [0.5, 1.0]  # retried with backoff
    if times is not None:
        assert rule.fired == 2
        check_complete(w, second)
        return
    assert rule.fired == 3
    assert list(failed(second)) == [RT13] and failed(second)[RT13][0] == "tag"
    assert "HTTP 500" in failed(second)[RT13][1]
    now = check_safe(w, second, before)
    assert now["3.13-runtime"] == image_for(first, RT13, "2").digest  # moved before the fault
    assert now["3.13-runtime-bookworm"] == before["3.13-runtime-bookworm"]  # kept, not lost
    w.proxy.clear()
    third = w.pub.run(seed="2")
    do_push(third, all_or_nothing=False)
    check_complete(w, third)
    assert third.engine.pushed == []
    assert third.report.cell(RT13).tags_moved[1:] == ["3.13-runtime-bookworm"]


@pytest.mark.parametrize(("method", "path"), [("POST", r"/blobs/uploads/$"), ("PUT", PUBLIC_PUT)],
                         ids=["during-push", "during-tag-moves"])
def test_401_stops_the_run_with_the_login_hint_then_rerun(world: World, method: str,
                                                          path: str) -> None:
    w = world
    w.release("1")
    before = w.state()
    w.proxy.add(Rule("status", method=method, path=path, nth=2, status=401,
                     headers={"WWW-Authenticate": 'Basic realm="registry"'}))
    second = w.pub.run(seed="2")
    with pytest.raises(RegistryAuthError, match=f"docker login {w.proxy.address}") as err:
        do_push(second, all_or_nothing=False)
    assert err.value.exit_code == 4
    check_safe(w, second, before)
    w.proxy.clear()
    third = w.pub.run(seed="2")
    do_push(third, all_or_nothing=False)
    check_complete(w, third)


def test_a_stalled_blob_upload_times_out_then_rerun(world: World) -> None:
    w = world
    w.release("1")
    before = w.state()
    w.pub.attempts, w.pub.timeout = 2, 1.0
    stall = w.proxy.add(Rule("stall", method="PUT", path=r"/blobs/uploads/", times=2, then="reset"))
    second = w.pub.run(seed="2")
    do_push(second, all_or_nothing=False)
    assert stall.fired == 2
    [(cell, (phase, message))] = failed(second).items()
    assert phase == "push" and "no answer within 1s" in message, message
    now = check_safe(w, second, before)
    assert {t for t in now if t.endswith(".1")} == {
        i.immutable_tag + ".1" for i in second.plan.images if i.id != cell}
    w.proxy.clear()
    third = w.pub.run(seed="2")
    do_push(third, all_or_nothing=False)
    check_complete(w, third)
    assert [ref.rpartition(":")[2] for ref in third.engine.pushed] == [staging_tag(cell)]


def test_kill_9_between_push_and_tag_moves_then_rerun(world: World, tmp_path: Path) -> None:
    w = world
    w.release("1")
    before = w.state()
    stall = w.proxy.add(Rule("stall", method="PUT", path=PUBLIC_PUT, nth=2, then="reset"))
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"config": str(w.pub.config), "host": w.pub.host, "seed": "2",
                                "work": str(w.pub.work), "report": str(tmp_path / "r.json")}))
    log = tmp_path / "child.log"
    with log.open("w") as out:
        child = subprocess.Popen([sys.executable, "-m", "tests.integration.publish_child",
                                  str(spec)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        if not stall.hit.wait(120):
            pytest.fail(f"the child never reached its 2nd tag move (exit {child.poll()}):\n"
                        + log.read_text()[-3000:])
        os.kill(child.pid, signal.SIGKILL)  # while its second tag move is in flight
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
    stall.release.set()  # the held PUT is reset, never forwarded
    assert not (tmp_path / "r.json").exists()
    second = w.pub.run(seed="2")
    now = check_safe(w, second, before)
    assert sum(now[t] != before[t] for t in before if not t.endswith("-20261121")) == 1
    assert sum(t.endswith(".1") for t in now) == 1  # the image whose tags were moving
    staged = {t for t in w.state() if is_staging_tag(t)}  # every push went up before any tag
    assert staged == {staging_tag(i.id) for i in second.plan.images}
    w.proxy.clear()
    do_push(second, all_or_nothing=False)
    check_complete(w, second)
    assert second.engine.pushed == []  # the killed run's images are reused

"""The push policy (release.push.do_push over publish.*), against the in-memory registry: no Docker.

Candidates are synthetic images in a fake engine; pushes go over the registry API through the
real client, so what the registry holds afterwards is what a real push would leave.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.config.matrix import revision_tag
from orchestrator.errors import ExitCode, RegistryAuthError, RegistryError
from orchestrator.release.push import do_push
from orchestrator.release.report import Status
from tests.fakes.fake_engine import FakeEngine
from tests.fakes.fake_registry import FakeRegistry
from tests.fakes.faultproxy import FaultProxy, Rule
from tests.fakes.publish_harness import PUBLIC_PUT, HarnessRun, Publisher, image_for, write_config

REPO = "team/python"
RT13, DEV13 = "3.13-source-bookworm-runtime", "3.13-source-bookworm-dev"
RT14, DEV14 = "3.14-source-bookworm-runtime", "3.14-source-bookworm-dev"


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with FakeRegistry() as registry:
        yield registry


@pytest.fixture
def pub(tmp_path: Path, fake: FakeRegistry) -> Publisher:
    return Publisher(write_config(tmp_path / "cfg", fake.address, REPO), fake.address,
                     tmp_path / "work")


@pytest.fixture
def proxied(tmp_path: Path, fake: FakeRegistry) -> Iterator[tuple[FaultProxy, Publisher]]:
    """A publisher whose registry address is a fault proxy in front of the fake registry."""
    with FaultProxy(fake.address) as proxy:
        yield proxy, Publisher(write_config(tmp_path / "cfg", proxy.address, REPO),
                               proxy.address, tmp_path / "work")


def expected_tags(run: HarnessRun, cells: tuple[str, ...] | None = None,
                  seed: str = "1") -> dict[str, str]:
    """tag -> digest when ``cells`` (default: all) of ``run`` are published from ``seed``."""
    out = {}
    for img in run.plan.images:
        if cells is None or img.id in cells:
            for tag in (img.immutable_tag, *img.tags):
                out[tag] = image_for(run, img.id, seed).digest
    return out


def pushed(run: HarnessRun) -> list[str]:
    engine: FakeEngine = run.engine
    return engine.pushed


def test_tested_images_go_up_by_immutable_tag_first_then_the_public_tags_move_by_digest(
        pub: Publisher, fake: FakeRegistry) -> None:
    run = pub.run()
    do_push(run, all_or_nothing=False)
    for img in run.plan.images:
        res = run.report.cell(img.id)
        assert (res.status, res.phase, res.publish) == (Status.OK, "push", "new"), res.message
        assert res.digest == image_for(run, img.id, "1").digest
        assert res.tags_moved == [img.immutable_tag, *img.tags]
    assert run.report.exit_code == 0
    tags = expected_tags(run)
    assert fake.tags(REPO) == tags
    writes = fake.writes(REPO)
    n = len(run.plan.images)
    assert set(writes[:n]) == {i.immutable_tag for i in run.plan.images}  # every push first
    assert sorted(writes[n:]) == sorted(t for i in run.plan.images for t in i.tags)
    for k, (method, path) in enumerate(fake.requests):  # a tag move re-PUTs the pushed digest
        tag = path.rpartition("/")[2]
        if method == "PUT" and tag in writes[n:]:
            assert fake.requests[k - 1] == ("GET", f"/v2/{REPO}/manifests/{tags[tag]}")


def test_only_tested_cells_are_pushed_or_tagged(pub: Publisher, fake: FakeRegistry) -> None:
    run = pub.run(untested=(RT13,), failed=(DEV14,))
    run.engine.load(run.candidate_ref(DEV13), image_for(run, DEV13, "rebuilt after its test"))
    do_push(run, all_or_nothing=False)
    for cid in (RT13, DEV13):
        res = run.report.cell(cid)
        assert (res.status, res.phase) == (Status.FAILED, "push")
        assert "was not smoke-tested (or was rebuilt since)" in res.message
    assert (run.report.cell(DEV14).status, run.report.cell(DEV14).phase) == (Status.FAILED, "test")
    assert run.report.cell(RT14).status is Status.OK
    assert fake.tags(REPO) == expected_tags(run, (RT14,))
    assert [ref.rpartition(":")[2] for ref in pushed(run)] == [run.plan.image(RT14).immutable_tag]
    assert run.report.exit_code == ExitCode.FAILED


def test_no_tag_moves_when_the_immutable_tag_no_longer_holds_what_was_pushed(
        pub: Publisher, fake: FakeRegistry) -> None:
    """Another pipeline pushes other content under the same dated tag right after our push:
    the cell fails and its public tags never point at the image nobody here tested."""
    run = pub.run()
    engine: FakeEngine = run.engine
    racer = image_for(run, RT13, "someone else's build")
    target = run.plan.image(RT13).immutable_tag

    def race(ref: str) -> None:
        if ref.endswith(f":{target}"):
            engine.after_push = None
            engine.load("racer", racer)
            with engine.temp_tag("racer", ref):
                engine.push(ref)

    engine.after_push = race
    do_push(run, all_or_nothing=False)
    res = run.report.cell(RT13)
    assert (res.status, res.phase) == (Status.FAILED, "push")
    assert "registry digest differs from the pushed" in res.message
    assert fake.tags(REPO) == {**expected_tags(run, (DEV13, RT14, DEV14)), target: racer.digest}


def test_nothing_is_pushed_when_every_public_tag_carries_the_fingerprint(
        pub: Publisher, fake: FakeRegistry) -> None:
    do_push(pub.run(), all_or_nothing=False)
    writes = len(fake.writes(REPO))
    again = pub.run()
    do_push(again, all_or_nothing=False)
    for img in again.plan.images:
        res = again.report.cell(img.id)
        assert (res.status, res.publish) == (Status.UNCHANGED, "unchanged")
        assert res.digest == image_for(again, img.id, "1").digest and res.tags_moved == []
    assert pushed(again) == [] and len(fake.writes(REPO)) == writes
    assert again.report.exit_code == 0


def test_a_tag_that_lost_the_fingerprint_is_moved_back_reusing_the_immutable_tag(
        pub: Publisher, fake: FakeRegistry) -> None:
    first = pub.run()
    do_push(first, all_or_nothing=False)
    pub.client().tag(REPO, image_for(first, RT14, "1").digest, "3.13-runtime-bookworm")
    again = pub.run()
    do_push(again, all_or_nothing=False)
    res = again.report.cell(RT13)
    assert (res.status, res.publish) == (Status.OK, "updated")
    assert res.immutable_tag == again.plan.image(RT13).immutable_tag  # reused, no ".1"
    assert res.tags_moved == [res.immutable_tag, "3.13-runtime-bookworm"]
    assert pushed(again) == []  # the dated tag already held this content
    assert fake.tags(REPO) == expected_tags(first)
    assert {again.report.cell(c).status for c in (DEV13, RT14, DEV14)} == {Status.UNCHANGED}


# The features fixture's immutable template (date last) and the org's (date in the version).
DATE_LAST = '  immutable: "{version}-{variant}-{distro}{method}-{date}"\n'
DATE_IN_VERSION = '  immutable: "{version}.{date}-{variant}-{distro}{method}"\n'


@pytest.mark.parametrize(("template", "revision_1"), [
    (DATE_LAST, "3.13.5-runtime-bookworm-20261121.1"),
    (DATE_IN_VERSION, "3.13.5.20261121.1-runtime-bookworm"),
], ids=["date-last", "date-in-version"])
def test_new_content_on_the_same_day_gets_a_numbered_immutable_tag(
        pub: Publisher, fake: FakeRegistry, template: str, revision_1: str) -> None:
    text = pub.config.read_text()
    assert text.count(DATE_LAST) == 1, "the features fixture changed its immutable template"
    pub.config.write_text(text.replace(DATE_LAST, template))
    first = pub.run(seed="1")
    do_push(first, all_or_nothing=False)
    assert revision_tag(first.plan.image(RT13).immutable_revision, 1) == revision_1
    for seed, n in (("2", 1), ("3", 2)):
        run = pub.run(seed=seed)
        do_push(run, all_or_nothing=False)
        for img in run.plan.images:
            res = run.report.cell(img.id)
            assert (res.status, res.publish) == (Status.OK, "updated")
            assert res.immutable_tag == revision_tag(img.immutable_revision, n)
            assert res.package_changes == [f"libfoo {int(seed) - 1} -> {seed}"]
            assert res.tags_moved == [res.immutable_tag, *img.tags]
            for tag in img.tags:
                assert fake.tags(REPO)[tag] == image_for(run, img.id, seed).digest
    for img in first.plan.images:  # immutable tags never moved
        for tag, seed in ((img.immutable_tag, "1"), (revision_tag(img.immutable_revision, 1), "2"),
                          (revision_tag(img.immutable_revision, 2), "3")):
            assert fake.history[(REPO, tag)] == [image_for(first, img.id, seed).digest]


@pytest.mark.parametrize("all_or_nothing", [True, False])
def test_a_failed_cell_blocks_every_push_only_with_all_or_nothing(
        pub: Publisher, fake: FakeRegistry, all_or_nothing: bool) -> None:
    run = pub.run(failed=(DEV14,))
    do_push(run, all_or_nothing=all_or_nothing)
    others = (RT13, DEV13, RT14)
    if all_or_nothing:
        assert fake.writes(REPO) == [] and pushed(run) == []
        for cid in others:
            res = run.report.cell(cid)
            assert res.status is Status.SKIPPED
            assert res.message == "--all-or-nothing: 1 cell(s) failed, nothing published"
    else:
        assert fake.tags(REPO) == expected_tags(run, others)
        assert {run.report.cell(c).status for c in others} == {Status.OK}
    assert run.report.exit_code == ExitCode.FAILED


@pytest.mark.parametrize("all_or_nothing", [True, False])
def test_a_failed_push_moves_no_tag_with_all_or_nothing(
        proxied: tuple[FaultProxy, Publisher], fake: FakeRegistry, all_or_nothing: bool) -> None:
    proxy, pub = proxied
    run = pub.run()
    bad = run.plan.image(RT14).immutable_tag.replace(".", r"\.")
    proxy.add(Rule("status", method="PUT", path=f"/manifests/{bad}$", status=500))
    do_push(run, all_or_nothing=all_or_nothing)
    res = run.report.cell(RT14)
    assert (res.status, res.phase) == (Status.FAILED, "push") and "HTTP 500" in res.message
    assert pub.sleeps == [0.5, 1.0]  # the PUT was tried 3 times, with backoff
    others = (RT13, DEV13, DEV14)
    if all_or_nothing:
        assert fake.tags(REPO) == {run.plan.image(c).immutable_tag: image_for(run, c, "1").digest
                                   for c in others}  # staged by digest, not one public tag
        for cid in others:
            assert run.report.cell(cid).status is Status.SKIPPED
            assert run.report.cell(cid).message == "--all-or-nothing: a push failed, no tag moved"
    else:
        assert fake.tags(REPO) == expected_tags(run, others)
    assert run.report.exit_code == ExitCode.FAILED


def test_failed_tag_moves_leave_the_old_tags_and_a_rerun_reuses_the_pushed_images(
        proxied: tuple[FaultProxy, Publisher], fake: FakeRegistry) -> None:
    proxy, pub = proxied
    first = pub.run(seed="1")
    do_push(first, all_or_nothing=False)
    proxy.add(Rule("reset", method="PUT", path=PUBLIC_PUT))  # every tag move is cut off
    second = pub.run(seed="2")
    do_push(second, all_or_nothing=False)
    for img in second.plan.images:
        res = second.report.cell(img.id)
        assert (res.status, res.phase) == (Status.FAILED, "tag")
        assert "unreachable after 3 attempts" in res.message
        for tag in img.tags:  # still the tested image of the first release
            assert fake.tags(REPO)[tag] == image_for(first, img.id, "1").digest
    proxy.clear()
    third = pub.run(seed="2")
    do_push(third, all_or_nothing=False)
    assert pushed(third) == []  # the immutable tags pushed by the failed run are reused
    for img in third.plan.images:
        res = third.report.cell(img.id)
        assert (res.status, res.immutable_tag) == (Status.OK, img.immutable_tag + ".1")
    assert fake.tags(REPO) == {**expected_tags(first, seed="1"),
                               **{t: d for t, d in expected_tags(third, seed="2").items()
                                  if not t.endswith("-20261121")},
                               **{i.immutable_tag + ".1": image_for(third, i.id, "2").digest
                                  for i in third.plan.images}}


def test_an_unreachable_registry_stops_the_push_before_anything_happens(
        proxied: tuple[FaultProxy, Publisher], fake: FakeRegistry) -> None:
    proxy, pub = proxied
    proxy.add(Rule("reset"))
    run = pub.run()
    with pytest.raises(RegistryError, match="unreachable after 3 attempts") as err:
        do_push(run, all_or_nothing=False)
    assert err.value.exit_code == ExitCode.REGISTRY
    assert fake.requests == [] and pushed(run) == []


@pytest.mark.parametrize("phase_path", [r"/blobs/uploads/", PUBLIC_PUT])
def test_refused_credentials_stop_the_run_with_the_login_hint(
        proxied: tuple[FaultProxy, Publisher], fake: FakeRegistry, phase_path: str) -> None:
    """401 during the pushes or during the tag moves: RegistryAuthError (exit 4), no tag
    moved to anything but a tested image."""
    proxy, pub = proxied
    proxy.add(Rule("status", method="PUT|POST", path=phase_path, status=403))
    run = pub.run()
    with pytest.raises(RegistryAuthError, match=f"HTTP 403: registry {proxy.address} refused") as err:
        do_push(run, all_or_nothing=False)
    assert f"run `docker login {proxy.address}`" in str(err.value)
    assert err.value.exit_code == ExitCode.REGISTRY
    tested = {image_for(run, i.id, "1").digest for i in run.plan.images}
    assert set(fake.tags(REPO).values()) <= tested
    assert not set(fake.tags(REPO)) & {t for i in run.plan.images for t in i.tags}

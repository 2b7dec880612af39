"""The push policy (release.push.do_push over publish.*), against the in-memory registry: no Docker.

Candidates are synthetic images in a fake engine; pushes go over the registry API through the
real client, so what the registry holds afterwards is what a real push would leave.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from orchestrator.config.matrix import revision_tag
from orchestrator.errors import ExitCode, RegistryAuthError, RegistryError
from orchestrator.naming import staging_tag
from orchestrator.release.push import do_push
from orchestrator.release.report import Status
from tests.fakes.fake_engine import FakeEngine, FakeImage
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


def test_tested_images_go_up_under_a_staging_tag_then_take_their_tags_by_digest(
        pub: Publisher, fake: FakeRegistry) -> None:
    """Every push goes under the cell's internal staging tag first; then each image gets its
    immutable tag and its public tags, by digest; then the staging tags go."""
    run = pub.run()
    do_push(run, all_or_nothing=False)
    for img in run.plan.images:
        res = run.report.cell(img.id)
        assert (res.status, res.phase, res.publish) == (Status.OK, "push", "new"), res.message
        assert res.digest == image_for(run, img.id, "1").digest
        assert res.tags_moved == [img.immutable_tag, *img.tags]
        assert res.immutable_tag == img.immutable_tag
    assert run.report.exit_code == 0
    tags = expected_tags(run)
    assert fake.tags(REPO) == tags  # the staging tags are gone
    writes = fake.writes(REPO)
    n = len(run.plan.images)
    staging = {staging_tag(i.id) for i in run.plan.images}
    assert set(writes[:n]) == staging  # every push first
    assert [ref.rpartition(":")[2] for ref in pushed(run)] == writes[:n]
    assert writes[n:] == [t for i in run.plan.images for t in (i.immutable_tag, *i.tags)]
    for k, (method, path) in enumerate(fake.requests):  # a tag move re-PUTs the pushed digest
        tag = path.rpartition("/")[2]
        if method == "PUT" and tag in writes[n:]:
            assert fake.requests[k - 1] == ("GET", f"/v2/{REPO}/manifests/{tags[tag]}")
    deletes = [k for k, (m, _) in enumerate(fake.requests) if m == "DELETE"]
    assert {fake.requests[k][1].rpartition("/")[2] for k in deletes} == staging
    last_put = max(k for k, (m, p) in enumerate(fake.requests) if m == "PUT" and "/manifests/" in p)
    assert min(deletes) > last_put  # the staging tags go once every tag is where it belongs


@pytest.mark.parametrize("deletes", ["digests", "none"])
def test_a_registry_that_cannot_delete_a_tag_gets_its_staging_tag_on_a_placeholder(
        tmp_path: Path, deletes: Literal["digests", "none"]) -> None:
    """distribution 2.x (the e2e tests' registry) deletes manifests by digest, never a tag: the
    staging tag is pointed at a placeholder of its own which is then deleted by digest, taking
    the tag with it. With deletion disabled the tag stays, on the placeholder: the image it
    held is reachable by digest only, and the cell says so."""
    with FakeRegistry(deletes=deletes) as fake:
        pub = Publisher(write_config(tmp_path / "cfg", fake.address, REPO), fake.address,
                        tmp_path / "work")
        run = pub.run()
        do_push(run, all_or_nothing=False)
        assert {run.report.cell(i.id).status for i in run.plan.images} == {Status.OK}
        tags = fake.tags(REPO)
        assert {t: d for t, d in tags.items() if not t.startswith("_")} == expected_tags(run)
        leftover = {t: d for t, d in tags.items() if t.startswith("_")}
        if deletes == "digests":
            assert leftover == {}
            return
        assert set(leftover) == {staging_tag(i.id) for i in run.plan.images}
        published = {image_for(run, i.id, "1").digest for i in run.plan.images}
        assert not set(leftover.values()) & published  # on placeholders, not on the images
        for img in run.plan.images:
            assert f"internal tag {staging_tag(img.id)} stays (the registry deletes no tag" \
                in run.report.cell(img.id).message


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
    assert [ref.rpartition(":")[2] for ref in pushed(run)] == [staging_tag(RT14)]
    assert run.report.exit_code == ExitCode.FAILED


def race(run: HarnessRun, tag: str, racer: FakeImage) -> None:
    """Another pipeline pushes ``racer`` under ``tag`` right after the run's first push."""
    engine: FakeEngine = run.engine

    def after(ref: str) -> None:
        engine.after_push = None
        engine.load("racer", racer)
        with engine.temp_tag("racer", f"{ref.rpartition(':')[0]}:{tag}"):
            engine.push(f"{ref.rpartition(':')[0]}:{tag}")

    engine.after_push = after


def test_no_tag_moves_when_the_staging_tag_no_longer_holds_what_was_pushed(
        pub: Publisher, fake: FakeRegistry) -> None:
    """Another pipeline pushes other content under the cell's staging tag right after our
    push: the cell fails, and no tag of it points at the image nobody here tested."""
    pub.only = [RT13]
    run = pub.run()
    racer = image_for(run, RT13, "someone else's build")
    race(run, staging_tag(RT13), racer)
    do_push(run, all_or_nothing=False)
    res = run.report.cell(RT13)
    assert (res.status, res.phase) == (Status.FAILED, "push")
    assert "registry digest differs from the pushed" in res.message
    assert fake.tags(REPO) == {}


def test_a_dated_tag_taken_meanwhile_is_never_moved_the_image_takes_the_next_revision(
        pub: Publisher, fake: FakeRegistry) -> None:
    """Another pipeline publishes other content under the dated tag while ours is in its
    gates: ours takes the next same-day revision, the other's immutable tag stays."""
    pub.only = [RT13]
    run = pub.run()
    racer = image_for(run, RT13, "someone else's build")
    img = run.plan.image(RT13)
    race(run, img.immutable_tag, racer)
    do_push(run, all_or_nothing=False)
    res = run.report.cell(RT13)
    assert (res.status, res.immutable_tag) == (Status.OK, revision_tag(img.immutable_revision, 1))
    mine = image_for(run, RT13, "1").digest
    assert fake.tags(REPO) == {img.immutable_tag: racer.digest, res.immutable_tag: mine,
                               **dict.fromkeys(img.tags, mine)}


def test_an_image_an_interrupted_run_staged_is_reused_and_its_staging_tag_removed(
        pub: Publisher, fake: FakeRegistry) -> None:
    """A run killed between its pushes and its tags left its images under their staging
    tags: the next run of the same content pushes nothing again and publishes them."""
    killed = pub.run()
    for img in killed.plan.images:
        ref = f"{pub.host}/{REPO}:{staging_tag(img.id)}"
        with killed.engine.temp_tag(killed.candidate_ref(img.id), ref):
            killed.engine.push(ref)
    assert set(fake.tags(REPO)) == {staging_tag(i.id) for i in killed.plan.images}
    run = pub.run()
    do_push(run, all_or_nothing=False)
    assert pushed(run) == []
    assert {run.report.cell(i.id).status for i in run.plan.images} == {Status.OK}
    assert fake.tags(REPO) == expected_tags(run)


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
    bad = staging_tag(RT14).replace(".", r"\.")
    proxy.add(Rule("status", method="PUT", path=f"/manifests/{bad}$", status=500))
    do_push(run, all_or_nothing=all_or_nothing)
    res = run.report.cell(RT14)
    assert (res.status, res.phase) == (Status.FAILED, "push") and "HTTP 500" in res.message
    assert pub.sleeps == [0.5, 1.0]  # the PUT was tried 3 times, with backoff
    others = (RT13, DEV13, DEV14)
    if all_or_nothing:
        assert fake.tags(REPO) == {}  # pushed by digest, not one tag: not even a dated one
        for cid in others:
            assert run.report.cell(cid).status is Status.SKIPPED
            assert run.report.cell(cid).message.startswith(
                "--all-or-nothing: a push failed, no tag moved\nnot published: ")
            assert fake.has_manifest(REPO, image_for(run, cid, "1").digest)
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
        assert res.immutable_tag and "not published" not in res.message  # it has its dated tag
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

"""The push phase with images.yaml ``signing:``: every pushed digest is signed and attested
(release/attest.attach) before a public tag moves to it. The real push path publishes to the
in-memory registry; cosign and syft are the fakes, called as the push phase calls them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import render, runner, settings
from orchestrator.errors import CommandError, ConfigError, ExitCode, RegistryAuthError, SupplyChainError
from orchestrator.naming import staging_tag
from orchestrator.release import attest, session
from orchestrator.release.push import do_push
from orchestrator.release.report import Status
from orchestrator.supplychain import signing, verify
from tests.fakes.fake_cosign import FakeCosign
from tests.fakes.fake_registry import FakeRegistry
from tests.fakes.fake_syft import FakeSyft
from tests.fakes.publish_harness import HarnessRun, Publisher, image_for, write_config
from tests.unit.helpers import with_env

REPO = "team/python"
RT13, DEV13 = "3.13-source-bookworm-runtime", "3.13-source-bookworm-dev"
RT14, DEV14 = "3.14-source-bookworm-runtime", "3.14-source-bookworm-dev"
CELLS = (RT13, DEV13, RT14, DEV14)
SPDX, SLSA = "https://spdx.dev/Document", "https://slsa.dev/provenance/v1"


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with FakeRegistry() as registry:
        yield registry


def add_signing(config: Path) -> None:
    with config.open("a") as f:
        f.write("\nsigning: {key: cosign.key}\n")
    (config.parent / "cosign.key").write_text("k")
    (config.parent / "cosign.pub").write_text("p")


@pytest.fixture
def pub(tmp_path: Path, fake: FakeRegistry) -> Publisher:
    """The four bookworm source cells, rendered (the provenance hashes the Dockerfile), with
    ``signing: {key: cosign.key}`` and the key's password in the environment."""
    config = write_config(tmp_path / "cfg", fake.address, REPO)
    add_signing(config)
    with_env(COSIGN_PASSWORD="pw")
    publisher = Publisher(config, fake.address, tmp_path / "work")
    run = publisher.run()
    render.write(run.loaded, render.render_all(run.loaded, run.lock))
    return publisher


class Cosign:
    """FakeCosign behind a runner that notes the registry's tags at each ``cosign sign`` and
    fails the sign of the digests in ``fail``, as cosign does when the registry refuses the
    signature upload."""

    def __init__(self, fake: FakeRegistry, fail: tuple[str, ...] = ()) -> None:
        self.fake, self.fail, self.cosign = fake, fail, FakeCosign()
        self.tags_at_sign: list[dict[str, str]] = []

    def __call__(self, argv: list[str], **kw: Any) -> runner.Completed:
        if argv[1] == "sign":
            self.tags_at_sign.append(self.fake.tags(REPO))
            bad = [a for a in argv if a.partition("@")[2] in self.fail]
            if bad:
                raise CommandError(argv, 1, (
                    f"Error: signing [{bad[0]}]: PUT http://{self.fake.address}/v2/{REPO}/"
                    "manifests/sha256-x.sig: unexpected status code 500 Internal Server Error\n"
                    "main.go:74: error during command execution: ...\n"))
        return self.cosign(argv, **kw)

    def tools(self, syft: FakeSyft | None = None) -> attest.Tools:
        return attest.Tools(cosign=self, syft=syft or FakeSyft())


def public_tags(run: HarnessRun, cells: tuple[str, ...], seed: str = "1") -> dict[str, str]:
    return {t: image_for(run, c, seed).digest for c in cells for t in run.plan.image(c).tags}


def immutable_tags(run: HarnessRun, cells: tuple[str, ...], seed: str = "1") -> dict[str, str]:
    return {run.plan.image(c).immutable_tag: image_for(run, c, seed).digest for c in cells}


def verifier(pub: Publisher, cosign: Cosign) -> signing.Cosign:
    root = pub.config.parent
    return signing.Cosign(signing.Keys(None, str(root / "cosign.pub")), {}, run=cosign.cosign)


def test_a_signed_push_attaches_to_every_digest_before_its_tags_move(
        pub: Publisher, fake: FakeRegistry) -> None:
    run = pub.run()
    cosign = Cosign(fake)
    syft = FakeSyft()
    do_push(run, all_or_nothing=False, tools=cosign.tools(syft))

    assert fake.tags(REPO) == {**immutable_tags(run, CELLS), **public_tags(run, CELLS)}
    assert len(cosign.tags_at_sign) == 4 and len(syft.calls) == 4
    for tags in cosign.tags_at_sign:  # each sign: pushed under a staging tag, no other tag yet
        assert set(tags) <= {staging_tag(c) for c in CELLS}, tags
    name = f"{pub.host}/{REPO}"
    for cid in CELLS:
        res = run.report.cell(cid)
        assert (res.status, res.phase, res.publish) == (Status.OK, "push", "new"), res.message
        assert res.signed and res.signatures == [f"{name}@{res.digest}"]
        assert [(a["predicate_type"], a["subject"], a["platform"]) for a in res.attestations] == [
            (SPDX, f"{name}@{res.digest}", "linux/amd64"), (SLSA, f"{name}@{res.digest}", "")]
        assert all(Path(a["file"]).is_file() for a in res.attestations)
        assert "sign" in res.seconds
        v = verify.verify_digest(verifier(pub, cosign), pub.client(), REPO, res.digest)
        assert v.ok, v.line()
    cells = {c["id"]: c for c in run.report.to_dict()["cells"]}
    assert cells[RT13]["signed"] is True and len(cells[RT13]["attestations"]) == 2


def test_stage_only_signs_what_it_stages(pub: Publisher, fake: FakeRegistry) -> None:
    run = pub.run()
    cosign = Cosign(fake)
    do_push(run, all_or_nothing=False, stage_only=True, tools=cosign.tools())
    assert fake.tags(REPO) == immutable_tags(run, CELLS)
    for cid in CELLS:
        res = run.report.cell(cid)
        assert (res.status, res.phase, res.signed) == (Status.OK, "staged", True), res.message
    assert cosign.cosign.subcommands() == ["sign", "attest", "attest"] * 4


@pytest.mark.parametrize("all_or_nothing", [False, True])
def test_a_cosign_failure_fails_the_cell_and_moves_no_tag_to_its_digest(
        pub: Publisher, fake: FakeRegistry, all_or_nothing: bool) -> None:
    run = pub.run()
    bad = image_for(run, DEV14, "1").digest
    cosign = Cosign(fake, fail=(bad,))
    do_push(run, all_or_nothing=all_or_nothing, tools=cosign.tools())

    res = run.report.cell(DEV14)
    name = f"{pub.host}/{REPO}"
    assert (res.status, res.phase, res.signed) == (Status.FAILED, "sign", False)
    assert res.message == (
        f"cosign sign of {name}@{bad} failed (exit 1): signing [{name}@{bad}]: PUT "
        f"http://{fake.address}/v2/{REPO}/manifests/sha256-x.sig: unexpected status code 500 "
        f"Internal Server Error\n{name}@{bad} is pushed but not signed: it gets no tag\n"
        f"not published: {name}@{bad} has no tag, it is in the registry by digest only")
    assert bad not in fake.tags(REPO).values() and fake.has_manifest(REPO, bad)
    others = (RT13, DEV13, RT14)
    if all_or_nothing:
        assert fake.tags(REPO) == {}
        assert {run.report.cell(c).status for c in others} == {Status.SKIPPED}
        assert run.report.cell(RT13).message.startswith(
            "--all-or-nothing: a signature failed, no tag moved\nnot published: ")
    else:
        assert fake.tags(REPO) == {**immutable_tags(run, others), **public_tags(run, others)}
        assert {run.report.cell(c).status for c in others} == {Status.OK}
    assert run.report.exit_code == 1


def test_unchanged_cells_keep_their_signatures_and_are_not_signed_again(
        pub: Publisher, fake: FakeRegistry) -> None:
    first = pub.run()
    cosign = Cosign(fake)
    do_push(first, all_or_nothing=False, tools=cosign.tools())
    calls = len(cosign.cosign.calls)
    again = pub.run(seeds={RT14: "2"})  # RT14 rebuilt with new content, the others unchanged
    syft = FakeSyft()
    do_push(again, all_or_nothing=False, tools=cosign.tools(syft))

    new = f"{pub.host}/{REPO}@{image_for(again, RT14, '2').digest}"
    assert sorted((c[1], c[-1]) for c in cosign.cosign.calls[calls:]) == sorted(
        [(sub, f"{pub.host}/{REPO}@{image_for(again, c, '1').digest}")
         for c in (RT13, DEV13, DEV14)  # every check of verify: signature, SBOM, OpenVEX, provenance
         for sub in ("verify",) + ("verify-attestation",) * 3]
        + [("sign", new), ("attest", new), ("attest", new)])
    assert len(syft.calls) == 1
    for cid in (RT13, DEV13, DEV14):
        res = again.report.cell(cid)
        assert (res.status, res.publish, res.signed) == (Status.UNCHANGED, "unchanged", True)
        assert res.signatures == [] and res.attestations == []
    res = again.report.cell(RT14)
    assert (res.status, res.publish, res.signed) == (Status.OK, "updated", True)
    assert res.signatures == [new]


def test_an_unchanged_image_pushed_before_signing_was_configured_is_signed_now(
        tmp_path: Path, fake: FakeRegistry) -> None:
    config = write_config(tmp_path / "cfg", fake.address, REPO)
    pub = Publisher(config, fake.address, tmp_path / "work")
    first = pub.run()
    render.write(first.loaded, render.render_all(first.loaded, first.lock))
    cosign = Cosign(fake)
    do_push(first, all_or_nothing=False, tools=cosign.tools())
    assert cosign.cosign.calls == []  # no signing: nothing signed
    assert not any(first.report.cell(c).signed for c in CELLS)
    assert first.report.to_dict()["cells"][0]["signed"] is False

    add_signing(config)
    with_env(COSIGN_PASSWORD="pw")
    again = pub.run()
    do_push(again, all_or_nothing=False, tools=cosign.tools())
    checked, signed = ["verify"] + ["verify-attestation"] * 3, ["sign"] + ["attest"] * 2
    assert cosign.cosign.subcommands() == (checked + signed) * 4
    for cid in CELLS:
        res = again.report.cell(cid)
        assert (res.status, res.signed, len(res.attestations)) == (Status.UNCHANGED, True, 2)


def test_a_missing_password_or_public_key_stops_the_push_before_anything_goes_up(
        tmp_path: Path, fake: FakeRegistry) -> None:
    config = write_config(tmp_path / "cfg", fake.address, REPO)
    add_signing(config)  # COSIGN_PASSWORD not set
    pub = Publisher(config, fake.address, tmp_path / "work")
    cosign = Cosign(fake)
    with pytest.raises(SupplyChainError, match="COSIGN_PASSWORD is not set"):
        do_push(pub.run(), all_or_nothing=False, tools=cosign.tools())
    assert fake.tags(REPO) == {} and cosign.cosign.calls == []

    with_env(COSIGN_PASSWORD="pw")
    (config.parent / "cosign.pub").unlink()
    with pytest.raises(ConfigError, match=r"signing\.public_key: .*cosign\.pub does not exist"):
        do_push(pub.run(), all_or_nothing=False, tools=cosign.tools())
    assert fake.tags(REPO) == {}


def test_refused_credentials_while_signing_stop_the_run(
        pub: Publisher, fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*_: Any, **__: Any) -> attest.Attached:
        raise RegistryAuthError(f"registry {fake.address} refused the credentials")

    monkeypatch.setattr(attest, "attach", refused)
    run = pub.run()
    with pytest.raises(RegistryAuthError):
        do_push(run, all_or_nothing=False, tools=Cosign(fake).tools())
    assert fake.tags(REPO) == {}  # pushed by digest, no tag at all (the staging ones went)


def test_a_release_that_could_not_sign_stops_before_the_build(
        tmp_path: Path, fake: FakeRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path / "cfg", fake.address, REPO)
    add_signing(config)  # COSIGN_PASSWORD not set
    run = Publisher(config, fake.address, tmp_path / "work").run()

    def build(*_: Any, **__: Any) -> None:
        raise AssertionError("built although the push could not sign")

    monkeypatch.setattr(run.engine, "build", build)
    with pytest.raises(SupplyChainError, match="COSIGN_PASSWORD is not set"):
        session.run_phases(run, ["build", "test", "push"])


def test_without_the_pinned_syft_a_signing_release_stops_before_the_build_and_the_push(
        pub: Publisher, fake: FakeRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tools = tmp_path / "tools"  # scripts/install-go-tools.sh syft never ran here
    settings.override(dataclasses.replace(settings.get(), tools_dir=tools))
    run = pub.run()

    def build(*_: Any, **__: Any) -> None:
        raise AssertionError("built although the push could not make SBOMs")

    monkeypatch.setattr(run.engine, "build", build)
    with pytest.raises(SupplyChainError) as info:
        session.run_phases(run, ["build", "test", "push"])
    assert str(info.value) == (
        f"no syft: {tools}/bin/syft is missing or not executable; run "
        f"`bash scripts/install-go-tools.sh syft` (builds the syft tools/go-tools.txt pins into "
        f"{tools}; set ORCH_TOOLS_DIR if it is elsewhere)")
    assert info.value.exit_code == ExitCode.TOOL  # the CLI prints it as one line, exit 3

    cosign = Cosign(fake)
    with pytest.raises(SupplyChainError, match=r"^no syft: "):
        do_push(run, all_or_nothing=False, tools=cosign.tools())
    assert fake.tags(REPO) == {} and cosign.cosign.calls == []  # nothing went up

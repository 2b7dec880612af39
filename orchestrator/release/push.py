"""The push phase and its tag-move policy.

Only tested candidates are pushed, under the cell's internal staging tag
(naming.staging_tag), never under a tag users pull; an unchanged image is not pushed again.
With ``signing:`` in images.yaml every pushed digest is signed and attested (release/attest.py)
by digest, and a cell that cannot be signed fails (phase ``sign``); with ``scan:`` the scan
gate reads each new digest and its attestations and refuses one that brings a new fixable
finding (phase ``scan``). Only an image that passed gets its immutable tag and then its public
tags, after every push (and signature, and scan) of the run went through
(``--all-or-nothing``: only when no cell failed at all); ``--stage-only`` gives it its
immutable tag and leaves the public ones to ``promote``. The staging tags go again at the end
whatever happened (``_unstage``): a refused or failed image is in the registry by digest only.
Refused credentials stop the run (exit 4); any other registry error fails its cell only.
"""

from __future__ import annotations

import time

from orchestrator import log, naming
from orchestrator.errors import EngineError, OrchestratorError, RegistryAuthError, SupplyChainError
from orchestrator.planning.plan import PlannedImage
from orchestrator.registry import Registry, fingerprint
from orchestrator.release import attest
from orchestrator.release.report import Status
from orchestrator.release.state import CellState, Run
from orchestrator.scan import gate as scan_gate
from orchestrator.scan import images as scan_images
from orchestrator.supplychain import sbom, verify
from orchestrator.supplychain.signing import Cosign

Pushed = list[tuple[PlannedImage, fingerprint.Published]]
_log = log.get("push")


def _ready(run: Run) -> list[tuple[PlannedImage, CellState]]:
    """The cells whose candidate is the image that passed its smoke tests."""
    ready: list[tuple[PlannedImage, CellState]] = []
    for img in run.plan.images:
        res = run.report.cell(img.id)
        if res.status in (Status.FAILED, Status.ABORTED):
            continue
        st = run.load_state(img.id)
        ref = run.candidate_ref(img.id)
        if not st.tested_image_id or not run.engine.exists(ref) \
                or run.engine.inspect(ref).id != st.tested_image_id:
            res.fail("push", "this image was not smoke-tested (or was rebuilt since); "
                     "run `orchestrator test` first")
            continue
        ready.append((img, st))
    return ready


def _skip(run: Run, images: list[PlannedImage], message: str) -> None:
    for img in images:
        run.report.cell(img.id).status = Status.SKIPPED
        run.report.cell(img.id).message = message


def _push_all(run: Run, registry: Registry, ready: list[tuple[PlannedImage, CellState]]) -> Pushed:
    """Push every ready candidate under its staging tag; no tag users pull changes here."""
    pushed: Pushed = []
    with run.progress.phase("push", len(ready), cells=[i.id for i, _ in ready]) as ph:
        for img, st in ready:
            with ph.cell(run.report.cell(img.id)):
                out = _push_one(run, registry, img, st)
            if out is not None:
                pushed.append((img, out))
    return pushed


def _push_one(run: Run, registry: Registry, img: PlannedImage,
              st: CellState) -> fingerprint.Published | None:
    """One candidate pushed by digest (None: its push failed, the cell says why)."""
    keys = run.label_keys
    res = run.report.cell(img.id)
    start = time.monotonic()
    try:
        fps = st.fingerprints or {img.platforms[0]: st.fingerprint}
        out = fingerprint.push_candidate(run.engine, registry, run.repo_host, run.repo, img,
                                     run.candidate_ref(img.id), fps,
                                     fingerprint.Contents(st.packages, ""),
                                     keys.fingerprint, keys.packages)
    except RegistryAuthError:
        raise
    except (OrchestratorError, EngineError) as exc:
        res.fail("push", str(exc))
        return None
    res.seconds["push"] = round(time.monotonic() - start, 1)
    res.publish, res.digest = out.outcome, out.digest
    res.package_changes = list(out.package_changes)  # immutable_tag: when it is given one
    res.compressed_bytes = out.compressed.get(img.platforms[0], 0)
    res.compressed = out.compressed
    res.repository = naming.repository_ref(run.repo_host, run.repo)
    res.tags = list(img.tags)
    return out


def _sign_all(run: Run, registry: Registry, pushed: Pushed, cosign: Cosign,
              syft: sbom.Syft) -> Pushed:
    """Sign and attest each pushed digest before any tag moves to it: a new or updated image
    always; an unchanged one only when its digest has no signature of the key yet (first
    pushed before ``signing:`` was configured), else it keeps the signatures and attestations
    of the push that published it. A cell that cannot be signed fails (phase ``sign``) and is
    left out of the tag moves; refused credentials stop the run."""
    name = naming.repository_ref(run.repo_host, run.repo)
    signed: Pushed = []
    with run.progress.phase("sign", len(pushed), cells=[i.id for i, _ in pushed]) as ph:
        for img, out in pushed:
            with ph.cell(run.report.cell(img.id)):
                ok = _sign_one(run, registry, img, out, name, cosign, syft)
            if ok:
                signed.append((img, out))
    return signed


def _still_attested(run: Run, registry: Registry, img: PlannedImage, digest: str,
                    cosign: Cosign) -> bool:
    """An unchanged digest keeps its attachments when they verify and its OpenVEX documents
    say what the current scan.vex rules would (a rule added or removed: attached again)."""
    v = verify.verify_digest(cosign, registry, run.repo, digest, perf=False)
    return v.ok and all(v.vex.get(plat, frozenset()) == want
                        for plat, want in attest.expected_vex(run, img).items())


def _sign_one(run: Run, registry: Registry, img: PlannedImage, out: fingerprint.Published, name: str,
              cosign: Cosign, syft: sbom.Syft) -> bool:
    """One pushed digest signed and attested (False: it could not be, the cell says why)."""
    res = run.report.cell(img.id)
    start = time.monotonic()
    try:
        if out.outcome == "unchanged" and _still_attested(run, registry, img, out.digest, cosign):
            res.signed = True
        else:
            got = attest.attach(run, img, out.digest, cosign, syft, registry=registry)
            res.signed, res.signatures, res.attestations = True, got.signed, got.attestations()
    except RegistryAuthError:
        raise
    except OrchestratorError as exc:
        res.fail("sign", f"{exc}\n{name}@{out.digest} is pushed but not signed: it gets "
                         "no tag")
        return False
    res.seconds["sign"] = round(time.monotonic() - start, 1)
    return True


def _move_tags(run: Run, registry: Registry, pushed: Pushed, stage_only: bool) -> None:
    """The images that passed every gate: each its immutable tag, then (unless
    ``stage_only``) its public tags."""
    for img, out in pushed:
        res = run.report.cell(img.id)
        if out.outcome == "unchanged":
            res.status, res.phase, res.message = Status.UNCHANGED, "push", "content unchanged"
            continue
        try:
            res.immutable_tag = fingerprint.publish_immutable(registry, run.repo, img, out.digest,
                                                              out.immutable_tag)
            if stage_only:
                res.tags_moved = [res.immutable_tag]
                res.status, res.phase = Status.OK, "staged"
                res.message = ("pushed, under its immutable tag only; public tags move with "
                               "`orchestrator promote`")
                continue
            res.tags_moved = [res.immutable_tag,
                              *fingerprint.move_tags(registry, run.repo, out.digest, img.tags)]
        except RegistryAuthError:
            raise  # as during pushes: refused credentials stop the run (exit 4)
        except OrchestratorError as exc:
            res.fail("tag", str(exc))
            continue
        res.status, res.phase = Status.OK, "push"
        if res.package_changes:
            res.message = f"{len(res.package_changes)} package change(s)"


def _unstage(run: Run, registry: Registry, ready: list[tuple[PlannedImage, CellState]],
             pushed: Pushed) -> None:
    """Remove the staging tag of every image this run tried to push, published or not (a
    push that failed half-way too): what no gate let through stays in the registry by digest
    only (its cell says so). A registry that deletes nothing keeps the tag, pointed at a
    placeholder (Registry.untag): said too."""
    name = naming.repository_ref(run.repo_host, run.repo)
    outs = {img.id: out for img, out in pushed}
    for img, _ in ready:
        out = outs.get(img.id)
        # every cell, unchanged or already published ones too: a run killed after the tags
        # moved and before this cleanup left its staging tag, and the rerun finds the image
        # published (no staging tag of its own) -- the tag must go all the same
        staged = out is not None and bool(out.staging_tag)
        tag = out.staging_tag if out is not None and staged else naming.staging_tag(img.id)
        res = run.report.cell(img.id)
        try:
            gone = registry.untag(run.repo, tag)
        except OrchestratorError as exc:  # credentials too: the run's own error comes first
            gone, why = False, f"removing it failed: {exc}"
        else:
            why = "the registry deletes no tag; it now points at a placeholder"
        if out is not None and staged and not res.immutable_tag:  # no gate let it through
            res.message += (f"\nnot published: {name}@{out.digest} has no tag, it is in the "
                            "registry by digest only")
        if not gone:
            res.message += f"\ninternal tag {tag} stays ({why})"
            _log.warning("staging tag stays", tag=tag, why=why)


def _gate_all(run: Run, registry: Registry, pushed: Pushed, gate: scan_gate.Gate,
              cosign: Cosign | None, syft: sbom.Syft | None) -> Pushed:
    """The pushed cells whose tags may move: each new digest scanned against the image its
    first public tag holds now (scan.gate); one that brings a gating finding fails (phase
    ``scan``) and gets no tag at all. Unchanged content is already published. grype reads the
    attested SBOMs with ``signing:``, else the SBOMs ``syft`` makes now (attest.built_sboms;
    no pinned syft: the images, the note says why)."""
    sboms = (scan_images.attested(cosign, scan_images.sbom_dir(run.work), gate.vex_advisories)
             if cosign is not None else None)
    no_syft = ""
    if sboms is None and syft is None:
        try:
            syft = attest.syft_for(run)
        except SupplyChainError as exc:
            no_syft = str(exc)
    keep: Pushed = []
    for img, out in pushed:
        res = run.report.cell(img.id)
        if out.outcome == "unchanged" or not img.tags:
            keep.append((img, out))
            continue
        start = time.monotonic()
        source = sboms or (attest.built_sboms(run, img, out.digest, syft, registry) if syft
                           else scan_images.without_sbom(no_syft))
        why = gate.check(registry, run.repo, img.id, out.digest, img.tags[0], source)
        res.seconds["scan"] = round(time.monotonic() - start, 1)
        if why is not None:
            res.fail("scan", why)
            continue
        keep.append((img, out))
    return keep


def _optional_syft(run: Run, tools: attest.Tools) -> sbom.Syft | None:
    """The pinned syft, or None when it is not there (the gate then says why)."""
    try:
        return attest.syft_for(run, tools)
    except SupplyChainError:
        return None


def do_push(run: Run, all_or_nothing: bool, stage_only: bool = False, *,
            tools: attest.Tools | None = None, gate: scan_gate.Gate | None = None) -> None:
    """Push, sign (with ``signing:``), the scan gate (with ``scan:``), then move tags.
    ``tools``: cosign and syft (tests); ``gate``: scan.gate.prepare's (its DB checked before
    the run built anything)."""
    tools = tools or attest.Tools()
    registry = run.registry()
    registry.ping()
    cosign = attest.cosign_for(run, tools)  # no key or password: stop before any push
    syft = attest.syft_for(run, tools) if cosign is not None else None  # nor without syft
    if cosign is None and gate is not None:  # the SBOMs the scan gate reads: made here
        syft = _optional_syft(run, tools)
    ready = _ready(run)
    bad = [c for c in run.report.cells.values() if c.status in (Status.FAILED, Status.ABORTED)]
    if all_or_nothing and bad:
        _skip(run, [img for img, _ in ready],
              f"--all-or-nothing: {len(bad)} cell(s) failed, nothing published")
        return
    pushed: Pushed = []
    try:  # a push stopped half-way (a login refused) leaves no staging tag either
        pushed = _push_all(run, registry, ready)
        _publish(run, registry, ready, pushed, all_or_nothing, stage_only, cosign, syft, gate)
    finally:
        _unstage(run, registry, ready, pushed)


def _publish(run: Run, registry: Registry, ready: list[tuple[PlannedImage, CellState]],
             pushed: Pushed, all_or_nothing: bool, stage_only: bool, cosign: Cosign | None,
             syft: sbom.Syft | None, gate: scan_gate.Gate | None) -> None:
    """Sign, scan, then tag what passed (``pushed``: the pushed images, by digest)."""
    if all_or_nothing and any(run.report.cell(i.id).status is Status.FAILED for i, _ in ready):
        _skip(run, [img for img, _ in pushed], "--all-or-nothing: a push failed, no tag moved")
        return
    if cosign is not None and syft is not None:
        pushed = _sign_all(run, registry, pushed, cosign, syft)
        if all_or_nothing and any(run.report.cell(i.id).status is Status.FAILED for i, _ in ready):
            _skip(run, [img for img, _ in pushed],
                  "--all-or-nothing: a signature failed, no tag moved")
            return
    if gate is not None:
        pushed = _gate_all(run, registry, pushed, gate, cosign, syft)
        if all_or_nothing and any(run.report.cell(i.id).status is Status.FAILED for i, _ in ready):
            _skip(run, [img for img, _ in pushed],
                  "--all-or-nothing: the scan gate refused an image, no tag moved")
            return
    _move_tags(run, registry, pushed, stage_only)

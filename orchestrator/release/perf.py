"""The perf phase (issue 33 item 4): with ``perf.enabled`` in images.yaml, between the smoke
tests and the push, every tested image that would publish new content gets a performance
record, and one measurably slower than the image it replaces is refused.

What is measured: the interpreter, on the build host's native platform only (arm64 runs under
QEMU here: its speed means nothing). The variants of one build (runtime, minimal, dev) copy
the same CPython tree, so one run per build measures them all: the runtime image's, else the
minimal's, else the dev's; every cell of the build gets the record and the verdict. The
baseline is the image the measured cell's first public tag holds now, pulled by digest; none
(a first publish) means the candidate is recorded and nothing refused. An image whose public
tags already hold its content (push would call it unchanged) is not measured: it keeps the
record of the push that published it.

A refused build fails every one of its cells (phase ``perf``, one line saying the figure, the
limit and the published image): nothing of it is pushed and no tag moves. A measurement that
cannot be made (a workload fails in either image, the two did different work, the published
image cannot be pulled) fails the build's cells too: an image the gate cannot judge is not
published. The figures go into the cell state (release/attest.py attests them beside the
SBOM), the JSON report (``perf`` of each cell) and ``<work>/perf/<cell>.json``. Labels are
baked before the smoke test and cannot carry them without changing the image.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator import log, naming, timestamps
from orchestrator.errors import EngineError, OrchestratorError, RegistryAuthError
from orchestrator.perf import compare, measure, predicate, pyperf_dir
from orchestrator.planning.plan import PlannedImage
from orchestrator.registry import Registry, fingerprint
from orchestrator.release.report import Status
from orchestrator.release.state import Run

_log = log.get("perf")
VARIANT_ORDER = ("runtime", "minimal", "dev")  # which cell of a build is measured


def _build_key(img: PlannedImage) -> tuple[str, str, str]:
    return (img.python, img.method, img.distro)


def _unchanged(run: Run, registry: Registry, img: PlannedImage) -> bool:
    """Every public tag already holds, on every platform, the content built now."""
    st = run.load_state(img.id)
    fps = st.fingerprints or {img.platforms[0]: st.fingerprint}
    current, _ = fingerprint.current_state(registry, run.repo, img, run.label_keys.fingerprint)
    return bool(current) and all(c == fps for c in current)


def _todo(run: Run, registry: Registry, native: str) -> list[list[PlannedImage]]:
    """The builds to measure, each its cells (the measured one first); the cells left out
    get a note in their report entry."""
    groups: dict[tuple[str, str, str], list[PlannedImage]] = {}
    for img in run.plan.images:
        res = run.report.cell(img.id)
        if res.status in (Status.FAILED, Status.ABORTED):
            continue
        st = run.load_state(img.id)
        if st.perf:  # a record stands only for the candidate it was made of, in this run
            st.perf = {}
            run.save_state(st)
        if not st.tested_image_id:
            continue  # push says why
        if native not in img.platforms:
            res.perf = {"skipped": f"no {native} image: {predicate.NATIVE_ONLY}"}
            continue
        if img.tags and _unchanged(run, registry, img):
            res.perf = {"skipped": "unchanged: it keeps the record of the push that published it"}
            continue
        groups.setdefault(_build_key(img), []).append(img)
    return [sorted(cells, key=lambda i: VARIANT_ORDER.index(i.variant)
                   if i.variant in VARIANT_ORDER else len(VARIANT_ORDER))
            for cells in groups.values()]


def _record(run: Run, registry: Registry, cells: list[PlannedImage], native: str,
            pyperf: Callable[[], tuple[Path, str]]) -> dict[str, Any]:
    """Measure the build of ``cells`` (its first cell) against what its first public tag
    holds; the record. OrchestratorError when it cannot be made."""
    img = cells[0]
    perf = run.config.perf
    st = run.load_state(img.id)
    name = naming.repository_ref(run.repo_host, run.repo)
    tag = img.tags[0] if img.tags else None
    digest = registry.digest(run.repo, tag) if tag else None
    published = None
    if digest is not None:
        published = measure.Subject(measure.PUBLISHED, naming.digested(name, digest))
        run.engine.pull(published.ref, platform=native)
    pyperf_path, pyperf_version = pyperf()
    try:
        m = measure.measure(
            run.engine, measure.Subject(measure.CANDIDATE, run.candidate_ref(img.id)), published,
            interpreter=naming.interpreter(run.prefix(img)), pyperf_dir=pyperf_path, perf=perf,
            uid=run.config.runtime_user.uid, platform=native,
            on_run=lambda r: _log.info("perf run", image=img.id, subject=r.image, round=r.round,
                                       seconds=round(r.seconds, 1)))
    finally:
        if published is not None:
            run.engine.remove(published.ref)
    verdict = compare.judge(m.values(measure.CANDIDATE),
                            m.values(measure.PUBLISHED) if published else None,
                            perf.max_slowdown, m.rounds())
    return predicate.record(
        m, verdict, cell=img.id, measured_cell=img.id, platform=native,
        image_id=st.tested_image_id,
        published_ref=naming.tagged(name, tag) if tag and digest else None,
        published_digest=digest, rounds=perf.rounds, args=measure.pyperf_args(perf),
        pyperf=pyperf_version, measured_at=timestamps.now())


def _refusal(record: dict[str, Any], measured: str) -> str:
    published = record.get("published")
    ref = published.get("ref", "") if isinstance(published, dict) else ""
    digest = published.get("digest", "") if isinstance(published, dict) else ""
    return (f"perf gate: {record['summary']} against {ref} ({digest}), measured in {measured}; "
            "nothing of it is pushed and no tag moves; find the regression (per workload in "
            "the report's perf entry), or raise perf.max_slowdown if the noise calls for it")


def do_perf(run: Run) -> None:
    """Measure, record and judge every build whose images would publish new content."""
    native = run.config.build.native_platform
    registry = run.registry()
    groups = _todo(run, registry, native)
    prepared: list[tuple[Path, str]] = []

    def pyperf() -> tuple[Path, str]:  # copied once, for the first measurement
        if not prepared:
            prepared.append((pyperf_dir.prepare(naming.perf_dir(run.work) / "pyperf"),
                             pyperf_dir.version()))
        return prepared[0]

    cells = [i.id for g in groups for i in g]
    with run.progress.phase("perf", len(cells), cells=cells) as ph:
        for group in groups:
            head = run.report.cell(group[0].id)
            with ph.cell(head):
                record: dict[str, Any] | None = None
                try:
                    made = _record(run, registry, group, native, pyperf)
                    record, why = made, (_refusal(made, group[0].id)
                                         if made["verdict"] == "refused" else "")
                except RegistryAuthError:
                    raise
                except (OrchestratorError, EngineError, ValueError) as exc:
                    record, why = None, (f"perf: the performance record could not be made ({exc}); "
                                         "an image the gate cannot judge is not published")
                _apply(run, group[0], record, why)
            for img in group[1:]:
                with ph.cell(run.report.cell(img.id)):
                    _apply(run, img, record, why)


def _apply(run: Run, img: PlannedImage, record: dict[str, Any] | None, why: str) -> None:
    """``record`` (the build's, measured in its first cell) made ``img``'s: its cell and the
    image it is about (what attest checks before attesting it); ``why``: it is refused."""
    res = run.report.cell(img.id)
    if record is not None:
        st = run.load_state(img.id)
        record = {**record, "cell": img.id,
                  "candidate": {**record["candidate"], "image_id": st.tested_image_id}}
        st.perf = record
        run.save_state(st)
        res.perf = record
        out = naming.perf_dir(run.work) / f"{img.id}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=2) + "\n")
    if why:
        res.fail("perf", why)

"""The build phase: every selected cell built with BuildKit, shared stages once; a failed
stage aborts the cells that need it, with what failed and why in words."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator import log, naming, render, timestamps
from orchestrator.config.model import ImagesConfig, Loaded
from orchestrator.engine import BuildFailed, failed_stage, is_progress_line
from orchestrator.errors import OrchestratorError, UsageError
from orchestrator.lock.lockfile import Lock
from orchestrator.planning.plan import Plan, PlannedImage
from orchestrator.release.label import label
from orchestrator.release.report import CellResult, Status
from orchestrator.release.state import Run, build_order

_log = log.get("pipeline")


def _blocked_by(run: Run, img: PlannedImage) -> str | None:
    for scope, k in naming.failure_keys(img.distro, img.python, img.method).items():
        if scope == "runtime" and img.variant == "minimal":
            continue  # FROM scratch: its stages never build on the runtime stage
        if k in run.failed_stages:
            return run.failed_stages[k]
    return None


def _record_failure(run: Run, img: PlannedImage, stage: str | None, reason: str) -> None:
    scope = naming.failure_scope(stage)
    if scope is not None:
        key = naming.failure_keys(img.distro, img.python, img.method)[scope]
        what = f"{stage or 'build'} failed" if scope == "distro" else f"stage {stage} failed"
        run.failed_stages[key] = f"{img.id}: {what}"


def bake_targets(loaded: Loaded, lock: Lock) -> tuple[Path, dict[str, Any]]:
    """The directory of docker-bake.json and its targets, once the generated files are
    known to be current."""
    bake_file = (loaded.output_dir / naming.BAKE_FILE).resolve()
    problems = render.check(loaded, render.render_all(loaded, lock))
    if problems:
        raise UsageError(f"generated files are stale ({problems[0]}); run `orchestrator render`")
    targets: dict[str, Any] = json.loads(bake_file.read_text())["target"]
    return bake_file.parent, targets


def build_args(config: ImagesConfig, profile: str, img: PlannedImage, spec: dict[str, Any], *,
               security_refresh: str, source_date_epoch: int | None) -> dict[str, str]:
    """A cell's build args: its bake target's, the profile's (compiles), the refresh value
    and SOURCE_DATE_EPOCH."""
    args = {str(k): str(v) for k, v in spec.get("args", {}).items()}
    args["SECURITY_REFRESH"] = security_refresh
    if img.build:
        args |= render.profile_args(config, profile)
    if source_date_epoch is not None:
        args["SOURCE_DATE_EPOCH"] = str(source_date_epoch)
    return args


def do_build(run: Run) -> None:
    bake_dir, targets = bake_targets(run.loaded, run.lock)
    order = build_order(run.plan.images)
    with run.progress.phase("build", len(order), compiles=planned_compiles(run.plan),
                            cells=[i.id for i in order]) as ph:
        for img in order:
            res = run.report.cell(img.id)
            with ph.cell(res):
                _build_one(run, img, res, bake_dir, targets)


def planned_compiles(plan: Plan) -> int:
    """The CPython compiles (native and cross) the plan's images use."""
    ids = {img.id for img in plan.images}
    return sum(1 for b in plan.builds if ids.intersection(b.images))


def _build_one(run: Run, img: PlannedImage, res: CellResult, bake_dir: Path,
               targets: dict[str, Any]) -> None:
    """One cell: aborted when a stage it needs failed, refused without a pinned base."""
    blocked = _blocked_by(run, img)
    if blocked:
        res.abort(blocked)
        return
    base = run.lock.base(img.distro)
    if base.digest is None:
        res.fail("build", f"base image {base.image} is not pinned in images.lock; "
                 "run `orchestrator lock` where its registry is reachable")
        _record_failure(run, img, "base", res.message)
        return
    _build_cell(run, img, res, bake_dir, targets[img.bake_target], base.digest)


def _build_cell(run: Run, img: PlannedImage, res: CellResult, bake_dir: Path,
                spec: dict[str, Any], base_digest: str) -> None:
    """Build one cell from its target in docker-bake.json, then label it."""
    args = build_args(run.config, run.plan.profile, img, spec,
                      security_refresh=run.security_refresh,
                      source_date_epoch=run.source_date_epoch)
    log_path = run.work / "logs" / f"{img.id}.build.log"
    _log.info("build", image=img.id, target=img.target, log=str(log_path))
    context = bake_dir / spec["context"]
    started = timestamps.now()
    try:
        outcome = run.engine.build(
            context, dockerfile=context / spec.get("dockerfile", naming.DOCKERFILE),
            target=spec["target"], tags=[run.unlabelled_ref(img.id)], args=args,
            labels=spec.get("labels", {}), network=run.network,
            cache_from=img.cache.cache_from(), cache_to=img.cache.cache_to(),
            log_path=log_path, on_line=_progress(img.id, run.verbose),
            platforms=list(img.platforms),
            rewrite_timestamps=(run.config.build.rewrite_timestamps
                                and run.source_date_epoch is not None))
    except BuildFailed as exc:
        stage = failed_stage(exc.log_path)
        res.fail("build", explain_build_failure(exc.summary, stage))
        res.log = str(exc.log_path)
        _record_failure(run, img, stage, res.message)
        _log.error("build failed", image=img.id, stage=stage, log=str(exc.log_path))
        return
    res.seconds["build"] = round(outcome.seconds, 1)
    res.compiled = [naming.stage_id(img.distro, s) for s in outcome.compiled]
    run.report.compiles += [c for c in res.compiled if c not in run.report.compiles]
    res.log = str(log_path)
    try:
        label(run, img, outcome.image_id, base_digest)
    except OrchestratorError as exc:
        res.fail("build", f"labelling failed: {exc}")
        return
    st = run.load_state(img.id)
    st.build_args, st.build_started, st.build_finished = args, started, timestamps.now()
    run.save_state(st)
    res.status, res.phase = Status.OK, "build"


def _progress(image_id: str, verbose: bool) -> Callable[[str], None]:
    def on_line(line: str) -> None:
        if verbose:
            print(f"[{image_id}] {line}", file=sys.stderr)
        elif is_progress_line(line):
            _log.info("step", image=image_id, line=line[:160])

    return on_line


def explain_build_failure(summary: str, stage: str | None) -> str:
    low = summary.lower()
    if "checksum" in low or "digest mismatch" in low or ("sha256" in low and "mismatch" in low):
        return (f"a downloaded source does not match the sha256 pinned in images.lock "
                f"(stage {stage}): the mirror serves different bytes. Check the mirror; if the "
                f"release really changed, run `orchestrator lock --upgrade`.\n{summary}")
    if "validsig" in low or ("gpg" in low and "verify" in low):
        return f"the CPython tarball's OpenPGP signature did not verify (stage {stage}).\n{summary}"
    return f"stage {stage or '?'} failed\n{summary}"

"""The test phase: every built candidate smoke-tested on each of its platforms, in throwaway
containers; only a cell whose checks all pass may be pushed."""

from __future__ import annotations

import sys
import time

from orchestrator import log
from orchestrator.config import matrix
from orchestrator.planning.plan import PlannedImage, profile_of
from orchestrator.release.report import CellResult, Status
from orchestrator.release.state import CellState, Run, build_order
from orchestrator.smoke import app, hardening, suite

_log = log.get("pipeline")


def _platform_checks(run: Run, img: PlannedImage, ref: str, plat: str, size_bytes: int,
                     app_dev_ref: str | None) -> list[suite.CheckResult]:
    """Every check on one platform (arm64 under emulation: generous timeouts)."""
    config = run.config
    native = plat == config.build.native_platform
    label = None if native else plat
    prefix = run.prefix(img)
    results = suite.run_checks(run.engine, ref, img, uid=config.runtime_user.uid,
                               prefix=prefix, tls_url=config.sources.pypi,
                               platform=plat, timeout=600 if native else 1800, label=label,
                               fail_on_purpose=plat == run.settings.smoke_fail_platform)
    results.append(suite.size_check(img, size_bytes, label=label))
    if img.build:
        policy = hardening.hardening_policy(
            config.build.hardening.disable,
            lto="lto" in (img.optimizations or {}).get(plat, ""),
            frame_pointers=profile_of(config, run.plan.profile).frame_pointers)
        results.append(hardening.hardening_check(run.engine, ref, img, prefix, plat, policy,
                                             label=label))
    if app_dev_ref:
        results.append(app.app_check(run.engine, app_dev_ref, ref, img, prefix, run.network,
                                       run.work / "logs", platform=plat, label=label))
    return results


def _app_dev_ref(run: Run, img: PlannedImage) -> str | None:
    """The dev image to build the downstream app with, for a runtime or minimal image whose
    dev built."""
    dev_id = matrix.Cell(img.python, img.method, img.distro, "dev").id
    with_app = (img.variant in ("runtime", "minimal") and bool(run.load_state(dev_id).image_id)
                and run.report.cell(dev_id).status is not Status.FAILED)
    return run.candidate_ref(dev_id) if with_app else None


def _withdraw(run: Run, st: CellState) -> None:
    """Forget an earlier pass of this cell: push publishes only what the last test passed."""
    if st.tested_image_id:
        st.tested_image_id = ""
        run.save_state(st)


def do_test(run: Run) -> None:
    """Smoke-test each built candidate on every one of its platforms. Only a cell whose checks
    all passed, on every platform, is marked tested (``tested_image_id``, which push
    requires); testing a cell first withdraws any earlier pass, so a failed (or interrupted)
    re-test leaves nothing a later `orchestrator push` would publish."""
    todo = [img for img in build_order(run.plan.images)
            if run.report.cell(img.id).status not in (Status.FAILED, Status.ABORTED)]
    with run.progress.phase("test", len(todo), cells=[i.id for i in todo]) as ph:
        for img in todo:
            res = run.report.cell(img.id)
            with ph.cell(res):
                _test_cell(run, img, res)


def _test_cell(run: Run, img: PlannedImage, res: CellResult) -> None:
    """Every check of one built cell on each of its platforms."""
    st = run.load_state(img.id)
    if img.depends_on and run.report.cell(img.depends_on).status is Status.FAILED:
        res.abort(f"its runtime image {img.depends_on} failed; dev is published only with it")
        _withdraw(run, st)
        return
    ref = run.candidate_ref(img.id)
    if not st.image_id or not run.engine.exists(ref) or run.engine.inspect(ref).id != st.image_id:
        res.fail("test", "no built image for this cell; run `orchestrator build` first")
        return
    _withdraw(run, st)  # an earlier pass stands only until this test says otherwise
    start = time.monotonic()
    app_dev = _app_dev_ref(run, img)
    per_platform = {plat: _platform_checks(run, img, ref, plat,
                                           st.sizes.get(plat, st.size_bytes), app_dev)
                    for plat in img.platforms}
    results = [r for found in per_platform.values() for r in found]
    res.checks = [{"check": r.check, "ok": r.ok, "problem": r.problem,
                   "seconds": round(r.seconds, 1)} for r in results]
    res.seconds["test"] = round(time.monotonic() - start, 1)
    failed = [r for r in results if not r.ok]
    if failed:
        res.fail("test", "\n".join(r.describe() for r in failed))
        for r in failed:
            _log.error("smoke test failed", image=img.id, check=r.check, problem=r.problem)
            print(r.describe(), file=sys.stderr)
        return
    st.tested_image_id = st.image_id
    st.components = {plat: suite.components(r.output) for plat, found in per_platform.items()
                     for r in found if r.check.split(" [")[0] == suite.COMPONENTS}
    run.save_state(st)
    res.status, res.phase = Status.OK, "test"

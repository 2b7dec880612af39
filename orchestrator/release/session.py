"""A run of release phases from start to report: plan, engine, phases, report files."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Collection

from orchestrator.config.model import Loaded
from orchestrator.engine import Engine
from orchestrator.lock import lockfile
from orchestrator.planning import build_cache, epoch, plan
from orchestrator.release import attest
from orchestrator.release.build import do_build
from orchestrator.release.perf import do_perf
from orchestrator.release.progress import Progress
from orchestrator.release.push import do_push
from orchestrator.release.report import Report, Status, report_path
from orchestrator.release.smoketest import do_test
from orchestrator.release.state import Run, state_dir, work_dir
from orchestrator.scan import gate
from orchestrator.settings import Settings


def start_run(loaded: Loaded, command: str, engine: Callable[[], Engine], *, settings: Settings,
              only: list[str] | None, profile: str | None, shard: str | None,
              cache: build_cache.CacheOptions, network: str | None, verbose: bool = False,
              security_refresh: str = "0") -> Run:
    """Check the lock, plan, then start the engine (a config or lock problem is reported
    before a missing engine). ``settings``: what the command read of the environment (the
    run keeps it for its phases); ``network`` None: build.network of images.yaml."""
    lock = lockfile.read(loaded)
    lockfile.check_against(loaded, lock)
    planned = plan.build(loaded, lock, only=only, profile=profile, today=settings.today,
                         shard=shard, ci=settings.ci, cache=cache)
    report = Report(command, planned.profile, planned.date)
    for img in planned.images:
        report.cell(img.id)
    net = network or loaded.config.build.network
    when = epoch.find(loaded, settings)
    work = work_dir(loaded, settings)
    progress = Progress.for_command(command, state_dir(work), settings)
    return Run(loaded, lock, planned, report, work, engine(),
               security_refresh=security_refresh, network=None if net == "default" else net,
               verbose=verbose, source_date_epoch=when.value if when else None,
               progress=progress, settings=settings,
               platforms={img.id: img.platforms for img in planned.images})


def run_phases(run: Run, phases: Collection[str], *, all_or_nothing: bool = False,
               stage_only: bool = False) -> None:
    signs = "push" in phases and attest.cosign_for(run) is not None  # a key missing: say so now
    if signs:
        attest.syft_for(run)  # and the pinned syft (the SBOMs): before hours of building
    # with scan: the DB is checked before anything is built (no scanner or a bad DB: exit 3)
    checker = gate.prepare(run.config, run.loaded.root, run.settings) if "push" in phases else None
    if checker is not None:
        run.scan_db = checker.provenance_record()
    measures = "push" in phases and run.config.perf.enabled  # the perf gate, before any push
    order = [p for p in ("build", "test") if p in phases] + (["perf"] if measures else []) \
        + (["push"] if "push" in phases else []) + (["sign"] if signs else [])
    run.progress.expect(order, [img.id for img in run.plan.images])
    if "build" in phases:
        do_build(run)
    else:
        for img in run.plan.images:
            run.report.cell(img.id).status = Status.OK
    if "test" in phases:
        do_test(run)
    if measures:
        do_perf(run)
    if "push" in phases:
        do_push(run, all_or_nothing, stage_only, gate=checker)


def finish(run: Run, report_file: str | None, start: float) -> int:
    """Write the report (JSON and JUnit), print its table; the run's exit code."""
    run.report.seconds = round(time.monotonic() - start, 1)
    run.progress.save()
    out = report_path(report_file, run.work, run.report.command)
    xml = run.report.write(out)
    sys.stdout.write(run.report.table(run.platforms))
    print(f"report: {out} (JUnit: {xml})")
    return run.report.exit_code

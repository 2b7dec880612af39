"""build, test, push, release, nightly, promote: the commands that use the engine and the
registry (orchestrator.release does the work)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

from orchestrator import naming, registry, settings
from orchestrator.apt.outdated import Ledger
from orchestrator.cli.common import SubParsers, engine_for, load_config, load_plan
from orchestrator.planning import build_cache
from orchestrator.release import apt_check, nightly, promote, session
from orchestrator.release.report import report_path
from orchestrator.release.state import work_dir
from orchestrator.scan import gate, images
from orchestrator.supplychain import signing, verify


def _run_phases(args: argparse.Namespace, name: str, phases: list[str],
                refresh: str = "0") -> int:
    start = time.monotonic()
    loaded = load_config(args)
    run = session.start_run(
        loaded, name, lambda: engine_for(args, loaded), settings=settings.get(),
        only=args.only, profile=args.profile,
        shard=getattr(args, "shard", None), cache=build_cache.options_from(args),
        network=getattr(args, "network", None), verbose=args.verbose, security_refresh=refresh)
    checks = nightly.fast_path(run, args.full_refresh) if name == "nightly" else None
    session.run_phases(run, phases, all_or_nothing=getattr(args, "all_or_nothing", False),
                       stage_only=getattr(args, "stage_only", False))
    if checks is not None:
        nightly.security_report(run, checks)
        nightly.scan_report(run)  # with scan:: the advisories first seen since last night
    return session.finish(run, args.report, start)


def cmd_build(args: argparse.Namespace) -> int:
    return _run_phases(args, "build", ["build"], args.security_refresh or "0")


def cmd_test(args: argparse.Namespace) -> int:
    return _run_phases(args, "test", ["test"])


def cmd_push(args: argparse.Namespace) -> int:
    return _run_phases(args, "push", ["push"])


def cmd_release(args: argparse.Namespace) -> int:
    return _run_phases(args, "release", ["build", "test", "push"], args.security_refresh or "0")


def cmd_nightly(args: argparse.Namespace) -> int:
    refresh = args.security_refresh or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return _run_phases(args, "nightly", ["build", "test", "push"], refresh)


def cmd_outdated(args: argparse.Namespace) -> int:
    """What apt would upgrade in each published image (no pull, no build)."""
    loaded, plan = load_plan(args)
    st = settings.get()
    client = registry.registry_for(loaded.config.publish.registry, st)
    report = apt_check.check_all(loaded.config, client, plan.images,
                                 naming.label_keys(loaded.config.publish.org), st.cache_dir)
    Ledger.record(work_dir(loaded, st), report, st.today)
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    sys.stdout.write(report.table())
    return report.exit_code


def cmd_promote(args: argparse.Namespace) -> int:
    """Move the public tags of images staged by `--stage-only` runs (e.g. one per CI shard)."""
    start = time.monotonic()
    loaded = load_config(args)
    st = settings.get()
    cells = promote.read_staged(args.reports)
    client = registry.registry_for(loaded.config.publish.registry, st)
    sig, signature_gate, cosign = loaded.config.signing, None, None
    if sig is not None and sig.required:  # refuse digests that are unsigned or do not verify
        cosign = signing.Cosign(signing.keys_for(sig, loaded.root, str(loaded.path)),
                                st.child_env({}))
        signature_gate = verify.promote_gate(cosign, client)
    scan = None
    checker = gate.prepare(loaded.config, loaded.root, st)  # bad DB: exit 3 now
    if checker is not None:  # with scan: refuse digests that bring a new fixable finding
        if sig is not None and cosign is None:  # the attested SBOMs verify with the key
            cosign = signing.Cosign(signing.keys_for(sig, loaded.root, str(loaded.path)),
                                    st.child_env({}))
        work = work_dir(loaded, st)
        sboms = (images.attested(cosign, images.sbom_dir(work), checker.vex_advisories)
                 if cosign is not None else images.made_by_push(work))
        scan = gate.promote_gate(checker, client, sboms)
    report = promote.promote(cells, client, all_or_nothing=args.all_or_nothing,
                             today=st.today, gate=signature_gate, scan=scan)
    report.seconds = round(time.monotonic() - start, 1)
    report.write(report_path(args.report, work_dir(loaded, st), "promote"))
    sys.stdout.write(report.table({c["id"]: c.get("platforms") or () for c in cells}))
    return report.exit_code


_HELPS = {
    "build": "build the selected cells with BuildKit (shared stages built once)",
    "test": "smoke-test built images in throwaway containers",
    "push": "push tested images by digest, then move their tags",
    "release": "build, test and push",
    "nightly": "release with the security-updates layer refreshed; unchanged images are "
               "not pushed",
}


def _add_phase_parser(sub: SubParsers, name: str, common: argparse.ArgumentParser,
                      sel: argparse.ArgumentParser) -> None:
    p = sub.add_parser(name, parents=[common, sel], help=_HELPS[name])
    p.add_argument("--report", metavar="FILE",
                   help="write the JSON report here (JUnit XML next to it, .xml)")
    p.add_argument("--shard", metavar="I/N", help="only shard I of N")
    if name in ("build", "release", "nightly"):
        p.add_argument("--network", choices=["host", "default", "none"],
                       help="build network (default: build.network in images.yaml)")
        p.add_argument("--builder", help="buildx builder (remote BuildKit, k8s driver)")
        build_cache.add_arguments(p)
        p.add_argument("--security-refresh", metavar="TOKEN",
                       help="value that busts the security-updates cache "
                            "(nightly: the current time)")
    if name == "nightly":
        p.add_argument("--full-refresh", action="store_true",
                       help="rebuild and re-test every image, even those `outdated` finds up to "
                            "date with unchanged inputs (e.g. weekly)")
    if name in ("push", "release", "nightly"):
        p.add_argument("--all-or-nothing", action="store_true",
                       help="move no tag at all when any cell failed")
        p.add_argument("--stage-only", action="store_true",
                       help="push tested images by digest (immutable tag) but move no public "
                            "tag; `orchestrator promote REPORT...` moves them later")


def add_parsers(sub: SubParsers, common: argparse.ArgumentParser,
                sel: argparse.ArgumentParser) -> None:
    for name in _HELPS:
        _add_phase_parser(sub, name, common, sel)
    p = sub.add_parser("outdated", parents=[common, sel],
                       help="what apt would upgrade in each published image, from its labels and "
                            "the archives' indices (exit 0: up to date, 100: updates pending)")
    p.add_argument("--json", metavar="FILE", help="also write the result as JSON here")
    p = sub.add_parser("promote", parents=[common],
                       help="move the public tags of images staged by --stage-only runs")
    p.add_argument("reports", nargs="+", metavar="REPORT", help="JSON reports of the staging runs")
    p.add_argument("--all-or-nothing", action="store_true",
                   help="move nothing when any cell in any report failed")
    p.add_argument("--report", metavar="FILE", help="write the promote report here")

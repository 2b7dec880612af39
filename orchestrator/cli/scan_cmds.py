"""scan: grype on every published image, per platform, with the DB images.yaml pins."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path

from orchestrator import registry, settings
from orchestrator.cli.common import SubParsers, load_plan
from orchestrator.config.publish import SEVERITIES
from orchestrator.errors import UsageError
from orchestrator.planning.plan import PlannedImage
from orchestrator.release.progress import Progress
from orchestrator.release.report import CellResult, Status
from orchestrator.release.state import state_dir, work_dir
from orchestrator.scan import gitlab, images
from orchestrator.scan.grype import Grype, find_binary
from orchestrator.scan.models import ImageScan, ScanReport
from orchestrator.scan.report import Ledger, image_status, image_why, table
from orchestrator.supplychain import signing


def cmd_scan(args: argparse.Namespace) -> int:
    """Exit 0: nothing gates; 1: a fixable finding at or above the gate; 3: the scanner, the DB
    or an image could not be read."""
    loaded, plan = load_plan(args)
    cfg = loaded.config.scan
    if cfg is None:
        raise UsageError(f"{loaded.path}: no scan: section, so no vulnerability DB to scan with; "
                         "add scan.db (url or file, and sha256) as docs/supply-chain.md shows")
    st = settings.get()
    started = dt.datetime.now(dt.UTC)
    grype = Grype(find_binary(st.tools_dir), st.cache_dir / "scan", st.child_env({}))
    db = grype.prepare(cfg.db, loaded.root, max_age_days=cfg.max_age_days,
                       now=dt.datetime.now(dt.UTC))
    client = registry.registry_for(loaded.config.publish.registry, st)
    work = work_dir(loaded, st)
    sboms: images.EvidenceSource = images.made_by_push(work)
    if loaded.config.signing is not None:
        cosign = signing.Cosign(signing.keys_for(loaded.config.signing, loaded.root,
                                                 str(loaded.path)), st.child_env({}))
        sboms = images.attested(cosign, images.sbom_dir(work),
                                frozenset(r.advisory for r in cfg.vex))
    # a line per image on stderr (k/n, its time, the elapsed total; GitLab sections in CI), and
    # on a terminal the live status; stdout is the report
    progress = Progress.for_command("scan", state_dir(work), st)
    with progress.phase("scan", len(plan.images), cells=[i.id for i in plan.images]) as ph:
        def around(img: PlannedImage, scan_one: Callable[[], ImageScan]) -> ImageScan:
            res = CellResult(img.id)
            with ph.cell(res):
                done = scan_one()
                progress_result(res, done)
            return done

        report = images.scan_all(client, loaded.config.publish.repository, plan.images,
                                 grype, sboms, cfg,
                                 ScanReport(db, args.fail_on or cfg.fail_on), st.today,
                                 around=around)
    progress.save()
    ledger = Ledger(work / "scan-first-seen.json")
    ledger.stamp(report, st.today)
    ledger.save()
    if args.json:
        write_json("--json", Path(args.json), report.to_dict())
    if args.gitlab_report:
        distros = loaded.config.distros
        systems = {img.id: f"{distros[img.distro].family} {distros[img.distro].release} "
                           f"({img.distro})" for img in plan.images if img.distro in distros}
        write_json("--gitlab-report", Path(args.gitlab_report),
                   gitlab.report_for(report, started=started, finished=dt.datetime.now(dt.UTC),
                                     operating_systems=systems,
                                     vendor=loaded.config.publish.org))
    sys.stdout.write(table(report, {img.id: img.platforms for img in plan.images}))
    return report.exit_code


def write_json(option: str, out: Path, data: object) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        raise UsageError(f"{option} {out}: cannot write it ({exc.strerror})") from None


def progress_result(res: CellResult, scan: ImageScan) -> None:
    """An image's scan as the progress line tells it: ok (scanned, nothing gates), failed
    (not scanned, or a finding gates: with the line that says why), skipped (unpublished)."""
    status, why = image_status(scan), image_why(scan)
    if status == "scanned":
        res.status = Status.OK
    elif status == "unpublished":
        res.status, res.message = Status.SKIPPED, why
    else:
        res.fail("scan", why if status == "error" else f"gating: {why}")


def add_parsers(sub: SubParsers, common: argparse.ArgumentParser,
                sel: argparse.ArgumentParser) -> None:
    p = sub.add_parser("scan", parents=[common, sel],
                       help="scan every published image (per platform, by digest; its attested "
                            "SBOM when signing: verifies it) with grype and the DB scan.db pins")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.add_argument("--gitlab-report", metavar="FILE",
                   help="also write it as GitLab's container-scanning report (schema "
                        f"{gitlab.SCHEMA_VERSION}; artifacts:reports:container_scanning)")
    p.add_argument("--fail-on", choices=SEVERITIES, metavar="SEVERITY",
                   help="gate severity (default: scan.fail_on): " + ", ".join(SEVERITIES))

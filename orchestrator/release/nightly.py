"""The nightly's fast path and its security report.

Before anything is built, every selected image is checked against the registry and the distro
archives (release/apt_check.py). A group of images (the runtime and dev images of one
distro/Python/method: dev is FROM runtime, so they refresh together) is ``unchanged`` without
a build, a smoke test or a push when, for every image of the group: its public tags all point
at one published image that has every planned platform, that image was built from the inputs
the plan has now (label ``inputs``: base digest, rendered stages, build args, settings), and
apt would upgrade nothing in it. Every other group, and every group this cannot tell about
(no label, an archive that does not answer or verify), takes the full refresh path.
``--full-refresh`` sends every group that way.

After the phases, the report says per image which security updates it took, and for an image
that could not be published, which ones its published image still lacks and since when. With
``scan:`` in images.yaml it also lists per image the advisories first seen since the previous
night (``scan_report``): the image each cell leaves behind is scanned, and the scan's ledger
(scan-first-seen.json, the one ``orchestrator scan`` keeps) says which findings are new.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator import log, naming
from orchestrator.apt.index import utc_now
from orchestrator.apt.outdated import CellCheck, Ledger, OutdatedReport, State
from orchestrator.errors import RegistryError, ScanError, SupplyChainError
from orchestrator.planning.plan import Plan, PlannedImage
from orchestrator.registry import Registry
from orchestrator.release import attest
from orchestrator.release.apt_check import check_all
from orchestrator.release.label import inputs_hash
from orchestrator.release.report import Report, Status
from orchestrator.release.state import Run
from orchestrator.scan import gate, images, report
from orchestrator.scan.models import ImageScan, ScanReport
from orchestrator.supplychain import signing

_log = log.get("nightly")


@dataclass
class NightlyReport(Report):
    """The nightly's report: with ``scan:``, per image the advisories first seen since the
    previous night (``scan_report``), in the JSON report and after the table."""

    # cell -> {advisory, package, installed, fixed_in, severity, fix_state, platform, since,
    # vex, ignored}: the findings the scan's ledger had not seen before tonight
    new_advisories: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    scan_notes: list[str] = field(default_factory=list)  # what was scanned, with which DB
    # every image the nightly planned, the fast path's too (the run's plan loses those): for
    # the scan's SBOMs; not in the JSON report
    planned: dict[str, PlannedImage] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.pop("planned", None)
        return out

    @classmethod
    def of(cls, other: Report) -> NightlyReport:
        if isinstance(other, cls):
            return other
        return cls(**{f.name: getattr(other, f.name) for f in dataclasses.fields(Report)})

    def table(self, platforms: Mapping[str, Sequence[str]] | None = None) -> str:
        lines = [super().table(platforms), *(f"{n}\n" for n in self.scan_notes)]
        for cell, found in self.new_advisories.items():
            for a in found:
                fixed = f"fixed in {a['fixed_in']}" if a["fixed_in"] else "no fix yet"
                lines.append(f"{cell}: new advisory {a['advisory']} in {a['package']} "
                             f"{a['installed']} ({a['platform']}, {a['severity']}, {fixed}; "
                             f"first seen {a['since']})\n")
        return "".join(lines)


def _group(img: PlannedImage) -> tuple[str, str, str]:
    return (img.distro, img.python, img.method)


def why_refresh(run: Run, img: PlannedImage, check: CellCheck) -> str | None:
    """Why ``img`` needs the refresh path (None: it does not)."""
    if check.state is not State.UP_TO_DATE:
        if check.state is State.PENDING:
            n = sum(len(p.upgrades) for p in check.platforms)
            sec = len(check.security)
            return f"{n} pending apt upgrade(s), {sec} from a security suite"
        return f"{check.state.value}: {check.reason}"
    base = run.lock.base(img.distro).digest
    if base is None or check.inputs != inputs_hash(run, img, base):
        return "built from other inputs (images.yaml, images.lock, stages or base changed)"
    reg = run.registry()
    for tag in img.tags:
        if reg.digest(run.repo, tag) != check.digest:
            return f"tag {tag} does not point at {check.digest}"
    return None


def fast_path(run: Run, full_refresh: bool, *,
              now: Callable[[], dt.datetime] = utc_now) -> OutdatedReport:
    """Check every planned image; drop the groups that need nothing from the run's plan
    (their cells: unchanged); say in the report why each other image is rebuilt. Returns the
    checks (the report uses them after the run). ``now``: the archives' Valid-Until clock."""
    run.report = NightlyReport.of(run.report)
    run.report.planned.update({img.id: img for img in run.plan.images})
    checks = check_all(run.config, run.registry(), run.plan.images, run.label_keys,
                       run.settings.cache_dir, now=now)
    Ledger.record(run.work, checks, run.settings.today)
    by_id = {c.cell: c for c in checks.cells}
    if full_refresh:
        run.report.notes.append("nightly --full-refresh: every image rebuilt and re-tested")
        _refresh(run, run.plan.images, dict.fromkeys(by_id, "--full-refresh"), by_id)
        return checks
    reasons = {img.id: why_refresh(run, img, by_id[img.id]) for img in run.plan.images}
    groups: dict[tuple[str, str, str], str] = {}
    for img in run.plan.images:
        why = reasons[img.id]
        if why:
            groups.setdefault(_group(img), f"its group refreshes ({img.id}: {why})")
    keep = [img for img in run.plan.images if _group(img) in groups]
    skipped = [img for img in run.plan.images if _group(img) not in groups]
    _refresh(run, keep, {i.id: reasons[i.id] or groups[_group(i)] for i in keep}, by_id)
    for img in skipped:
        res = run.report.cell(img.id)
        res.status, res.phase, res.digest = Status.UNCHANGED, "outdated", by_id[img.id].digest
        res.message = "up to date: same inputs, no pending apt upgrade (not rebuilt)"
        res.publish, res.repository, res.tags = "unchanged", f"{run.repo_host}/{run.repo}", \
            list(img.tags)
        run.report.fast_path.append(img.id)
    run.plan = _only(run, keep)
    run.report.notes.append(f"nightly fast path: {len(skipped)} image(s) up to date, "
                            f"{len(keep)} to refresh; {len(checks.downloads)} index file(s) "
                            f"downloaded in {checks.seconds:.1f}s")
    return checks


def _refresh(run: Run, images: Iterable[PlannedImage], why: dict[str, str],
             by_id: dict[str, CellCheck]) -> None:
    """Record in the report why each of ``images`` takes the full refresh path; an image the
    check could not tell about (an archive that does not answer or verify, no labels) also
    gets a note: it is rebuilt because nobody could say it was up to date."""
    for img in images:
        run.report.cell(img.id).refresh_reason = why[img.id]
        _log.info("refresh", image=img.id, why=why[img.id])
        check = by_id[img.id]
        if check.state is State.UNKNOWN:
            run.report.notes.append(f"{img.id}: not known to be up to date ({check.reason}): "
                                    "rebuilt with the security refresh")
            _log.warning("cannot tell", image=img.id, reason=check.reason)


def _only(run: Run, images: list[PlannedImage]) -> Plan:
    ids = {i.id for i in images}
    return dataclasses.replace(run.plan, images=tuple(i for i in run.plan.images if i.id in ids))


def security_report(run: Run, checks: OutdatedReport) -> None:
    """Per refreshed image: the security updates it took (published) or still lacks."""
    for check in checks.cells:
        res = run.report.cell(check.cell)
        if check.cell in run.report.fast_path:
            continue
        taken = {c.split(" ", 1)[0] for c in res.package_changes}
        if res.status in (Status.OK, Status.UNCHANGED) and res.publish in ("updated", "new"):
            res.security_updates = sorted({f"{u.package} {u.installed} -> {u.candidate}"
                                           for _, u in check.security if u.package in taken})
        elif res.status in (Status.FAILED, Status.ABORTED, Status.SKIPPED):
            res.waiting_security = [
                {"package": u.package, "installed": u.installed, "candidate": u.candidate,
                 "platform": plat, "since": u.first_seen} for plat, u in check.security]


def _evidence(run: Run, tools: attest.Tools, registry: Registry
              ) -> Callable[[PlannedImage | None, str | None], images.EvidenceSource]:
    """(image, the digest of the inputs planned now or None) -> what the scan gives grype per
    platform manifest: with ``signing:``
    the SBOM and the OpenVEX document attested to it (verified with the public key), else the
    SBOMs made now as the push makes them (attest.built_sboms; no pinned syft: the image)."""
    sig, cfg = run.config.signing, run.config.scan
    if sig is not None and cfg is not None:
        cosign = signing.Cosign(signing.keys_for(sig, run.loaded.root, str(run.loaded.path)),
                                run.settings.child_env({}), run=tools.cosign)
        attested = images.attested(cosign, images.sbom_dir(run.work),
                                   frozenset(r.advisory for r in cfg.vex))
        return lambda img, digest: attested
    try:
        syft = attest.syft_for(run, tools)
    except SupplyChainError as exc:
        without = images.without_sbom(str(exc))
        return lambda img, digest: without

    def made(img: PlannedImage | None, digest: str | None) -> images.EvidenceSource:
        if img is None:
            return images.without_sbom("the image is not in this run's plan")
        return attest.built_sboms(run, img, digest, syft, registry)

    return made


def _left_behind(run: Run, planned: Mapping[str, PlannedImage]) -> dict[str, tuple[str, bool]]:
    """cell -> the digest this nightly leaves for it, and whether it is the image of the
    inputs planned now: the one it published, staged or found unchanged (True); for a cell
    that did not get that far, the one its first public tag holds (what consumers still
    pull; False); a cell with neither is left out."""
    out: dict[str, tuple[str, bool]] = {}
    for cell, res in run.report.cells.items():
        if res.status in (Status.OK, Status.UNCHANGED) and res.digest:
            out[cell] = (res.digest, True)
            continue
        tags = planned[cell].tags if cell in planned else tuple(res.tags)
        digest = run.registry().digest(run.repo, tags[0]) if tags else None
        if digest:
            out[cell] = (digest, False)
    return out


def scan_report(run: Run, *, tools: attest.Tools | None = None) -> ScanReport | None:
    """With ``scan:`` in images.yaml: the image each cell leaves behind scanned (per platform,
    by digest, the DB images.yaml pins, checked again now), stamped with the scan's ledger;
    the findings first seen tonight go into the report per image with their first-seen date
    (``NightlyReport.new_advisories``), and a note says what was scanned. An image that cannot
    be scanned is said in a note: the report of what is new is not a gate (the release gate
    in the push is). None without ``scan:``."""
    cfg = run.config.scan
    if cfg is None:
        return None
    out = NightlyReport.of(run.report)
    run.report = out
    try:  # the report is written whatever happens here: a problem is a note
        checker = gate.prepare(run.config, run.loaded.root, run.settings)
        left = _left_behind(run, {img.id: img for img in run.plan.images})
    except (RegistryError, ScanError) as exc:
        out.scan_notes.append(f"nightly scan: not run: {exc}")
        _log.warning("no nightly scan", error=str(exc))
        return None
    assert checker is not None
    registry = run.registry()
    evidence = _evidence(run, tools or attest.Tools(), registry)
    planned = {**out.planned, **{img.id: img for img in run.plan.images}}
    name = naming.repository_ref(run.repo_host, run.repo)
    scanned = ScanReport(checker.db, checker.fail_on)
    for cell, (digest, current) in left.items():
        try:
            plats = images.scan_digest(registry, run.repo, cell, digest, checker.grype,
                                       evidence(planned.get(cell), digest if current else None),
                                       cfg,
                                       checker.fail_on, run.settings.today)
        except (RegistryError, ScanError) as exc:  # refused credentials too: a note
            scanned.images.append(ImageScan(cell, f"{name}@{digest}", "error", digest,
                                            reason=str(exc)))
            continue
        scanned.images.append(ImageScan(cell, f"{name}@{digest}", "scanned", digest, tuple(plats)))
    ledger = report.Ledger(run.work / "scan-first-seen.json")
    ledger.stamp(scanned, run.settings.today)
    ledger.save()
    for cell, plat, f in scanned.new:
        out.new_advisories.setdefault(cell, []).append({
            "advisory": f.advisory, "package": f.package, "installed": f.installed,
            "fixed_in": f.fixed_in, "severity": f.severity, "fix_state": f.fix_state,
            "platform": plat, "since": f.first_seen, "vex": f.vex, "ignored": f.ignored})
    done = [i for i in scanned.images if i.state == "scanned"]
    out.scan_notes.append(f"nightly scan: {len(done)} image(s) scanned with the DB built "
                     f"{checker.db.built} ({checker.db.checksum}): {len(scanned.new)} advisory "
                     "finding(s) first seen since the previous scan")
    for i in scanned.images:
        if i.state == "error":
            out.scan_notes.append(f"nightly scan: {i.cell} ({i.ref}) not scanned: {i.reason}")
            _log.warning("not scanned", image=i.cell, reason=i.reason)
    return scanned

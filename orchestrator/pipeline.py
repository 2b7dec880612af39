"""build -> test -> push: the commands that use the engine and the registry.

Order of a release: every selected cell is built and smoke-tested first; tested images are
pushed under their new immutable tag (by digest); only then are the public tags moved.
A failed cell never gets a tag; cells that depend on a failed stage are aborted, not tried.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import cache as cache_mod
from orchestrator import lock as lock_mod
from orchestrator import log, matrix, publish, render, settings, smoke
from orchestrator import plan as plan_mod
from orchestrator.cli import command, load_config, registry_for
from orchestrator.config import Loaded
from orchestrator.errors import EngineError, OrchestratorError, RegistryAuthError, UsageError
from orchestrator.plan import Plan, PlannedImage
from orchestrator.registry import Registry
from orchestrator.report import Report, Status

_log = log.get("pipeline")
SHARED_STAGES = {"base", "build-base", "security-updates", "runtime-base", "build-deps"}


@dataclass
class CellState:
    """What `build` leaves for `test` and `push` (kept under the work dir)."""

    id: str
    image_id: str = ""
    fingerprint: str = ""
    packages: dict[str, str] = field(default_factory=dict)
    tested_image_id: str = ""
    size_bytes: int = 0
    fingerprints: dict[str, str] = field(default_factory=dict)  # platform -> fingerprint
    sizes: dict[str, int] = field(default_factory=dict)  # platform -> unpacked bytes


@dataclass
class Run:
    loaded: Loaded
    lock: lock_mod.Lock
    plan: Plan
    report: Report
    work: Path
    security_refresh: str = "0"
    network: str | None = "host"
    verbose: bool = False  # -v: stream every BuildKit line, not only step starts
    engine: Any = None
    failed_stages: dict[str, str] = field(default_factory=dict)  # stage key -> reason

    @property
    def config(self) -> Any:
        return self.loaded.config

    @property
    def repo_host(self) -> str:
        return self.config.publish.registry  # type: ignore[no-any-return]

    @property
    def repo(self) -> str:
        return self.config.publish.repository  # type: ignore[no-any-return]

    def state_path(self, cell_id: str) -> Path:
        return self.work / "state" / f"{cell_id}.json"

    def load_state(self, cell_id: str) -> CellState:
        path = self.state_path(cell_id)
        if path.exists():
            return CellState(**json.loads(path.read_text()))
        return CellState(cell_id)

    def save_state(self, st: CellState) -> None:
        path = self.state_path(st.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(st), indent=2))

    def registry(self) -> Registry:
        return registry_for(self.repo_host)


def candidate_ref(cell_id: str, suffix: str = "latest") -> str:
    return f"{settings.get().candidate_prefix}/{cell_id}:{suffix}"


def _prefix(run: Run, img: PlannedImage) -> str:
    return render.prefix_for(run.config, img.python)


def _ns(run: Run) -> str:
    return render.label_namespace(run.config)


# --------------------------------------------------------------------------- build


def build_order(images: tuple[PlannedImage, ...]) -> list[PlannedImage]:
    """Grouped by CPython build, runtime before dev (dev is FROM runtime)."""
    return sorted(images, key=lambda i: (i.distro, i.build or i.id, i.python, i.method,
                                         i.variant != "runtime"))


def _blocked_by(run: Run, img: PlannedImage) -> str | None:
    keys = [img.distro, f"{img.distro}/{img.python}-{img.method}",
            f"{img.distro}/runtime-{img.python}-{img.method}"]
    for k in keys:
        if k in run.failed_stages:
            return run.failed_stages[k]
    return None


def _record_failure(run: Run, img: PlannedImage, stage: str | None, reason: str) -> None:
    suffix = f"{img.python}-{img.method}"
    if stage in SHARED_STAGES or stage is None or stage.startswith("build-deps-cross-"):
        run.failed_stages[img.distro] = f"{img.id}: {stage or 'build'} failed"
    elif stage.split("-", 1)[0] in ("python", "prep", "tree", "devtree", "deadsnakes"):
        run.failed_stages[f"{img.distro}/{suffix}"] = f"{img.id}: stage {stage} failed"
    elif stage.startswith("runtime-"):
        run.failed_stages[f"{img.distro}/runtime-{suffix}"] = f"{img.id}: stage {stage} failed"


def do_build(run: Run) -> None:
    from orchestrator.engine import BuildFailed

    config = run.config
    bake_file = (run.loaded.output_dir / render.BAKE_FILE).resolve()
    files = render.render_all(run.loaded, run.lock)
    problems = render.check(run.loaded, files)
    if problems:
        raise UsageError(f"generated files are stale ({problems[0]}); run `orchestrator render`")
    bake = json.loads(bake_file.read_text())
    for img in build_order(run.plan.images):
        res = run.report.cell(img.id)
        blocked = _blocked_by(run, img)
        if blocked:
            res.abort(blocked)
            continue
        base = run.lock.base(img.distro)
        if base.digest is None:
            res.fail("build", f"base image {base.image} is not pinned in images.lock; "
                     "run `orchestrator lock` where its registry is reachable")
            _record_failure(run, img, "base", res.message)
            continue
        spec = bake["target"][img.bake_target]
        args = dict(spec.get("args", {}))
        args["SECURITY_REFRESH"] = run.security_refresh
        if img.build:
            args |= render.profile_args(config, run.plan.profile)
        log_path = run.work / "logs" / f"{img.id}.build.log"
        _log.info("build", image=img.id, target=img.target, log=str(log_path))
        context = bake_file.parent / spec["context"]
        try:
            outcome = run.engine.build(
                context, dockerfile=context / spec.get("dockerfile", "Dockerfile"),
                target=spec["target"], tags=[candidate_ref(img.id, "unlabelled")], args=args,
                labels=spec.get("labels", {}), network=run.network,
                cache_from=img.cache.cache_from(), cache_to=img.cache.cache_to(),
                log_path=log_path, on_line=_progress(img.id, run.verbose),
                platforms=list(img.platforms))
        except BuildFailed as exc:
            stage = _failed_stage(exc.log_path)
            res.fail("build", _explain_build_failure(exc.summary, stage))
            res.log = str(exc.log_path)
            _record_failure(run, img, stage, res.message)
            _log.error("build failed", image=img.id, stage=stage, log=str(exc.log_path))
            continue
        res.seconds["build"] = round(outcome.seconds, 1)
        res.compiled = [f"{img.distro}/{s}" for s in outcome.compiled]
        run.report.compiles += [c for c in res.compiled if c not in run.report.compiles]
        res.log = str(log_path)
        try:
            _label(run, img, outcome.image_id, base.digest)
        except OrchestratorError as exc:
            res.fail("build", f"labelling failed: {exc}")
            continue
        res.status, res.phase = Status.OK, "build"


def _progress(image_id: str, verbose: bool) -> Any:
    from orchestrator.engine import is_progress_line

    def on_line(line: str) -> None:
        if verbose:
            print(f"[{image_id}] {line}", file=sys.stderr)
        elif is_progress_line(line):
            _log.info("step", image=image_id, line=line[:160])

    return on_line


def _failed_stage(log_path: Path) -> str | None:
    from orchestrator.engine import failed_stage

    return failed_stage(log_path)


def _explain_build_failure(summary: str, stage: str | None) -> str:
    low = summary.lower()
    if "checksum" in low or "digest mismatch" in low or ("sha256" in low and "mismatch" in low):
        return (f"a downloaded source does not match the sha256 pinned in images.lock "
                f"(stage {stage}): the mirror serves different bytes. Check the mirror; if the "
                f"release really changed, run `orchestrator lock --upgrade`.\n{summary}")
    if "validsig" in low or ("gpg" in low and "verify" in low):
        return f"the CPython tarball's OpenPGP signature did not verify (stage {stage}).\n{summary}"
    return f"stage {stage or '?'} failed\n{summary}"


def _label(run: Run, img: PlannedImage, unlabelled_id: str, base_digest: str) -> None:
    """Read the real contents of every platform's image, compute its fingerprint, and bake it
    (and dates) into that platform's labels: one stage per platform, FROM the unlabelled
    candidate, picked by TARGETARCH."""
    import hashlib

    engine = run.engine
    unlabelled = candidate_ref(img.id, "unlabelled")
    dockerfile = (run.loaded.output_dir / img.distro / "Dockerfile").read_text()
    certs = b"".join((run.loaded.root / c).read_bytes() for c in run.config.ca_certificates)
    stages_hash = hashlib.sha256(render.stage_closure(dockerfile, img.target).encode()
                                 + certs).hexdigest()
    contents = {p: publish.read_contents(engine, unlabelled, _prefix(run, img), platform=p)
                for p in img.platforms}
    fps = {p: publish.fingerprint(base_digest, c, stages_hash) for p, c in contents.items()}
    ns = _ns(run)
    created = dt.datetime.combine(settings.get().today, dt.time(), dt.UTC).isoformat()
    lines = []
    for plat, c in contents.items():
        labels = {
            f"{ns}.fingerprint": fps[plat],
            f"{ns}.packages": c.packages_label(),
            f"{ns}.python-tree": c.tree_hash,
            "org.opencontainers.image.created": created,
            "org.opencontainers.image.revision": settings.get().revision or "unknown",
            "org.opencontainers.image.ref.name": img.tags[0] if img.tags else img.immutable_tag,
        }
        if img.optimizations:
            labels[f"{ns}.optimizations"] = img.optimizations[plat]
        if img.build:  # what the compiled tree really has, read from its ELF files
            labels[f"{ns}.hardening"] = smoke.tree_hardening(
                engine, unlabelled, _prefix(run, img), plat).summary
        lines += [f"FROM {unlabelled} AS labelled-{plat.rsplit('/', 1)[1]}"]
        lines += [f"LABEL {k}={json.dumps(v)}" for k, v in sorted(labels.items())]
    lines += ["FROM labelled-${TARGETARCH}"]
    image_id = engine.build_dockerfile("\n".join(lines) + "\n", candidate_ref(img.id),
                                       network=None, platforms=list(img.platforms),
                                       log_path=run.work / "logs" / f"{img.id}.label.log")
    native = img.platforms[0]
    sizes = {p: c.unpacked_bytes for p, c in contents.items()}
    combined = publish.combined_fingerprint(fps)
    st = CellState(img.id, image_id, combined, contents[native].packages, "", sizes[native],
                   fps, sizes)
    run.save_state(st)
    res = run.report.cell(img.id)
    res.image_id, res.fingerprint, res.size_bytes = image_id, combined, sizes[native]
    res.platforms, res.sizes = list(img.platforms), sizes


# --------------------------------------------------------------------------- test


def do_test(run: Run) -> None:
    config = run.config
    for img in build_order(run.plan.images):
        res = run.report.cell(img.id)
        if res.status in (Status.FAILED, Status.ABORTED):
            continue
        if img.depends_on and run.report.cell(img.depends_on).status is Status.FAILED:
            res.abort(f"its runtime image {img.depends_on} failed; dev is published only with it")
            continue
        st = run.load_state(img.id)
        ref = candidate_ref(img.id)
        if not st.image_id or not run.engine.exists(ref) or run.engine.inspect(ref).id != st.image_id:
            res.fail("test", "no built image for this cell; run `orchestrator build` first")
            continue
        start = time.monotonic()
        results = []
        dev_id = matrix.Cell(img.python, img.method, img.distro, "dev").id
        dev_state = run.load_state(dev_id)
        with_app = (img.variant == "runtime" and bool(dev_state.image_id)
                    and run.report.cell(dev_id).status is not Status.FAILED)
        for plat in img.platforms:
            # Every check on every platform (arm64 under emulation: generous timeouts).
            native = plat == config.build.native_platform
            results += smoke.run_checks(run.engine, ref, img, uid=config.runtime_user.uid,
                                        prefix=_prefix(run, img), tls_url=config.sources.pypi,
                                        platform=plat, timeout=600 if native else 1800,
                                        label=None if native else plat)
            results.append(smoke.size_check(img, st.sizes.get(plat, st.size_bytes),
                                            label=None if native else plat))
            if img.build:
                policy = smoke.hardening_policy(
                    config.build.hardening.disable,
                    lto="lto" in (img.optimizations or {}).get(plat, ""),
                    frame_pointers=render.profile_of(config, run.plan.profile).frame_pointers)
                results.append(smoke.hardening_check(run.engine, ref, img, _prefix(run, img), plat,
                                                     policy, label=None if native else plat))
            if with_app:
                results.append(smoke.app_check(run.engine, candidate_ref(dev_id), ref, img,
                                               _prefix(run, img), run.network,
                                               run.work / "logs", platform=plat,
                                               label=None if native else plat))
        res.checks = [{"check": r.check, "ok": r.ok, "problem": r.problem,
                       "seconds": round(r.seconds, 1)} for r in results]
        res.seconds["test"] = round(time.monotonic() - start, 1)
        failed = [r for r in results if not r.ok]
        if failed:
            res.fail("test", "\n".join(r.describe() for r in failed))
            for r in failed:
                _log.error("smoke test failed", image=img.id, check=r.check, problem=r.problem)
                print(r.describe(), file=sys.stderr)
            continue
        st.tested_image_id = st.image_id
        run.save_state(st)
        res.status, res.phase = Status.OK, "test"


# --------------------------------------------------------------------------- push


def do_push(run: Run, all_or_nothing: bool, stage_only: bool = False) -> None:
    registry = run.registry()
    registry.ping()
    ready: list[tuple[PlannedImage, CellState]] = []
    for img in run.plan.images:
        res = run.report.cell(img.id)
        if res.status in (Status.FAILED, Status.ABORTED):
            continue
        st = run.load_state(img.id)
        ref = candidate_ref(img.id)
        if not st.tested_image_id or not run.engine.exists(ref) \
                or run.engine.inspect(ref).id != st.tested_image_id:
            res.fail("push", "this image was not smoke-tested (or was rebuilt since); "
                     "run `orchestrator test` first")
            continue
        ready.append((img, st))
    bad = [c for c in run.report.cells.values() if c.status in (Status.FAILED, Status.ABORTED)]
    if all_or_nothing and bad:
        for img, _ in ready:
            run.report.cell(img.id).status = Status.SKIPPED
            run.report.cell(img.id).message = (f"--all-or-nothing: {len(bad)} cell(s) failed, "
                                               "nothing published")
        return
    ns = _ns(run)
    pushed: list[tuple[PlannedImage, publish.Published]] = []
    for img, st in ready:
        res = run.report.cell(img.id)
        start = time.monotonic()
        try:
            fps = st.fingerprints or {img.platforms[0]: st.fingerprint}
            out = publish.push_candidate(run.engine, registry, run.repo_host, run.repo, img,
                                         candidate_ref(img.id), fps,
                                         publish.Contents(st.packages, ""),
                                         f"{ns}.fingerprint", f"{ns}.packages")
        except RegistryAuthError:
            raise
        except (OrchestratorError, EngineError) as exc:
            res.fail("push", str(exc))
            continue
        res.seconds["push"] = round(time.monotonic() - start, 1)
        res.publish, res.digest = out.outcome, out.digest
        res.immutable_tag, res.package_changes = out.immutable_tag, list(out.package_changes)
        res.compressed_bytes = out.compressed.get(img.platforms[0], 0)
        res.compressed = out.compressed
        res.repository, res.tags = f"{run.repo_host}/{run.repo}", list(img.tags)
        pushed.append((img, out))
    if all_or_nothing and any(run.report.cell(i.id).status is Status.FAILED for i, _ in ready):
        for img, _ in pushed:
            run.report.cell(img.id).status = Status.SKIPPED
            run.report.cell(img.id).message = "--all-or-nothing: a push failed, no tag moved"
        return
    for img, out in pushed:
        res = run.report.cell(img.id)
        if out.outcome == "unchanged":
            res.status, res.phase, res.message = Status.UNCHANGED, "push", "content unchanged"
            continue
        if stage_only:
            res.tags_moved = [out.immutable_tag]
            res.status, res.phase = Status.OK, "staged"
            res.message = "pushed by digest; public tags move with `orchestrator promote`"
            continue
        try:
            res.tags_moved = [out.immutable_tag, *publish.move_tags(registry, run.repo, out.digest,
                                                                     img.tags)]
        except RegistryAuthError:
            raise  # as during pushes: refused credentials stop the run (exit 4)
        except OrchestratorError as exc:
            res.fail("tag", str(exc))
            continue
        res.status, res.phase = Status.OK, "push"
        if res.package_changes:
            res.message = f"{len(res.package_changes)} package change(s)"


# --------------------------------------------------------------------------- commands


def _make_run(args: argparse.Namespace, command_name: str) -> Run:
    loaded = load_config(args)
    lock = lock_mod.read(loaded)
    lock_mod.check_against(loaded, lock)
    st = settings.get()
    plan = plan_mod.build(loaded, lock, only=args.only, profile=args.profile, today=st.today,
                          shard=getattr(args, "shard", None), ci=st.ci,
                          cache=cache_mod.options_from(args))
    report = Report(command_name, plan.profile, plan.date)
    for img in plan.images:
        report.cell(img.id)
    run = Run(loaded, lock, plan, report, work_dir(loaded), verbose=args.verbose)
    network = getattr(args, "network", None) or loaded.config.build.network
    run.network = None if network == "default" else network
    return run


def work_dir(loaded: Loaded) -> Path:
    """ORCH_WORK_DIR (logs, state, reports); a relative one is relative to images.yaml's dir."""
    wd = settings.get().work_dir
    return wd if wd.is_absolute() else loaded.root / wd


def _engine(run: Run, args: argparse.Namespace) -> None:
    from orchestrator.engine.docker_engine import DockerEngine

    run.engine = DockerEngine(builder=getattr(args, "builder", None) or run.config.build.builder)
    run.engine.check_buildx()


def _finish(run: Run, args: argparse.Namespace, start: float) -> int:
    run.report.seconds = round(time.monotonic() - start, 1)
    out = Path(args.report) if args.report else run.work / f"report-{run.report.command}.json"
    run.report.write_json(out)
    run.report.write_junit(out.with_suffix(".xml"))
    sys.stdout.write(run.report.table())
    print(f"report: {out} (JUnit: {out.with_suffix('.xml')})")
    return run.report.exit_code


def _run_phases(args: argparse.Namespace, name: str, phases: list[str],
                refresh: str = "0") -> int:
    start = time.monotonic()
    run = _make_run(args, name)
    run.security_refresh = refresh
    _engine(run, args)
    if "build" in phases:
        do_build(run)
    else:
        for img in run.plan.images:
            run.report.cell(img.id).status = Status.OK
    if "test" in phases:
        do_test(run)
    if "push" in phases:
        do_push(run, getattr(args, "all_or_nothing", False), getattr(args, "stage_only", False))
    return _finish(run, args, start)


@command("build")
def cmd_build(args: argparse.Namespace) -> int:
    return _run_phases(args, "build", ["build"], args.security_refresh or "0")


@command("test")
def cmd_test(args: argparse.Namespace) -> int:
    return _run_phases(args, "test", ["test"])


@command("push")
def cmd_push(args: argparse.Namespace) -> int:
    return _run_phases(args, "push", ["push"])


@command("release")
def cmd_release(args: argparse.Namespace) -> int:
    return _run_phases(args, "release", ["build", "test", "push"], args.security_refresh or "0")


@command("nightly")
def cmd_nightly(args: argparse.Namespace) -> int:
    refresh = args.security_refresh or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return _run_phases(args, "nightly", ["build", "test", "push"], refresh)


@command("promote")
def cmd_promote(args: argparse.Namespace) -> int:
    """Move the public tags of images staged by `--stage-only` runs (e.g. one per CI shard)."""
    start = time.monotonic()
    loaded = load_config(args)
    cells: list[dict[str, Any]] = []
    for path in args.reports:
        try:
            cells += json.loads(Path(path).read_text())["cells"]
        except (OSError, ValueError, KeyError) as exc:
            raise UsageError(f"{path}: not a report written by --report ({exc})") from None
    report = Report("promote", "", settings.get().today.isoformat())
    bad = [c["id"] for c in cells if c["status"] in (Status.FAILED, Status.ABORTED)]
    registry = registry_for(loaded.config.publish.registry)
    for c in cells:
        res = report.cell(c["id"])
        res.digest, res.publish, res.tags = c.get("digest", ""), c.get("publish", ""), c.get("tags", [])
        if c["status"] in (Status.FAILED, Status.ABORTED):
            res.status, res.message = Status(c["status"]), c.get("message", "")
        elif c.get("phase") != "staged":
            res.status, res.message = Status.SKIPPED, f"nothing staged ({c['status']})"
        elif args.all_or_nothing and bad:
            res.status = Status.SKIPPED
            res.message = f"--all-or-nothing: {len(bad)} cell(s) failed ({bad[0]}...), no tag moved"
        else:
            repo = c["repository"].split("/", 1)[1]
            try:
                res.tags_moved = publish.move_tags(registry, repo, c["digest"], tuple(c["tags"]))
                res.status, res.phase = Status.OK, "promote"
            except RegistryAuthError:
                raise  # refused credentials: exit 4 with the login hint
            except OrchestratorError as exc:
                res.fail("promote", str(exc))
    report.seconds = round(time.monotonic() - start, 1)
    out = Path(args.report) if args.report else work_dir(loaded) / "report-promote.json"
    report.write_json(out)
    report.write_junit(out.with_suffix(".xml"))
    sys.stdout.write(report.table())
    return report.exit_code


def register(sub: Any, common: argparse.ArgumentParser, sel: argparse.ArgumentParser) -> None:
    helps = {
        "build": "build the selected cells with BuildKit (shared stages built once)",
        "test": "smoke-test built images in throwaway containers",
        "push": "push tested images by digest, then move their tags",
        "release": "build, test and push",
        "nightly": "release with the security-updates layer refreshed; unchanged images are "
                   "not pushed",
    }
    for name, text in helps.items():
        p = sub.add_parser(name, parents=[common, sel], help=text)
        p.add_argument("--report", metavar="FILE",
                       help="write the JSON report here (JUnit XML next to it, .xml)")
        p.add_argument("--shard", metavar="I/N", help="only shard I of N")
        if name in ("build", "release", "nightly"):
            p.add_argument("--network", choices=["host", "default", "none"],
                           help="build network (default: build.network in images.yaml)")
            p.add_argument("--builder", help="buildx builder (remote BuildKit, k8s driver)")
            cache_mod.add_arguments(p)
            p.add_argument("--security-refresh", metavar="TOKEN",
                           help="value that busts the security-updates cache "
                                "(nightly: the current time)")
        if name in ("push", "release", "nightly"):
            p.add_argument("--all-or-nothing", action="store_true",
                           help="move no tag at all when any cell failed")
            p.add_argument("--stage-only", action="store_true",
                           help="push tested images by digest (immutable tag) but move no public "
                                "tag; `orchestrator promote REPORT...` moves them later")
    p = sub.add_parser("promote", parents=[common],
                       help="move the public tags of images staged by --stage-only runs")
    p.add_argument("reports", nargs="+", metavar="REPORT", help="JSON reports of the staging runs")
    p.add_argument("--all-or-nothing", action="store_true",
                   help="move nothing when any cell in any report failed")
    p.add_argument("--report", metavar="FILE", help="write the promote report here")

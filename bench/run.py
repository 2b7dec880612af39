"""``make bench``: size, start-up, speed, rebuild cost and orchestrator overhead.

Compares our 3.14 bookworm images (built by the orchestrator from tests/e2e/images.yaml,
``release`` = PGO+LTO and ``fast`` profiles) with a reference built in the same run from
the same base digest and CPython tarball with the official python:3.14-slim-bookworm
recipe (bench/reference/Dockerfile), and with Debian's own python3 on that base.
Writes bench/results.json (every measurement, with the machine's load average),
bench/charts/*.svg (bench/charts.py: bars of size, start-up, speed and rebuild cost) and
bench/results.md (the charts, then one table: each figure with its value, target and whether
it is met).

    .venv/bin/python bench/run.py                  # full run (two PGO+LTO builds: long)
    .venv/bin/python bench/run.py --quick          # smoke run: fast profile only, few repetitions
    .venv/bin/python bench/run.py --skip-build     # reuse the images of an earlier run
    .venv/bin/python bench/run.py --sections size,startup

Results are real measurements only; nothing is filled in when a step fails: the figure is
reported as not measured and the error is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import charts
import images as images_mod
import overhead
import rebuild
import size
import speed
import startup
from common import (
    BENCH,
    REGISTRY,
    REPO,
    Progress,
    Section,
    docker_version,
    loadavg,
    log,
    run,
    run_retry,
    write_json,
)
from images import BenchImage, Workspace
from results_md import render_markdown

from orchestrator import log as orch_log
from orchestrator import naming, runner, timestamps
from orchestrator.errors import CommandError
from orchestrator.release import progress_history

SECTIONS = ("overhead", "build", "size", "startup", "speed", "rebuild")
TARGETS = {
    "startup_ratio": 0.5,
    "speed_geomean": 1.0,
    "pgo_gain": 1.08,  # issue 33: release (PGO+LTO) against fast (neither), same run
    "noop_ratio": 0.05,
    "refresh_ratio": 0.10,
    "nightly_ratio": 0.01,  # issue 17: a nightly with nothing new, against the cold build
    "cross_ratio": 1.5,
    "minimal_mb": images_mod.MINIMAL_TARGET_MB,  # issue 18: <= 60 MB on disk
    "minimal_ratio": 0.5,  # ... = 0.5x the official slim recipe's 120 MB
    "overhead_seconds": overhead.TARGET_SECONDS,
}


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = time.strftime("%Y%m%d%H%M%S")
        self.work = BENCH / ".work"
        self.json_path = Path(args.output)
        self.md_path = self.json_path.with_suffix(".md")
        self.profiles: tuple[str, ...] = ("fast",) if args.quick else images_mod.PROFILES
        self.images = images_mod.catalogue(self.profiles)
        self.ws: Workspace | None = None
        self.start = time.monotonic()
        mode = ("quick" if args.quick else "full") + ("-skip-build" if args.skip_build else "")
        # k/n per section (and per item in build, startup, speed, rebuild); the estimate of the
        # time left from earlier runs of the same mode, kept beside the workspaces
        self.progress = Progress.for_run([s for s in SECTIONS if s in args.sections], mode=mode,
                                         history=self.work / progress_history.FILE_NAME)
        self.results: dict[str, Any] = {
            "meta": {
                "run_id": self.run_id,
                "started": timestamps.now(offset="+00:00"),
                "argv": sys.argv[1:],
                "mode": "quick" if args.quick else "full",
                "skip_build": args.skip_build,
                "nproc": os.cpu_count(),
                "loadavg_start": loadavg(),
                "revision": run(["git", "rev-parse", "HEAD"], cwd=REPO, check=False).strip(),
                "engine": docker_version(),
                "note": ("shared machine: other jobs build on the same dockerd during this run, so "
                         "timings are contended; every timing carries os.getloadavg()"),
            },
            "targets": TARGETS,
            "figures": [],
            "errors": {},
        }

    # ----------------------------------------------------------------- plumbing

    def save(self) -> None:
        meta = self.results["meta"]
        meta["wall_seconds"] = round(time.monotonic() - self.start, 1)
        meta["loadavg_now"] = loadavg()
        meta["images"] = {k: v.as_dict() for k, v in self.images.items()}
        self.results["figures"] = figures(self.results, self.profiles)
        write_json(self.json_path, self.results)
        charts.write_charts(self.results, charts.charts_dir(self.json_path))
        self.md_path.write_text(render_markdown(self.results))

    def section(self, name: str, fn: Callable[[Section], Any]) -> None:
        if name not in self.args.sections:
            return
        t0 = time.monotonic()
        load0 = loadavg()
        try:
            with self.progress.section(name) as sec:
                value = fn(sec)
            if value is not None:
                self.results[name] = value
        except Exception as exc:
            self.results["errors"][name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()  # the progress line above said FAILED, where and why
        self.results.setdefault("section_seconds", {})[name] = {
            "seconds": round(time.monotonic() - t0, 1), "loadavg_before": load0,
            "loadavg_after": loadavg()}
        self.save()
        self.progress.save()

    def workspace(self) -> Workspace:
        if self.ws is None:
            self.ws = images_mod.make_workspace(self.work / "main", "main", repository="bench/python",
                                                minimal=True)
        return self.ws

    def ready(self) -> dict[str, BenchImage]:
        """The images that exist (built in this run or adopted with --skip-build)."""
        return {k: v for k, v in self.images.items() if v.image_id}

    # ----------------------------------------------------------------- sections

    def do_build(self, sec: Section) -> dict[str, Any]:
        ws = self.workspace()
        out: dict[str, Any] = {"workspace": str(ws.dir), "lock": ws.lock()}
        if self.args.skip_build:
            missing = images_mod.adopt_existing(self.images)
            if missing:
                raise RuntimeError("--skip-build: no earlier image for " + ", ".join(missing)
                                   + "; run without --skip-build first")
            return out
        logs = self.work / "logs"
        sec.expect(3 if "release" in self.profiles else 2)
        with sec.item("ours, fast profile"):
            out["ours_fast"] = images_mod.build_ours(ws, "fast", self.images)
        fresh = self.run_id if self.args.fresh_reference else None
        with sec.item("reference (official recipe) and debian python3"):
            images_mod.build_reference(ws, self.images, logs, fresh)
        if "release" in self.profiles:
            with sec.item("ours, release profile (PGO+LTO)"):
                out["ours_release"] = images_mod.build_ours(ws, "release", self.images)
        return out

    def base_local(self) -> str:
        ref = images_mod.base_ref(self.workspace())
        run_retry(["docker", "pull", "--quiet", ref], timeout=600)
        return ref

    def do_size(self, sec: Section) -> dict[str, Any]:
        return size.measure(self.ready(), self.base_local(), self.run_id)

    def do_startup(self, sec: Section) -> dict[str, Any]:
        return startup.measure(self.ready(), self.args.startup_runs, sec)

    def do_speed(self, sec: Section) -> dict[str, Any]:
        pyperf_dir = self.work / "pyperf" / self.run_id
        return speed.measure(self.ready(), pyperf_dir, rounds=self.args.speed_rounds,
                             processes=self.args.speed_processes, values=self.args.speed_values,
                             section=sec)

    def do_rebuild(self, sec: Section) -> dict[str, Any]:
        ws = self.workspace()
        digests = {d: b["digest"] for d, b in ws.lock()["bases"].items() if b.get("digest")}
        return rebuild.measure(self.work, self.run_id, quick=self.args.quick, base_digests=digests,
                               fast_ws=ws, section=sec)

    def do_overhead(self, sec: Section) -> dict[str, Any]:
        with_load = {"loadavg_before": loadavg()}
        result = overhead.run(self.args.overhead_repeats)
        return {**result, **with_load, "loadavg_after": loadavg()}

    def run(self) -> int:
        log(f"bench run {self.run_id}: mode {self.results['meta']['mode']}, sections "
            f"{','.join(self.args.sections)}; results -> {self.json_path}")
        self.section("overhead", self.do_overhead)
        self.section("build", self.do_build)
        if "build" not in self.args.sections:
            images_mod.adopt_existing(self.images)
        self.section("size", self.do_size)
        self.section("startup", self.do_startup)
        self.section("speed", self.do_speed)
        self.section("rebuild", self.do_rebuild)
        self.results["meta"]["finished"] = timestamps.now(offset="+00:00")
        self.save()
        log(f"done in {time.monotonic() - self.start:.0f}s: {self.json_path}, {self.md_path}")
        missed = [f for f in self.results["figures"] if f["met"] is False]
        unmeasured = [f for f in self.results["figures"] if f["target"] and f["met"] is None]
        log(f"{len(missed)} target(s) missed, {len(unmeasured)} not measured, "
            f"{len(self.results['errors'])} section error(s)")
        return 1 if self.results["errors"] else 0


# --------------------------------------------------------------------------- figures


def _fig(section: str, fid: str, name: str, value: float | None, unit: str, target: str,
         met: bool | None, note: str = "") -> dict[str, Any]:
    return {"section": section, "id": fid, "name": name,
            "value": None if value is None else round(value, 4), "unit": unit, "target": target,
            "met": met, "note": note}


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def figures(results: dict[str, Any], profiles: tuple[str, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    out += _size_figures(results, profiles)
    out += _startup_figures(results, profiles)
    out += _speed_figures(results, profiles)
    out += _rebuild_figures(results)
    out += _overhead_figures(results)
    out += _build_figures(results)
    return out


def _build_figures(results: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, img in (_get(results, "meta", "images") or {}).items():
        b = img.get("build") or {}
        if "seconds" not in b or key.endswith("-dev"):
            continue
        compiled = bool(b.get("compiles")) if "cells" in b else bool(b.get("compiled"))
        out.append(_fig("build", f"build.{key}", f"build of {key}", b["seconds"], "s", "", None,
                        f"CPython compiled in this run: {'yes' if compiled else 'no (BuildKit cache)'}; "
                        f"load {b.get('loadavg_before')} -> {b.get('loadavg_after')}"))
    return out


def _size_figures(results: dict[str, Any], profiles: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    imgs = _get(results, "size", "images") or {}
    ref = imgs.get("reference")
    for p in profiles:
        rt = imgs.get(f"{p}-runtime")
        for kind, unit_key in (("disk", "disk_bytes"), ("compressed", "compressed_bytes")):
            value = rt[unit_key] / 1e6 if rt else None
            target_v = ref[unit_key] / 1e6 if ref else None
            met = None if value is None or target_v is None else value < target_v
            out.append(_fig("size", f"size.{p}.runtime.{kind}", f"runtime ({p}) size, {kind}", value,
                            "MB", f"< reference ({target_v:.1f} MB)" if target_v else "< reference",
                            met))
        tree = _get(results, "size", "python_tree", f"{p}-runtime") or {}
        bc = tree.get("bytecode-stdlib")
        out.append(_fig("size", f"size.{p}.runtime.bytecode", f"runtime ({p}) precompiled stdlib bytecode",
                        bc / 1e6 if bc is not None else None, "MB", "> 0 (shipped)",
                        None if bc is None else bc > 0,
                        f"{tree.get('pyc-files-stdlib', '?')} .pyc for {tree.get('py-files-stdlib', '?')}"
                        " .py files" if tree else ""))
        ov = _get(results, "size", "dev_runtime_overlap", p)
        out.append(_fig("size", f"size.{p}.dev_shares_runtime", f"dev ({p}) shares runtime's layers",
                        ov["shared_layers_pct"] if ov else None, "% of layers", "100 %",
                        None if not ov else ov["shared_layers_pct"] == 100.0,
                        f"{ov['shared_layers']}/{ov['runtime_layers']} layers, "
                        f"{(ov['shared_compressed_bytes'] or 0) / 1e6:.1f} MB compressed shared; "
                        f"dev adds {(ov['dev_only_compressed_bytes'] or 0) / 1e6:.1f} MB compressed"
                        if ov else ""))
        sec = [x for x in (rt or {}).get("layers", []) if "security refresh" in x.get("created_by", "")]
        if rt and sec and sec[0]["disk"] is not None:
            out.append(_fig("size", f"size.{p}.runtime.disk_without_security_layer",
                            f"runtime ({p}) size without its security-updates layer",
                            (rt["disk_bytes"] - sec[0]["disk"]) / 1e6, "MB", "", None,
                            f"the apt-get upgrade layer is {sec[0]['disk'] / 1e6:.1f} MB on disk, "
                            f"{sec[0]['compressed'] / 1e6:.1f} MB compressed: packages of the base "
                            "image with newer versions in the archive; the reference does not upgrade"))
        out += _minimal_figures(results, p, ref)
        dev = imgs.get(f"{p}-dev")
        if dev:
            out.append(_fig("size", f"size.{p}.dev.disk", f"dev ({p}) size, disk", dev["disk_bytes"] / 1e6,
                            "MB", "", None, f"{dev['compressed_bytes'] / 1e6:.1f} MB compressed"))
    for key, entry in imgs.items():
        ob = entry.get("over_base")
        if not ob:
            continue
        added = ob["added_disk_bytes"]
        note = f"{ob['added_compressed_bytes'] / 1e6:.1f} MB compressed, {ob['added_layers']} layers"
        out.append(_fig("size", f"size.{key}.added_over_base", f"{entry.get('label', key)}: added over base",
                        added / 1e6 if added is not None else None, "MB (disk)", "", None, note))
    deb = imgs.get("debian")
    if deb:
        out.append(_fig("size", "size.debian.disk", "debian python3 size, disk", deb["disk_bytes"] / 1e6,
                        "MB", "", None, f"{deb['compressed_bytes'] / 1e6:.1f} MB compressed"))
    if ref:
        out.append(_fig("size", "size.reference.disk", "reference size, disk", ref["disk_bytes"] / 1e6,
                        "MB", "", None, f"{ref['compressed_bytes'] / 1e6:.1f} MB compressed"))
    return out


def _minimal_figures(results: dict[str, Any], p: str, ref: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The minimal image (issue 18): its size against 60 MB and the reference, and the CPython
    layer it shares with the runtime image."""
    mini = _get(results, "size", "images", f"{p}-minimal")
    ov = _get(results, "size", "minimal_runtime_overlap", p)
    value = mini["disk_bytes"] / 1e6 if mini else None
    target = TARGETS["minimal_mb"]
    out = [_fig("size", f"size.{p}.minimal.disk", f"minimal ({p}) size, disk", value, "MB",
                f"<= {target} MB", None if value is None else value <= target,
                f"{mini['compressed_bytes'] / 1e6:.1f} MB compressed; FROM scratch, no shell"
                if mini else "")]
    ratio = value / (ref["disk_bytes"] / 1e6) if value is not None and ref else None
    out.append(_fig("size", f"size.{p}.minimal.vs_reference", f"minimal ({p}) / reference, disk",
                    ratio, "x", f"<= {TARGETS['minimal_ratio']}x", None if ratio is None
                    else ratio <= TARGETS["minimal_ratio"],
                    f"reference {ref['disk_bytes'] / 1e6:.1f} MB" if ref else ""))
    out.append(_fig("size", f"size.{p}.minimal.shares_runtime_tree",
                    f"minimal ({p}) shares runtime's CPython layer",
                    ov["shared_layers"] if ov else None, "layers", ">= 1 (the tree)",
                    None if not ov else ov["shared_layers"] >= 1,
                    f"{ov['shared_compressed_bytes'] / 1e6:.1f} MB compressed shared; minimal adds "
                    f"{ov['minimal_only_compressed_bytes'] / 1e6:.1f} MB compressed of its own"
                    if ov else ""))
    return out


def _startup_figures(results: dict[str, Any], profiles: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    imgs = _get(results, "startup", "images") or {}
    ref = imgs.get("reference")
    target = TARGETS["startup_ratio"]
    for p in profiles:
        ours = imgs.get(f"{p}-runtime")
        for cmd in startup.COMMANDS:
            o = _get(ours, cmd, "median_ms")
            r = _get(ref, cmd, "median_ms")
            ratio = o / r if o is not None and r else None
            out.append(_fig("startup", f"startup.{p}.{cmd}", f"read-only start-up `{startup.COMMANDS[cmd]}`"
                            f" ({p} vs reference)", ratio, "x reference", f"<= {target}x",
                            None if ratio is None else ratio <= target,
                            f"{o:.1f} ms vs {r:.1f} ms (medians)" if ratio is not None else ""))
    for key, vals in imgs.items():
        for cmd in (*startup.COMMANDS, *startup.DIAGNOSTIC):
            out.append(_fig("startup", f"startup.{key}.{cmd}.ms", f"{key}: `{startup.label(cmd)}`",
                            _get(vals, cmd, "median_ms"), "ms (median)", "", None,
                            f"docker run total {_get(vals, cmd, 'docker_run_median_ms')} ms"))
    return out


def _speed_figures(results: dict[str, Any], profiles: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    imgs = _get(results, "speed", "images") or {}
    target = TARGETS["speed_geomean"]
    for p in profiles:
        g = _get(imgs, f"{p}-runtime", "geomean_relative_to_reference")
        has_target = p == "release"
        out.append(_fig("speed", f"speed.{p}.geomean", f"interpreter speed ({p}), geometric mean",
                        g, "x reference (higher = faster)", f">= {target}x" if has_target else "",
                        (None if g is None else g >= target) if has_target else None,
                        _get(imgs, f"{p}-runtime", "python") or ""))
    rel = _get(imgs, "release-runtime", "geomean_relative_to_reference")
    fast = _get(imgs, "fast-runtime", "geomean_relative_to_reference")
    if rel is not None and fast:
        # both against the same reference medians of the same run: their quotient is release
        # against fast (what PGO + LTO bought), with no second pairing of samples
        gain = round(rel / fast, 4)
        out.append(_fig("speed", "speed.release_vs_fast", "PGO + LTO gain: release against fast",
                        gain, "x fast (higher = faster)", f">= {TARGETS['pgo_gain']}x",
                        gain >= TARGETS["pgo_gain"],
                        f"release ({_get(results, 'build', 'ours_release', 'optimizations') or '?'}) "
                        f"vs fast ({_get(results, 'build', 'ours_fast', 'optimizations') or '?'})"))
    g = _get(imgs, "debian", "geomean_relative_to_reference")
    if g is not None:
        out.append(_fig("speed", "speed.debian.geomean", "debian python3 speed, geometric mean", g,
                        "x reference (higher = faster)", "", None, _get(imgs, "debian", "python") or ""))
    return out


def _rebuild_figures(results: dict[str, Any]) -> list[dict[str, Any]]:
    rb = results.get("rebuild")
    if not rb:
        return [_fig("rebuild", f"rebuild.{n}", f"{n} rebuild", None, "x cold", f"<= {t}x", None)
                for n, t in (("noop", TARGETS["noop_ratio"]), ("refresh", TARGETS["refresh_ratio"]))]
    out = []
    cold = rb.get("cold", {})
    note = (f"{len(cold.get('compiles', []))} of {cold.get('expected_compiles', '?')} CPython builds compiled"
            f"{'' if cold.get('is_cold') else ' (NOT cold: ratios are not evaluated)'}; "
            f"load {cold.get('loadavg_before')} -> "
            f"{cold.get('loadavg_after')}; {rb.get('cold_method', '')}")
    out.append(_fig("rebuild", "rebuild.cold", "cold build of the e2e matrix", cold.get("seconds"), "s", "",
                    None, note))
    for name, key in (("noop", "noop_ratio"), ("refresh", "refresh_ratio")):
        step = rb.get(name, {})
        ratio = step.get("ratio_to_cold")
        ok = None if ratio is None or not cold.get("is_cold") else ratio <= TARGETS[key]
        out.append(_fig("rebuild", f"rebuild.{name}", f"{name} rebuild / cold", ratio, "x cold",
                        f"<= {TARGETS[key]}x", ok,
                        f"{step.get('seconds')} s, {len(step.get('compiles', []))} compiles; load "
                        f"{step.get('loadavg_before')} -> {step.get('loadavg_after')}"))
    refresh = rb.get("refresh", {})
    n = len(refresh["compiles"]) if "compiles" in refresh else None
    out.append(_fig("rebuild", "rebuild.refresh.compiles", "security refresh: CPython compiles",
                    n, "compiles", "0", None if n is None else n == 0,
                    ", ".join(refresh.get("compiles", []))))
    nightly = rb.get("nightly", {})
    if nightly:
        ratio = nightly.get("ratio_to_cold")
        ok = None if ratio is None or not cold.get("is_cold") else ratio <= TARGETS["nightly_ratio"]
        out.append(_fig("rebuild", "rebuild.nightly", "nightly with nothing new / cold build", ratio,
                        "x cold", f"<= {TARGETS['nightly_ratio']}x", ok,
                        f"{nightly.get('seconds')} s; {len(nightly.get('fast_path', []))} of "
                        f"{nightly.get('cells_total')} images on the fast path (no build, test or "
                        f"push); {len(nightly.get('compiles', []))} compiles"))
    noop = rb.get("noop", {})
    n2 = len(noop["compiles"]) if "compiles" in noop else None
    out.append(_fig("rebuild", "rebuild.noop.compiles", "no-op rebuild: CPython compiles", n2, "compiles",
                    "", None))
    cross = rb.get("cross", {})
    for build, ratio in sorted(cross.get("ratios", {}).items()):
        native_id = naming.native_build_id(build) or "?"
        native = cross["compile_seconds"].get(native_id)
        out.append(_fig("rebuild", f"rebuild.cross.{build}", f"arm64 cross compile / amd64 compile "
                        f"({native_id})", ratio, "x native",
                        f"<= {TARGETS['cross_ratio']}x", ratio <= TARGETS["cross_ratio"],
                        f"cross {cross['compile_seconds'][build]} s, native {native} s (cold build)"))
    return out


def _overhead_figures(results: dict[str, Any]) -> list[dict[str, Any]]:
    oh = results.get("overhead")
    v = oh.get("seconds_median") if oh else None
    return [_fig("overhead", "overhead.100_cells", "validate + plan + render, 100 cells", v, "s (median)",
                 f"< {TARGETS['overhead_seconds']} s", None if v is None else v < TARGETS["overhead_seconds"],
                 f"{oh['runs']} runs, best {oh['seconds_best']} s, phases {oh['phases_median']}; load "
                 f"{oh.get('loadavg_before')}" if oh else "")]


# --------------------------------------------------------------------------- entry


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: fast profile only (no PGO+LTO builds), no cold matrix build, "
                        "few repetitions")
    p.add_argument("--skip-build", action="store_true",
                   help="reuse the bench-local/* images of an earlier run")
    p.add_argument("--fresh-reference", action="store_true",
                   help="force the reference image to be rebuilt (BuildKit cache miss)")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated subset of {','.join(SECTIONS)}")
    p.add_argument("--output", default=str(BENCH / "results.json"))
    p.add_argument("--render", metavar="JSON",
                   help="measure nothing: re-render JSON's figures, its charts and its .md "
                        "(report format changes)")
    p.add_argument("--startup-runs", type=int)
    p.add_argument("--speed-rounds", type=int)
    p.add_argument("--speed-processes", type=int)
    p.add_argument("--speed-values", type=int)
    p.add_argument("--overhead-repeats", type=int)
    args = p.parse_args(argv)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        p.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    defaults = {"startup_runs": (3, 15), "speed_rounds": (1, 5), "speed_processes": (2, 4),
                "speed_values": (2, 3), "overhead_repeats": (3, overhead.REPEATS)}
    for name, (quick, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


def rerender(path: Path) -> int:
    results = json.loads(path.read_text())
    profiles = tuple(p for p in images_mod.PROFILES
                     if any(f"{p}-runtime" == k for k in results["meta"].get("images", {})))
    results["figures"] = figures(results, profiles)
    write_json(path, results)
    charts.write_charts(results, charts.charts_dir(path))
    path.with_suffix(".md").write_text(render_markdown(results))
    print(f"re-rendered {path}, {path.with_suffix('.md')} and {charts.charts_dir(path)}/*.svg")
    return 0


def preflight() -> list[str]:
    """What this host must provide; checked before anything is written."""
    problems = []
    try:
        docker_ok = runner.run(["docker", "info"], check=False).returncode == 0
    except CommandError:  # no docker binary
        docker_ok = False
    if not docker_ok:
        problems.append("no Docker engine answers")
    for what, url in (("registry", f"http://{REGISTRY}/v2/"), ("CPython mirror", images_mod.MIRROR)):
        try:
            with urllib.request.urlopen(url, timeout=10):
                pass
        except OSError as exc:
            problems.append(f"{what} {url} does not answer ({exc})")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    orch_log.configure("console")  # the command runner logs each command at debug level only
    if args.render:
        return rerender(Path(args.render))
    problems = preflight()
    if problems:
        print("bench: " + "; ".join(problems) + " (make provision); nothing measured, "
              f"{args.output} left as it was", file=sys.stderr)
        return 3
    return Bench(args).run()


if __name__ == "__main__":
    raise SystemExit(main())

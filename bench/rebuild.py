"""Rebuild cost of the e2e matrix (tests/e2e/images.yaml: 8 images, 4 CPython compiles).

cold        ``orchestrator build`` with nothing reusable in BuildKit's cache;
no-op       the same command again, same inputs;
refresh     ``orchestrator build --security-refresh <new token>`` (the nightly's change);
publish     ``orchestrator release`` of what was built (tests and pushes; builds are cached);
nightly     ``orchestrator nightly`` right after: nothing new upstream, so the fast path
            (``outdated`` against the archives' indices, no build, no test, no push).

A cold build without wiping the shared BuildKit state (other jobs use it; a separate
builder would need the moby/buildkit image, which is not available here): the workspace's
base images are per-run clones of 127.0.0.1:5000/debian:{bookworm,trixie}-slim with one
extra layer holding the run id (``/etc/bench-cold-run``), pushed as
``127.0.0.1:5000/bench-cold-<run id>/debian:*``. A new label alone is not enough: BuildKit
keys an image source on the chain id of its layers, so a relabelled base hits the cache of
the original (checked: it did). With a new layer every stage built on the base misses the
cache: apt installs, CPython compiles and pip installs all run. (The CPython tarballs'
downloads are cache hits: they do not depend on the base.) The build counts as cold only if
it compiled every CPython build unit of the matrix.

The stages keep apt's lists and .debs and pip's downloads in BuildKit cache mounts (shared
by every build on the engine, like a CI runner's persistent builder). Before the cold build
those mounts are emptied (``docker builder prune --filter type=exec.cachemount``), so cold
downloads everything; the no-op and refresh builds then find what cold left there, as the
nightly after a release does.

Each step is timed as the wall time of the command and carries its report's ``compiles``.
With ``--quick``, no cold build is run: the first build of the fast workspace is used as
"cold" and is marked as such (it is cold only if it compiled).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from common import REGISTRY, Item, Section, log, run
from images import Workspace, make_workspace, orchestrator_lines, summarize_build

from orchestrator import naming

DISTROS = ("bookworm", "trixie")


def clone_bases(run_id: str, digests: dict[str, str]) -> str:
    """Push clones of the provisioned bases with one new layer, for every platform the base
    index has (arm64 RUN under QEMU); returns the repository prefix."""
    from orchestrator.registry import Registry

    registry = Registry(REGISTRY)
    prefix = f"bench-cold-{run_id}"
    for distro in DISTROS:
        src = f"{REGISTRY}/debian:{distro}-slim"
        platforms = sorted(registry.platform_manifests("debian", f"{distro}-slim") or {"linux/amd64": ""})
        if distro in digests:
            src = f"{src}@{digests[distro]}"
        dst = f"{REGISTRY}/{prefix}/debian:{distro}-slim"
        dockerfile = f'FROM {src}\nRUN echo "{run_id}" > /etc/bench-cold-run\n'
        log(f"rebuild: base clone {dst} (FROM {src}, {', '.join(platforms)})")
        run(["docker", "buildx", "build", "--network", "host", "--platform",
                   ",".join(platforms), "--push", "-t", dst, "-"], input_text=dockerfile, timeout=900)
    return prefix


_VERTEX = re.compile(r"^#(\d+) \[(?:[a-z0-9]+/[a-z0-9]+ )?(python-[^\] ]+) \d+/\d+\] RUN (.*)$")
_DONE = re.compile(r"^#(\d+) DONE ([0-9.]+)s$")


def compile_seconds(log_text: str) -> dict[str, float]:
    """{compile stage: seconds} of the CPython compiles (configure / python-build RUN steps)
    that ran in a BuildKit plain log, native and cross alike."""
    steps: dict[str, str] = {}
    out: dict[str, float] = {}
    for line in log_text.splitlines():
        m = _VERTEX.match(line)
        if m and ("./configure" in m.group(3) or "python-build" in m.group(3)):
            steps[m.group(1)] = m.group(2)
            continue
        d = _DONE.match(line)
        if d and d.group(1) in steps:
            out[steps[d.group(1)]] = float(d.group(2))
    return out


def cross_compile(ws: Workspace) -> dict[str, Any]:
    """The arm64 cross compile's wall time against the native compile of the same CPython,
    read from the cold build's BuildKit logs (one per cell)."""
    found: dict[str, float] = {}
    for path in sorted((ws.dir / ".orchestrator" / "logs").glob("*.build.log")):
        distro = path.name.split("-")[2] if path.name.count("-") >= 3 else "?"
        for stage, seconds in compile_seconds(path.read_text(errors="replace")).items():
            found[f"{distro}/{stage}"] = seconds
    pairs = {k: (found[native], v) for k, v in found.items()
             if (native := naming.native_build_id(k)) is not None and native in found}
    return {"compile_seconds": found,
            "ratios": {k: round(cross / native, 3) for k, (native, cross) in pairs.items()}}


def _compiles(cell_id: str) -> bool:
    """Whether a cell's build compiles CPython (matrix.Cell.compiles), from its id
    ``<python>-<method>-<distro>-<variant>``."""
    return "-deadsnakes-" not in cell_id


def _step(ws: Workspace, name: str, *args: str, command: str = "build",
          item: Item | None = None) -> dict[str, Any]:
    code, timing, report = ws.orch(command, "-v", *args, step=name, report=True,
                                   show=orchestrator_lines)
    summary = summarize_build(code, timing, report)
    if code != 0:
        summary["error"] = f"exit {code}; see {ws.dir / 'logs' / f'{name}.log'}"
    if item is not None:
        compiles = f"{len(summary['compiles'])} CPython compile(s)"
        item.note = f"{summary['error']}, {compiles}" if code != 0 else compiles
    return summary


def measure(work: Path, run_id: str, *, quick: bool, base_digests: dict[str, str],
            fast_ws: Workspace | None, section: Section | None = None) -> dict[str, Any]:
    """``section``: a progress line per step (cold, no-op, refresh, release, nightly)."""
    sec = section or Section.quiet("rebuild")
    result: dict[str, Any] = {"matrix": "tests/e2e/images.yaml (all cells, default profile)"}
    if quick:
        if fast_ws is None:
            raise RuntimeError("--quick rebuild needs the fast workspace")
        ws = fast_ws
        result["cold_method"] = ("--quick: no cold build; 'cold' is the first full-matrix build "
                                 "of the bench workspace, which reuses BuildKit's cache")
    else:
        prefix = clone_bases(run_id, base_digests)
        ws = make_workspace(work / "cold", "cold", repository=f"bench-cold-{run_id}/python",
                            base_prefix=prefix)
        result["cold_method"] = (f"bases cloned with one extra layer holding the run id ({prefix}/debian:*): "
                                 "a new layer chain, so no stage can reuse BuildKit's cache; BuildKit state "
                                 "not wiped")
    steps: list[tuple[str, tuple[str, ...]]] = [
        ("cold", ()), ("noop", ()), ("refresh", ("--security-refresh", f"bench-{run_id}"))]
    if not quick:
        log("rebuild: emptying BuildKit cache mounts (apt lists/archives, pip) before the cold build")
        run(["docker", "builder", "prune", "--force", "--filter", "type=exec.cachemount"], timeout=600)
        result["cold_method"] += "; BuildKit cache mounts (apt, pip downloads) emptied first"
    sec.expect(len(steps) + 2)
    for name, args in steps:
        log(f"rebuild: {name} build of the e2e matrix")
        with sec.item(f"{name} build") as it:
            result[name] = _step(ws, name, *args, item=it)
    refreshed = ("--security-refresh", f"bench-{run_id}")  # what the refresh step built
    for name, command, extra in (("publish", "release", refreshed), ("nightly", "nightly", ())):
        log(f"rebuild: {command} of the e2e matrix")
        with sec.item(command) as it:
            result[name] = _step(ws, name, *extra, command=command, item=it)
        if name == "nightly":
            report = ws.dir / f"report-{name}.json"
            data = json.loads(report.read_text()) if report.exists() else {}
            result[name]["fast_path"] = list(data.get("fast_path", []))
            result[name]["cells_total"] = len(data.get("cells", []))
    cold = result["cold"]["seconds"]
    for name in ("noop", "refresh", "nightly"):
        result[name]["ratio_to_cold"] = round(result[name]["seconds"] / cold, 4) if cold else None
    # one compile per build unit that compiles (a deadsnakes cell installs the PPA's packages)
    units = {cid.rsplit("-", 1)[0] for cid in result["cold"]["cells"] if _compiles(cid)}
    cross = [c for c in result["cold"]["compiles"] if naming.native_build_id(c)]
    result["cold"]["expected_compiles"] = len(units) + len(cross)
    result["cold"]["is_cold"] = len(result["cold"]["compiles"]) - len(cross) == len(units)
    if not quick:
        result["cross"] = cross_compile(ws)
    return result

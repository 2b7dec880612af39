"""Start-up: a fresh interpreter in a fresh, read-only, non-root container, every time.

Each sample is one ``docker run --rm --read-only --user 10001 --network none`` whose bash
reads the clock (``$EPOCHREALTIME``, a shell variable: no process of its own) right before
and right after ``python3 -c ...``: the figure is the interpreter's wall time inside the
container, without the container's own start-up. (The first version read it with
``date +%s%N``, whose own fork and exec, ~1-2 ms, were counted in every sample of every
image alike and so pulled every ratio towards 1.) With the root filesystem read-only (and
no tmpfs), no image can write bytecode, so an image that ships none recompiles every module
it imports, every time. Samples are
interleaved (round i runs every image, in an order rotated by i) so that load from other
jobs on this machine spreads over all images alike; one untimed warm-up run per image and
command comes first (page cache). The time of the whole ``docker run`` is kept too.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

from common import Section, loadavg, log
from images import BenchImage

from orchestrator import runner

UID = "10001"
COMMANDS = {
    "pass": "pass",
    "imports": "import json, ssl, sqlite3, asyncio",
}
# Measured alongside, no target: the interpreter's core initialisation without the site
# module (`python3 -S -c pass`): what `pass` costs before site and its imports (os,
# _collections_abc, stat, posixpath) run.
DIAGNOSTIC = {"pass-no-site": "pass"}
FLAGS = {"pass-no-site": "-S"}


def label(name: str) -> str:
    code = COMMANDS.get(name) or DIAGNOSTIC[name]
    return " ".join(x for x in ("python3", FLAGS.get(name, ""), "-c", repr(code)) if x)
SCRIPT = ('t0=$EPOCHREALTIME; python3 $BENCH_FLAGS -c "$BENCH_CMD" || exit 97; t1=$EPOCHREALTIME; '
          'echo "BENCH_T $t0 $t1"')


def sample(ref: str, code: str, flags: str = "") -> tuple[float, float]:
    """(ms inside the container, ms for the whole docker run)."""
    argv = ["docker", "run", "--rm", "--read-only", "--user", UID, "--network", "none",
            "-e", f"BENCH_CMD={code}", "-e", f"BENCH_FLAGS={flags}",
            "--entrypoint", "/bin/bash", ref, "-c", SCRIPT]
    t0 = time.perf_counter()
    proc = runner.run(argv, timeout=120, check=False)
    outer = (time.perf_counter() - t0) * 1000
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_T "):
            t0, t1 = (float(x.replace(",", ".")) for x in line.split()[1:3])
            return (t1 - t0) * 1000, outer
    raise RuntimeError(f"{ref}: python3 -c {code!r} failed (exit {proc.returncode}): "
                       f"{(proc.stderr or proc.stdout)[-800:]}")


# Where every module a bare `python3 -c pass` has imported came from (read before the probe
# imports anything itself): frozen into the interpreter, built in, or found by the path finder
# (a .py, compiled at every start when no bytecode can be written, or a .pyc).
ORIGINS = ("import sys\n"
           "seen = {n: getattr(getattr(m, '__spec__', None), 'origin', None)\n"
           "        for n, m in list(sys.modules.items())}\n"
           "import json\n"
           "print('BENCH_MODS ' + json.dumps(seen))")


def startup_imports(ref: str) -> dict[str, Any]:
    argv = ["docker", "run", "--rm", "--read-only", "--user", UID, "--network", "none",
            "--entrypoint", "python3", ref, "-c", ORIGINS]
    proc = runner.run(argv, timeout=120, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_MODS ")), None)
    if line is None:
        raise RuntimeError(f"{ref}: start-up import probe failed (exit {proc.returncode}): "
                           f"{(proc.stderr or proc.stdout)[-800:]}")
    seen: dict[str, str | None] = json.loads(line.removeprefix("BENCH_MODS "))
    seen.pop("__main__", None)
    by_path = sorted(n for n, o in seen.items() if o not in ("frozen", "built-in", None))
    return {
        "modules": len(seen),
        "frozen": sorted(n for n, o in seen.items() if o == "frozen"),
        "built_in": sorted(n for n, o in seen.items() if o == "built-in"),
        "path_finder": by_path,
        "path_finder_sources": {n: seen[n] for n in by_path},
    }


def measure(images: dict[str, BenchImage], runs: int, section: Section | None = None) -> dict[str, Any]:
    """``section``: a progress line per round (the warm-up first)."""
    sec = section or Section.quiet("startup")
    # dev: the runtime's interpreter; minimal too (and no shell for the probes): size only
    subjects = [img for img in images.values()
                if not (img.kind == "ours" and img.variant in ("dev", "minimal"))]
    if not subjects:
        raise RuntimeError("no images to measure (the build section failed?)")
    every = {**COMMANDS, **DIAGNOSTIC}
    inner: dict[str, dict[str, list[float]]] = {i.key: {c: [] for c in every} for i in subjects}
    outer: dict[str, dict[str, list[float]]] = {i.key: {c: [] for c in every} for i in subjects}
    loads = [loadavg()]
    log(f"startup: warm-up, then {runs} interleaved rounds x {len(subjects)} images x "
        f"{len(COMMANDS)} commands")
    sec.expect(runs + 1)
    with sec.item("warm-up"):
        for img in subjects:
            for name, code in every.items():
                sample(img.ref, code, FLAGS.get(name, ""))
    for r in range(runs):
        order = subjects[r % len(subjects):] + subjects[:r % len(subjects)]
        with sec.item(f"round {r + 1}/{runs}") as it:
            for img in order:
                for name, code in every.items():
                    i_ms, o_ms = sample(img.ref, code, FLAGS.get(name, ""))
                    inner[img.key][name].append(round(i_ms, 2))
                    outer[img.key][name].append(round(o_ms, 1))
            loads.append(loadavg())
            it.note = "imports " + ", ".join(
                f"{k} {statistics.median(v['imports']):.0f} ms" for k, v in inner.items())
    result: dict[str, Any] = {
        "method": "docker run --rm --read-only --user 10001 --network none; "
                  "bash $EPOCHREALTIME around python3 -c inside the container",
        "runs": runs, "commands": {name: label(name) for name in every},
        "loadavg_per_round": loads, "images": {},
    }
    result["startup_imports"] = {img.key: startup_imports(img.ref) for img in subjects}
    for img in subjects:
        result["images"][img.key] = {
            name: {
                "median_ms": round(statistics.median(vals), 2),
                "min_ms": min(vals), "max_ms": max(vals),
                "docker_run_median_ms": round(statistics.median(outer[img.key][name]), 1),
                "samples_ms": vals,
            }
            for name, vals in inner[img.key].items()
        }
    return result

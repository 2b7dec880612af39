"""Interpreter speed: six pure-Python workloads (orchestrator/perf/workloads, the ones the
release's performance record runs too) under pyperf, per image.

pyperf is installed once per run from PyPI with pip inside the reference image (through
this machine's TLS-intercepting proxy: the host CA bundle is mounted and PIP_CERT /
SSL_CERT_FILE point at it) into a scratch directory, which every image then bind-mounts
read-only, so all images run the very same pyperf. Debian's python3 has no pip at all.

Rounds are interleaved: each round runs every image once (order rotated per round), each
run being ``runner.py --processes P --values V --warmups 1 --loops 1`` in a fresh container
as uid 10001; pyperf spawns P fresh worker processes per workload. Per workload the median
of all values is compared; an image's score is the geometric mean over the workloads of
reference_median / image_median (> 1: faster than the reference). Every image must return
the same checksum per workload (the same work was done).
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from common import HOST_CA_BUNDLE, Section, Timer, loadavg, log
from images import BenchImage

from orchestrator import runner
from orchestrator.perf import workloads as perf_workloads

WORKLOADS = Path(perf_workloads.__file__).parent
UID = "10001"


def install_pyperf(reference: BenchImage, dest: Path) -> dict[str, Any]:
    dest.mkdir(parents=True, exist_ok=True)
    argv = ["docker", "run", "--rm", "--network", "host", "--user", "0",
            "--mount", f"type=bind,src={HOST_CA_BUNDLE},dst=/bench-ca.crt,readonly",
            "--mount", f"type=bind,src={dest},dst=/pyperf",
            "-e", "PIP_CERT=/bench-ca.crt", "-e", "SSL_CERT_FILE=/bench-ca.crt",
            "-e", "PIP_DISABLE_PIP_VERSION_CHECK=1", "-e", "PIP_ROOT_USER_ACTION=ignore",
            reference.ref, "python3", "-m", "pip", "install", "--no-cache-dir", "--no-compile",
            "--target", "/pyperf", "pyperf"]
    log(f"speed: pip install pyperf (in {reference.ref}) -> {dest}")
    with Timer() as t:
        proc = runner.run(argv, timeout=600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"pip install pyperf failed: {(proc.stderr or proc.stdout)[-1500:]}")
    installed = sorted(p.name for p in dest.glob("*.dist-info"))
    return {"installed": installed, **t.timing.as_dict()}


def run_once(img: BenchImage, pyperf_dir: Path, pyperf_args: list[str]) -> dict[str, Any]:
    argv = ["docker", "run", "--rm", "--network", "none", "--user", UID,
            "--tmpfs", "/tmp:rw,size=64m",
            "--mount", f"type=bind,src={pyperf_dir},dst=/pyperf,readonly",
            "--mount", f"type=bind,src={WORKLOADS},dst=/bench,readonly",
            "-e", "HOME=/tmp", "--entrypoint", "python3", img.ref, "/bench/runner.py",
            *pyperf_args]
    with Timer() as t:
        proc = runner.run(argv, timeout=3600, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH-RESULT "):
            data: dict[str, Any] = json.loads(line.removeprefix("BENCH-RESULT "))
            data["timing"] = t.timing.as_dict()
            return data
    raise RuntimeError(f"{img.ref}: runner failed (exit {proc.returncode}):\n"
                       f"{(proc.stderr or proc.stdout)[-2000:]}")


def geomean(xs: list[float]) -> float:
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def measure(images: dict[str, BenchImage], pyperf_dir: Path, *, rounds: int, processes: int,
            values: int, section: Section | None = None) -> dict[str, Any]:
    """``section``: a progress line per image and round (every workload of one image)."""
    sec = section or Section.quiet("speed")
    # dev: the runtime's interpreter; minimal too (and no shell for the probes): size only
    subjects = [img for img in images.values()
                if not (img.kind == "ours" and img.variant in ("dev", "minimal"))]
    if not subjects:
        raise RuntimeError("no images to measure (the build section failed?)")
    if "reference" not in images:
        raise RuntimeError("speed needs the reference image")
    install = install_pyperf(images["reference"], pyperf_dir)
    args = ["--processes", str(processes), "--values", str(values), "--warmups", "1", "--loops", "1",
            "--quiet"]
    values_by: dict[str, dict[str, list[float]]] = {i.key: {} for i in subjects}
    checksums: dict[str, dict[str, str]] = {i.key: {} for i in subjects}
    runs: list[dict[str, Any]] = []
    pythons: dict[str, str] = {}
    sec.expect(rounds * len(subjects))
    for r in range(rounds):
        order = subjects[r % len(subjects):] + subjects[:r % len(subjects)]
        for img in order:
            with sec.item(f"{img.key} (round {r + 1}/{rounds})"):
                data = run_once(img, pyperf_dir, args)
            pythons[img.key] = f"{data['python']} (pyperf {data['pyperf']})"
            for name, res in data["results"].items():
                values_by[img.key].setdefault(name, []).extend(res["values"])
                checksums[img.key][name] = res["checksum"]
            runs.append({"round": r + 1, "image": img.key, **data["timing"]})
    ref = values_by["reference"]
    names = sorted(ref)
    problems = []
    per_image: dict[str, Any] = {}
    for img in subjects:
        vals = values_by[img.key]
        rows = {}
        for name in names:
            if name not in vals:
                problems.append(f"{img.key}: workload {name} did not run")
                continue
            if checksums[img.key][name] != checksums["reference"][name]:
                problems.append(f"{img.key}: workload {name} returned a different result "
                                f"({checksums[img.key][name]} vs {checksums['reference'][name]})")
            med = statistics.median(vals[name])
            rows[name] = {
                "median_ms": round(med * 1000, 3),
                "mean_ms": round(statistics.fmean(vals[name]) * 1000, 3),
                "stdev_ms": round(statistics.stdev(vals[name]) * 1000, 3) if len(vals[name]) > 1 else 0.0,
                "values": len(vals[name]),
                "relative_to_reference": round(statistics.median(ref[name]) / med, 4),
            }
        ratios = [row["relative_to_reference"] for row in rows.values()]
        per_image[img.key] = {
            "python": pythons.get(img.key, ""),
            "geomean_relative_to_reference": round(geomean(ratios), 4) if ratios else None,
            "workloads": rows,
        }
    return {
        "method": "pyperf " + " ".join(args) + f"; {rounds} interleaved round(s); median per "
                  "workload; geometric mean of reference_median / image_median",
        "pyperf_install": install, "rounds": rounds, "workloads": names, "images": per_image,
        "runs": runs, "loadavg_end": loadavg(), "problems": problems,
    }

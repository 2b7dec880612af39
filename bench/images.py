"""The images under comparison, and how they are built.

- ours: tests/e2e/images.yaml copied to a scratch workspace with the minimal variant
  switched on (MINIMAL_VARIANT), locked, rendered and built by the orchestrator
  (``build --only '3.14-source-bookworm-*'``: runtime, dev and minimal; ``--profile release``
  for PGO+LTO, the config's default ``fast`` otherwise);
- reference: bench/reference/Dockerfile, the official python:3.14-slim-bookworm recipe,
  FROM the base digest and with the CPython tarball (URL + sha256) pinned in that
  workspace's images.lock, so it starts from exactly what our images start from;
- debian: bench/reference/debian.Dockerfile, Debian's own python3 on the same base.

Each is tagged locally as ``bench-local/...`` by image id right after its build.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from common import BENCH, PY, REPO, Timing, loadavg, log, run, stream

E2E_CONFIG = REPO / "tests" / "e2e" / "images.yaml"
REFERENCE_DIR = BENCH / "reference"
OUR_CELLS = "3.14-source-bookworm-*"
DISTRO = "bookworm"
MINOR = "3.14"
PROFILES = ("release", "fast")
VARIANTS = ("runtime", "dev", "minimal")
# What the workspace's copy of tests/e2e/images.yaml gets when its matrix has no minimal
# variant: the minimal variant (issue 18) with its size target as budget (the PPA's cells are
# excluded from minimal there already: validation refuses them).
MINIMAL_TARGET_MB = 60
MINIMAL_VARIANT = (("  dev: {size_budget_mb: 600}\n",
                    f"  dev: {{size_budget_mb: 600}}\n  minimal: {{size_budget_mb: {MINIMAL_TARGET_MB}}}\n"),)
CANDIDATE = "bench-candidate"
MIRROR = "http://127.0.0.1:8700/ftp/python/"


@dataclass(frozen=True)
class Layout:
    """Where an image keeps its interpreter (for the per-directory breakdown)."""

    root: str  # the installation prefix, measured as a whole ("" = not separable)
    bin: str
    stdlib: str
    site_packages: str
    libdir: str  # where libpython*.so would be ("" = none)


OUR_LAYOUT = Layout(f"/opt/org/python/{MINOR}", f"/opt/org/python/{MINOR}/bin",
                    f"/opt/org/python/{MINOR}/lib/python{MINOR}",
                    f"/opt/org/python/{MINOR}/lib/python{MINOR}/site-packages",
                    f"/opt/org/python/{MINOR}/lib")
REFERENCE_LAYOUT = Layout("/usr/local", "/usr/local/bin", f"/usr/local/lib/python{MINOR}",
                          f"/usr/local/lib/python{MINOR}/site-packages", "/usr/local/lib")
DEBIAN_LAYOUT = Layout("", "/usr/bin/python3.11", "/usr/lib/python3.11", "/usr/lib/python3/dist-packages",
                       "/usr/lib/x86_64-linux-gnu")


@dataclass
class BenchImage:
    key: str  # "release-runtime", "fast-dev", "reference", "debian", "base"
    label: str
    ref: str  # local tag
    kind: str  # ours | reference | debian | base
    layout: Layout | None
    profile: str = ""
    variant: str = ""
    image_id: str = ""
    build: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layout"] = asdict(self.layout) if self.layout else None
        return d


def our_key(profile: str, variant: str) -> str:
    return f"{profile}-{variant}"


def local_ref(key: str) -> str:
    if key == "reference":
        return f"bench-local/reference:{MINOR}-slim-bookworm"
    if key == "debian":
        return "bench-local/debian-python3:bookworm"
    profile, variant = key.split("-", 1)
    return f"bench-local/python:{MINOR}-{variant}-{DISTRO}-{profile}"


def catalogue(profiles: tuple[str, ...]) -> dict[str, BenchImage]:
    """Every image the benchmarks look at (ours only for ``profiles``)."""
    images: dict[str, BenchImage] = {}
    for profile in profiles:
        for variant in VARIANTS:
            key = our_key(profile, variant)
            images[key] = BenchImage(key, f"ours {variant} ({profile})", local_ref(key), "ours",
                                     OUR_LAYOUT, profile, variant)
    images["reference"] = BenchImage("reference", "reference (official recipe)",
                                     local_ref("reference"), "reference", REFERENCE_LAYOUT)
    images["debian"] = BenchImage("debian", "debian python3 (3.11)", local_ref("debian"), "debian",
                                  DEBIAN_LAYOUT)
    return images


# --------------------------------------------------------------------------- workspaces


@dataclass
class Workspace:
    """A copy of the e2e config in its own directory (own lock, generated/ and work dir)."""

    dir: Path
    name: str

    @property
    def config(self) -> Path:
        return self.dir / "images.yaml"

    @property
    def env(self) -> dict[str, str]:
        return {"ORCH_LOG_FORMAT": "console", "ORCH_WORK_DIR": str(self.dir / ".orchestrator"),
                "ORCH_CANDIDATE_PREFIX": CANDIDATE}

    def lock(self) -> dict[str, Any]:
        data: dict[str, Any] = yaml.safe_load((self.dir / "images.lock").read_text())
        return data

    def orch(self, *args: str, step: str, report: bool = False,
             show: Callable[[str], bool] | None = None) -> tuple[int, Timing, dict[str, Any]]:
        """Run one ``python -m orchestrator`` command, candidates under ``bench-candidate/``."""
        argv = [PY, "-m", "orchestrator", *args, "--config", str(self.config)]
        report_path = self.dir / f"report-{step}.json"
        if report:
            report_path.unlink(missing_ok=True)
            argv += ["--report", str(report_path)]
        log(f"{self.name}: orchestrator {' '.join(args)}")
        code, timing = stream(argv, log_path=self.dir / "logs" / f"{step}.log",
                              prefix=f"{self.name}/{step}", env=self.env, cwd=REPO, show=show)
        data: dict[str, Any] = {}
        if report and report_path.exists():
            data = json.loads(report_path.read_text())
        log(f"{self.name}: {step} exited {code} after {timing.seconds:.1f}s")
        return code, timing, data


def make_workspace(dest: Path, name: str, *, repository: str,
                   base_prefix: str | None = None, minimal: bool = False) -> Workspace:
    """Copy tests/e2e/images.yaml to ``dest`` (``minimal``: with the minimal variant on, for
    the images under comparison; the rebuild matrix stays the e2e one), then ``lock`` and
    ``render`` there."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    text = E2E_CONFIG.read_text()
    text = text.replace("repository: org/python", f"repository: {repository}")
    has_minimal = re.search(r"^variants:\n(?:  .*\n)*?  minimal:", text, re.MULTILINE)
    for old, new in MINIMAL_VARIANT if minimal and not has_minimal else ():
        if old not in text:
            raise RuntimeError(f"{E2E_CONFIG} changed: no {old.strip()!r} to enable minimal after")
        text = text.replace(old, new, 1)
    if base_prefix:
        assert "image: debian:" in text
        text = text.replace("image: debian:", f"image: {base_prefix}/debian:")
    (dest / "images.yaml").write_text(text)
    ws = Workspace(dest, name)
    for attempt in range(1, 7):  # the registry may be briefly down (other jobs' outage tests)
        code, _, _ = ws.orch("lock", step="lock")
        if code == 0 and all(b.get("digest") for b in ws.lock()["bases"].values()):
            break
        if attempt == 6:
            tail = (ws.dir / "logs" / "lock.log").read_text()[-2000:]
            raise RuntimeError(f"orchestrator lock could not pin every base in {dest}:\n{tail}")
        log(f"{name}: lock left a base unpinned (registry down?); retrying in 10s")
        (dest / "images.lock").unlink(missing_ok=True)
        time.sleep(10)
    code, _, _ = ws.orch("render", step="render")
    if code != 0:
        tail = (ws.dir / "logs" / "render.log").read_text()[-2000:]
        raise RuntimeError(f"orchestrator render failed in {dest}:\n{tail}")
    return ws


def orchestrator_lines(line: str) -> bool:
    """What to echo from an orchestrator build: its own log lines, the result table and, of
    the BuildKit lines it relays with -v (``[cell-id] #N ...``), step headers and outcomes
    and the PGO training run's progress."""
    if line.startswith("[") and "] " in line:
        return _buildkit_progress(line.split("] ", 1)[1])
    return not line.startswith("#") and line.strip() != ""


def cells_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in report.get("cells", [])}


def summarize_build(code: int, timing: Timing, report: dict[str, Any]) -> dict[str, Any]:
    cells = cells_of(report)
    return {
        **timing.as_dict(),
        "exit_code": code,
        "report_seconds": report.get("seconds"),
        "profile": report.get("profile"),
        "compiles": list(report.get("compiles", [])),
        "cells": {cid: {"status": c.get("status"), "build_seconds": c.get("seconds", {}).get("build"),
                        "compiled": c.get("compiled", []), "image_id": c.get("image_id"),
                        "size_bytes": c.get("size_bytes")}
                  for cid, c in cells.items()},
    }


def build_ours(ws: Workspace, profile: str, images: dict[str, BenchImage]) -> dict[str, Any]:
    """``build --profile <profile> --only 3.14-source-bookworm-*``; tag the results by id."""
    code, timing, report = ws.orch("build", "-v", "--profile", profile, "--only", OUR_CELLS,
                                   step=f"build-{profile}", report=True, show=orchestrator_lines)
    summary = summarize_build(code, timing, report)
    summary["pgo_check"] = pgo_check_lines(ws.dir / "logs" / f"build-{profile}.log")
    cells = cells_of(report)
    for variant in VARIANTS:
        cell = cells.get(f"{MINOR}-source-{DISTRO}-{variant}")
        if code != 0 or not cell or cell.get("status") != "ok" or not cell.get("image_id"):
            raise RuntimeError(f"orchestrator build --profile {profile} failed (exit {code}); "
                               f"see {ws.dir / 'logs' / f'build-{profile}.log'}")
        img = images[our_key(profile, variant)]
        run(["docker", "tag", cell["image_id"], img.ref])
        img.image_id = cell["image_id"]
        img.build = {**summary, "optimizations": optimizations_label(img.ref)}
    summary["optimizations"] = images[our_key(profile, "runtime")].build["optimizations"]
    return summary


def optimizations_label(ref: str) -> str | None:
    """What the image's compile really got (label ...optimizations: pgo+lto, lto, none)."""
    labels = json.loads(run(["docker", "image", "inspect", "-f", "{{json .Config.Labels}}", ref]))
    return next((v for k, v in (labels or {}).items() if k.endswith(".optimizations")), None)


def pgo_check_lines(log: Path) -> list[str]:
    """The compile's PGO check verdicts (stages/scripts/pgo-check.sh) in a build log: what
    the training covered, or why it failed; [] for a build without PGO or from cache."""
    if not log.is_file():
        return []
    return sorted({line.split("pgo-check: ", 1)[1].strip()
                   for line in log.read_text(errors="replace").splitlines() if "pgo-check: " in line})


# --------------------------------------------------------------------------- reference images

_STEP_LINE = re.compile(r"^#\d+ (\[[^\]]+\]|DONE|CACHED|ERROR)")
_STEP_HEAD = re.compile(r"^#(\d+) \[(?:[^\]]*? )?\d+/\d+\] ((?:RUN|ADD|COPY) .*)$")
_STEP_END = re.compile(r"^#(\d+) (DONE|CACHED)")


def executed_steps(log_text: str) -> list[str]:
    """The RUN/ADD/COPY steps of a plain-progress BuildKit log that ran (were not CACHED)."""
    heads: dict[str, str] = {}
    ran = []
    for line in log_text.splitlines():
        m = _STEP_HEAD.match(line)
        if m:
            heads[m.group(1)] = m.group(2)
            continue
        e = _STEP_END.match(line)
        if e and e.group(1) in heads:
            cmd = heads.pop(e.group(1))
            if e.group(2) == "DONE":
                ran.append(cmd)
    return ran


def _buildkit_progress(line: str) -> bool:
    """Step headers, their outcome, and the PGO training run's per-test progress."""
    return bool(_STEP_LINE.match(line)) or "load avg:" in line or " ERROR" in line[:12]


def docker_build(dockerfile: Path, ref: str, args: dict[str, str], log_path: Path,
                 name: str) -> dict[str, Any]:
    argv = ["docker", "buildx", "build", "--network", "host", "--progress", "plain", "--load",
            "-t", ref, "-f", str(dockerfile)]
    for k, v in args.items():
        argv += ["--build-arg", f"{k}={v}"]
    argv.append(str(dockerfile.parent))
    log(f"building {name}: {ref}")
    code, timing = stream(argv, log_path=log_path, prefix=name, show=_buildkit_progress)
    if code != 0:
        raise RuntimeError(f"docker buildx build of {name} failed (exit {code}); see {log_path}")
    ran = executed_steps(log_path.read_text(errors="replace"))
    compiled = any("./configure" in cmd for cmd in ran)
    ran = [cmd[:100] for cmd in ran]
    log(f"{name}: built in {timing.seconds:.1f}s (CPython compiled in this build: {compiled})")
    return {**timing.as_dict(), "compiled": compiled, "steps_run": ran,
            "build_args": args, "log": str(log_path)}


def build_reference(ws: Workspace, images: dict[str, BenchImage], log_dir: Path,
                    fresh_id: str | None) -> None:
    lock = ws.lock()
    py = lock["pythons"][MINOR]
    if not str(py["url"]).endswith(".tar.xz"):
        raise RuntimeError(f"the reference recipe needs a .tar.xz tarball; the lock has {py['url']}")
    base = base_ref(ws)
    args = {"BASE": base, "PYTHON_URL": py["url"], "PYTHON_SHA256": py["sha256"],
            "PYTHON_VERSION": py["version"]}
    if fresh_id:
        args["BENCH_BUILD_ID"] = fresh_id
    ref = images["reference"]
    ref.build = docker_build(REFERENCE_DIR / "Dockerfile", ref.ref, args,
                             log_dir / "reference.build.log", "reference")
    ref.build["python_version"] = py["version"]
    ref.image_id = run(["docker", "image", "inspect", "-f", "{{.Id}}", ref.ref]).strip()
    deb = images["debian"]
    deb.build = docker_build(REFERENCE_DIR / "debian.Dockerfile", deb.ref, {"BASE": base},
                             log_dir / "debian.build.log", "debian")
    deb.image_id = run(["docker", "image", "inspect", "-f", "{{.Id}}", deb.ref]).strip()


def base_ref(ws: Workspace) -> str:
    base = ws.lock()["bases"][DISTRO]
    if not base.get("digest"):
        raise RuntimeError(f"{base['image']} is not pinned in {ws.dir / 'images.lock'} (registry down?)")
    return f"{base['image']}@{base['digest']}"


def adopt_existing(images: dict[str, BenchImage]) -> list[str]:
    """--skip-build: use the bench-local tags of an earlier run; returns what is missing."""
    missing = []
    for img in images.values():
        proc = run(["docker", "image", "inspect", "-f", "{{.Id}}", img.ref], check=False).strip()
        if not proc:
            missing.append(img.ref)
            continue
        img.image_id = proc
        img.build = {"skipped": True, "note": "--skip-build: reused the image tagged by an earlier run",
                     "loadavg": loadavg()}
    return missing

"""Orchestrator overhead: validate + plan + render of a 100-cell images.yaml, in-process.

5 distros x 5 Pythons x 2 methods x 2 variants = 100 cells, with a matching images.lock built
in memory (fake sha256s and digests: this measures the orchestrator's own work only, never the
network or the engine). Each run does what the three commands do (``validate``, ``plan --json``,
``render``), each loading images.yaml and images.lock itself.

    python bench/overhead.py            # prints the result as JSON
    from overhead import run; run()     # the same dict
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from orchestrator import render
from orchestrator.config import eol, loader
from orchestrator.config.sources import Sources
from orchestrator.lock import lockfile
from orchestrator.lock.lockfile import BaseLock, Lock, PyenvLock, PythonLock, SigningKey
from orchestrator.planning import plan

TODAY = dt.date(2026, 11, 21)
TARGET_SECONDS = 1.0
REPEATS = 5
DISTROS: dict[str, tuple[str, str, str]] = {  # name: (family, release, image)
    "bookworm": ("debian", "12", "library/debian:bookworm-slim"),
    "trixie": ("debian", "13", "library/debian:trixie-slim"),
    "forky": ("debian", "14", "library/debian:forky-slim"),
    "jammy": ("ubuntu", "22.04", "library/ubuntu:22.04"),
    "noble": ("ubuntu", "24.04", "library/ubuntu:24.04"),
}
PYTHONS = ("3.11", "3.12", "3.13", "3.14", "3.15")
METHODS = ("source", "python-build")
VARIANTS = ("runtime", "dev")
PACKAGES = {
    "runtime": ["ca-certificates", "netbase", "tzdata", "libssl3", "libsqlite3-0", "libffi8",
                "libbz2-1.0", "liblzma5", "libncursesw6", "libreadline8", "libuuid1", "zlib1g"],
    "build": ["gcc", "make", "libc6-dev", "dpkg-dev", "pkg-config", "xz-utils", "curl", "gnupg",
              "ca-certificates", "libssl-dev", "libsqlite3-dev", "libffi-dev", "zlib1g-dev",
              "libbz2-dev", "liblzma-dev", "libncurses-dev", "libreadline-dev", "uuid-dev"],
    "dev": ["gcc", "g++", "make", "libc6-dev", "pkg-config", "patchelf", "libssl-dev"],
}


def _fake_sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def images_yaml() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "publish": {"registry": "registry.example.org", "repository": "org/python"},
        "distros": {
            name: {
                "family": family, "release": release, "image": image,
                "eol": dt.date(2031, 6, 30), "methods": list(METHODS), "packages": PACKAGES,
            }
            for name, (family, release, image) in DISTROS.items()
        },
        "pythons": [{"version": minor} for minor in PYTHONS],
        "max_pythons": len(PYTHONS),
        "variants": {"runtime": {"size_budget_mb": 160}, "dev": {"size_budget_mb": 520}},
        "tags": {
            "default_distro": "bookworm",
            "moving": [
                {"template": "{minor}-{variant}", "only_default": True},
                {"template": "{minor}-{variant}-{distro}{method}"},
                {"template": "{version}-{variant}-{distro}{method}"},
            ],
        },
        "env": {"LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"},
        "labels": {"org.opencontainers.image.vendor": "bench"},
    }


def images_lock(cfg: dict[str, Any]) -> Lock:
    pythons = {}
    for minor in PYTHONS:
        version = f"{minor}.4"
        url = f"https://www.python.org/ftp/python/{version}/Python-{version}.tar.xz"
        fpr = eol.PYTHON_SIGNING_KEY.get(minor)
        key = SigningKey(fpr, f"https://keys.example.org/{fpr}", _fake_sha(fpr)) if fpr else None
        pythons[minor] = PythonLock(version, url, _fake_sha(url), url + ".asc" if key else None, key,
                                    "bench (fake)")
    bases = {name: BaseLock(f"docker.io/{image}", "sha256:" + _fake_sha(image))
             for name, (_, _, image) in DISTROS.items()}
    src = Sources().pyenv
    url = src.url.format(version=src.version)
    return Lock(pythons, bases, PyenvLock(src.version, url, _fake_sha(url)), None)


def _once(path: Path) -> tuple[float, dict[str, float], int]:
    phases: dict[str, float] = {}
    t0 = time.perf_counter()

    # validate
    loaded = loader.load(path, today=TODAY)
    lock = lockfile.read(loaded)
    lockfile.check_against(loaded, lock)
    t1 = time.perf_counter()
    phases["validate"] = t1 - t0

    # plan --json
    loaded = loader.load(path, today=TODAY)
    lock = lockfile.read(loaded)
    lockfile.check_against(loaded, lock)
    the_plan = plan.build(loaded, lock, today=TODAY)
    the_plan.to_json()
    t2 = time.perf_counter()
    phases["plan"] = t2 - t1

    # render (writes only what changed, like the command)
    loaded = loader.load(path, today=TODAY)
    lock = lockfile.read(loaded)
    files = render.render_all(loaded, lock)
    render.write(loaded, files)
    t3 = time.perf_counter()
    phases["render"] = t3 - t2
    return t3 - t0, phases, len(the_plan.images)


def run(repeats: int = REPEATS) -> dict[str, Any]:
    """Time validate + plan + render ``repeats`` times; best and median in seconds."""
    with tempfile.TemporaryDirectory(prefix="orchestrator-overhead-") as tmp:
        path = Path(tmp) / "images.yaml"
        data = images_yaml()
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        (Path(tmp) / "images.lock").write_text(images_lock(data).dumps())
        totals, per_phase, cells = [], [], 0
        for _ in range(repeats):
            total, phases, cells = _once(path)
            totals.append(total)
            per_phase.append(phases)
    median = statistics.median(totals)
    result: dict[str, Any] = {
        "cells": cells,
        "seconds_median": round(median, 4),
        "seconds_best": round(min(totals), 4),
        "phases_median": {k: round(statistics.median(p[k] for p in per_phase), 4) for k in per_phase[0]},
        "runs": repeats,
        "target_seconds": TARGET_SECONDS,
        "met": median <= TARGET_SECONDS,
    }
    return result


def main() -> int:
    result = run()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

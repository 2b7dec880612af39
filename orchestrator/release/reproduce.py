"""check-reproducible: build an image twice from cold caches (``--no-cache``) into OCI
layouts, file times clamped to SOURCE_DATE_EPOCH, and compare them bit for bit.

Each build takes the cell's target in docker-bake.json with the build args and labels of a
release build (profile included), SECURITY_REFRESH fixed and SOURCE_DATE_EPOCH set. What is
compared is the image BuildKit produced: the orchestrator's labels pass (build date, run,
package list) is left out, as it records when the build ran. Both builds run apt-get update
against the configured mirror: a mirror that changes between them (a new security upload)
makes them differ in the packages; use a snapshot mirror to check across days.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import log, naming
from orchestrator.config.model import Loaded
from orchestrator.engine import Engine
from orchestrator.errors import UsageError
from orchestrator.lock.lockfile import Lock
from orchestrator.planning.epoch import Epoch
from orchestrator.planning.plan import Plan, PlannedImage
from orchestrator.registry import oci_layout
from orchestrator.release.build import bake_targets, build_args
from orchestrator.release.progress import Progress
from orchestrator.release.report import CellResult, Status
from orchestrator.supplychain import reproducible

_log = log.get("reproduce")
ROUNDS = 2
REFRESH = "reproducibility-check"  # the SECURITY_REFRESH value of both builds


@dataclass(frozen=True)
class ImageCheck:
    image: str
    built_platforms: tuple[str, ...]
    layouts: tuple[Path, ...]
    seconds: tuple[float, ...]
    comparison: reproducible.Comparison

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image, "built_platforms": list(self.built_platforms),
                "layouts": [str(p) for p in self.layouts],
                "build_seconds": [round(s, 1) for s in self.seconds],
                **self.comparison.to_dict()}


def chosen_platforms(img: PlannedImage, platforms: tuple[str, ...] | None) -> tuple[str, ...]:
    if platforms is None:
        return img.platforms
    unknown = [p for p in platforms if p not in img.platforms]
    if unknown:
        raise UsageError(f"--platform {unknown[0]}: {img.id} is built for "
                         f"{', '.join(img.platforms)} only; pick among those")
    return tuple(p for p in img.platforms if p in platforms)


def check_images(engine: Engine, loaded: Loaded, lock: Lock, plan: Plan, *, epoch: Epoch,
                 network: str | None, work: Path, platforms: tuple[str, ...] | None = None,
                 keep: bool = False, progress: Progress | None = None) -> list[ImageCheck]:
    """Every selected image built twice and compared; the layouts of an identical pair are
    removed unless ``keep`` (those of a differing pair stay, to look into). ``progress``: a
    phase ``reproduce`` with a cell per image (its two builds and the comparison)."""
    bake_dir, targets = bake_targets(loaded, lock)
    chosen = {img.id: chosen_platforms(img, platforms) for img in plan.images}  # before building
    checks = []
    progress = progress or Progress()
    with progress.phase("reproduce", len(plan.images), cells=[i.id for i in plan.images]) as ph:
        for img in plan.images:
            res = CellResult(img.id)
            with ph.cell(res):
                check = check_image(engine, loaded, plan, img, targets[img.bake_target], bake_dir,
                                    epoch=epoch, network=network, work=work,
                                    platforms=chosen[img.id])
                if check.comparison.identical:
                    res.status = Status.OK
                else:
                    res.fail("reproduce", "the two builds differ")
            if check.comparison.identical and not keep:
                shutil.rmtree(check.layouts[0].parent, ignore_errors=True)
            checks.append(check)
    return checks


def check_image(engine: Engine, loaded: Loaded, plan: Plan, img: PlannedImage,
                spec: dict[str, Any], bake_dir: Path, *, epoch: Epoch, network: str | None,
                work: Path, platforms: tuple[str, ...]) -> ImageCheck:
    context = bake_dir / spec["context"]
    args = build_args(loaded.config, plan.profile, img, spec, security_refresh=REFRESH,
                      source_date_epoch=epoch.value)
    layouts: list[Path] = []
    seconds: list[float] = []
    for n in range(1, ROUNDS + 1):
        dest = naming.reproducible_layout(work, img.id, n)
        log_path = naming.reproducible_log(work, img.id, n)
        _log.info("cold build", image=img.id, round=n, platforms=list(platforms),
                  source_date_epoch=epoch.value, log=str(log_path))
        start = time.monotonic()
        engine.export_oci(context, dockerfile=context / spec.get("dockerfile", naming.DOCKERFILE),
                          target=spec["target"], args=args, labels=spec.get("labels", {}),
                          network=network, dest=dest, log_path=log_path,
                          platforms=list(platforms), no_cache=True)
        seconds.append(time.monotonic() - start)
        layouts.append(dest)
    with oci_layout.Layout(layouts[0]) as first, oci_layout.Layout(layouts[1]) as second:
        comparison = reproducible.compare(first, second)
    return ImageCheck(img.id, platforms, tuple(layouts), tuple(seconds), comparison)

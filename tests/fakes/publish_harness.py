"""Publish runs without Docker: the real push path (release.push.do_push, publish.*, Registry) with
synthetic candidates in a FakeEngine, against any registry address (fake, fault proxy, real).

The matrix is the unit tests' features fixture (its registry and repository replaced) cut to
the four bookworm source cells: 3.13/3.14 x runtime/dev, two public tags each.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator import settings
from orchestrator.config import loader
from orchestrator.lock import lockfile
from orchestrator.planning import plan
from orchestrator.planning.plan import PlannedImage
from orchestrator.registry import Registry
from orchestrator.release.report import Report, Status
from orchestrator.release.state import CellState, Run
from tests.fakes.fake_engine import FakeEngine, FakeImage, synthetic_image

FEATURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "features"
TODAY = dt.date(2026, 11, 21)
ONLY = ["3.1[34]-source-bookworm-*"]
STAGING_PUT = r"/manifests/_staging-[^/]*$"  # a push (under the cell's internal staging tag)
PUBLIC_PUT = r"/manifests/3\.1[34]-(runtime|dev)(-bookworm)?$"  # a manifest PUT that moves a tag


# The features fixture's flavour lines (issue 18: the 3.14t and minimal cells, covered by the
# golden files and tests/unit/test_{minimal,freethreaded}.py): the publish tests count cells.
FLAVOUR_LINES = (
    "    freethreaded: true          # 3.14t: source and python-build (the PPA's is refused)\n",
    '  - {python: "3.14t", method: deadsnakes}\n',
    "  - {method: deadsnakes, variant: minimal}\n",
    "  - {method: python-build, variant: minimal}\n",
    "  minimal: {size_budget_mb: 60}\n",
)


def write_config(dest: Path, registry: str, repository: str, flavours: bool = False) -> Path:
    """A copy of the features fixture publishing to ``registry``/``repository``, without its
    flavour cells (free-threaded, minimal) unless ``flavours``."""
    dest.mkdir(parents=True, exist_ok=True)
    text = (FEATURES / "images.yaml").read_text()
    for line in FLAVOUR_LINES:
        assert text.count(line) == 1, f"the features fixture changed: {line!r}"
        if not flavours:
            text = text.replace(line, "")
    old = 'publish: {registry: "localhost:5000", repository: team/python, org: acme}'
    assert old in text, "the features fixture changed its publish line"
    text = text.replace(old, f'publish: {{registry: "{registry}", repository: {repository}, org: acme}}')
    (dest / "images.yaml").write_text(text)
    shutil.copy(FEATURES / "images.lock", dest / "images.lock")
    shutil.copytree(FEATURES / "certs", dest / "certs", dirs_exist_ok=True)
    return dest / "images.yaml"


@dataclass
class HarnessRun(Run):
    """A release Run whose registry client comes from the test (no-op sleeps, short timeouts)."""

    engine: FakeEngine
    client: Callable[[], Registry] | None = None

    def registry(self) -> Registry:
        assert self.client is not None
        return self.client()


def fingerprint(cell_id: str, seed: str) -> str:
    return "sha256:" + hashlib.sha256(f"{cell_id} {seed}".encode()).hexdigest()


def image_for(run: Run, cell_id: str, seed: str) -> FakeImage:
    """The candidate a build of ``cell_id`` gives for ``seed`` (deterministic)."""
    keys = run.label_keys
    labels = {keys.fingerprint: fingerprint(cell_id, seed), keys.packages: f"libfoo={seed}"}
    return synthetic_image(cell_id, seed, labels)


@dataclass
class Publisher:
    """Makes push runs of one config against one registry address; remembers every sleep."""

    config: Path
    host: str
    work: Path
    attempts: int = 3
    timeout: float = 10.0
    sleeps: list[float] = field(default_factory=list)
    only: list[str] = field(default_factory=lambda: list(ONLY))

    def client(self, host: str | None = None) -> Registry:
        assert host in (None, self.host), f"pushing to {host}, not {self.host}"
        return Registry(self.host, attempts=self.attempts, backoff=0.5, timeout=self.timeout,
                        sleep=self.sleeps.append)

    def run(self, seed: str = "1", seeds: dict[str, str] | None = None,
            untested: tuple[str, ...] = (), failed: tuple[str, ...] = ()) -> HarnessRun:
        """A push-only run whose candidates were built (and tested unless ``untested``) from
        ``seeds`` (per cell; ``seed`` for the others); cells in ``failed`` failed their tests."""
        loaded = loader.load(self.config, TODAY)
        lock = lockfile.read(loaded)
        planned = plan.build(loaded, lock, only=self.only, today=TODAY)
        report = Report("push", planned.profile, planned.date)
        run = HarnessRun(loaded, lock, planned, report, self.work, engine=FakeEngine(self.client),
                         settings=settings.get(), client=self.client)
        for img in planned.images:
            stage(run, img, (seeds or {}).get(img.id, seed), tested=img.id not in untested)
            if img.id in failed:
                report.cell(img.id).fail("test", "smoke test failed (simulated)")
        return run

    def images(self, run: Run, seed: str = "1",
               seeds: dict[str, str] | None = None) -> dict[str, FakeImage]:
        return {i.id: image_for(run, i.id, (seeds or {}).get(i.id, seed)) for i in run.plan.images}


def stage(run: HarnessRun, img: PlannedImage, seed: str, tested: bool = True) -> FakeImage:
    """What build (and test) leave behind: the candidate in the engine and the cell's state."""
    image = image_for(run, img.id, seed)
    run.engine.load(run.candidate_ref(img.id), image)
    run.save_state(CellState(img.id, image.id, fingerprint(img.id, seed), {"libfoo": seed},
                             image.id if tested else "", image.size,
                             build_args={"SECURITY_REFRESH": "0"},  # what the provenance says
                             build_started="2026-11-21T03:00:00Z",
                             build_finished="2026-11-21T03:10:00Z"))
    run.report.cell(img.id).status = Status.OK
    return image

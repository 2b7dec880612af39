"""A run of the release phases, and what each phase leaves for the next (under the work dir)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import naming
from orchestrator.config.model import ImagesConfig, Loaded
from orchestrator.engine import Engine
from orchestrator.lock import lockfile
from orchestrator.planning.plan import Plan, PlannedImage, prefix_for
from orchestrator.registry import Registry, registry_for
from orchestrator.release.progress import Progress
from orchestrator.release.report import Report
from orchestrator.settings import Settings
from orchestrator.supplychain import provenance


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
    # What the provenance of the pushed image says (release/attest.py): the build args the
    # build really used (a nightly's SECURITY_REFRESH too) and when it ran (RFC 3339, UTC).
    build_args: dict[str, str] = field(default_factory=dict)
    build_started: str = ""
    build_finished: str = ""
    # What the last passing smoke test found of the parts a build may leave out: platform ->
    # component -> where it is (None: absent); the OpenVEX attestation is made from it
    components: dict[str, dict[str, str | None]] = field(default_factory=dict)
    # The performance record of this run's tested image (release/perf.py; empty: none), which
    # release/attest.py attests on the platform it was measured on
    perf: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    loaded: Loaded
    lock: lockfile.Lock
    plan: Plan
    report: Report
    work: Path
    engine: Engine
    # What the command read of the environment, once (the CLI, passed to session.start_run):
    # the phases take the candidate prefix, the date, the revision, the cache dir, the smoke
    # test switch, the registry's login and proxies, the provenance's builder and the
    # environment of cosign and syft here (only the CLI fetches the settings)
    settings: Settings = field(kw_only=True)
    security_refresh: str = "0"
    network: str | None = "host"
    verbose: bool = False  # -v: stream every BuildKit line, not only step starts
    # SOURCE_DATE_EPOCH build arg of every build (epoch.find): image config and history
    # times; None where neither the environment nor the lock's git history gives one
    source_date_epoch: int | None = None
    failed_stages: dict[str, str] = field(default_factory=dict)  # stage key -> reason
    # A line per finished cell and a section per phase on stderr (session.start_run: a real
    # one; the default says nothing)
    progress: Progress = field(default_factory=Progress)
    # The platforms of every planned image (the summary table's, also for cells the nightly's
    # fast path takes out of the plan)
    platforms: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # With scan: in images.yaml, the DB its gate checks every pushed image with (session:
    # prepared before the build); the provenance records it
    scan_db: provenance.VulnerabilityDb | None = None

    @property
    def config(self) -> ImagesConfig:
        return self.loaded.config

    @property
    def repo_host(self) -> str:
        return self.config.publish.registry

    @property
    def repo(self) -> str:
        return self.config.publish.repository

    def state_path(self, cell_id: str) -> Path:
        return state_dir(self.work) / f"{cell_id}.json"

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
        return registry_for(self.repo_host, self.settings)

    def prefix(self, img: PlannedImage) -> str:
        """Where ``img``'s CPython lives in the image."""
        return prefix_for(self.config, img.python)

    @property
    def label_keys(self) -> naming.LabelKeys:
        return naming.label_keys(self.config.publish.org)

    def candidate_ref(self, cell_id: str, tag: str = naming.CANDIDATE_TAG) -> str:
        """Where the build leaves a cell's image for `test` and `push` (ORCH_CANDIDATE_PREFIX)."""
        return naming.candidate_ref(self.settings.candidate_prefix, cell_id, tag)

    def unlabelled_ref(self, cell_id: str) -> str:
        """The build's own output, before the label pass."""
        return self.candidate_ref(cell_id, naming.UNLABELLED_TAG)


def state_dir(work: Path) -> Path:
    """What runs leave for the runs after: each cell's state, the progress history."""
    return work / "state"


def work_dir(loaded: Loaded, st: Settings) -> Path:
    """ORCH_WORK_DIR as ``st`` read it (logs, state, reports); a relative one is relative to
    images.yaml's dir."""
    wd = st.work_dir
    return wd if wd.is_absolute() else loaded.root / wd


def build_order(images: tuple[PlannedImage, ...]) -> list[PlannedImage]:
    """Grouped by CPython build, runtime before dev (dev is FROM runtime)."""
    return sorted(images, key=lambda i: (i.distro, i.build or i.id, i.python, i.method,
                                         i.variant != "runtime"))

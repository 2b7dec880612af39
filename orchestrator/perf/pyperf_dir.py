"""The pyperf the images run: the orchestrator's own (a pinned dependency, pure Python), copied
from where this interpreter imports it into a directory the measurement bind-mounts read-only
(the runtime images have no pip, and must not be changed to be measured). psutil, pyperf's
optional C helper, stays behind: it would be built for the host's Python, not the image's."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
from pathlib import Path

from orchestrator.errors import PerfError

PACKAGE = "pyperf"


def version() -> str:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise PerfError("pyperf is not installed beside the orchestrator (a dependency "
                                "of the package: pip install the orchestrator again, e.g. "
                                "`make install`)") from None


def source() -> Path:
    """The directory of the pyperf package this interpreter imports."""
    version()
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:  # pragma: no cover - version() found it installed
        raise PerfError("pyperf is installed but cannot be imported")
    return Path(spec.origin).parent


def prepare(dest: Path) -> Path:
    """``dest`` made to hold exactly ``pyperf/`` (no bytecode, no tests); returns ``dest``: the
    directory that goes on the images' sys.path."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copytree(source(), dest / PACKAGE,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests"))
    return dest

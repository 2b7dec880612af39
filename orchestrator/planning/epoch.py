"""SOURCE_DATE_EPOCH for builds (reproducible-builds.org): the time every file and config
timestamp of an image is clamped to, so that two builds of the same inputs are the same bytes.

Taken from the environment when set, else from the last git commit that changed images.lock:
it moves only when a pinned input moves, so caches keyed on it stay valid from commit to
commit. (SOURCE_DATE_EPOCH in the environment also sets the date of immutable tags, see
settings; the lock's commit time does not.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from orchestrator import runner, timestamps
from orchestrator.config.model import Loaded
from orchestrator.errors import CommandError, UsageError
from orchestrator.lock import lockfile
from orchestrator.settings import Settings


@dataclass(frozen=True)
class Epoch:
    value: int
    source: str  # where it came from, for the log and the report

    def iso(self) -> str:
        return timestamps.rfc3339(dt.datetime.fromtimestamp(self.value, dt.UTC), offset="+00:00")


def find(loaded: Loaded, st: Settings) -> Epoch | None:
    """The epoch, or None when the variable is unset and the lock file has no git history."""
    if st.source_date_epoch is not None:
        return Epoch(st.source_date_epoch, "environment SOURCE_DATE_EPOCH")
    lock = lockfile.lock_path(loaded)
    git = ["git", "-C", str(lock.parent)]
    try:
        commit, _, seconds = runner.run(
            [*git, "log", "-1", "--format=%H %ct", "--", lock.name]).stdout.strip().partition(" ")
        shallow = Path(runner.run([*git, "rev-parse", "--path-format=absolute", "--git-path",
                                   "shallow"]).stdout.strip())
    except CommandError:
        return None
    # In a shallow clone (GitLab's default) the boundary commit seems to add every file: its
    # time moves with each push, which is no epoch.
    if not seconds.isdigit() or (shallow.is_file() and commit in shallow.read_text().split()):
        return None
    return Epoch(int(seconds), f"last commit of {lock.name} ({commit[:12]})")


def resolve(loaded: Loaded, st: Settings) -> Epoch:
    """The epoch; where none can be found, the fix in one line."""
    found = find(loaded, st)
    if found is None:
        lock = lockfile.lock_path(loaded)
        raise UsageError(f"{lock}: SOURCE_DATE_EPOCH is not set and the lock file has no git "
                         "history to take it from (not committed, or a shallow clone); export "
                         "SOURCE_DATE_EPOCH (e.g. $(git log -1 --format=%ct)) or fetch the "
                         "history")
    return found

"""First-seen dates kept between runs: a JSON file of {key: ISO date} under the work dir (keep
it between CI runs, e.g. as a cache, for dates older than one run). Keys are
``cell|platform|...`` strings; the nightly's pending security updates (apt/outdated.py) and
the scan's findings (scan/report.py) keep theirs in one each."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection
from pathlib import Path


class FirstSeen:
    """The dates; an unreadable file starts afresh (the dates are a report, not a gate)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: dict[str, str] = {}
        if path.exists():
            try:
                data = json.loads(path.read_text())
                self.seen = {str(k): str(v) for k, v in data.items()}
            except (ValueError, AttributeError):
                self.seen = {}

    def mark(self, key: str, today: dt.date) -> tuple[str, bool]:
        """``key``'s first-seen date (today for a new one) and whether it is new."""
        new = key not in self.seen
        return self.seen.setdefault(key, today.isoformat()), new

    def forget(self, cells: Collection[str], live: Collection[str]) -> None:
        """Drop the entries of ``cells`` (checked this run) whose key is not in ``live``;
        entries of other cells stay."""
        self.seen = {k: v for k, v in self.seen.items()
                     if k.split("|", 1)[0] not in cells or k in live}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.seen, indent=1, sort_keys=True) + "\n")

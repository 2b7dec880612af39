"""What apt would upgrade in a published image, from its package label and the archive's
indices (no pull, no build), and the record of since when a security fix has been waiting.

Pure: the registry and archive reads happen in release/fastpath.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from debian.debian_support import Version

from orchestrator import table
from orchestrator.errors import ExitCode
from orchestrator.ledger import FirstSeen


@dataclass(frozen=True)
class IndexView:
    """One Packages index as apt would weigh it."""

    name: str  # e.g. "bookworm-security main amd64"
    security: bool
    automatic: bool  # False: NotAutomatic (backports-style), never an upgrade candidate
    packages: dict[str, str]  # package -> newest version


@dataclass(frozen=True)
class Upgrade:
    package: str
    installed: str
    candidate: str
    origin: str  # the index the candidate comes from
    security: bool  # a security suite has a version newer than the installed one
    first_seen: str = ""  # YYYY-MM-DD, from the ledger (security updates only)


def upgrades(installed: dict[str, str], indices: Iterable[IndexView]) -> list[Upgrade]:
    """The upgrades `apt-get full-upgrade` (what the security-updates stage runs) makes: for
    each installed package, the newest version any automatic index has, when newer than the
    installed one (new dependencies it needs are installed too). Not modelled: pins in
    /etc/apt/preferences.d and Ubuntu's phased updates."""
    views = [v for v in indices if v.automatic]
    out = []
    for name in sorted(installed):
        have = Version(installed[name])
        best: tuple[Version, str] | None = None
        for v in views:
            cand = v.packages.get(name)
            if cand is not None and (best is None or Version(cand) > best[0]):
                best = (Version(cand), v.name)
        if best is None or best[0] <= have:
            continue
        security = any(v.security and name in v.packages and Version(v.packages[name]) > have
                       for v in views)
        out.append(Upgrade(name, installed[name], str(best[0]), best[1], security))
    return out


class State(StrEnum):
    UP_TO_DATE = "up-to-date"
    PENDING = "pending"  # apt would upgrade something
    UNPUBLISHED = "unpublished"  # no published image on some platform: it must be built
    UNKNOWN = "unknown"  # could not tell (no label, archive unreachable or unverifiable)


@dataclass(frozen=True)
class PlatformCheck:
    platform: str
    upgrades: tuple[Upgrade, ...] = ()
    indices: tuple[str, ...] = ()
    unverified: tuple[str, ...] = ()  # trusted=yes sources: read without a signature check


@dataclass(frozen=True)
class CellCheck:
    cell: str
    state: State
    reason: str = ""
    digest: str = ""
    platforms: tuple[PlatformCheck, ...] = ()
    inputs: str = ""  # the inputs label every platform's image carries ("" if they differ)

    @property
    def security(self) -> list[tuple[str, Upgrade]]:
        return [(p.platform, u) for p in self.platforms for u in p.upgrades if u.security]


def cell_state(platforms: list[PlatformCheck]) -> State:
    return State.PENDING if any(p.upgrades for p in platforms) else State.UP_TO_DATE


@dataclass
class OutdatedReport:
    cells: list[CellCheck] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        states = {c.state for c in self.cells}
        if State.UNKNOWN in states:
            return int(ExitCode.TOOL)
        if states & {State.PENDING, State.UNPUBLISHED}:
            return int(ExitCode.UPDATES_PENDING)
        return int(ExitCode.OK)

    def to_dict(self) -> dict[str, Any]:
        return {"cells": [asdict(c) for c in self.cells], "downloads": self.downloads,
                "seconds": self.seconds, "exit_code": self.exit_code}

    def table(self) -> str:
        rows = [("CELL", "PLATFORM", "PACKAGE", "INSTALLED", "CANDIDATE", "SECURITY", "SINCE")]
        for c in self.cells:
            if c.state is not State.PENDING:
                rows.append((c.cell, "", f"({c.state.value}{': ' + c.reason if c.reason else ''})",
                             "", "", "", ""))
                continue
            for p in c.platforms:
                for u in p.upgrades:
                    rows.append((c.cell, p.platform.removeprefix("linux/"), u.package,
                                 u.installed, u.candidate, "yes" if u.security else "no",
                                 u.first_seen))
        lines = table.columns(rows)
        counts = {s: sum(1 for c in self.cells if c.state is s) for s in State}
        lines.append(", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
                     + f"; {len(self.downloads)} index file(s) downloaded, {self.seconds:.1f}s")
        return "\n".join(lines) + "\n"


class Ledger(FirstSeen):
    """Since when each pending security update has been seen (security-first-seen.json)."""

    @staticmethod
    def key(cell: str, platform: str, u: Upgrade) -> str:
        return f"{cell}|{platform}|{u.package}|{u.candidate}"

    def stamp(self, check: CellCheck, today: dt.date) -> CellCheck:
        """``check`` with first_seen on its security upgrades (today for new ones)."""
        plats = []
        for p in check.platforms:
            ups = []
            for u in p.upgrades:
                if u.security:
                    seen, _ = self.mark(self.key(check.cell, p.platform, u), today)
                    ups.append(dataclasses.replace(u, first_seen=seen))
                else:
                    ups.append(u)
            plats.append(PlatformCheck(p.platform, tuple(ups), p.indices, p.unverified))
        return CellCheck(check.cell, check.state, check.reason, check.digest, tuple(plats),
                         check.inputs)

    def forget_fixed(self, checks: Iterable[CellCheck]) -> None:
        """Drop entries of checked cells that no longer wait for that update."""
        checked = {c.cell for c in checks if c.state in (State.PENDING, State.UP_TO_DATE)}
        live = {self.key(c.cell, plat, u) for c in checks for plat, u in c.security}
        self.forget(checked, live)

    @classmethod
    def record(cls, work: Path, report: OutdatedReport, today: dt.date) -> None:
        """Stamp ``report``'s security upgrades with their first-seen dates (the ledger under
        ``work``), forget the fixed ones, save."""
        ledger = cls(work / "security-first-seen.json")
        report.cells = [ledger.stamp(c, today) for c in report.cells]
        ledger.forget_fixed(report.cells)
        ledger.save()

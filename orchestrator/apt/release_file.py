"""An archive's Release file: what it says (``parse_release``: its fields and the SHA256 of
each index) and whether to believe it (``check_suite``, ``check_valid_until``, ``check_date``),
as apt judges it. ``ArchiveIndex`` (index.py) fetches and verifies it, then asks these."""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from dataclasses import dataclass

from orchestrator.apt.sources import AptSource
from orchestrator.errors import ArchiveError


@dataclass(frozen=True)
class Release:
    """A verified Release file of one suite (or a flat repository)."""

    source: AptSource
    fields: dict[str, str]
    sha256: dict[str, tuple[str, int]]  # path -> (sha256, size)
    verified: bool  # False only for trusted=yes sources

    @property
    def security(self) -> bool:
        """Updates from here are security updates (Debian-Security, noble-security, ...)."""
        names = " ".join(self.fields.get(k, "") for k in ("Suite", "Codename", "Label"))
        return "security" in names.lower()

    @property
    def automatic(self) -> bool:
        """apt upgrades from it by default (not backports-style NotAutomatic)."""
        return (self.fields.get("NotAutomatic", "no") != "yes"
                or self.fields.get("ButAutomaticUpgrades", "no") == "yes")

    @property
    def by_hash(self) -> bool:
        return self.fields.get("Acquire-By-Hash", "no") == "yes"

    @property
    def name(self) -> str:
        return self.fields.get("Codename") or self.fields.get("Suite") or self.source.suite


_SUM_LINE = re.compile(r"([0-9a-f]{64})\s+([0-9]+)\s+([^\s/]\S*)")  # sizes are padded


def parse_release(text: str) -> tuple[dict[str, str], dict[str, tuple[str, int]]]:
    """(fields, {path: (sha256, size)}); ValueError for a SHA256 line that is not a hash, a
    size and a relative path inside the archive (the hash names cache files and by-hash URLs)."""
    fields: dict[str, str] = {}
    sums: dict[str, tuple[str, int]] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            continue
        if line[0] in " \t":
            if key == "SHA256":
                m = _SUM_LINE.fullmatch(line.strip())
                if m is None or ".." in m.group(3).split("/"):
                    raise ValueError(f"{line.strip()[:120]!r} is not a SHA256 line (64 hex digits, "
                                     "a size, a path inside the archive)")
                sums[m.group(3)] = (m.group(1), int(m.group(2)))
            continue
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields, sums


def _release_time(rel: Release, field: str, now: dt.datetime, check: str) -> dt.datetime | None:
    """The Release's ``field`` (Valid-Until, Date) as a UTC time; None when it has none. A
    field that is not a date is refused (apt cannot read it either); ``now`` must be aware."""
    if now.tzinfo is None:
        raise ValueError(f"{check}: now={now!r} has no timezone (pass UTC)")
    raw = rel.fields.get(field)
    if not raw:
        return None
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        raise ArchiveError(f"{rel.source.describe()}: its Release has a {field} that is not "
                           f"a date ({raw!r}); fix: the archive must publish a Release apt can "
                           "read (a broken mirror?)") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def check_valid_until(rel: Release, now: dt.datetime) -> None:
    """Refuse ``rel`` when its ``Valid-Until`` is before ``now`` (a timezone-aware time). As
    apt (whole seconds): a Release is accepted up to and including the second its Valid-Until
    names, one without the field never expires, and a field that is not a date is refused."""
    until = _release_time(rel, "Valid-Until", now, "check_valid_until")
    if until is not None and until < now.replace(microsecond=0):
        raise ArchiveError(f"{rel.source.describe()}: its Release expired on "
                           f"{rel.fields['Valid-Until']} (Valid-Until; it is now "
                           f"{now.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC): the mirror is "
                           "stale; fix: wait for it to sync, or point the sources at one that is")


# How far a Release's Date may lie ahead of the clock: apt's Acquire::Max-FutureTime default.
MAX_FUTURE = dt.timedelta(seconds=10)


def check_date(rel: Release, now: dt.datetime) -> None:
    """Refuse ``rel`` when its ``Date`` is later than ``now`` (a timezone-aware time) by more
    than MAX_FUTURE, as apt refuses it ("not valid yet"): a Release dated ahead of the clock
    would outlive its Valid-Until's intent (a mirror or signer with a wrong clock, or a Release
    made to be served later). One without the field is accepted; a field that is not a date is
    refused."""
    date = _release_time(rel, "Date", now, "check_date")
    if date is not None and date > now.replace(microsecond=0) + MAX_FUTURE:
        raise ArchiveError(f"{rel.source.describe()}: its Release is not valid yet (Date "
                           f"{rel.fields['Date']}; it is now "
                           f"{now.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC): the mirror's or "
                           "this host's clock is wrong; fix: correct the clock, or point the "
                           "sources at a mirror whose Release is dated correctly")


def check_suite(rel: Release) -> None:
    """Refuse a Release that is not of the suite asked for: its Codename or Suite must be it
    (bookworm-security: Codename bookworm-security; noble-security: Suite noble-security). Each
    suite's Release is signed by the same archive key, so without this a mirror (or anyone on
    the plain-HTTP path to it) could answer for bookworm-security with bookworm's current,
    validly signed Release, which has no Valid-Until: the security updates would vanish from
    ``outdated`` and the nightly. apt warns ("Conflicting distribution"); here it is an error.
    A flat repository names no suite; a trusted=yes source is not checked at all."""
    src = rel.source
    if src.flat or not rel.verified:
        return
    said = {rel.fields.get("Codename", ""), rel.fields.get("Suite", "")} - {""}
    if src.suite in said or src.suite.split("/", 1)[0] == rel.fields.get("Codename"):
        return
    raise ArchiveError(f"{src.describe()}: its Release is for {' / '.join(sorted(said)) or 'no suite'} "
                       f"(Codename/Suite), not {src.suite}: another suite's signed Release served in "
                       "its place (a misconfigured mirror, or a replay); fix: point the sources at "
                       "an archive that serves this suite")

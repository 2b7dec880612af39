"""Times as the orchestrator writes them: RFC 3339 in UTC, to the second. One spelling for the
build times in a cell's state, the provenance (what in-toto-golang parses), the performance
record, the OCI created label, SOURCE_DATE_EPOCH's line and the bench's results.

``Z`` ends them unless the caller keeps the ``+00:00`` it always wrote (``offset``): the created
label and the epoch's line, which datetime.isoformat spelled before there was this module."""

from __future__ import annotations

import datetime as dt

UTC_OFFSETS = ("Z", "+00:00")  # the two ways RFC 3339 writes UTC


def rfc3339(t: dt.datetime, *, offset: str = "Z") -> str:
    """``t`` in UTC to the second: 2026-11-21T08:30:00Z, or with ``offset="+00:00"``
    2026-11-21T08:30:00+00:00. A time without a time zone is refused (ValueError): its UTC is
    a guess."""
    if t.tzinfo is None:
        raise ValueError(f"{t!r} has no time zone")
    if offset not in UTC_OFFSETS:
        raise ValueError(f"{offset!r} is not a UTC offset ({' or '.join(UTC_OFFSETS)})")
    text = t.astimezone(dt.UTC).isoformat(timespec="seconds")
    return text.removesuffix("+00:00") + offset


def now(*, offset: str = "Z") -> str:
    """This moment, as ``rfc3339`` writes it."""
    return rfc3339(dt.datetime.now(dt.UTC), offset=offset)


def parse(text: str) -> dt.datetime:
    """A time ``rfc3339`` wrote with Z (2026-11-21T08:30:00Z), as an aware datetime in UTC;
    anything else: ValueError."""
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)

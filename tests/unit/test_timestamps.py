"""orchestrator.timestamps: the one RFC 3339 spelling (UTC, to the second) and its parser."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestrator import timestamps

CET = dt.timezone(dt.timedelta(hours=1))


def test_a_time_is_written_in_utc_to_the_second() -> None:
    t = dt.datetime(2026, 11, 21, 9, 30, 5, 999_999, tzinfo=CET)
    assert timestamps.rfc3339(t) == "2026-11-21T08:30:05Z"
    assert timestamps.rfc3339(t, offset="+00:00") == "2026-11-21T08:30:05+00:00"
    midnight = dt.datetime.combine(dt.date(2026, 11, 21), dt.time(), dt.UTC)
    assert timestamps.rfc3339(midnight, offset="+00:00") == midnight.isoformat()  # the label's


def test_a_time_without_a_zone_or_an_offset_other_than_utc_is_refused() -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        timestamps.rfc3339(dt.datetime(2026, 11, 21, 8, 30))
    with pytest.raises(ValueError, match="not a UTC offset"):
        timestamps.rfc3339(dt.datetime(2026, 11, 21, tzinfo=dt.UTC), offset="+01:00")


def test_parse_reads_what_rfc3339_writes_and_nothing_else() -> None:
    now = timestamps.now()
    assert timestamps.rfc3339(timestamps.parse(now)) == now
    assert timestamps.parse("2026-11-21T08:30:05Z") == dt.datetime(2026, 11, 21, 8, 30, 5,
                                                                  tzinfo=dt.UTC)
    for bad in ("2026-11-21T08:30:05+00:00", "2026-11-21 08:30:05Z", "", "yesterday"):
        with pytest.raises(ValueError):
            timestamps.parse(bad)

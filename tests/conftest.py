"""Every test has a time limit (pytest-timeout): [tool.pytest.ini_options] timeout (120 s) for
the unit tests, and a generous one for the markers below, which build images, compile CPython
or install Renovate. A test that sets its own ``@pytest.mark.timeout`` keeps it. The limit
covers the test's setup too: the first e2e test builds the session's release in its fixtures."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

# marker -> seconds, the first that a test carries wins
MARKER_TIMEOUTS: tuple[tuple[str, float], ...] = (
    ("docker", 5400.0),  # a release of the e2e matrix (25-40 min on CI) inside one test's setup
    ("slow", 5400.0),
    ("renovate", 1500.0),  # npm install renovate (up to 1200 s, then cached) in a session fixture
)


def timeout_for(markers: Iterable[str]) -> float | None:
    """The limit of a test carrying ``markers``; None: the ini default."""
    names = set(markers)
    return next((seconds for marker, seconds in MARKER_TIMEOUTS if marker in names), None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "spawns(*programs): the unit test may start these programs (basenames: "
        "\"sh\", \"make\", \"python\" for any python3.X); tests/unit/conftest.py refuses "
        "every other (tests/hermetic.py)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("timeout") is not None:
            continue
        seconds = timeout_for(m.name for m in item.iter_markers())
        if seconds is not None:
            item.add_marker(pytest.mark.timeout(seconds))

"""Shared fixtures for the unit tests: no Docker, no network, a fixed date."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from orchestrator import config, settings
from orchestrator import lock as lock_mod
from tests.unit.helpers import FIXTURES, REPO, TODAY


@pytest.fixture(autouse=True)
def fixed_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[settings.Settings]:
    """Every in-process CLI call sees 2026-11-21 and no real docker credentials."""
    docker_config = tmp_path_factory.mktemp("docker-config")
    fixed = settings.Settings.from_environ({
        "ORCH_DATE": TODAY.strftime("%Y%m%d"),
        "ORCH_LOG_FORMAT": "console",
        "DOCKER_CONFIG": str(docker_config),
    })
    old = settings._settings
    settings.override(fixed)
    yield fixed
    settings._settings = old


@pytest.fixture(autouse=True)
def reset_logging() -> Iterator[None]:
    """cli.main() points structlog at the sys.stderr of its moment (a capture that pytest
    closes after the test); later tests that log must not write to that closed file."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture
def repo_loaded() -> config.Loaded:
    """The organisation's images.yaml, validated as of 2026-11-21."""
    return config.load(REPO / "images.yaml", today=TODAY)


@pytest.fixture
def repo_lock(repo_loaded: config.Loaded) -> lock_mod.Lock:
    return lock_mod.read(repo_loaded)


@pytest.fixture
def minimal_text() -> str:
    return (FIXTURES / "minimal.yaml").read_text(encoding="utf-8")


@pytest.fixture
def minimal_path() -> Path:
    return FIXTURES / "minimal.yaml"

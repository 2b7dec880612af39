"""Fixtures for the Renovate-backed tests: Renovate itself (npm, cached) and the registries that
releases of the org and e2e matrices leave behind."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.renovate import matrices
from tests.renovate.renovate import CACHE, VERSION, Renovate, Unavailable, install

PRESET = matrices.REPO / "renovate" / "org-python.json"


def ci(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get("CI", "").lower() not in ("", "0", "false", "no")


def unavailable(reason: str, in_ci: bool) -> NoReturn:
    """Skip without Renovate, except in CI, which must not pass without having run it."""
    if in_ci:
        pytest.fail(f"{reason} (CI=true: Renovate's tests must run)", pytrace=False)
    pytest.skip(f"{reason}; cache: {CACHE}, version {VERSION}")


@pytest.fixture(scope="session")
def renovate() -> Iterator[Renovate]:
    """renovate@VERSION from .cache/renovate-npm (npm installs it the first time)."""
    try:
        dist = install()
    except Unavailable as exc:
        unavailable(str(exc), ci())
    oracle = Renovate(dist)
    yield oracle
    oracle.close()


@pytest.fixture(scope="session")
def preset_text() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PRESET.read_text())
    return data


@pytest.fixture(scope="session", params=["org", "e2e"])
def registry(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> matrices.Registry:
    source = matrices.ORG if request.param == "org" else matrices.E2E
    return matrices.releases(source, tmp_path_factory.mktemp(f"releases-{request.param}"))


@pytest.fixture
def preset(preset_text: dict[str, Any], registry: matrices.Registry) -> dict[str, Any]:
    """The preset, its package rules naming ``registry``'s repository (the e2e one: 127.0.0.1)."""
    data = copy.deepcopy(preset_text)
    for rule in data["packageRules"]:
        rule["matchPackageNames"] = [registry.name]
    return data


@pytest.fixture
def preset_path() -> Path:
    return PRESET

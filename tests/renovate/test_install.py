"""Renovate's tests never pass in CI without having run Renovate: no npm is a failure there."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.renovate import conftest
from tests.renovate.renovate import Unavailable, install

pytestmark = pytest.mark.renovate


def test_an_unreachable_npm_registry_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))  # nothing cached to reuse
    with pytest.raises(Unavailable, match=r"npm install renovate@39\.264\.0 failed"):
        install(tmp_path / "renovate-npm", timeout=300)
    assert not (tmp_path / "renovate-npm" / "node_modules").exists()


def test_without_renovate_ci_fails_and_a_developer_skips() -> None:
    assert conftest.ci({"CI": "true"}) and not conftest.ci({}) and not conftest.ci({"CI": "false"})
    with pytest.raises(pytest.fail.Exception, match="CI=true: Renovate's tests must run"):
        conftest.unavailable("npm install renovate@39.264.0 failed", in_ci=True)
    with pytest.raises(pytest.skip.Exception, match=r"npm install renovate@39\.264\.0 failed"):
        conftest.unavailable("npm install renovate@39.264.0 failed", in_ci=False)

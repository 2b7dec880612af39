"""Every test has a time limit: the ini default for unit tests, tests/conftest.py's per marker."""

from __future__ import annotations

import tomllib

import pytest

from tests import conftest
from tests.unit.helpers import REPO


def test_the_default_is_tight_and_pytest_timeout_is_a_dev_dependency(
        pytestconfig: pytest.Config) -> None:
    assert float(pytestconfig.getini("timeout")) == 120
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("pytest-timeout") for d in project["optional-dependencies"]["dev"])


def test_docker_slow_and_renovate_tests_get_a_generous_limit() -> None:
    assert conftest.timeout_for(["docker", "slow"]) == 5400
    assert conftest.timeout_for(["slow"]) == 5400
    assert conftest.timeout_for(["renovate", "parametrize"]) == 1500
    assert conftest.timeout_for(["parametrize"]) is None and conftest.timeout_for([]) is None


class Item:
    """What the hook reads and writes of a pytest.Item."""

    def __init__(self, *marks: pytest.MarkDecorator) -> None:
        self.own = [m.mark for m in marks]

    def iter_markers(self) -> list[pytest.Mark]:
        return list(self.own)

    def get_closest_marker(self, name: str) -> pytest.Mark | None:
        return next((m for m in self.own if m.name == name), None)

    def add_marker(self, marker: pytest.MarkDecorator) -> None:
        self.own.append(marker.mark)


def test_the_hook_marks_docker_tests_and_keeps_a_test_s_own_limit() -> None:
    e2e, own, unit = Item(pytest.mark.docker), Item(pytest.mark.docker, pytest.mark.timeout(60)), Item()
    conftest.pytest_collection_modifyitems([e2e, own, unit])  # type: ignore[list-item]
    timeouts = [[m.args for m in i.own if m.name == "timeout"] for i in (e2e, own, unit)]
    assert timeouts == [[(5400.0,)], [(60,)], []]


def test_the_limit_reaches_the_tests(request: pytest.FixtureRequest) -> None:
    """This test carries no marker: pytest-timeout applies the ini default to it."""
    assert request.node.get_closest_marker("timeout") is None
    assert request.config.pluginmanager.hasplugin("timeout")

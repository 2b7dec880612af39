"""Shared fixtures for the unit tests: no Docker, no network, a fixed date."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
import structlog

from orchestrator import settings
from orchestrator.config import loader
from orchestrator.config.model import Loaded
from orchestrator.lock import lockfile
from tests import hermetic
from tests.fakes import fake_syft
from tests.unit.helpers import FIXTURES, REPO, TODAY

# markers whose tests may reach what the guard refuses: Renovate's tests install it with npm
# (tests/renovate; none lives here today), docker tests need the engine by definition
EXEMPT_MARKERS = ("renovate", "docker")
_REFUSED = pytest.StashKey[bool]()  # the test (or its setup) already failed with NotHermetic


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None],
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if call.excinfo is not None and call.excinfo.errisinstance(hermetic.NotHermetic):
        item.stash[_REFUSED] = True
    return report


def spawned_programs(node: pytest.Item) -> frozenset[str]:
    """The programs a test may start: what its spawns markers name (function, class, module),
    each a basename ("sh", "make", "python"), not a path or a command line."""
    names = frozenset(str(a) for m in node.iter_markers("spawns") for a in m.args)
    bad = sorted(n for n in names if not n or "/" in n or any(c.isspace() for c in n))
    if bad:
        raise pytest.UsageError(f"{node.nodeid}: @pytest.mark.spawns takes program basenames "
                                f"(\"sh\", \"make\"), not {', '.join(map(repr, bad))}")
    return names


@pytest.fixture(autouse=True)
def hermetic_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[hermetic.Guard | None]:
    """Nothing spawned that the test does not name, no Docker, no network (tests/hermetic.py):
    starting a program its spawns marker does not name, or docker/dockerd/buildx/buildctl at
    all, constructing a real engine client or connecting a socket off loopback raises
    NotHermetic; any attempt fails the test, even one the code under test swallowed."""
    if any(request.node.get_closest_marker(m) for m in EXEMPT_MARKERS):
        yield None
        return
    guard = hermetic.Guard(hermetic.stand_in_dirs(tmp_path_factory.getbasetemp()),
                           spawned_programs(request.node))
    guard.install(monkeypatch)
    yield guard
    if guard.violations and not request.node.stash.get(_REFUSED, False):
        pytest.fail("\n".join(guard.violations), pytrace=False)


@pytest.fixture(scope="session")
def stand_in_tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tools dir of the unit tests' settings: a stand-in syft (FakeSyft runs in its place),
    no grype (tests that want one install tests/fakes/fake_grype.py in a dir of their own)."""
    tools = tmp_path_factory.mktemp("tools")
    fake_syft.install(tools)
    return tools


@pytest.fixture(autouse=True)
def fixed_settings(tmp_path_factory: pytest.TempPathFactory,
                   stand_in_tools: Path) -> Iterator[settings.Settings]:
    """Every in-process CLI call sees 2026-11-21, no real docker credentials and none of this
    machine's Go tools."""
    docker_config = tmp_path_factory.mktemp("docker-config")
    fixed = settings.Settings.from_environ({
        "ORCH_DATE": TODAY.strftime("%Y%m%d"),
        "ORCH_LOG_FORMAT": "console",
        "DOCKER_CONFIG": str(docker_config),
        "ORCH_TOOLS_DIR": str(stand_in_tools),
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
def repo_loaded() -> Loaded:
    """The organisation's images.yaml, validated as of 2026-11-21."""
    return loader.load(REPO / "images.yaml", today=TODAY)


@pytest.fixture
def repo_lock(repo_loaded: Loaded) -> lockfile.Lock:
    return lockfile.read(repo_loaded)


@pytest.fixture
def minimal_text() -> str:
    return (FIXTURES / "minimal.yaml").read_text(encoding="utf-8")


@pytest.fixture
def minimal_path() -> Path:
    return FIXTURES / "minimal.yaml"

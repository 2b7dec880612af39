"""The unit tests' guard (tests/hermetic.py, installed by tests/unit/conftest.py) fires: no
program starts that the test's spawns marker does not name, no docker/dockerd/buildx/buildctl
starts at all, no real engine client is made, no socket leaves loopback, no host name is
resolved; a named program, a stand-in named by the marker and loopback servers still work.

A broken guard fails these tests without harm: the programs it should refuse are either named
by a path that does not exist (os.exec*, os.spawn*, posix_spawn: a FileNotFoundError instead of
NotHermetic) or asked only for ``--version``; the addresses are TEST-NET (192.0.2.0/24, never
routed) and the reserved name ``example.invalid``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import python_on_whales

from orchestrator import runner
from orchestrator.engine.docker_engine import DockerEngine
from orchestrator.errors import EngineError
from tests import hermetic
from tests.hermetic import Guard, NotHermetic
from tests.unit.conftest import spawned_programs

MISSING = "/nonexistent/hermetic-test"  # a directory that does not exist


@pytest.fixture
def guard(hermetic_guard: Guard | None) -> Iterator[Guard]:
    """The installed guard; what a test here provokes on purpose is not a violation."""
    assert hermetic_guard is not None, "the unit tests run under the guard"
    yield hermetic_guard
    hermetic_guard.violations.clear()


SPAWNS: dict[str, Callable[[], Any]] = {
    "subprocess.run": lambda: subprocess.run(["docker", "--version"], capture_output=True,
                                             timeout=10, check=False),
    "subprocess.Popen dockerd": lambda: subprocess.Popen(["dockerd", "--version"]),
    "check_output by path": lambda: subprocess.check_output([f"{MISSING}/buildctl", "--version"],
                                                            timeout=10),
    "executable=": lambda: subprocess.run(["anything", "--version"], executable="docker-buildx",
                                          timeout=10, check=False),
    "shell": lambda: subprocess.run("set -e; FOO=1 docker --version", shell=True, timeout=10,
                                    check=False),
    "shell after &&": lambda: subprocess.run("true && buildkitd --version", shell=True,
                                             timeout=10, check=False),
    "shell in a subshell": lambda: subprocess.run("echo x >/dev/null 2>&1; (echo y)|docker x",
                                                  shell=True, timeout=10, check=False),
    "orchestrator.runner": lambda: runner.run(["docker", "--version"], timeout=10),
    "os.popen": lambda: os.popen("docker --version"),
    "os.system": lambda: os.system("docker --version"),
    "os.execv": lambda: os.execv(f"{MISSING}/docker", ["docker", "--version"]),
    "os.execvpe": lambda: os.execvpe("dockerd", ["dockerd", "--version"], {"PATH": MISSING}),
    "os.execle": lambda: os.execle(f"{MISSING}/docker", "docker", {"PATH": MISSING}),
    "os.posix_spawn": lambda: os.posix_spawn(f"{MISSING}/containerd", ["containerd"], {}),
    "os.spawnv": lambda: os.spawnv(os.P_WAIT, f"{MISSING}/docker-buildx", ["docker-buildx"]),
}


@pytest.mark.parametrize("how", sorted(SPAWNS))
def test_starting_docker_or_buildkit_is_refused(guard: Guard, how: str) -> None:
    with pytest.raises(NotHermetic, match=r"hermetic unit tests: starting \S*(docker|dockerd|"
                                          r"buildctl|buildkitd|containerd|docker-buildx) .* is "
                                          r"not allowed; the unit tests use fakes"):
        SPAWNS[how]()
    assert len(guard.violations) == 1


@pytest.mark.spawns("docker", "python", "sh")
def test_named_programs_and_named_stand_ins_of_docker_names_run(guard: Guard,
                                                                tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    stand_in = bindir / "docker"
    stand_in.write_text("#!/bin/sh\necho stand-in docker \"$@\"\n")
    stand_in.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["docker", "info"], env=env, capture_output=True, text=True, timeout=10,
                          check=True)
    assert done.stdout == "stand-in docker info\n"
    done = subprocess.run("docker ps | cat", shell=True, env=env, capture_output=True, text=True,
                          timeout=10, check=True)
    assert done.stdout == "stand-in docker ps\n"
    assert runner.run([sys.executable, "-c", "print('docker')"], timeout=30).stdout == "docker\n"
    assert guard.violations == []


UNNAMED: dict[str, Callable[[], Any]] = {
    "subprocess.run": lambda: subprocess.run([sys.executable, "-c", "pass"], timeout=30,
                                             check=False),
    "subprocess.call": lambda: subprocess.call(["true"], timeout=30),
    "check_output": lambda: subprocess.check_output(["echo", "x"], timeout=30),
    "Popen": lambda: subprocess.Popen(["true"]).wait(30),
    "shell": lambda: subprocess.run("true", shell=True, timeout=30, check=False),
    "os.system": lambda: os.system("true"),
    "os.popen": lambda: os.popen("true").close(),
    "os.execv": lambda: os.execv(f"{MISSING}/true", ["true"]),
    "os.posix_spawn": lambda: os.posix_spawn(f"{MISSING}/true", ["true"], {}),
    "asyncio": lambda: asyncio.run(_async_spawn()),
    "orchestrator.runner": lambda: runner.run(["true"], timeout=30),
}


async def _async_spawn() -> None:
    proc = await asyncio.create_subprocess_exec("true")
    await proc.wait()


@pytest.mark.parametrize("how", sorted(UNNAMED))
def test_a_program_the_test_does_not_name_is_refused(guard: Guard, how: str) -> None:
    """Without a spawns marker every start fails, saying how to name the program."""
    with pytest.raises(NotHermetic, match=r"hermetic unit tests: starting (true|python\S*|echo|"
                                          r"sh) \(.*\) is not allowed; a unit test starts no "
                                          r"program unless it says which: mark it "
                                          r"@pytest.mark.spawns\(...\) with the basename \(it "
                                          r"names none\)"):
        UNNAMED[how]()
    assert len(guard.violations) == 1


@pytest.mark.spawns("python")
def test_a_marked_test_starts_what_it_names_and_nothing_else(guard: Guard) -> None:
    done = subprocess.run([sys.executable, "-c", "print('ran')"], capture_output=True,
                          text=True, timeout=30, check=True)
    assert done.stdout == "ran\n"
    with pytest.raises(NotHermetic, match=r"starting true \(true\) is not allowed; .* \(it "
                                          r"allows python\)"):
        subprocess.run(["true"], timeout=30, check=False)
    with pytest.raises(NotHermetic, match=r"starting sh \(/bin/sh\)"):  # a shell is a program
        subprocess.run(f"{sys.executable} -c pass", shell=True, timeout=30, check=False)


@pytest.mark.spawns("docker")
def test_naming_docker_allows_a_stand_in_only(guard: Guard) -> None:
    with pytest.raises(NotHermetic, match=r"starting docker \(.*\) is not allowed; the unit "
                                          r"tests use fakes"):
        subprocess.run(["docker", "--version"], capture_output=True, timeout=10, check=False)


def test_a_name_allows_its_versions_and_a_marker_takes_basenames_only() -> None:
    guard = Guard((), frozenset({"python", "sh"}))
    assert [guard.allows(n) for n in ("python", "python3", "python3.11", "sh", "bash",
                                      "pythonista", "sh-x")] \
        == [True, True, True, True, False, False, False]

    class Node:
        nodeid = "tests/unit/test_x.py::test_y"

        @staticmethod
        def iter_markers(name: str) -> list[pytest.Mark]:
            return [pytest.mark.spawns("sh", "/bin/make").mark]

    with pytest.raises(pytest.UsageError, match=r"takes program basenames .* not '/bin/make'"):
        spawned_programs(Node())  # type: ignore[arg-type]


def test_a_refusal_the_code_swallows_is_still_recorded(guard: Guard) -> None:
    """The fixture fails a test on any recorded violation, caught or not."""
    with contextlib.suppress(Exception):  # what careless code under test would do
        subprocess.run(["docker", "--version"], capture_output=True, timeout=10, check=False)
    assert len(guard.violations) == 1 and "starting docker" in guard.violations[0]


def test_the_real_engine_and_its_clients_cannot_be_made(guard: Guard) -> None:
    with pytest.raises(NotHermetic, match="python-on-whales' DockerClient"):
        DockerEngine()
    with pytest.raises(NotHermetic, match="docker-py's DockerClient"):
        docker.from_env()
    with pytest.raises(NotHermetic, match="docker-py's APIClient"):
        docker.APIClient(base_url="unix:///var/run/docker.sock")
    with pytest.raises(NotHermetic, match="python-on-whales' DockerClient"):
        python_on_whales.DockerClient()
    assert len(guard.violations) == 4
    assert not issubclass(NotHermetic, OSError | EngineError)  # no handler mistakes it


def test_sockets_reach_loopback_only(guard: Guard, tmp_path: Path) -> None:
    with pytest.raises(NotHermetic, match=r"connecting to 192\.0\.2\.1:443 \(not loopback\)"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)
    with pytest.raises(NotHermetic, match=r"resolving the host name 'example\.invalid'"):
        socket.getaddrinfo("example.invalid", 443)
    with pytest.raises(NotHermetic, match=r"resolving the host name 'example\.invalid'"):
        urllib.request.urlopen("http://example.invalid/", timeout=1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, \
            pytest.raises(NotHermetic, match=r"sending to 192\.0\.2\.53:53"):
        udp.sendto(b"\0", ("192.0.2.53", 53))
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as six, \
            pytest.raises(NotHermetic, match=r"connecting to 2001:db8::1:80"):
        six.connect_ex(("2001:db8::1", 80))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix, \
            pytest.raises(NotHermetic, match=r"the engine's socket .*docker\.sock"):
        unix.connect(str(tmp_path / "docker.sock"))
    assert len(guard.violations) == 6
    guard.violations.clear()

    for host in ("127.0.0.1", "127.0.0.2", "localhost"):  # loopback servers still answer
        with socket.create_server(("127.0.0.1" if host == "localhost" else host, 0)) as server:
            port = server.getsockname()[1]
            accepted = threading.Thread(target=lambda s=server: s.accept()[0].close())
            accepted.start()
            with socket.create_connection((host, port), timeout=5):
                pass
            accepted.join(timeout=5)
    path = tmp_path / "agent.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener, \
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        listener.bind(str(path))
        listener.listen()
        client.connect(str(path))
    assert guard.violations == []


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.9.9.9", True), ("::1", True), ("[::1]", True),
    ("::ffff:127.0.0.1", True), ("localhost", True), ("registry.localhost", True),
    ("10.0.0.1", False), ("192.0.2.1", False), ("127.evil.example", False),
    ("example.org", False), ("::ffff:10.0.0.1", False)])
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert hermetic.is_loopback(host) is loopback


@pytest.mark.renovate
def test_renovate_tests_are_exempt(hermetic_guard: Guard | None) -> None:
    """Renovate's tests install it with npm (tests/renovate): the guard stays off for them."""
    assert hermetic_guard is None
    assert "Guard." not in socket.getaddrinfo.__qualname__  # not patched

"""The unit run spawns nothing it does not name, no Docker, and reaches no network (issue 31
item 7, issue 30): a guard the unit tests' autouse fixture installs (tests/unit/conftest.py; the
idea is cibuildwheel's unit_test/main_tests/conftest.py, which makes subprocess.Popen fail in
its unit tests).

While installed, each of these raises ``NotHermetic`` with a message naming what was tried and
what to do instead, and is recorded in ``Guard.violations`` (the fixture fails the test on any,
so a violation that the code under test swallowed still shows):

- starting any program: subprocess (every Popen, hence run/call/check_output/os.popen/asyncio's
  subprocesses), os.exec*, os.spawn*, os.posix_spawn*, os.system; unless the test names the
  program, by the basename of what is started (argv[0], or ``executable=``; ``sh`` for a
  shell command or os.system), in its marker: ``@pytest.mark.spawns("sh", "make")``. A name
  also allows itself with a version after it ("python" allows python3 and python3.11);
- starting docker, dockerd, docker-buildx, buildctl, buildkitd or containerd, named in a
  marker or not, also as a word of a shell command. A stand-in of the same name in a temporary
  directory (a test's tmp_path) is allowed when the marker names it:
  tests/unit/test_host_services.py runs host-services.sh against such stand-ins;
- constructing docker-py's client (``docker.from_env``, ``docker.DockerClient``,
  ``docker.APIClient``) or python-on-whales' ``DockerClient``, hence the real ``DockerEngine``;
- a socket connecting (or sending a datagram) to an address that is not loopback, or to the
  Docker, containerd or BuildKit unix socket; resolving a host name other than localhost.
  Loopback stays open: unit tests run local servers (tests/fakes/fake_registry.py, the fault proxy).

The guard sees what this process does, not what a child does: scripts run by the tests use
stand-ins first on PATH, and ``DOCKER_HOST`` points at a socket that does not exist.
"""

from __future__ import annotations

import inspect
import ipaddress
import os
import re
import shlex
import socket
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.api.client
import docker.client
import pytest
import python_on_whales

PROGRAMS = frozenset({"docker", "dockerd", "docker-buildx", "buildctl", "buildkitd", "containerd"})
ENGINE_SOCKETS = re.compile(r"(docker|containerd|buildkit)[^/]*\.sock$")
DEAD_DOCKER_HOST = "unix:///nonexistent/hermetic-unit-tests/docker.sock"
USE_INSTEAD = ("the unit tests use fakes (tests/fakes/fake_engine.py, tests/fakes/fake_registry.py, "
               "a stand-in program in tmp_path, a server on 127.0.0.1); a test that needs Docker or the "
               "network is marked docker and lives in tests/integration or tests/e2e")
_SHELL_SEPARATORS = frozenset({";", "&&", "||", "|", "&", "(", ")", "then", "do", "else", "exec",
                               "{", "!", "time",
                               "sudo", "env", "nice", "timeout", "xargs", "command"})


class NotHermetic(RuntimeError):
    """A unit test tried to start a program it does not name, or to reach Docker or the
    network. Not an OSError: code that handles an unreachable host or a missing program must
    not take it for one."""


def name_the_program(allowed: frozenset[str]) -> str:
    allows = f"it allows {', '.join(sorted(allowed))}" if allowed else "it names none"
    return ("a unit test starts no program unless it says which: mark it "
            f"@pytest.mark.spawns(...) with the basename ({allows}), or use a fake")


@dataclass
class Guard:
    stand_in_dirs: tuple[Path, ...]  # programs of a forbidden name may run from here
    allowed: frozenset[str] = frozenset()  # what the test's spawns marker names
    violations: list[str] = field(default_factory=list)

    def refuse(self, what: str, instead: str = USE_INSTEAD) -> NotHermetic:
        message = f"hermetic unit tests: {what}; {instead}"
        self.violations.append(message)
        return NotHermetic(message)

    # ------------------------------------------------------------------ programs

    def is_stand_in(self, path: str) -> bool:
        real = Path(os.path.realpath(path))
        return real.is_file() and any(real.is_relative_to(d) for d in self.stand_in_dirs)

    def allows(self, name: str) -> bool:
        """``name`` (a basename) is one the test's marker names, or one of them with a version
        after it (python3.11 for "python")."""
        return any(name == a or re.fullmatch(re.escape(a) + r"[0-9][0-9.]*", name)
                   for a in self.allowed)

    def check_program(self, program: str | bytes | os.PathLike[Any],
                      env: Mapping[Any, Any] | None = None) -> None:
        """``program`` is about to start: Docker's programs never (stand-ins aside), any other
        only when the test's marker names it."""
        self.check_engine_program(program, env)
        self.check_named(program)

    def check_named(self, program: str | bytes | os.PathLike[Any]) -> None:
        name = os.fsdecode(program)
        if not self.allows(Path(name).name):
            raise self.refuse(f"starting {Path(name).name} ({name}) is not allowed",
                              name_the_program(self.allowed))

    def check_engine_program(self, program: str | bytes | os.PathLike[Any],
                             env: Mapping[Any, Any] | None = None) -> None:
        name = os.fsdecode(program)
        if Path(name).name not in PROGRAMS:
            return
        found = name if os.sep in name else _which(name, env)
        if found is not None and self.is_stand_in(found):
            return
        raise self.refuse(f"starting {name} ({found or 'not on PATH'}) is not allowed")

    def check_shell(self, command: str | bytes, env: Mapping[Any, Any] | None = None) -> None:
        """The words of ``command`` in a command position (first, after ; && || | etc.)."""
        text = os.fsdecode(command)
        lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            words = list(lexer)
        except ValueError:  # unbalanced quotes: the shell will refuse it too
            words = text.split()
        expect_command, redirect = True, False
        for word in words:
            if redirect or (set(word) & set("<>") and set(word) <= set("<>&0123456789")):
                # `> file`, `2>&1`: a redirection and its target, no command
                redirect = not redirect and not word.endswith(("&1", "&2"))
                continue
            if expect_command and "=" not in word:
                self.check_engine_program(word, env)
            expect_command = (word in _SHELL_SEPARATORS or set(word) <= set("();|&")
                              or (expect_command and "=" in word))

    def check_argv(self, args: Any, executable: Any, env: Mapping[Any, Any] | None,
                   shell: bool) -> None:
        """What Popen is about to start: Docker's programs anywhere in it are refused first;
        then the program itself (``executable``, else argv[0]; the shell for a command
        string) must be one the test names."""
        if shell:
            commands = [args] if isinstance(args, str | bytes) else list(args)[:1]
            for command in commands:
                self.check_shell(command, env)
            self.check_program(executable or "/bin/sh", env)
            return
        argv = [args] if isinstance(args, str | bytes | os.PathLike) else list(args)
        if executable is not None:
            self.check_engine_program(executable, env)
        if argv:
            self.check_engine_program(argv[0], env)
        if executable is not None or argv:
            self.check_named(executable if executable is not None else argv[0])

    # ------------------------------------------------------------------ network

    def check_address(self, family: int, address: Any, *, verb: str = "connecting to") -> None:
        if family == socket.AF_UNIX:
            path = os.fsdecode(address) if isinstance(address, str | bytes) else ""
            if ENGINE_SOCKETS.search(path):
                raise self.refuse(f"{verb} the engine's socket {path} is not allowed")
            return
        if family not in (socket.AF_INET, socket.AF_INET6):
            return
        host = str(address[0])
        if not is_loopback(host):
            raise self.refuse(f"{verb} {host}:{address[1]} (not loopback) is not allowed")

    def check_name(self, host: Any) -> None:
        if host is None:
            return
        name = host.decode() if isinstance(host, bytes) else str(host)
        if not name or _is_ip(name) or is_loopback(name):
            return
        raise self.refuse(f"resolving the host name {name!r} (DNS: the network) is not allowed")

    # ------------------------------------------------------------------ install

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Patch every entry point named in the module docstring (undone by ``monkeypatch``)."""
        monkeypatch.setenv("DOCKER_HOST", DEAD_DOCKER_HOST)
        self._install_processes(monkeypatch)
        self._install_clients(monkeypatch)
        self._install_sockets(monkeypatch)

    def _install_processes(self, monkeypatch: pytest.MonkeyPatch) -> None:
        guard = self
        execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]
        signature = inspect.signature(execute_child)

        def guarded_execute_child(popen: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(popen, *args, **kwargs).arguments
            guard.check_argv(bound["args"], bound["executable"], bound["env"], bool(bound["shell"]))
            return execute_child(popen, *args, **kwargs)

        monkeypatch.setattr(subprocess.Popen, "_execute_child", guarded_execute_child)

        def wrap(real: Callable[..., Any], program_at: int, env_at: int | None) -> Callable[..., Any]:
            def guarded(*args: Any, **kwargs: Any) -> Any:
                env = args[env_at] if env_at is not None and len(args) > env_at else None
                guard.check_program(args[program_at], env or kwargs.get("env"))
                return real(*args, **kwargs)
            return guarded

        # os.execl* and os.execvp* end in execv/execve; os.spawnl* in spawnv*
        for name, program_at, env_at in (
                ("execv", 0, None), ("execve", 0, 2), ("execvp", 0, None), ("execvpe", 0, 2),
                ("posix_spawn", 0, 2), ("posix_spawnp", 0, 2), ("spawnv", 1, None),
                ("spawnve", 1, 3), ("spawnvp", 1, None), ("spawnvpe", 1, 3)):
            if hasattr(os, name):
                monkeypatch.setattr(os, name, wrap(getattr(os, name), program_at, env_at))
        real_system = os.system

        def guarded_system(command: str) -> int:
            guard.check_shell(command)
            guard.check_program("/bin/sh")
            return real_system(command)

        monkeypatch.setattr(os, "system", guarded_system)

    def _install_clients(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def refuse(what: str) -> Callable[..., None]:
            def init(*args: Any, **kwargs: Any) -> None:
                raise self.refuse(f"constructing {what} (a client of the real engine) is not "
                                  "allowed; the real DockerEngine makes one")
            return init

        monkeypatch.setattr(docker.client.DockerClient, "__init__",
                            refuse("docker-py's DockerClient (docker.from_env)"))
        monkeypatch.setattr(docker.api.client.APIClient, "__init__",
                            refuse("docker-py's APIClient"))
        monkeypatch.setattr(python_on_whales.DockerClient, "__init__",
                            refuse("python-on-whales' DockerClient"))

    def _install_sockets(self, monkeypatch: pytest.MonkeyPatch) -> None:
        guard = self
        connect, connect_ex, sendto = (socket.socket.connect, socket.socket.connect_ex,
                                       socket.socket.sendto)

        def guarded_connect(sock: socket.socket, address: Any) -> None:
            guard.check_address(sock.family, address)
            connect(sock, address)

        def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
            guard.check_address(sock.family, address)
            return connect_ex(sock, address)

        def guarded_sendto(sock: socket.socket, data: Any, *rest: Any) -> int:
            guard.check_address(sock.family, rest[-1], verb="sending to")
            return int(sendto(sock, data, *rest))

        monkeypatch.setattr(socket.socket, "connect", guarded_connect)
        monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
        monkeypatch.setattr(socket.socket, "sendto", guarded_sendto)

        def name_guard(real: Callable[..., Any]) -> Callable[..., Any]:
            def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
                guard.check_name(host)
                return real(host, *args, **kwargs)
            return guarded

        for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex"):
            monkeypatch.setattr(socket, name, name_guard(getattr(socket, name)))


def _which(name: str, env: Mapping[Any, Any] | None) -> str | None:
    for directory in os.get_exec_path(dict(env) if env is not None else None):
        candidate = Path(os.fsdecode(directory)) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """localhost (or a name under .localhost) or a loopback address (IPv4-mapped too)."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def stand_in_dirs(basetemp: Path) -> tuple[Path, ...]:
    """Where a test's stand-in programs live: pytest's temporary directories, the system's."""
    dirs = {Path(os.path.realpath(basetemp)), Path(os.path.realpath(tempfile.gettempdir()))}
    return tuple(sorted(dirs))


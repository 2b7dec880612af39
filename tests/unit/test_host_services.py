"""scripts/host-services.sh repairs the engine it made (issue 34 item 7): a dockerd that answers
but whose default bridge is gone (``ip link show docker0`` fails while ``docker network inspect
bridge`` lists it) is restarted when host-services started it, and is an error naming the fix
when it did not. Provisioning's step dockerd runs ``host-services.sh start dockerd`` then
``status dockerd``, so these cases are its cases.

A port the registry or the mirror needs, held by a process host-services did not start, is an
error naming that process (pid, command) and the fix; the process is never stopped (item 8).

Nothing real is touched: ``docker``, ``dockerd``, ``ip``, ``ss``, ``curl`` and
``docker-registry`` are stand-ins first on PATH, the pid, log and config directories are the
test's own. The stand-in dockerd is "up" while it runs, makes the bridge when it starts (unless
told not to) and exits by itself after 60 s at most; so does the stand-in registry, which
listens (for the stand-in ss) and answers (for the stand-in curl) while it runs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.unit.helpers import REPO

SCRIPT = REPO / "scripts" / "host-services.sh"

FAKE_DOCKER = """#!/bin/bash
# stand-in docker CLI: answers while the stand-in daemon is up ($FAKE_STATE/up)
[[ -e $FAKE_STATE/up ]] || { echo "Cannot connect to the Docker daemon" >&2; exit 1; }
case "$1 $2" in
    "info "* | "info") [[ $* == *SecurityOptions* ]] && echo '["name=seccomp,profile=builtin"]'; exit 0 ;;
    "network inspect") [[ $3 == bridge ]] && echo docker0 && exit 0; exit 1 ;;
esac
exit 0
"""
FAKE_DOCKERD = """#!/bin/bash
# stand-in dockerd: up while it runs; makes its bridge unless $FAKE_STATE/no-bridge exists
trap 'rm -f "$FAKE_STATE/up"; exit 0' TERM INT
[[ -e $FAKE_STATE/no-bridge ]] || touch "$FAKE_STATE/bridge"
echo "$$" >"$FAKE_STATE/dockerd.started"
touch "$FAKE_STATE/up"
for ((i = 0; i < 600; i++)); do sleep 0.1; done
rm -f "$FAKE_STATE/up"
"""
FAKE_IP = """#!/bin/bash
# stand-in ip: `ip link show docker0` succeeds while $FAKE_STATE/bridge exists
[[ "$1 $2 $3" == "link show docker0" && -e $FAKE_STATE/bridge ]] && { echo "3: docker0: <UP>"; exit 0; }
echo "Device \\"$3\\" does not exist." >&2
exit 1
"""
FAKE_SS = """#!/bin/bash
# stand-in ss: `ss -Hltnp "sport = :PORT"` prints $FAKE_STATE/ss-PORT (the listeners on PORT)
port=${!#}
cat "$FAKE_STATE/ss-${port##*:}" 2>/dev/null
exit 0
"""
FAKE_CURL = """#!/bin/bash
# stand-in curl: http://HOST:PORT/... answers while $FAKE_STATE/answers-PORT exists
url=${!#}
port=${url#http://*:}
[[ -e $FAKE_STATE/answers-${port%%/*} ]] || exit 7
"""
FAKE_REGISTRY = """#!/bin/bash
# stand-in docker-registry: listens on ORCH_REGISTRY's port and answers while it runs
port=${ORCH_REGISTRY##*:}
trap 'rm -f "$FAKE_STATE/answers-$port" "$FAKE_STATE/ss-$port"; exit 0' TERM INT
echo "$$" >"$FAKE_STATE/registry.started"
echo "LISTEN 0 4096 127.0.0.1:$port 0.0.0.0:* users:((\\"docker-registry\\",pid=$$,fd=3))" \\
    >"$FAKE_STATE/ss-$port"
touch "$FAKE_STATE/answers-$port"
for ((i = 0; i < 600; i++)); do sleep 0.1; done
rm -f "$FAKE_STATE/answers-$port" "$FAKE_STATE/ss-$port"
"""
REGISTRY_PORT, MIRROR_PORT = "5999", "8799"  # never reached: ss and curl are stand-ins
FAKES = {"docker": FAKE_DOCKER, "dockerd": FAKE_DOCKERD, "ip": FAKE_IP, "ss": FAKE_SS,
         "curl": FAKE_CURL, "docker-registry": FAKE_REGISTRY}


@dataclass
class Host:
    root: Path
    state: Path
    run_dir: Path
    env: dict[str, str]

    def services(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(SCRIPT), *args], env=self.env, capture_output=True,
                              text=True, timeout=90, check=False)

    def pid(self) -> int | None:
        pf = self.run_dir / "dockerd.pid"
        return int(pf.read_text()) if pf.exists() else None

    def foreign_daemon(self) -> None:
        """A dockerd answering that host-services did not start (no pid file)."""
        (self.state / "up").touch()
        (self.state / "bridge").touch()

    def break_bridge(self) -> None:
        (self.state / "bridge").unlink()

    def listener(self, port: str, pid: int | None, *, answers: bool) -> None:
        """Something listening on ``port`` (``pid`` None: a process ss cannot name)."""
        users = f' users:(("prog",pid={pid},fd=3))' if pid else ""
        (self.state / f"ss-{port}").write_text(f"LISTEN 0 4096 0.0.0.0:{port} 0.0.0.0:*{users}\n")
        if answers:
            (self.state / f"answers-{port}").touch()


def _ours(pid: int, root: Path) -> bool:
    try:
        return str(root) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    for tool in ("bash", "setsid", "nohup", "timeout"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    for name, text in FAKES.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_STATE": str(state), "LC_ALL": "C.UTF-8",
           "ORCH_HOST_RUN_DIR": str(tmp_path / "run"), "ORCH_HOST_LOG_DIR": str(tmp_path / "log"),
           "ORCH_HOST_ETC": str(tmp_path / "etc"), "ORCH_HOST_STATE": str(tmp_path / "var"),
           "ORCH_DOCKERD_CONFIG": str(tmp_path / "etc" / "dockerd.json"),
           "ORCH_REGISTRY": f"127.0.0.1:{REGISTRY_PORT}", "ORCH_MIRROR_PORT": MIRROR_PORT,
           "ORCH_MIRROR_DIR": str(tmp_path / "mirror")}
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "registry.yml").write_text("version: 0.1\n")
    for name in FAKES:  # never the real ones
        assert shutil.which(name, path=env["PATH"]) == str(bin_dir / name)
    h = Host(tmp_path, state, tmp_path / "run", env)
    try:
        yield h
    finally:
        started = [state / "dockerd.started", state / "registry.started"]
        pids = {h.pid(), *(int(f.read_text()) for f in started if f.exists())}
        for pid in pids:
            if pid and _ours(pid, tmp_path):
                os.kill(pid, signal.SIGTERM)


@pytest.mark.spawns("bash")
def test_a_broken_bridge_of_a_dockerd_it_started_is_restarted_saying_so(host: Host) -> None:
    first = host.services("start", "dockerd")
    assert first.returncode == 0, first.stderr
    assert "dockerd: started (pid" in first.stdout
    old = host.pid()
    assert old is not None
    again = host.services("start", "dockerd")
    assert again.returncode == 0 and "already running" in again.stdout  # whole: left alone
    assert host.pid() == old

    host.break_bridge()
    status = host.services("status", "dockerd")
    assert status.returncode == 1
    assert "dockerd: broken (pid" in status.stdout and "docker0 is gone" in status.stdout

    repaired = host.services("start", "dockerd")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    out = repaired.stdout
    assert f"restarting dockerd (pid {old}), which host-services started" in out
    assert "`ip link show docker0` fails while `docker network inspect bridge` lists it" in out
    assert f"dockerd: stopped (pid {old})" in out
    assert "bridge docker0 is back" in out
    new = host.pid()
    assert new is not None and new != old
    assert (host.state / "bridge").exists()
    assert host.services("status", "dockerd").returncode == 0


@pytest.mark.spawns("bash")
def test_a_broken_bridge_of_a_dockerd_it_did_not_start_is_an_error_naming_the_fix(host: Host) -> None:
    host.foreign_daemon()
    whole = host.services("start", "dockerd")
    assert whole.returncode == 0 and "not started by host-services" in whole.stdout

    host.break_bridge()
    res = host.services("start", "dockerd")
    assert res.returncode == 1
    assert "docker0 is gone" in res.stderr and "not started by host-services" in res.stderr
    assert "left alone: restart it yourself (e.g. `systemctl restart docker`" in res.stderr
    assert host.pid() is None and not (host.state / "dockerd.started").exists()  # nothing started
    status = host.services("status", "dockerd")
    assert status.returncode == 1 and "restart it yourself" in status.stdout


@pytest.mark.spawns("bash")
def test_a_restart_that_does_not_bring_the_bridge_back_is_an_error(host: Host) -> None:
    assert host.services("start", "dockerd").returncode == 0
    (host.state / "no-bridge").touch()
    host.break_bridge()
    res = host.services("start", "dockerd")
    assert res.returncode == 1
    assert "restarting dockerd" in res.stdout
    assert "dockerd: started (pid" in res.stderr and "docker0 is gone" in res.stderr


@pytest.mark.spawns("bash")
def test_a_fresh_start_checks_the_bridge(host: Host) -> None:
    (host.state / "no-bridge").touch()
    res = host.services("start", "dockerd")
    assert res.returncode == 1
    assert "but its bridge network interface docker0 is gone" in res.stderr
    assert host.pid() is not None  # left running for its log to be read; the fixture stops it


# -- item 8: a port held by a process host-services did not start ---------------------------

@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """A process host-services did not start (its command line: ``foreign-server 60``)."""
    proc = subprocess.Popen(["bash", "-c", "exec -a foreign-server sleep 60"])
    try:
        for _ in range(100):  # until exec has replaced bash's command line
            if Path(f"/proc/{proc.pid}/cmdline").read_bytes().startswith(b"foreign-server"):
                break
            time.sleep(0.02)
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.spawns("bash")
@pytest.mark.parametrize("answers", [False, True])
def test_a_registry_port_held_by_another_process_is_an_error_naming_it_never_a_kill(
        host: Host, stranger: subprocess.Popen[bytes], answers: bool) -> None:
    host.listener(REGISTRY_PORT, stranger.pid, answers=answers)
    res = host.services("start", "registry")
    assert res.returncode == 1, res.stdout
    assert res.stderr == (
        f"[host-services] ERROR: registry: port {REGISTRY_PORT} (ORCH_REGISTRY=127.0.0.1:"
        f"{REGISTRY_PORT}) is held by pid {stranger.pid} (foreign-server 60), which host-services "
        "did not start; it is left alone: stop it yourself (the distro's registry: systemctl "
        "disable --now docker-registry) or set ORCH_REGISTRY to a free loopback port, then re-run\n")
    assert stranger.poll() is None  # still running: never stopped
    assert not (host.state / "registry.started").exists()  # nothing started in its place
    assert not (host.run_dir / "registry.pid").exists()


@pytest.mark.spawns("bash")
def test_a_mirror_port_held_by_another_process_is_an_error_naming_it(
        host: Host, stranger: subprocess.Popen[bytes]) -> None:
    host.listener(MIRROR_PORT, stranger.pid, answers=True)
    res = host.services("start", "mirror")
    assert res.returncode == 1
    assert (f"mirror: port {MIRROR_PORT} (ORCH_MIRROR_PORT={MIRROR_PORT}) is held by pid "
            f"{stranger.pid} (foreign-server 60), which host-services did not start; it is left "
            f"alone: stop it yourself (kill {stranger.pid}, if it is yours) or set "
            "ORCH_MIRROR_PORT to a free loopback port, then re-run") in res.stderr
    assert stranger.poll() is None
    assert not (host.run_dir / "mirror.pid").exists()


@pytest.mark.spawns("bash")
def test_a_listener_ss_cannot_name_is_an_error_too(host: Host) -> None:
    host.listener(REGISTRY_PORT, None, answers=False)
    res = host.services("start", "registry")
    assert res.returncode == 1
    assert (f"port {REGISTRY_PORT} (ORCH_REGISTRY=127.0.0.1:{REGISTRY_PORT}) is held by a process "
            "ss cannot name (run `ss -ltnp` as root to see it)") in res.stderr
    assert not (host.state / "registry.started").exists()


@pytest.mark.spawns("bash")
def test_its_own_registry_on_the_port_is_not_a_stranger(host: Host) -> None:
    first = host.services("start", "registry")
    assert first.returncode == 0, first.stderr
    assert "registry: started (pid" in first.stdout
    pid = int((host.run_dir / "registry.pid").read_text())
    assert f"pid={pid}," in (host.state / f"ss-{REGISTRY_PORT}").read_text()  # it listens
    again = host.services("start", "registry")
    assert again.returncode == 0, again.stderr
    assert f"registry: already running (pid {pid}), skipped" in again.stdout
    stopped = host.services("stop", "registry")
    assert f"registry: stopped (pid {pid})" in stopped.stdout

"""A second (third, ...) Docker engine beside the host's, standing in for another CI runner.

Each has its own data root, exec root, socket, pid file, containerd (namespace, plugins
namespace), cgroup parent and config file (the containerd image store), no bridge and no
iptables rules: it shares nothing with the host's engine but the loopback network, so the
only way two of them share build results is a registry cache.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

STATE = Path(os.environ.get("ORCH_E2E_RUNNERS", "/var/lib/orchestrator-e2e-runners"))


class Dockerd:
    def __init__(self, name: str) -> None:
        self.name = name
        self.root = STATE / name
        self.run_dir = Path("/run") / f"orchestrator-e2e-{name}"
        self.socket = self.run_dir / "docker.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def env(self) -> dict[str, str]:
        """Environment that points the docker CLI, buildx and docker-py at this engine."""
        return {"DOCKER_HOST": self.host, "DOCKER_CONTEXT": ""}

    def _argv(self) -> list[str]:
        config = self.run_dir / "daemon.json"
        config.write_text(json.dumps({"features": {"containerd-snapshotter": True}}))
        return ["dockerd", "--data-root", str(self.root / "data"),
                "--exec-root", str(self.run_dir / "exec"),
                "--pidfile", str(self.run_dir / "dockerd.pid"), "-H", self.host,
                "--bridge=none", "--iptables=false", "--ip6tables=false",
                "--containerd-namespace", f"orch-{self.name}",
                "--containerd-plugins-namespace", f"orch-{self.name}-plugins",
                "--cgroup-parent", f"orch-{self.name}", "--config-file", str(config)]

    def start(self, timeout: float = 60) -> None:
        self.stop_leftovers()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        log = (self.root / "dockerd.log").open("ab")
        self.proc = subprocess.Popen(self._argv(), stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd {self.name} exited: "
                                   f"{(self.root / 'dockerd.log').read_text()[-2000:]}")
            if self.docker("info", "--format", "{{.DriverStatus}}", check=False).returncode == 0:
                return
            time.sleep(0.5)
        raise RuntimeError(f"dockerd {self.name} did not answer within {timeout}s")

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", *args], env={**os.environ, **self.env},
                              capture_output=True, text=True, check=check, timeout=600)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        self.cleanup()

    def stop_leftovers(self) -> None:
        """A dockerd of this name left by an interrupted run (its pid file says which)."""
        pidfile = self.run_dir / "dockerd.pid"
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pidfile.read_text()), signal.SIGTERM)
            time.sleep(3)
        self.cleanup()

    def cleanup(self) -> None:
        """Unmount what the engine left mounted (netns, overlay snapshots), drop its cgroups
        and its state: the next run starts from an empty engine (a cold runner)."""
        for base in (self.run_dir, self.root):
            mounts = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True,
                                    text=True, check=False).stdout.split()
            for target in sorted((m for m in mounts if m.startswith(f"{base}/")), reverse=True):
                subprocess.run(["umount", "-l", target], check=False, capture_output=True)
        for cg in Path("/sys/fs/cgroup").glob(f"**/orch-{self.name}"):
            for sub in sorted(cg.glob("**/"), key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):
                    sub.rmdir()
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> Dockerd:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

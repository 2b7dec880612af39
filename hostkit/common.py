"""What every host kit command shares: the environment, the output lines, files put in place."""

from __future__ import annotations

import filecmp
import hashlib
import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TextIO

from orchestrator import runner
from orchestrator.errors import ExitCode, OrchestratorError

REPO = Path(__file__).resolve().parents[1]
E2E_MATRIX = REPO / "tests" / "e2e" / "images.yaml"


class HostkitError(OrchestratorError):
    """A host kit step failed; the message is the one line provision-host.sh prints."""

    exit_code = ExitCode.TOOL


class Run(Protocol):
    """``orchestrator.runner.run``'s signature (unit tests pass a fake)."""

    def __call__(self, argv: Sequence[str | Path], *, check: bool = True, input: str | None = None,
                 timeout: float | None = None, cwd: Path | None = None,
                 env: dict[str, str] | None = None,
                 on_line: Callable[[str], None] | None = None) -> runner.Completed: ...


@dataclass(frozen=True)
class HostEnv:
    """provision-host.sh's ORCH_* settings, with its defaults."""

    mirror_dir: Path
    state_dir: Path
    pyenv_root: Path
    mirror_port: int
    registry: str
    debian_mirror: str
    debian_security_mirror: str
    keyring: Path
    matrix: Path
    ubuntu_mirror: str = "http://archive.ubuntu.com/ubuntu"
    ubuntu_security_mirror: str = "http://security.ubuntu.com/ubuntu"
    # trixie's ubuntu-keyring, put here by provision-ubuntu.sh (trixie_tools)
    ubuntu_keyring: Path = Path("/usr/local/share/keyrings/ubuntu-archive-keyring.gpg")
    org_lock: Path = REPO / "images.lock"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> HostEnv:
        env = os.environ if environ is None else environ
        port = env.get("ORCH_MIRROR_PORT") or "8700"
        if not port.isdigit():
            raise HostkitError(f"ORCH_MIRROR_PORT={port!r} is not a port number")
        return cls(
            mirror_dir=Path(env.get("ORCH_MIRROR_DIR") or "/srv/orchestrator-mirror"),
            state_dir=Path(env.get("ORCH_HOST_STATE") or "/var/lib/orchestrator-host"),
            pyenv_root=Path(env.get("ORCH_PYENV_ROOT") or "/root/.pyenv"),
            mirror_port=int(port),
            registry=env.get("ORCH_REGISTRY") or "127.0.0.1:5000",
            debian_mirror=env.get("ORCH_DEBIAN_MIRROR") or "http://deb.debian.org/debian",
            debian_security_mirror=(env.get("ORCH_DEBIAN_SECURITY_MIRROR")
                                    or "http://deb.debian.org/debian-security"),
            keyring=Path(env.get("ORCH_DEBIAN_KEYRING")
                         or "/usr/share/keyrings/debian-archive-keyring.gpg"),
            matrix=Path(env.get("ORCH_E2E_MATRIX") or E2E_MATRIX),
            ubuntu_mirror=env.get("ORCH_UBUNTU_MIRROR") or "http://archive.ubuntu.com/ubuntu",
            ubuntu_security_mirror=(env.get("ORCH_UBUNTU_SECURITY_MIRROR")
                                    or "http://security.ubuntu.com/ubuntu"),
            ubuntu_keyring=Path(env.get("ORCH_UBUNTU_KEYRING")
                                or "/usr/local/share/keyrings/ubuntu-archive-keyring.gpg"),
            org_lock=Path(env.get("ORCH_ORG_LOCK") or REPO / "images.lock"),
        )

    @property
    def mirror_url(self) -> str:
        return f"http://127.0.0.1:{self.mirror_port}/"


class Out:
    """provision-host.sh's output lines: ``[provision]   skip: ...`` and so on."""

    def __init__(self, stream: TextIO | None = None, errors: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.errors = errors or sys.stderr

    def _line(self, text: str, stream: TextIO | None = None) -> None:
        print(f"[provision] {text}", file=stream or self.stream, flush=True)

    def say(self, text: str) -> None:
        self._line(text)

    def did(self, text: str) -> None:
        self._line(f"  done: {text}")

    def skip(self, text: str) -> None:
        self._line(f"  skip: {text}")

    def ok(self, text: str) -> None:
        self._line(f"  ok: {text}")

    def warn(self, text: str) -> None:
        self._line(f"  WARNING: {text}", self.errors)


def file_hash(path: Path, algo: str = "sha256") -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, algo).hexdigest()


def put_file(src: Path, dst: Path, out: Out, note: str = "") -> bool:
    """Install ``src`` as ``dst`` (0644, via ``dst.part`` + rename) unless an identical file is
    there already; True if it wrote."""
    if dst.is_file() and filecmp.cmp(src, dst, shallow=False):
        out.skip(f"{dst} present{note}")
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    part = dst.with_name(dst.name + ".part")
    shutil.copyfile(src, part)
    part.chmod(0o644)
    part.replace(dst)
    out.did(f"{dst}{note}")
    return True


def write_if_changed(dst: Path, data: bytes) -> bool:
    """Write ``data`` to ``dst`` (0644, atomically) only if it differs; True if it changed."""
    if dst.is_file() and dst.read_bytes() == data:
        return False
    dst.parent.mkdir(parents=True, exist_ok=True)
    part = dst.with_name(dst.name + ".part")
    part.write_bytes(data)
    part.chmod(0o644)
    part.replace(dst)
    return True


def update_sha256sums(mirror_dir: Path, out: Out) -> Path:
    """``$ORCH_MIRROR_DIR/SHA256SUMS``: ``sha256sum`` lines for every regular file served (not
    symlinks, not SHA256SUMS* or *.part), by path in byte order - what ``find -type f | LC_ALL=C
    sort | xargs sha256sum`` wrote."""
    rels = []
    for dirpath, _dirs, files in os.walk(mirror_dir):
        for name in files:
            path = Path(dirpath) / name
            if name.startswith("SHA256SUMS") or name.endswith(".part") or path.is_symlink():
                continue
            if path.is_file():
                rels.append(path.relative_to(mirror_dir).as_posix())
    rels.sort(key=os.fsencode)
    text = "".join(f"{file_hash(mirror_dir / rel)}  {rel}\n" for rel in rels) or "\n"
    sums = mirror_dir / "SHA256SUMS"
    if write_if_changed(sums, text.encode()):
        out.did(str(sums))
    else:
        out.skip(f"{sums} up to date")
    return sums

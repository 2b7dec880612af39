"""The one wrapper for external commands: logs the command, raises CommandError on failure;
and where the Go tools the project pins are (``go_tool``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator import log
from orchestrator.errors import CommandError, OrchestratorError

_log = log.get("runner")


@dataclass(frozen=True)
class Completed:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run(
    argv: Sequence[str | Path],
    *,
    check: bool = True,
    input: str | None = None,
    timeout: float | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> Completed:
    """Run ``argv``; with ``on_line`` stdout+stderr are streamed line by line (merged)."""
    args = [str(a) for a in argv]
    _log.debug("run", argv=args, cwd=str(cwd) if cwd else None)
    start = time.monotonic()
    try:
        if on_line is None:
            proc = subprocess.run(
                args, input=input, capture_output=True, text=True, errors="replace", timeout=timeout,
                cwd=cwd, env=env, check=False,
            )
            out, err, code = proc.stdout, proc.stderr, proc.returncode
        else:
            lines: list[str] = []
            with subprocess.Popen(
                args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                bufsize=1, cwd=cwd, env=env, stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
            ) as p:
                if input is not None and p.stdin:
                    p.stdin.write(input)
                    p.stdin.close()
                assert p.stdout is not None
                for line in p.stdout:
                    lines.append(line)
                    on_line(line.rstrip("\n"))
                code = p.wait(timeout=timeout)
            out, err = "".join(lines), "".join(lines[-50:])
    except FileNotFoundError as exc:
        raise CommandError(args, 127, f"{args[0]}: not found ({exc})") from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandError(args, 124, f"timed out after {timeout}s") from exc
    seconds = time.monotonic() - start
    result = Completed(args, code, out, err, seconds)
    _log.debug("ran", argv0=args[0], returncode=code, seconds=round(seconds, 2))
    if check and code != 0:
        raise CommandError(args, code, err, out)
    return result


def go_tool(tools_dir: Path, name: str, error: type[OrchestratorError], *,
            or_path: bool = False) -> str:
    """The Go tool ``name`` as scripts/install-go-tools.sh built it from its pin in
    tools/go-tools.txt: ``tools_dir/bin/NAME`` (Settings.tools_dir); with ``or_path``, else
    ``name`` on PATH. Neither: ``error``, one line naming the command that builds it."""
    pinned = tools_dir / "bin" / name
    if os.access(pinned, os.X_OK) and pinned.is_file():  # access first: it never raises
        return str(pinned)
    found = shutil.which(name) if or_path else None
    if found:
        return found
    where = (f"neither {pinned} nor {name} on PATH" if or_path
             else f"{pinned} is missing or not executable")
    raise error(f"no {name}: {where}; run `bash scripts/install-go-tools.sh {name}` (builds the "
                f"{name} tools/go-tools.txt pins into {tools_dir}; set ORCH_TOOLS_DIR if it is "
                "elsewhere)")

"""What a test needs from the host: a developer without it gets a skip that says how to install
it; CI (the environment variable CI set, as .ci/run sets it) gets a failure with the same hint,
so a test never passes there without having run. Used by tests/unit and tests/integration."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

import pytest


def in_ci(environ: Mapping[str, str] | None = None) -> bool:
    """CI is set to anything but "", 0, false or no (as orchestrator.settings reads it)."""
    env = os.environ if environ is None else environ
    return env.get("CI", "").lower() not in ("", "0", "false", "no")


def unavailable(what: str, hint: str, environ: Mapping[str, str] | None = None) -> NoReturn:
    """Skip locally; under CI fail: ``what`` is missing, ``hint`` says how to get it."""
    if in_ci(environ):
        pytest.fail(f"{what} (CI is set: this test must run; {hint})", pytrace=False)
    pytest.skip(f"{what} ({hint})")


def require_tool(name: str, hint: str, *, path: Path | None = None,
                 environ: Mapping[str, str] | None = None) -> str:
    """The program ``name`` (on PATH, or the file ``path`` when given): its path, else a skip
    (locally) or a failure (CI) naming ``hint``."""
    if path is not None:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
        unavailable(f"no {name} at {path}", hint, environ)
    found = shutil.which(name)
    if found is None:
        unavailable(f"no {name} on this host", hint, environ)
    return found


# the hints, one per kind of missing thing
GCC = "apt-get install gcc libc6-dev"
ARM64_GCC = "apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu"
DEV_EXTRA = "`make install` installs the dev extra: pip install -e '.[dev]'"
PROVISION = "`make provision` (scripts/provision-host.sh) makes the build host"

"""components (every variant): which parts the build may leave out this image ships, as one
JSON object (component -> where it was found, or null when absent). The OpenVEX attestation
is generated from it (orchestrator/supplychain/vex.py); the keys are images.yaml's
scan.vex[].component names (config/publish.py VEX_COMPONENTS, checked by a unit test)."""

import importlib.util
import json
import sysconfig
from pathlib import Path

stdlib = Path(sysconfig.get_paths()["stdlib"])
include = Path(sysconfig.get_paths()["include"])


def first(directory: Path, *patterns: str) -> "str | None":
    """The first path under ``directory`` matching one of ``patterns`` (in order), or None."""
    for pattern in patterns:
        hits = sorted(directory.glob(pattern))
        if hits:
            return str(hits[0])
    return None


def module(name: str) -> "str | None":
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return (spec.origin or name) if spec else None


found = {
    # the suite's own test modules: Debian's libpython3.X-stdlib ships test/support and
    # regrtest without them (the suite is libpython3.X-testsuite)
    "cpython-tests": first(stdlib, "test/test_sys.py", "test/test_grammar.py"),
    "idle": first(stdlib, "idlelib"),
    "tkinter": first(stdlib, "tkinter"),
    # the wheels ensurepip installs: its own, or Debian's (python3-pip-whl) that it falls back to
    "ensurepip": first(stdlib, "ensurepip/_bundled/*.whl")
    or first(Path("/usr/share/python-wheels"), "pip-*.whl"),
    "pip": module("pip"),
    "headers": first(include, "Python.h"),
}
print(json.dumps(found, sort_keys=True))

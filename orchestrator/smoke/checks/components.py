"""components (every variant): which parts the build may leave out this image ships, as one
JSON object (component -> where it was found, or null when absent). The OpenVEX attestation
is generated from it (orchestrator/supplychain/vex.py); the keys are images.yaml's
scan.vex[].component names (config/publish.py VEX_COMPONENTS, checked by a unit test)."""

import importlib.util
import json
import shutil
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


def toolchain(root: Path = Path("/")) -> "str | None":
    """The first program of the C toolchain found: on PATH, then where Debian's and Ubuntu's
    gcc and binutils install them under ``root`` (versioned and target-prefixed names too),
    then the compiler proper (cc1), which stays even where the drivers are gone."""
    for name in ("cc", "gcc", "c++", "g++", "ld", "as"):
        found = shutil.which(name)
        if found:
            return found
    for directory in ("usr/bin", "usr/local/bin", "bin"):
        hit = first(root / directory, "cc", "gcc", "gcc-[0-9]*", "*-linux-gnu*-gcc*", "g++*",
                    "c++", "ld", "ld.bfd", "*-linux-gnu*-ld*", "as", "*-linux-gnu*-as")
        if hit:
            return hit
    return first(root / "usr/lib/gcc", "*/*/cc1", "*/*/cc1plus") or first(
        root / "usr/libexec/gcc", "*/*/cc1", "*/*/cc1plus")


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
    # gcc, cc, g++, ld, as, cc1: what a gcc or binutils advisory's flaw is in (the runtime
    # libraries a runtime image keeps, libgcc-s1 and libstdc++6, are not the compiler)
    "compilers": toolchain(),
}
print(json.dumps(found, sort_keys=True))

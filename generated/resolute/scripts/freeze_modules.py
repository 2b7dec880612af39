"""build.freeze_modules: add stdlib modules to CPython's own freeze list, then regenerate.

Run from the root of an unpacked CPython source tree (before configure) with the names of
the modules to freeze in addition to CPython's own list, e.g.
``python3 freeze_modules.py encodings encodings.aliases encodings.utf_8 linecache``.
A package (a directory under Lib/) is frozen as ``<name>`` (the package and its submodules),
a module as itself. CPython's Tools/build/freeze_modules.py (Tools/scripts/ before 3.11)
then rewrites the Makefile, the frozen-module tables and the build files; the .py and .pyc
stay in the stdlib, so ``-X frozen_modules=off`` still finds them on disk.

Shipped by `orchestrator render` next to the Dockerfile and bind-mounted into the compile
stage (it never lands in an image).
"""

from __future__ import annotations

import os
import sys

TOOL_DIRS = ("Tools/build", "Tools/scripts")


def lib_path(module: str) -> str:
    return "Lib/" + module.replace(".", "/")


def main(wanted: list[str]) -> int:
    tools = [d for d in TOOL_DIRS if os.path.isfile(d + "/freeze_modules.py")]
    if not tools:
        sys.exit("build.freeze_modules: no freeze_modules.py in Tools/build or Tools/scripts")
    sys.path.insert(0, tools[0])
    import freeze_modules as fm  # CPython's own tool, from the source tree

    have = {m.name for m in fm.parse_frozen_specs()}
    want = [m for m in wanted if m not in have]
    missing = [m for m in want
               if not (os.path.isdir(lib_path(m)) or os.path.isfile(lib_path(m) + ".py"))]
    if missing:
        sys.exit("build.freeze_modules: not in this CPython: " + " ".join(missing))
    specs = ["<" + m + ">" if os.path.isdir(lib_path(m)) else m for m in want]
    fm.FROZEN.append(("build.freeze_modules", specs))
    fm.main()
    print("frozen in addition:", *want)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

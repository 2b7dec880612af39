"""extensions-load (minimal; ldd-resolves of the shell images): every extension module of the
stdlib loads, so the loader finds each library it links."""

import importlib
import sys
import sysconfig
from pathlib import Path

d = Path(sysconfig.get_path("platstdlib"), "lib-dynload")
names = sorted(f.name.split(".", 1)[0] for f in d.iterdir() if f.name.endswith(".so"))
bad: list[str] = []
for name in names:
    try:
        importlib.import_module(name)
    except ImportError as exc:
        bad.append(f"{name}: {exc}")
print(len(names), "extension modules")
sys.exit("; ".join(bad) if bad else 0)

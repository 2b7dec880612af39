"""startup-modules-frozen (build.freeze_modules): each module named by the arguments loads
frozen from the interpreter, and the stdlib on disk still serves it when freezing is switched
off (-X frozen_modules=off)."""

import importlib.util
import subprocess
import sys

OFF = """
import importlib, sys
mods = sys.argv[1:]
for m in mods:
    importlib.import_module(m)
sys.exit(0 if all(sys.modules[m].__spec__.origin != "frozen" for m in mods) else 3)
"""

mods = sys.argv[1:]
bad = [f"{m} from {s.origin if s else None}" for m in mods
       if (s := importlib.util.find_spec(m)) is None or s.origin != "frozen"]
off = subprocess.run([sys.executable, "-X", "frozen_modules=off", "-c", OFF, *mods], check=False)
bad += [] if off.returncode == 0 else [f"-X frozen_modules=off exit {off.returncode}"]
sys.exit("not frozen: " + ", ".join(bad) if bad else 0)

"""pip-only-in-dev (runtime, minimal): none of the modules named by the arguments is importable
(pip; and ensurepip, but for deadsnakes, whose python3.X-venv carries it)."""

import importlib.util
import sys

found = [f"{m} at {s.origin}" for m in sys.argv[1:] if (s := importlib.util.find_spec(m))]
sys.exit("importable in the runtime: " + ", ".join(found) if found else 0)

"""python-tree-read-only (minimal): the default user can write nothing under the prefix named
by the argument."""

import os
import sys
from pathlib import Path

if not Path(sys.argv[1]).is_dir():
    sys.exit(f"{sys.argv[1]}: no such directory")
bad = [p for root, _, files in os.walk(sys.argv[1])
       for p in (root, *(str(Path(root, f)) for f in files)) if os.access(p, os.W_OK)]
sys.exit("writable: " + ", ".join(bad[:5]) if bad else 0)

"""interpreter-link (build.pie): the ELF type of the interpreter is the argument's (2: ET_EXEC,
linked -no-pie; 3: ET_DYN, a PIE)."""

import sys
from pathlib import Path

want = int(sys.argv[1])
with Path(sys.executable).resolve().open("rb") as f:
    e_type = f.read(18)[16]
pie = "true" if want == 3 else "false"
sys.exit(0 if e_type == want else f"{sys.executable}: ELF type {e_type}, expected {want} (build.pie: {pie})")

"""no-shell (minimal): no shell, package manager or compiler, nothing in a bin/ directory:
python3 is the only program (docker run <image> sh is python3 sh, which fails)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

found = [p for p in ("/bin/sh", "/usr/bin/sh", "/bin/bash", "/bin/dash", "/bin/busybox")
         if os.path.lexists(p)]
found += [f"{t} on PATH" for t in ("sh", "bash", "dash", "busybox", "apt", "apt-get",
          "dpkg", "dpkg-query", "gcc", "cc", "make", "ld") if shutil.which(t)]
found += [f"{d}: {sorted(e.name for e in Path(d).iterdir())[:5]}"
          for d in ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin")
          if Path(d).is_dir() and any(Path(d).iterdir())]
try:
    subprocess.run(["sh", "-c", "true"], check=False)
    found.append("sh ran")
except FileNotFoundError:
    pass
sys.exit("found: " + ", ".join(found) if found else 0)

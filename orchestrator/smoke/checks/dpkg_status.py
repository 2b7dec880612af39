"""dpkg-status (minimal): what scanners and SBOM tools read, the dpkg status of the packages the
image carries, names the essential ones."""

import sys
from pathlib import Path

text = Path("/var/lib/dpkg/status").read_text()
names = {line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("Package: ")}
missing = [p for p in ("base-files", "libc6", "ca-certificates", "tzdata") if p not in names]
print(len(names), "packages:", " ".join(sorted(names)))
sys.exit("not in /var/lib/dpkg/status: " + ", ".join(missing) if missing else 0)

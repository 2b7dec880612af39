"""The vulnerability databases of the tests and of `make demo`: advisories they write, turned
into a grype v6 DB archive by tools/vulndb (grype's own DB build and packaging code), for
`grype db import`.

``vulndb()`` builds tools/vulndb once per source (``go build`` under nice, into .cache/vulndb/
keyed by the hash of its main.go, go.mod and go.sum); ``write_db`` runs it. ``grype()`` is the
pinned grype scripts/install-go-tools.sh installed (ORCH_TOOLS_DIR/bin/grype), else the one on
PATH, else None: tests that need one skip without it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "tools" / "vulndb"
TOOLS_DIR = Path(os.environ.get("ORCH_TOOLS_DIR") or "/var/lib/orchestrator-host/tools")


def grype() -> Path | None:
    pinned = TOOLS_DIR / "bin" / "grype"
    if pinned.exists():
        return pinned
    found = shutil.which("grype")
    return Path(found) if found else None


def go() -> str | None:
    return shutil.which("go")


def vulndb() -> Path:
    """The built tools/vulndb (built now when its source changed); needs Go and the module proxy
    (or a module cache holding grype's dependencies)."""
    h = hashlib.sha256()
    for name in ("main.go", "go.mod", "go.sum"):
        h.update((SOURCE / name).read_bytes())
    out = REPO / ".cache" / "vulndb" / h.hexdigest()[:16] / "vulndb"
    if not out.exists():
        gocmd = go()
        if gocmd is None:
            raise RuntimeError("no go on PATH: tools/vulndb cannot be built")
        out.parent.mkdir(parents=True, exist_ok=True)
        part = out.with_name("vulndb.part")
        subprocess.run(["nice", "-n", "19", gocmd, "build", "-o", str(part), "."], cwd=SOURCE,
                       check=True, timeout=1800)
        part.replace(out)
    return out


def write_db(advisories: list[dict[str, Any]], out: Path, *, captured: str = "") -> Path:
    """A grype DB archive (vulnerability-db_v6.*.tar.gz under ``out``) holding ``advisories``
    (tools/vulndb/main.go documents their fields)."""
    out.mkdir(parents=True, exist_ok=True)
    spec = out / "advisories.json"
    doc: dict[str, Any] = {"advisories": advisories}
    if captured:
        doc["captured"] = captured
    spec.write_text(json.dumps(doc, indent=1))
    result = subprocess.run([str(vulndb()), "-in", str(spec), "-out", str(out / "db")],
                            capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"vulndb failed ({result.returncode}): {result.stderr.strip()}")
    return Path(result.stdout.strip())

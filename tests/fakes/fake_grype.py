"""A stand-in grype for unit tests: an executable script (``install(dir)`` writes it as
``dir/bin/grype``, where settings.tools_dir looks) answering the calls orchestrator.scan makes
with grype's JSON shapes, its exit codes and its coloured log lines.

Its DB "archive" is a file starting with ``FAKEDB`` followed by JSON (``{"built": ISO}``);
``db import`` of anything else fails as grype does on a file that is not an archive. Matches
come from ``matches.json`` beside the script: {"<substring of the target, or of the SBOM
file an sbom: target names>": [grype match,...]};
a target containing "crash" fails; ``--vex FILE`` sets aside the matches its not_affected
(or fixed) statements name, into ``ignoredMatches`` as grype does. Every call is appended to
``calls.jsonl`` (argv and the GRYPE_* environment)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

SCRIPT = r'''
import json, os, sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
argv = sys.argv[1:]
with (HERE / "calls.jsonl").open("a") as log:
    log.write(json.dumps({"argv": argv, "env": {k: v for k, v in os.environ.items()
                                                 if k.startswith("GRYPE_")}}) + "\n")
cache = Path(os.environ.get("GRYPE_DB_CACHE_DIR", "/nonexistent")) / "6"

def error(text, code=1):
    sys.stderr.write(f"[0000] ERROR \x1b[31m{text}\x1b[0m\n")
    sys.exit(code)

if argv[:1] == ["version"]:
    print(json.dumps({"application": "grype", "version": "0.121.3", "supportedDbSchema": 6}))
elif argv[:2] == ["db", "status"]:
    status = cache / "status.json"
    if status.exists():
        print(status.read_text())
    else:
        print(json.dumps({"schemaVersion": "", "path": str(cache / "vulnerability.db"),
                          "valid": False, "error": "database does not exist"}))
        error("database does not exist")
elif argv[:2] == ["db", "import"]:
    data = Path(argv[2]).read_bytes()
    if not data.startswith(b"FAKEDB"):
        error("unable to import vulnerability database: matching rar: gzip: invalid header")
    meta = json.loads(data[6:])
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "vulnerability.db").write_bytes(data)
    (cache / "status.json").write_text(json.dumps({
        "schemaVersion": "v6.1.10", "from": "manual import", "built": meta["built"],
        "path": str(cache / "vulnerability.db"), "valid": True}))
else:
    target = argv[0]
    if not (cache / "status.json").exists():
        error("failed to load vulnerability db: database does not exist")
    if "crash" in target:
        error(f"could not fetch image {target!r}: connection reset")
    table = json.loads((HERE / "matches.json").read_text()) if (HERE / "matches.json").exists() else {}
    seen = target + (Path(target[5:]).read_text() if target.startswith("sbom:") else "")
    matches = [m for key, ms in table.items() if key in seen for m in ms]
    ignored = []
    if "--vex" in argv:  # as grype applies OpenVEX: not_affected statements set matches aside
        doc = json.loads(Path(argv[argv.index("--vex") + 1]).read_text())
        said = {st["vulnerability"]["name"]: st for st in doc["statements"]
                if st["status"] in ("not_affected", "fixed")}
        ignored = [{**m, "appliedIgnoreRules": [{
            "namespace": "vex", "vex-status": said[m["vulnerability"]["id"]]["status"],
            "vex-justification": said[m["vulnerability"]["id"]].get("justification", "")}]}
            for m in matches if m["vulnerability"]["id"] in said]
        matches = [m for m in matches if m["vulnerability"]["id"] not in said]
    print(json.dumps({"matches": matches, "ignoredMatches": ignored, "source": {"target": target},
                      "distro": {"name": "debian", "version": "12"}}))
'''


def install(root: Path, matches: dict[str, list[dict[str, Any]]] | None = None) -> Path:
    """The stand-in as ``root/bin/grype``; returns its path."""
    (root / "bin").mkdir(parents=True, exist_ok=True)
    path = root / "bin" / "grype"
    path.write_text(f"#!{sys.executable}\n{SCRIPT}")
    path.chmod(0o755)
    if matches is not None:
        (root / "matches.json").write_text(json.dumps(matches))
    return path


def calls(root: Path) -> list[dict[str, Any]]:
    f = root / "calls.jsonl"
    return [json.loads(line) for line in f.read_text().splitlines()] if f.exists() else []


def archive(path: Path, built: str) -> str:
    """A stand-in DB archive built at ``built`` (ISO 8601); returns its sha256."""
    path.write_bytes(b"FAKEDB" + json.dumps({"built": built}).encode())
    return sha256_of_file(path)


def sha256_of_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def match(advisory: str, package: str, installed: str, severity: str, fixed: str = "",
          kind: str = "deb", matched_by: str = "exact-direct-match") -> dict[str, Any]:
    """One match as grype's JSON output writes it (the fields orchestrator.scan reads)."""
    return {"vulnerability": {"id": advisory, "severity": severity,
                              "fix": {"versions": [fixed] if fixed else [],
                                      "state": "fixed" if fixed else "not-fixed"}},
            "artifact": {"name": package, "version": installed, "type": kind},
            "matchDetails": [{"type": matched_by}]}

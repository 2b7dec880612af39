"""`make demo`'s vulnerability DB (issue 32 item 3): advisories written here, turned into a
grype v6 DB archive by tools/vulndb (grype's own DB build), and the `scan:` section that pins
it, printed for scripts/demo.sh to append to the demo's images.yaml.

    python -m hostkit.demo_db STATE_DIR

Kept in STATE_DIR/vulndb/ and made anew only when older than two days (scan.max_age_days is
5): a new archive has a new sha256, and the images' labels would change with the config.

What the demo's `orchestrator scan` then shows: CVE-2099-4001 against the compiled CPython
3.14 (by the SBOM's CPE, fixed in 3.14.99, Medium: below the gate), CVE-2099-4002 against
CPython 3.13, CVE-2099-4003 against zlib on Debian 12 with no fix (reported, never gating),
CVE-2099-4004 (Critical) in idlelib, which every image's OpenVEX sets aside (the build
removes idlelib), and CVE-2099-4005 (Low) in ensurepip's wheel: not_affected in runtime and
minimal, reported for dev.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
from pathlib import Path

import yaml

from hostkit import vulndb

CPE = "cpe:2.3:a:python:python:*:*:*:*:*:*:*:*"
ADVISORIES = [
    {"id": "CVE-2099-4001", "severity": "Medium", "cpe": CPE, "from": "3.14.0", "fixed": "3.14.99"},
    {"id": "CVE-2099-4002", "severity": "Medium", "cpe": CPE, "from": "3.13.0", "fixed": "3.13.99"},
    {"id": "CVE-2099-4003", "severity": "Medium", "namespace": "debian:12", "package": "zlib"},
    {"id": "CVE-2099-4004", "severity": "Critical", "cpe": CPE, "from": "3.12.0", "fixed": "3.14.99"},
    {"id": "CVE-2099-4005", "severity": "Low", "cpe": CPE, "from": "3.12.0", "fixed": "3.14.99"},
]
def scan_section(file: str, sha256: str, *, idle: str, ensurepip: str, who: str) -> str:
    """images.yaml's ``scan:`` for a DB archive ``file`` (its ``sha256``): the gate at high,
    and the OpenVEX rules putting advisory ``idle`` in idlelib and ``ensurepip`` in the pip
    wheel ensurepip bundles (``who``: whose advisories, for the reasons)."""
    section = {"scan": {
        "db": {"file": file, "sha256": sha256},
        "fail_on": "high",
        "vex": [{"advisory": idle, "component": "idle",
                 "reason": f"The flaw is in idlelib's RPC server ({who} advisory)."},
                {"advisory": ensurepip, "component": "ensurepip",
                 "reason": f"The flaw is in the pip wheel ensurepip bundles ({who} advisory)."}]}}
    return yaml.safe_dump(section, sort_keys=False)


def archive(state: Path, max_age: dt.timedelta = dt.timedelta(days=2)) -> Path:
    """The demo's DB archive under ``state``, made now unless a young enough one is there."""
    out = state / "vulndb"
    found = sorted(out.glob("db/vulnerability-db_v6.*.tar.gz"))
    if found:
        age = dt.datetime.now(dt.UTC) - dt.datetime.fromtimestamp(found[-1].stat().st_mtime,
                                                                  dt.UTC)
        if age < max_age:
            return found[-1]
    for old in found:
        old.unlink()
    return vulndb.write_db(ADVISORIES, out)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m hostkit.demo_db STATE_DIR", file=sys.stderr)
        return 2
    state = Path(argv[0]).resolve()
    path = archive(state)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print("\n# make demo (hostkit/demo_db.py): the demo's own vulnerability DB, the release gate "
          "and\n# the OpenVEX rules every image's attestation is made from")
    print(scan_section(str(path.relative_to(state)), digest, idle="CVE-2099-4004",
                       ensurepip="CVE-2099-4005", who="demo"), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

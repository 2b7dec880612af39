"""grype, the one scanner: the DB it is given (pinned by checksum, imported once, never
updated by grype itself) and its matches for one target (an SBOM file or an image in the
registry), as Findings.

grype runs with ``GRYPE_DB_AUTO_UPDATE=false`` (no download behind the scan's back),
``GRYPE_CHECK_FOR_APP_UPDATE=false`` and ``GRYPE_DB_VALIDATE_AGE=false``: the age of the DB is
checked here, once, against ``scan.max_age_days`` and the orchestrator's clock, so the report
and the refusal say the same thing. Each DB archive gets its own grype cache directory (keyed by
its sha256), so two pins never share an imported DB.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator import runner
from orchestrator.config.publish import ScanDb
from orchestrator.errors import CommandError, ScanError
from orchestrator.scan.models import DbInfo, Finding

Runner = Callable[..., runner.Completed]
Fetch = Callable[[str, Path], None]

BASE_ENV = {"GRYPE_DB_AUTO_UPDATE": "false", "GRYPE_CHECK_FOR_APP_UPDATE": "false",
            "GRYPE_DB_VALIDATE_AGE": "false"}
INSTALL_FIX = "run scripts/install-go-tools.sh grype (the pinned grype) or put grype on PATH"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOG_PREFIX = re.compile(r"^\[\d+\]\s+(ERROR|WARN|INFO|DEBUG)\s+")


def find_binary(tools_dir: Path) -> str:
    """The pinned grype scripts/install-go-tools.sh installed (``tools_dir/bin/grype``), else
    the one on PATH (runner.go_tool, which finds syft too)."""
    return runner.go_tool(tools_dir, "grype", ScanError, or_path=True)


def last_error(stderr: str) -> str:
    """grype's last complaint, without its colours and log prefix."""
    lines = [_LOG_PREFIX.sub("", _ANSI.sub("", line)).strip() for line in stderr.splitlines()]
    errors = [line for line in lines if line]
    return errors[-1] if errors else "no message"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def http_fetch(url: str, dest: Path) -> None:
    """Download ``url`` into ``dest`` (streamed: a DB archive is hundreds of MB), as the apt
    archive client fetches (urllib, the proxies of the environment)."""
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, part.open("wb") as f:
            shutil.copyfileobj(resp, f, 1 << 20)
    except urllib.error.HTTPError as exc:
        raise ScanError(f"scan.db.url: {url}: HTTP {exc.code} {exc.reason}; check the URL (a "
                        "mirror of the DB archive) or use scan.db.file") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ScanError(f"scan.db.url: {url}: {getattr(exc, 'reason', exc)}; check the URL and "
                        "the proxy, or use scan.db.file") from None
    part.replace(dest)


class Grype:
    def __init__(self, binary: str, cache_dir: Path, env: dict[str, str], *,
                 run: Runner = runner.run, fetch: Fetch | None = None) -> None:
        self.binary, self.cache_dir = binary, cache_dir
        self.env = {**env, **BASE_ENV}
        self._run = run
        self._fetch = fetch or http_fetch
        self.db_dir: Path | None = None

    def _call(self, args: list[str], what: str, *, db_dir: Path | None = None,
              extra: dict[str, str] | None = None) -> runner.Completed:
        env = dict(self.env)
        if db_dir is not None:
            env["GRYPE_DB_CACHE_DIR"] = str(db_dir)
        env.update(extra or {})
        try:
            return self._run([self.binary, *args], env=env, timeout=1800)
        except CommandError as exc:
            if exc.returncode == 127:
                raise ScanError(f"{self.binary}: not found; {INSTALL_FIX}") from None
            raise ScanError(f"grype {what}: {last_error(exc.stderr)}") from None

    def version(self) -> str:
        out = self._call(["version", "-o", "json"], "version").stdout
        try:
            return str(json.loads(out)["version"])
        except (ValueError, KeyError, TypeError):
            raise ScanError(f"{self.binary} version -o json: not grype's JSON ({out[:80]!r}); "
                            f"{INSTALL_FIX}") from None

    # ------------------------------------------------------------------ the DB

    def archive(self, db: ScanDb, root: Path) -> tuple[Path, str]:
        """The archive on this machine with the pinned checksum, and where it came from."""
        if db.file is not None:
            path = Path(db.file) if Path(db.file).is_absolute() else root / db.file
            source = str(path)
            if not path.is_file():
                raise ScanError(f"scan.db.file: {path} does not exist; put the DB archive "
                                "there or point scan.db.file at it")
        else:
            assert db.url is not None  # checks: exactly one of url, file
            source = db.url
            name = db.url.rstrip("/").rsplit("/", 1)[-1] or "db.tar"
            path = self.cache_dir / "downloads" / db.sha256 / name
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                self._fetch(db.url, path)
        got = sha256_of(path)
        if got != db.sha256:
            raise ScanError(f"scan.db: {source} has sha256 {got}, scan.db.sha256 pins "
                            f"{db.sha256}; fix the pin or the archive (a partial download? "
                            f"remove {path})")
        return path, source

    def prepare(self, db: ScanDb, root: Path, *, max_age_days: int, now: dt.datetime) -> DbInfo:
        """Check, import (once per checksum) and describe the DB; refuse one older than
        ``max_age_days``. Every problem is a ScanError (one line, exit 3)."""
        path, source = self.archive(db, root)
        db_dir = self.cache_dir / "grype-db" / db.sha256[:16]
        status = self._status(db_dir)
        if not status.get("valid"):
            db_dir.mkdir(parents=True, exist_ok=True)
            try:
                self._run([self.binary, "db", "import", str(path)],
                          env={**self.env, "GRYPE_DB_CACHE_DIR": str(db_dir)}, timeout=1800)
            except CommandError as exc:
                raise ScanError(f"scan.db: grype db import {source}: {last_error(exc.stderr)} "
                                "(not a grype DB archive, or corrupt)") from None
            status = self._status(db_dir)
            if not status.get("valid"):
                raise ScanError(f"scan.db: {source}: grype says the imported DB is not valid "
                                f"({status.get('error', 'no reason given')})")
        built = _parse_time(str(status.get("built", "")))
        if built is None:
            raise ScanError(f"scan.db: {source}: grype reports no build date ({status!r})")
        age = (now - built).total_seconds() / 86400
        if age > max_age_days:
            raise ScanError(f"scan.db: the vulnerability DB {source} was built "
                            f"{built.isoformat()} ({age:.1f} days ago), older than "
                            f"scan.max_age_days ({max_age_days}); import a newer one "
                            "(scan.db.url/file and its sha256)")
        self.db_dir = db_dir
        return DbInfo(schema=str(status.get("schemaVersion", "")),
                      built=built.isoformat().replace("+00:00", "Z"), age_days=round(age, 2),
                      checksum=f"sha256:{db.sha256}", source=source,
                      scanner=f"grype {self.version()}")

    def _status(self, db_dir: Path) -> dict[str, Any]:
        """`grype db status -o json` (it exits 1 for a missing or invalid DB, with the JSON)."""
        done = self._run([self.binary, "db", "status", "-o", "json"], check=False,
                         env={**self.env, "GRYPE_DB_CACHE_DIR": str(db_dir)}, timeout=300)
        if done.returncode == 127:
            raise ScanError(f"{self.binary}: not found; {INSTALL_FIX}")
        try:
            doc = json.loads(done.stdout)
        except ValueError:
            raise ScanError(f"grype db status: {last_error(done.stderr)}") from None
        return doc if isinstance(doc, dict) else {}

    # ------------------------------------------------------------------ a scan

    def scan(self, target: str, *, platform: str | None = None, insecure_http: bool = False,
             vex: Path | None = None) -> list[Finding]:
        """grype's matches for ``target`` (``sbom:FILE`` or ``registry:HOST/REPO@DIGEST``),
        one Finding per advisory and package version; with ``vex`` (an OpenVEX document)
        grype applies it, and what it sets aside comes back with its VEX status. Raises
        ScanError when grype fails."""
        if self.db_dir is None:
            raise ScanError("grype: no DB prepared (prepare() first)")
        args = [target, "-o", "json"]
        if platform:
            args += ["--platform", platform]
        if vex is not None:
            args += ["--vex", str(vex)]
        extra = {"GRYPE_REGISTRY_INSECURE_USE_HTTP": "true"} if insecure_http else {}
        out = self._call(args, f"on {target}", db_dir=self.db_dir, extra=extra).stdout
        try:
            doc = json.loads(out)
        except ValueError:
            raise ScanError(f"grype on {target}: output is not JSON ({out[:80]!r})") from None
        return findings(doc)


def _vex_status(m: dict[str, Any]) -> str | None:
    """The VEX status grype set an ignored match aside with (None: another ignore rule)."""
    for rule in m.get("appliedIgnoreRules") or []:
        if rule.get("namespace") == "vex":
            why = rule.get("vex-justification")
            return str(rule.get("vex-status") or "vex") + (f" ({why})" if why else "")
    return None


def findings(doc: dict[str, Any]) -> list[Finding]:
    """grype's JSON matches as Findings (one per advisory, package and version), sorted; the
    matches an OpenVEX document set aside (``ignoredMatches``) too, with their VEX status."""
    seen: dict[tuple[str, str, str], Finding] = {}
    found: list[tuple[dict[str, Any], str]] = [(m, "") for m in doc.get("matches") or []]
    found += [(m, v) for m in doc.get("ignoredMatches") or [] if (v := _vex_status(m))]
    for m, vex in found:
        vuln, art = m.get("vulnerability") or {}, m.get("artifact") or {}
        fix = vuln.get("fix") or {}
        details = m.get("matchDetails") or [{}]
        f = Finding(advisory=str(vuln.get("id", "")), package=str(art.get("name", "")),
                    installed=str(art.get("version", "")),
                    fixed_in=", ".join(str(v) for v in fix.get("versions") or []),
                    severity=str(vuln.get("severity") or "Unknown"),
                    fix_state=str(fix.get("state") or "unknown"), kind=str(art.get("type", "")),
                    matched_by=str(details[0].get("type", "")), vex=vex)
        seen.setdefault((f.advisory, f.package, f.installed), f)
    return sorted(seen.values(), key=lambda f: (f.package, f.advisory))


def _parse_time(text: str) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)

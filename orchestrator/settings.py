"""The environment is read here and nowhere else."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import UsageError

# A Docker repository path: lowercase components separated by "/".
_REPO_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")
# An OCI platform as images.yaml spells one: os/arch[/variant].
_PLATFORM_RE = re.compile(r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?")


@dataclass(frozen=True)
class Settings:
    ci: bool
    log_format: str  # "console" | "json"
    today: dt.date  # the date used for immutable tags (ORCH_DATE=YYYYMMDD overrides)
    docker_config: Path  # where registry credentials live (DOCKER_CONFIG)
    revision: str  # VCS revision for the org.opencontainers.image.revision label
    work_dir: Path  # build logs, metadata, reports (ORCH_WORK_DIR)
    # Local repository for built, not yet published images (ORCH_CANDIDATE_PREFIX): pipelines
    # sharing one Docker engine need different ones, or they re-point each other's candidates.
    candidate_prefix: str = "orchestrator-candidate"
    # Downloads worth keeping between runs and checkouts: apt indices by hash (ORCH_CACHE_DIR;
    # default $XDG_CACHE_HOME/orchestrator or ~/.cache/orchestrator).
    cache_dir: Path = Path.home() / ".cache" / "orchestrator"
    # SLSA provenance: who built (ORCH_BUILDER_ID, a URI naming the build platform) and which
    # run (ORCH_INVOCATION_ID, else GitLab's CI_JOB_URL).
    builder_id: str = "urn:python-base-orchestrator:local"
    invocation_id: str = ""
    # The environment as it was read: child processes (cosign, syft) get it plus their own
    # variables, and secrets named in images.yaml (signing.password_env) are looked up here.
    environ: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    # SOURCE_DATE_EPOCH as set (reproducible builds); None: epoch.resolve takes the lock's
    # last commit time.
    source_date_epoch: int | None = None
    # Proxies for the registry client (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, or lower case): read
    # here because its HTTP session reads nothing from the environment itself.
    https_proxy: str = ""
    http_proxy: str = ""
    no_proxy: str = ""
    # The Go tools scripts/install-go-tools.sh built (ORCH_TOOLS_DIR; bin/grype is the pinned one)
    tools_dir: Path = Path("/var/lib/orchestrator-host/tools")
    # A live status line for long commands when stderr is a terminal (progress_live.py): off
    # in CI, with TERM=dumb and with ORCH_PROGRESS=0 (or false, no, off); the k/n lines stay.
    live_progress: bool = True
    # A test switch (ORCH_SMOKE_FAIL_PLATFORM=linux/arm64): the smoke tests fail one check on
    # that platform only, run in the image like the others (tests/e2e: a check that fails under
    # QEMU must keep the whole multi-platform image unpublished). "" (the default): off.
    smoke_fail_platform: str = ""

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        ci = env.get("CI", "").lower() not in ("", "0", "false", "no")
        fmt = env.get("ORCH_LOG_FORMAT") or ("json" if ci else "console")
        raw_date = env.get("ORCH_DATE")
        epoch = _epoch(env["SOURCE_DATE_EPOCH"]) if env.get("SOURCE_DATE_EPOCH") else None
        if raw_date:
            try:
                today = dt.datetime.strptime(raw_date, "%Y%m%d").replace(tzinfo=dt.UTC).date()
            except ValueError:
                raise UsageError(f"environment: ORCH_DATE={raw_date!r} is not a date; "
                                 "set it as YYYYMMDD (e.g. 20261121) or unset it") from None
        elif epoch is not None:
            today = dt.datetime.fromtimestamp(epoch, dt.UTC).date()
        else:
            today = dt.datetime.now(dt.UTC).date()
        docker_config = Path(env.get("DOCKER_CONFIG") or Path.home() / ".docker")
        revision = env.get("CI_COMMIT_SHA") or env.get("ORCH_REVISION") or ""
        work_dir = Path(env.get("ORCH_WORK_DIR", ".orchestrator"))
        candidate = env.get("ORCH_CANDIDATE_PREFIX") or "orchestrator-candidate"
        if not _REPO_RE.fullmatch(candidate):
            raise UsageError(f"environment: ORCH_CANDIDATE_PREFIX={candidate!r} is not a repository "
                             "name; use lowercase letters, digits, '.', '_', '-' and '/' "
                             "(e.g. ci-job-1234/candidate)")
        xdg = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        cache_dir = Path(env.get("ORCH_CACHE_DIR") or Path(xdg) / "orchestrator")
        live = (not ci and env.get("TERM") != "dumb"
                and env.get("ORCH_PROGRESS", "").lower() not in ("0", "false", "no", "off"))
        fail_platform = env.get("ORCH_SMOKE_FAIL_PLATFORM", "")
        if fail_platform and not _PLATFORM_RE.fullmatch(fail_platform):
            raise UsageError(f"environment: ORCH_SMOKE_FAIL_PLATFORM={fail_platform!r} is not a "
                             "platform; set it as os/arch (e.g. linux/arm64) or unset it")
        return cls(ci, fmt, today, docker_config, revision, work_dir, candidate, cache_dir,
                   builder_id=env.get("ORCH_BUILDER_ID") or "urn:python-base-orchestrator:local",
                   invocation_id=env.get("ORCH_INVOCATION_ID") or env.get("CI_JOB_URL") or "",
                   environ=env, source_date_epoch=epoch,
                   https_proxy=_either(env, "HTTPS_PROXY"), http_proxy=_either(env, "HTTP_PROXY"),
                   no_proxy=_either(env, "NO_PROXY"), live_progress=live,
                   smoke_fail_platform=fail_platform,
                   tools_dir=Path(env.get("ORCH_TOOLS_DIR")
                                  or Path(env.get("ORCH_HOST_STATE") or "/var/lib/orchestrator-host")
                                  / "tools"))

    def child_env(self, extra: dict[str, str]) -> dict[str, str]:
        """The environment for an external command: ours, DOCKER_CONFIG as read, plus ``extra``."""
        return {**self.environ, "DOCKER_CONFIG": str(self.docker_config), **extra}


def _either(env: dict[str, str], name: str) -> str:
    """``name`` or its lower-case spelling (curl's and requests' convention for proxies)."""
    return env.get(name.lower()) or env.get(name) or ""


def _epoch(raw: str) -> int:
    try:
        value = int(raw)
        dt.datetime.fromtimestamp(value, dt.UTC)
    except (ValueError, OverflowError, OSError):
        value = -1
    if value >= 0:
        return value
    raise UsageError(f"environment: SOURCE_DATE_EPOCH={raw!r} is not a Unix timestamp; set it to "
                     "seconds since 1970 (e.g. $(git log -1 --format=%ct)) or unset it")


_settings: Settings | None = None


def get() -> Settings:
    global _settings  # noqa: PLW0603 - one process-wide snapshot of the environment
    if _settings is None:
        _settings = Settings.from_environ()
    return _settings


def override(settings: Settings) -> None:
    global _settings  # noqa: PLW0603
    _settings = settings

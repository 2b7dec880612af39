"""The environment is read here and nowhere else."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    ci: bool
    log_format: str  # "console" | "json"
    today: dt.date  # the date used for immutable tags (ORCH_DATE=YYYYMMDD overrides)
    docker_config: Path  # where registry credentials live (DOCKER_CONFIG)
    revision: str  # VCS revision for the org.opencontainers.image.revision label
    work_dir: Path  # build logs, metadata, reports (ORCH_WORK_DIR)

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        ci = env.get("CI", "").lower() not in ("", "0", "false", "no")
        fmt = env.get("ORCH_LOG_FORMAT") or ("json" if ci else "console")
        raw_date = env.get("ORCH_DATE")
        if raw_date:
            today = dt.datetime.strptime(raw_date, "%Y%m%d").replace(tzinfo=dt.UTC).date()
        elif env.get("SOURCE_DATE_EPOCH"):
            today = dt.datetime.fromtimestamp(int(env["SOURCE_DATE_EPOCH"]), dt.UTC).date()
        else:
            today = dt.datetime.now(dt.UTC).date()
        docker_config = Path(env.get("DOCKER_CONFIG", str(Path.home() / ".docker")))
        revision = env.get("CI_COMMIT_SHA") or env.get("ORCH_REVISION") or ""
        work_dir = Path(env.get("ORCH_WORK_DIR", ".orchestrator"))
        return cls(ci, fmt, today, docker_config, revision, work_dir)


_settings: Settings | None = None


def get() -> Settings:
    global _settings  # noqa: PLW0603 - one process-wide snapshot of the environment
    if _settings is None:
        _settings = Settings.from_environ()
    return _settings


def override(settings: Settings) -> None:
    global _settings  # noqa: PLW0603
    _settings = settings

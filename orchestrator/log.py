"""structlog set-up: readable on a terminal, JSON in CI or with --log-format json."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def configure(fmt: str, verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=True)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    """A logger on sys.stderr as it is when the line is logged (not at configure time): while
    the live progress status runs, rich's redirection of stderr puts log lines above it."""
    return structlog.PrintLogger(file=sys.stderr)


def get(name: str) -> Any:
    return structlog.get_logger(name)

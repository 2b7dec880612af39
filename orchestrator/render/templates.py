"""The stage templates (stages/*.j2) and the Jinja environment that renders them: strict
(an undefined value is an error), and one quoting filter per context a value can land in."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jinja2

from orchestrator.errors import ConfigError
from orchestrator.render import quoting

STAGES_DIR = Path(__file__).resolve().parents[2] / "stages"


def render_template(name: str, context: dict[str, Any]) -> str:
    """Render stages/``name``; a value the template needs and ``context`` lacks is a ConfigError."""
    try:
        return _env().get_template(name).render(**context)
    except jinja2.UndefinedError as exc:
        raise ConfigError(str(STAGES_DIR), "template", f"undefined value: {exc.message}",
                          "fix the stage template") from None


@functools.cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(STAGES_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    # Each filter quotes for one context (see quoting.py); none lets a value leave its word.
    env.filters["q"] = quoting.dockerfile_value
    env.filters["shquote"] = quoting.shell_word
    env.filters["dq"] = quoting.double_quoted
    env.filters["dqi"] = quoting.in_double_quotes
    env.filters["kvlines"] = _kvlines
    env.filters["envassign"] = lambda pairs: "".join(
        f"{k}={quoting.double_quoted(v)} " for k, v in pairs)
    return env


def _kvlines(pairs: Iterable[tuple[str, str]], indent: int) -> str:
    """ENV/LABEL key="value" pairs, one per continuation line."""
    sep = " \\\n" + " " * indent
    return sep.join(f"{quoting.dockerfile_key(k)}={quoting.dockerfile_value(v)}" for k, v in pairs)

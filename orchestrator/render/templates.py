"""The stage templates (stages/*.j2) and the Jinja environment that renders them: strict
(an undefined value is an error), and one quoting filter per context a value can land in."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jinja2

from orchestrator import naming
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
    env.globals["scripts_mount"] = scripts_mount
    return env


def scripts_mount(*names: str) -> str:
    """The RUN flags that bind-mount exactly these stages/scripts files at
    /usr/src/scripts/<name>, each its own mount: a RUN step's cache key then covers the scripts
    it runs and no other (a mount of the whole folder made a one-line change to any script
    rebuild every CPython compile). Ends in a line continuation, as the first flags of a RUN."""
    if not names:
        raise ConfigError(str(STAGES_DIR), "template", "scripts_mount() names no script",
                          "name the stages/scripts files the RUN step uses")
    flags = []
    for name in names:
        if "/" in name or not (STAGES_DIR / naming.SCRIPTS_DIR / name).is_file():
            raise ConfigError(str(STAGES_DIR), "template",
                              f"scripts_mount({name!r}): no such file in stages/scripts",
                              "name a file of stages/scripts")
        flags.append(f"--mount=type=bind,source={naming.SCRIPTS_DIR}/{name},"
                     f"target=/usr/src/scripts/{name}")
    return " \\\n    ".join(flags) + " \\\n    "


def _kvlines(pairs: Iterable[tuple[str, str]], indent: int) -> str:
    """ENV/LABEL key="value" pairs, one per continuation line."""
    sep = " \\\n" + " " * indent
    return sep.join(f"{quoting.dockerfile_key(k)}={quoting.dockerfile_value(v)}" for k, v in pairs)

"""Quoting for each context a value lands in inside a rendered Dockerfile (jinja filters).

Validation (grammar.py) refuses what cannot be written at all; these make sure that whatever
reaches a template stays one word of its context, even if a check were missing:

- ``dockerfile_value``: an ENV/LABEL value, double-quoted as the Dockerfile parser reads it
  (it expands ``$`` and honours ``\\`` and ``"``: those three are backslash-escaped);
- ``shell_word``: one POSIX shell word (``shlex.quote``: unchanged when already safe);
- ``double_quoted`` / ``in_double_quotes``: inside shell double quotes, ``\\ " $ `` escaped.

No Dockerfile context can hold a newline (it ends the instruction): control characters raise.
"""

from __future__ import annotations

import re
import shlex

from orchestrator.errors import ConfigError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


def _text(v: object) -> str:
    text = str(v)
    if _CONTROL.search(text):
        raise ConfigError("stages", "render", f"{text!r} holds a control character (newline, tab...)",
                          "remove it from images.yaml / images.lock: a Dockerfile cannot hold it")
    return text


def dockerfile_value(v: object) -> str:
    text = _text(v)
    for ch in ("\\", '"', "$"):
        text = text.replace(ch, "\\" + ch)
    return f'"{text}"'


def dockerfile_key(v: object) -> str:
    text = _text(v)
    if not _KEY.fullmatch(text):
        raise ConfigError("stages", "render", f"{text!r} cannot be an ENV or LABEL key",
                          "use letters, digits, '.', '_' and '-'")
    return text


def shell_word(v: object) -> str:
    return shlex.quote(_text(v))


def in_double_quotes(v: object) -> str:
    """Text for inside a shell double-quoted word whose $ and ` stay literal."""
    text = _text(v)
    for ch in ("\\", '"', "$", "`"):
        text = text.replace(ch, "\\" + ch)
    return text


def double_quoted(v: object) -> str:
    """A shell double-quoted word whose $ and ` stay literal (make, not the shell, expands them)."""
    return f'"{in_double_quotes(v)}"'

"""Shape of images.yaml before and while pydantic reads it: unknown keys, YAML scalars of the
wrong type ("quote it"), booleans where numbers belong, and every pydantic error (not only the
first), each as one line with the file, line, key path and a fix."""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Annotated, Any

from pydantic import BaseModel, ValidationError

from orchestrator.config.yamlsafe import Lines, Path_, Problems
from orchestrator.errors import ConfigError


def model_for(annotation: Any) -> tuple[str, Any] | None:
    """('model'|'list'|'dict', inner model class) for annotations that hold models."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        for a in args:
            found = model_for(a)
            if found:
                return found
        return None
    if origin is Annotated:
        return model_for(args[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return ("model", annotation)
    if origin in (tuple, list) and args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return ("list", args[0])
    if origin is dict and len(args) == 2 and isinstance(args[1], type) and issubclass(args[1], BaseModel):
        return ("dict", args[1])
    return None


def check_keys(data: Any, model: type[BaseModel], path: Path_, report: Problems) -> None:
    """Every unknown key (with a did-you-mean), in every model of the file."""
    if not isinstance(data, dict):
        return
    fields = model.model_fields
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6)
            fix = f'did you mean "{close[0]}"?' if close else f"known keys: {', '.join(fields)}"
            report(path + (str(key),), "unknown key", fix)
            continue
        inner = model_for(fields[key].annotation)
        if inner is None:
            continue
        kind, cls = inner
        sub = path + (key,)
        if kind == "model":
            check_keys(value, cls, sub, report)
        elif kind == "list" and isinstance(value, list):
            for i, item in enumerate(value):
                check_keys(item, cls, sub + (i,), report)
        elif kind == "dict" and isinstance(value, dict):
            for k, item in value.items():
                check_keys(item, cls, sub + (str(k),), report)


def _leaf(annotation: Any) -> Any:
    """str / int / a model / (container, inner) with Annotated and Optional peeled off."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        return _leaf(args[0])
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return _leaf(rest[0]) if len(rest) == 1 else None
    return annotation


def check_scalars(data: Any, annotation: Any, path: Path_, lines: Lines, report: Problems) -> None:
    """Unquoted YAML scalars typed as numbers/booleans/dates where a string belongs ("quote it"),
    and booleans where a number belongs (pydantic would read true as 1)."""
    ann = _leaf(annotation)
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if isinstance(ann, type) and issubclass(ann, BaseModel) and isinstance(data, dict):
        for key, value in data.items():
            if key in ann.model_fields:
                check_scalars(value, ann.model_fields[key].annotation, path + (key,), lines, report)
    elif origin in (tuple, list) and args and isinstance(data, list):
        for i, item in enumerate(data):
            check_scalars(item, args[0], path + (i,), lines, report)
    elif origin is dict and len(args) == 2 and isinstance(data, dict):
        for key, value in data.items():
            check_scalars(value, args[1], path + (key,), lines, report)
    elif ann is str and path in lines.scalars and not isinstance(data, str):
        kind, text = lines.scalars[path]
        fix = f'quote it: "{text}"' if text else 'write a value (quote it, e.g. "")'
        what = f"{text} is" if text else "the value is empty:"
        report(path, f"{what} read by YAML as {kind}, not a string", fix)
    elif ann is int and isinstance(data, bool):
        report(path, f"{lines.scalars.get(path, ('', str(data)))[1]} is a boolean, not a number",
               "write a number")


def pydantic_errors(exc: ValidationError, report: Problems) -> list[ConfigError]:
    """Every pydantic error, one line each (one per key path), at the lines ``report`` knows."""
    out: dict[Path_, ConfigError] = {}
    for err in exc.errors():
        loc: Path_ = tuple(err["loc"])
        msg = err["msg"]
        fix = "see images.schema.json for the expected shape"
        if err["type"] == "missing":
            msg, fix = "required key is missing", f'add "{loc[-1]}"'
            loc = loc[:-1] + (str(loc[-1]),)
        elif err["type"] == "literal_error":
            fix = _did_you_mean(err) or "use one of the values listed"
        elif err["type"] == "string_pattern_mismatch" and "freeze_modules" in loc:
            msg = f"{err['input']!r} is not a module name"
            fix = 'use a dotted stdlib module name, e.g. "encodings.utf_8"'
        out.setdefault(loc, report.error(loc, msg, fix))
    return list(out.values())


def _did_you_mean(err: Any) -> str:
    """'did you mean "nbody"?' for a value close to one of a Literal's ("" when none is)."""
    allowed = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
    close = difflib.get_close_matches(str(err.get("input", "")), allowed, n=1, cutoff=0.6)
    return f'did you mean "{close[0]}"?' if close else ""


def not_reported(errors: list[ConfigError], reported: list[ConfigError]) -> list[ConfigError]:
    """pydantic's errors minus what is said already: the same key ("quote it"), or a missing key
    next to an unknown one (the typo "famly" is the problem, not the missing "family")."""
    keys = {p.key for p in reported}
    typo_in = {p.key.rpartition(".")[0] for p in reported if p.problem == "unknown key"}
    return [e for e in errors if e.key not in keys
            and not (e.problem == "required key is missing" and e.key.rpartition(".")[0] in typo_in)]

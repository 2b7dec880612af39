"""images.yaml: parsed once into frozen models (``config_models``), validated with one clear
line per problem, every problem reported."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.config import yamlsafe
from orchestrator.config.checks import semantic, shape, values
from orchestrator.config.model import ImagesConfig, Loaded
from orchestrator.config.yamlsafe import Lines, Path_, Problems
from orchestrator.errors import ConfigError, raise_all

__all__ = ["json_schema", "load", "parse_yaml", "validate_data"]

# --------------------------------------------------------------------------- loading


def parse_yaml(text: str, file: str) -> tuple[Any, Lines]:
    """YAML -> plain data plus a map of key path -> line number (see yamlsafe)."""
    return yamlsafe.parse(text, file)


def load(path: Path | str, today: dt.date) -> Loaded:
    """Read, parse and fully validate images.yaml. Raises ConfigError (exit 2)."""
    if not str(path):
        raise ConfigError("--config ''", "", "the path is empty", "pass --config PATH (e.g. images.yaml)")
    path = Path(path)
    text = yamlsafe.read_text(path, "pass --config PATH or create it")
    data, lines = parse_yaml(text, str(path))
    return validate_data(data, path, today, lines)


def validate_data(
    data: Any, path: Path, today: dt.date, lines: dict[Path_, int] | None = None
) -> Loaded:
    file = str(path)
    if not isinstance(lines, Lines):
        plain, lines = lines or {}, Lines()
        lines.update(plain)
    if not isinstance(data, dict):
        raise ConfigError(file, "", "expected a mapping at the top level", "see images.schema.json")
    report = Problems(file, lines)
    shape.check_keys(data, ImagesConfig, (), report)
    shape.check_scalars(data, ImagesConfig, (), lines, report)
    try:
        config = ImagesConfig.model_validate(data)
    except ValidationError as exc:
        raise_all(report.problems + shape.not_reported(shape.pydantic_errors(exc, report),
                                                       report.problems))
        raise  # pragma: no cover - pydantic_errors always has one
    raise_all(report.problems)
    loaded = Loaded(config, path, (), lines)
    raise_all(values.check(loaded))
    warnings = semantic.check(loaded, today)  # every semantic problem, or the warnings
    return Loaded(config, path, tuple(warnings), lines)


def json_schema() -> str:
    schema = ImagesConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "images.yaml"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"

"""The package's layout rules: the CLI on top (nothing imports it), one command table that
matches the parser, and docker-py / python-on-whales behind the engine protocol."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

from orchestrator import cli

PACKAGE = Path(__file__).resolve().parents[2] / "orchestrator"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _modules() -> dict[str, set[str]]:
    return {str(p.relative_to(PACKAGE)): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_the_command_table_and_the_parser_name_the_same_commands() -> None:
    sub = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == list(cli.COMMANDS)


def test_nothing_below_the_cli_imports_it() -> None:
    offenders = {name for name, imports in _modules().items()
                 if not name.startswith(("cli/", "__main__"))
                 and any(i == "orchestrator.cli" or i.startswith("orchestrator.cli.")
                         for i in imports)}
    assert offenders == set()


def test_only_the_docker_engine_imports_the_docker_clients() -> None:
    users = {name for name, imports in _modules().items()
             if any(i.split(".")[0] in ("docker", "python_on_whales") for i in imports)}
    assert users == {"engine/docker_engine.py"}


def test_the_release_uses_the_engine_protocol_not_its_docker_implementation() -> None:
    users = {name for name, imports in _modules().items()
             if "orchestrator.engine.docker_engine" in imports}
    assert users <= {"cli/release_cmds.py"}


def test_only_the_runner_starts_processes_and_only_settings_reads_the_environment() -> None:
    spawners = {name for name, imports in _modules().items() if "subprocess" in imports}
    assert spawners == {"runner.py"}
    readers = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
               if any(s in p.read_text() for s in ("os.environ", "os.getenv", "getenv("))}
    assert readers == {"settings.py"}

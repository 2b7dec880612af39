"""The package's layout rules: the CLI on top (nothing imports it), one command table that
matches the parser, docker-py / python-on-whales behind the engine protocol, a pure core that
imports nothing above it, naming.py the only module that spells a name, and no module over 400
lines."""

from __future__ import annotations

import argparse
import ast
import itertools
import re
from dataclasses import fields
from pathlib import Path

from orchestrator import cli, naming

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


# What runs inside the images, not on the build host (package data; the orchestrator imports
# none of it): the smoke checks' scripts and the performance record's pyperf workloads.
IN_IMAGE = (PACKAGE / "smoke" / "checks", PACKAGE / "perf" / "workloads")


def _orchestrator_files() -> list[Path]:
    """The orchestrator's own modules: not what it runs inside the images (``IN_IMAGE``)."""
    return [p for p in sorted(PACKAGE.rglob("*.py")) if p.parent not in IN_IMAGE]


def _modules() -> dict[str, set[str]]:
    return {str(p.relative_to(PACKAGE)): _imports(p) for p in _orchestrator_files()}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """module -> the orchestrator modules it imports, every import counted: module level,
    function level and under TYPE_CHECKING (``from orchestrator.x import name`` is an edge to
    orchestrator.x, or to orchestrator.x.name when that is a module)."""
    modules = {_module_name(p): p for p in _orchestrator_files()}

    def owner(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    def targets(path: Path) -> set[str]:
        out: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                out |= {owner(a.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                out |= {owner(f"{node.module}.{a.name}") for a in node.names}
        return out - {""}

    return {name: targets(path) - {name} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycle_among_the_modules() -> None:
    """Function-level and TYPE_CHECKING imports count: a cycle hidden in a function is one."""
    assert _cycles(_import_graph()) == []


def test_the_cycle_check_sees_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    hidden = tmp_path / "m.py"
    hidden.write_text("def f() -> None:\n    from orchestrator.config import load\n")
    assert "orchestrator.config" in _imports(hidden)
    assert _import_graph()["orchestrator.cli.app"] >= {"orchestrator.cli.common"}


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
    assert users == {"engine/docker_engine.py", "engine/docker_store.py"}


def test_the_release_uses_the_engine_protocol_not_its_docker_implementation() -> None:
    users = {name for name, imports in _modules().items()
             if "orchestrator.engine.docker_engine" in imports}
    assert users <= {"cli/common.py"}  # engine_for: the CLI starts the engine
    store_users = {name for name, imports in _modules().items()
                   if "orchestrator.engine.docker_store" in imports}
    assert store_users == {"engine/docker_engine.py"}  # DockerEngine's base


MAX_MODULE_LINES = 400


def test_no_module_over_400_lines() -> None:
    """A module that outgrows it is two concepts: split it where they part."""
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines())
             for p in sorted(PACKAGE.rglob("*.py"))}
    assert {m: n for m, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_only_the_runner_starts_processes_and_only_settings_reads_the_environment() -> None:
    spawners = {name for name, imports in _modules().items() if "subprocess" in imports}
    assert spawners == {"runner.py"}
    readers = {str(p.relative_to(PACKAGE)) for p in _orchestrator_files()
               if any(s in p.read_text() for s in ("os.environ", "os.getenv", "getenv("))}
    assert readers == {"settings.py"}


# ---- layers: a folder per concept, each importing only the folders below it ----------------

# The modules at the package root: cross-cutting, importable from anywhere.
ROOT = {"errors", "log", "settings", "runner", "naming", "imageref", "ledger", "table", "timestamps"}
MAX_ROOT_MODULES = 12

# What each folder may import besides itself and the root (cli: anything; nothing imports it).
MAY_IMPORT = {
    "config": set(),
    "lock": {"config", "registry"},  # lock.sources asks the registry for digests
    "planning": {"config", "lock"},
    "render": {"config", "lock", "planning"},
    "engine": set(),
    "apt": {"config"},
    "registry": {"config", "apt", "engine", "planning"},  # fingerprint: an image's contents
    "smoke": {"config", "engine", "planning"},
    "perf": {"config", "engine", "planning"},  # the record's workloads, runs and verdict
    "supplychain": {"config", "lock", "registry", "planning", "perf"},  # its predicate type
    "scan": {"config", "planning", "registry", "supplychain"},  # grype over the SBOMs
    "versions": {"config", "lock", "planning", "render", "registry"},
    "release": {"config", "lock", "planning", "render", "engine", "apt", "registry", "smoke",
                "supplychain", "scan", "perf"},
}


def _folder(module: str) -> str:
    """The folder ``module`` belongs to ("config" for orchestrator.config.checks.shape), or ""
    for a module at the package root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else ""


def _package_imports(imports: set[str]) -> set[str]:
    """The top-level modules and packages of orchestrator that ``imports`` name."""
    return {i.split(".")[1] for i in imports if i.startswith("orchestrator.")}


def test_each_folder_imports_only_the_folders_below_it() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders - {"cli"} == set(MAY_IMPORT), "a new folder needs its rule here"
    for module, targets in _import_graph().items():
        folder = _folder(module)
        if folder in ("", "cli"):
            continue
        above = {_folder(t) for t in targets} - {"", folder} - MAY_IMPORT[folder]
        assert above == set(), f"{module} imports {sorted(above)}"


def test_the_root_modules_import_only_each_other() -> None:
    for module, targets in _import_graph().items():
        if module.count(".") == 1 and module.split(".")[1] in ROOT:
            assert {t.split(".")[1] for t in targets} <= ROOT, module


def test_at_most_twelve_modules_at_the_package_root() -> None:
    assert len(list(PACKAGE.glob("*.py"))) <= MAX_ROOT_MODULES
    assert {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"} == ROOT


# The models of images.yaml: the whole file and one module per section.
CONFIG_MODELS = {f"orchestrator.config.{m}"
                 for m in ("model", "base", "axes", "tags", "build", "sources", "publish")}


def test_the_config_models_are_leaves_and_only_the_loader_runs_the_checks() -> None:
    graph = _import_graph()
    for model in CONFIG_MODELS:
        assert graph[model] <= CONFIG_MODELS | {"orchestrator.config.yamlsafe",
                                                 "orchestrator.errors"}, model
    importers = {m for m, targets in graph.items()
                 if any(t.startswith("orchestrator.config.checks") for t in targets)}
    assert {m for m in importers if not m.startswith("orchestrator.config.checks")} \
        == {"orchestrator.config.loader"}


# Where a time format is written out: timestamps.py (RFC 3339 in UTC to the second, for
# everything the orchestrator records), scan/gitlab.py (the GitLab report schema's own format,
# without a zone) and scan/grype.py (the DB's build time as grype gave it, fractions kept).
TIME_FORMATS = ("%Y-%m-%dT", "isoformat(timespec", '.replace("+00:00"')


def test_the_time_format_is_written_out_in_timestamps_only() -> None:
    writers = {str(p.relative_to(PACKAGE)) for p in _orchestrator_files()
               if any(f in p.read_text() for f in TIME_FORMATS)}
    assert writers == {"timestamps.py", "scan/gitlab.py", "scan/grype.py"}


def test_naming_imports_nothing_of_the_package() -> None:
    assert _package_imports(_modules()["naming.py"]) == set()


# The import aliases that stay (module, imported name, alias): datetime as dt everywhere (the
# module beside its datetime class); the perf record's predicate module where the supply chain
# handles other in-toto predicates and names them ``predicate``; scan.gate and scan.images
# beside push.py's ``gate`` and ``images`` arguments.
KEPT_ALIASES = {
    "release/attest.py": {("orchestrator.perf", "predicate", "perf_predicate")},
    "supplychain/signing.py": {("orchestrator.perf", "predicate", "perf_predicate")},
    "supplychain/verify.py": {("orchestrator.perf", "predicate", "perf_predicate")},
    "release/push.py": {("orchestrator.scan", "gate", "scan_gate"),
                        ("orchestrator.scan", "images", "scan_images")},
}


def _aliases(path: Path) -> set[tuple[str, str, str]]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for a in node.names:
                if a.asname and a.asname != a.name.rpartition(".")[2]:
                    out.add((getattr(node, "module", None) or "", a.name, a.asname))
    return out


def test_modules_are_imported_by_their_own_names() -> None:
    """No ``import x as x_mod``: one name per module, the one it has."""
    found = {str(p.relative_to(PACKAGE)): aliases for p in sorted(PACKAGE.rglob("*.py"))
             if (aliases := _aliases(p) - {("", "datetime", "dt")})}
    assert found == KEPT_ALIASES


def test_only_the_engine_and_the_registry_transport_import_the_http_stack() -> None:
    """requests/urllib3 (docker-py's HTTP stack): the engine, and the registry client's
    transport and its API (one session, urllib3's Retry, Link headers); nothing else."""
    users = {name for name, imports in _modules().items()
             if any(i.split(".")[0] in ("requests", "urllib3") for i in imports)}
    assert users <= {"engine/docker_engine.py", "engine/docker_store.py", "registry/transport.py",
                     "registry/client.py"}


# ---- one owner for every name: naming.py ---------------------------------------------------

LABEL_NAMES = tuple(f.name.replace("_", "-") for f in fields(naming.LabelKeys)
                    if f.name != "namespace")
STAGE_PREFIXES = ("python-", "prep-", "tree-", "devtree-", "runtime-", "dev-", "minimal-",
                  "build-deps-cross-", "labelled-")
STAGE_NAMES = ("build-base", "security-updates", "runtime-base", "build-deps", "deadsnakes-key")
GENERATED = ("Dockerfile", "docker-bake.json")


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants (prose may mention any name)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) \
                and node.body and isinstance(node.body[0], ast.Expr) \
                and isinstance(node.body[0].value, ast.Constant):
            out.add(id(node.body[0].value))
    return out


def _descriptions(tree: ast.AST) -> set[int]:
    """ids of the strings given as ``description=`` (the images.yaml schema's prose)."""
    return {id(n) for k in ast.walk(tree) if isinstance(k, ast.keyword) and k.arg == "description"
            for n in ast.walk(k.value)}


def _ends_with_stage_prefix(text: str) -> bool:
    """``text`` ends with a stage prefix that starts a word: "prep-" or "/runtime-", not
    "cpython-" (an SBOM package id is no stage name)."""
    return any(text.endswith(p) and not text[:-len(p)][-1:].isalnum() for p in STAGE_PREFIXES)


def _label_key_like(text: str) -> bool:
    """A label key or namespace, or a piece of one: "org.x.base-image", "base-image.cell"; the
    bare word (the provenance's name for the base image dependency) is no key."""
    return bool(re.search(r"\.base-image\b|\bbase-image\.", text)) \
        or "org.opencontainers.image." in text


def _spelled_names(path: Path) -> list[str]:
    """Where a module spells a name naming owns: a label key, a stage name, a generated path."""
    tree = ast.parse(path.read_text(), str(path))
    prose = _docstrings(tree) | _descriptions(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            text = node.value
            if _label_key_like(text):
                found.append(f"{node.lineno}: label key {text!r}")
            if text in STAGE_NAMES or text in GENERATED or text.startswith(STAGE_PREFIXES[-2:]):
                found.append(f"{node.lineno}: name {text!r}")
        elif isinstance(node, ast.JoinedStr):
            parts = node.values
            for a, b in itertools.pairwise(parts):
                if isinstance(a, ast.FormattedValue) and isinstance(b, ast.Constant) \
                        and re.match(rf"\.({'|'.join(LABEL_NAMES)})\b", str(b.value)):
                    found.append(f"{node.lineno}: label key f-string ...{b.value!r}")
                if isinstance(a, ast.Constant) and isinstance(b, ast.FormattedValue) \
                        and (_ends_with_stage_prefix(str(a.value)) or "-cross-" in str(a.value)
                             or str(a.value) in ("-to-", "/Dockerfile")):
                    found.append(f"{node.lineno}: stage name f-string {a.value!r}...")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("startswith", "removeprefix") and node.args \
                and isinstance(node.args[0], ast.Constant) \
                and str(node.args[0].value).startswith(STAGE_PREFIXES):
            found.append(f"{node.lineno}: matches a stage name by prefix {node.args[0].value!r}")
    return found


def test_only_naming_spells_label_keys_stage_names_and_generated_paths() -> None:
    offenders = {str(p.relative_to(PACKAGE)): found for p in sorted(PACKAGE.rglob("*.py"))
                 if p.name != "naming.py" and (found := _spelled_names(p))}
    assert offenders == {}


def test_the_spelling_check_sees_what_it_is_meant_to(tmp_path: Path) -> None:
    """The check above is only as good as what it catches: every line here is a finding."""
    bad = tmp_path / "bad.py"
    bad.write_text('ns = "org.x.base-image"\nkey = f"{ns}.inputs"\n'
                   'stage = f"python-{suffix}-cross-{arch}"\nok = stage.startswith("runtime-")\n'
                   'path = "Dockerfile"\n')
    assert {int(f.split(":")[0]) for f in _spelled_names(bad)} == {1, 2, 3, 4, 5}


def test_the_spelling_check_passes_names_that_only_look_alike(tmp_path: Path) -> None:
    """An SBOM's package id "cpython-3.13.15-source" and the provenance's dependency name
    "base-image" are not names naming owns."""
    ok = tmp_path / "ok.py"
    ok.write_text('ref = f"cpython-{version}-{method}"\n'
                  'spdx = f"SPDXRef-Package-cpython-{version}"\ndep = {"name": "base-image"}\n')
    assert _spelled_names(ok) == []


def test_the_templates_take_every_stage_name_from_naming() -> None:
    """FROM x AS y and COPY --from=x name stages only through template values (render passes
    naming's), never by a word typed into stages/*.j2."""
    for template in sorted((PACKAGE.parent / "stages").glob("*.j2")):
        for number, line in enumerate(template.read_text().splitlines(), start=1):
            where = f"{template.name}:{number}: {line.strip()}"
            assert not re.search(r"\bAS (?!\{\{)", line), where
            assert not re.search(r"--from=(?!\{\{)", line), where
            assert not re.match(r"FROM (?!\{\{|\{%|scratch\b)", line), where


def test_no_host_code_under_tests() -> None:
    """Host provisioning is hostkit/ beside the package (python -m hostkit), never tests/."""
    repo = PACKAGE.parent
    assert not (repo / "tests" / "hostkit").exists()
    assert (repo / "hostkit" / "__main__.py").is_file()
    for script in sorted((repo / "scripts").glob("*.sh")):
        assert not re.search(r"-m tests\b", script.read_text()), script.name

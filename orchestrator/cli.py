"""Command line: ``python -m orchestrator <command>``. Only ``main()`` exits."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from orchestrator import __version__, log, settings
from orchestrator import cache as cache_mod
from orchestrator import config as config_mod
from orchestrator import lock as lock_mod
from orchestrator import plan as plan_mod
from orchestrator import render as render_mod
from orchestrator.config import Loaded
from orchestrator.errors import ExitCode, OrchestratorError
from orchestrator.registry import Registry, docker_credentials

_log = log.get("cli")

Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        COMMANDS[name] = fn
        return fn

    return deco


def load_config(args: argparse.Namespace) -> Loaded:
    loaded = config_mod.load(args.config, settings.get().today)
    for w in loaded.warnings:
        _log.warning(w)
    return loaded


def registry_for(host: str) -> Registry:
    return Registry(host, docker_credentials(settings.get().docker_config, host))


# ----------------------------------------------------------------------------- commands


@command("validate")
def cmd_validate(args: argparse.Namespace) -> int:
    loaded = load_config(args)
    from orchestrator import matrix

    n = len(matrix.expand(loaded.config))
    path = lock_mod.lock_path(loaded)
    if not path.exists() and not path.is_symlink():
        print(f"{loaded.path}: valid ({n} images, {len(loaded.warnings)} warnings), but {path} is missing: "
              f"run `orchestrator lock --config {loaded.path}` before plan, render or build")
        return 0
    lock = lock_mod.read(loaded)
    lock_mod.check_against(loaded, lock)
    unresolved = lock_mod.unresolved(lock)
    for item in unresolved:
        _log.warning(f"{path}: {item}: not pinned (its source was not "
                     "reachable when the lock was written); run `orchestrator lock` where it is")
    print(f"{loaded.path}: OK ({n} images, {len(loaded.warnings) + len(unresolved)} warnings)")
    return 0


@command("schema")
def cmd_schema(args: argparse.Namespace) -> int:
    text = config_mod.json_schema()
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


@command("plan")
def cmd_plan(args: argparse.Namespace) -> int:
    loaded = load_config(args)
    lock = lock_mod.read(loaded)
    lock_mod.check_against(loaded, lock)
    st = settings.get()
    plan = plan_mod.build(loaded, lock, only=args.only, profile=args.profile, today=st.today,
                          shard=args.shard, ci=st.ci, cache=cache_mod.options_from(args))
    sys.stdout.write(plan.to_json() if args.json else plan.table())
    return 0


@command("lock")
def cmd_lock(args: argparse.Namespace) -> int:
    loaded = load_config(args)
    old = lock_mod.read(loaded, required=False)
    src = loaded.config.sources
    index: lock_mod.PythonOrgIndex | lock_mod.PyenvDefinitions
    if args.from_pyenv:
        index = lock_mod.PyenvDefinitions(Path(args.from_pyenv), src.python_keys)
    else:
        index = lock_mod.PythonOrgIndex(src.python, src.python_keys)
    new, changes = lock_mod.update(loaded, old, upgrade=args.upgrade, only=args.only_names,
                                   index=index, registry_for=registry_for)
    path = lock_mod.write(loaded, new)
    for ch in changes:
        print(f"  {ch}")
    print(f"{path}: {len(changes)} change(s)")
    for item in lock_mod.unresolved(new):
        _log.warning(f"{path}: {item}: could not be resolved from here; left unpinned")
    if changes and not args.no_render:
        files = render_mod.render_all(loaded, new)
        changed = render_mod.write(loaded, files)
        print(f"re-rendered {len(changed)} file(s) under {loaded.output_dir}")
    return 0


@command("render")
def cmd_render(args: argparse.Namespace) -> int:
    loaded = load_config(args)
    lock = lock_mod.read(loaded)
    files = render_mod.render_all(loaded, lock)
    if args.check:
        problems = render_mod.check(loaded, files)
        for p in problems:
            print(p, file=sys.stderr)
        if problems:
            print("generated files are stale: run `python -m orchestrator render` and commit",
                  file=sys.stderr)
            return int(ExitCode.FAILED)
        print(f"{loaded.output_dir}: up to date ({len(files)} files)")
        return 0
    changed = render_mod.write(loaded, files)
    # write() also returns the stale files it removed; those are neither written nor unchanged.
    written = sum(1 for rel in changed if rel in files)
    removed = len(changed) - written
    print(f"{loaded.output_dir}: {written} file(s) written, {len(files) - written} unchanged"
          + (f", {removed} removed" if removed else ""))
    return 0


# ----------------------------------------------------------------------------- parser


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default="images.yaml", help="path to images.yaml")
    common.add_argument("--log-format", choices=["console", "json"],
                        help="default: json when CI is set, else console")
    common.add_argument("-v", "--verbose", action="store_true")
    sel = argparse.ArgumentParser(add_help=False)
    sel.add_argument("--only", action="append", metavar="GLOB",
                     help="cell id glob, e.g. '3.13-*-bookworm-*' (repeatable)")
    sel.add_argument("--profile", help="build profile from images.yaml (release, fast, ...)")

    p = argparse.ArgumentParser(prog="orchestrator", description=__doc__)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("validate", parents=[common], help="validate images.yaml (and images.lock)")
    s = sub.add_parser("schema", parents=[common], help="print the JSON Schema of images.yaml")
    s.add_argument("--output", "-o")
    s = sub.add_parser("plan", parents=[common, sel], help="show what would be built and tagged")
    s.add_argument("--json", action="store_true")
    s.add_argument("--shard", metavar="I/N", help="only shard I of N (split by CPython build)")
    cache_mod.add_arguments(s)
    s = sub.add_parser("lock", parents=[common], help="resolve and pin sources into images.lock")
    s.add_argument("--upgrade", action="store_true", help="bump patch versions and digests")
    s.add_argument("--only", dest="only_names", action="append", metavar="NAME",
                   help="with --upgrade: only this Python minor or distro (repeatable)")
    s.add_argument("--from-pyenv", metavar="PYENV_ROOT",
                   help="resolve CPython from a pyenv checkout's pinned definitions (offline)")
    s.add_argument("--no-render", action="store_true")
    s = sub.add_parser("render", parents=[common], help="write the generated Dockerfiles")
    s.add_argument("--check", action="store_true", help="exit non-zero when they are stale")
    _extend_parser(sub, common, sel)
    return p


def _extend_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                   common: argparse.ArgumentParser, sel: argparse.ArgumentParser) -> None:
    """Commands owned by other modules register their arguments here."""
    import importlib

    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"orchestrator.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"orchestrator.{name}":
                raise
            continue
        module.register(sub, common, sel)


# Modules that own commands: each has register(sub, common, sel) adding its sub-parsers
# and handlers (via @command).
_COMMAND_MODULES = ("versions", "pipeline")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        st = settings.get()
    except OrchestratorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    log.configure(args.log_format or st.log_format, args.verbose)
    try:
        return COMMANDS[args.command](args)
    except OrchestratorError as exc:
        for line in exc.lines():
            print(f"error: {line}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

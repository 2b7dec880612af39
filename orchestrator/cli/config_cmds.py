"""Commands on images.yaml and its products: validate, schema, plan, lock, render."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestrator import log, registry, render, settings
from orchestrator.cli.common import SubParsers, load_config, load_plan
from orchestrator.config import loader, matrix
from orchestrator.errors import ExitCode
from orchestrator.lock import lockfile, sources
from orchestrator.planning import build_cache

_log = log.get("cli")


def cmd_validate(args: argparse.Namespace) -> int:
    loaded = load_config(args)
    n = len(matrix.expand(loaded.config))
    path = lockfile.lock_path(loaded)
    if not path.exists() and not path.is_symlink():
        print(f"{loaded.path}: valid ({n} images, {len(loaded.warnings)} warnings), but {path} is missing: "
              f"run `orchestrator lock --config {loaded.path}` before plan, render or build")
        return 0
    lock = lockfile.read(loaded)
    lockfile.check_against(loaded, lock)
    unresolved = lockfile.unresolved(lock)
    for item in unresolved:
        _log.warning(f"{path}: {item}: not pinned (its source was not "
                     "reachable when the lock was written); run `orchestrator lock` where it is")
    print(f"{loaded.path}: OK ({n} images, {len(loaded.warnings) + len(unresolved)} warnings)")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    text = loader.json_schema()
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    _, plan = load_plan(args, shard=args.shard, cache=build_cache.options_from(args))
    sys.stdout.write(plan.to_json() if args.json else plan.table())
    return 0


def cmd_lock(args: argparse.Namespace) -> int:
    loaded = load_config(args)
    st = settings.get()
    old = lockfile.read(loaded, required=False)
    src = loaded.config.sources
    index: sources.PythonOrgIndex | sources.PyenvDefinitions
    if args.from_pyenv:
        index = sources.PyenvDefinitions(Path(args.from_pyenv), src.python_keys, src.python)
    else:
        index = sources.PythonOrgIndex(src.python, src.python_keys)
    new, changes = sources.update(loaded, old, upgrade=args.upgrade, only=args.only_names,
                                   index=index,
                                   registry_for=lambda host: registry.registry_for(host, st))
    path = lockfile.write(loaded, new)
    for ch in changes:
        print(f"  {ch}")
    print(f"{path}: {len(changes)} change(s)")
    for item in lockfile.unresolved(new):
        _log.warning(f"{path}: {item}: could not be resolved from here; left unpinned")
    if changes and not args.no_render:
        files = render.render_all(loaded, new)
        changed = render.write(loaded, files)
        print(f"re-rendered {len(changed)} file(s) under {loaded.output_dir}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    loaded = load_config(args)
    lock = lockfile.read(loaded)
    files = render.render_all(loaded, lock)
    if args.check:
        problems = render.check(loaded, files)
        for p in problems:
            print(p, file=sys.stderr)
        if problems:
            print("generated files are stale: run `python -m orchestrator render` and commit",
                  file=sys.stderr)
            return int(ExitCode.FAILED)
        print(f"{loaded.output_dir}: up to date ({len(files)} files)")
        return 0
    changed = render.write(loaded, files)
    # write() also returns the stale files it removed; those are neither written nor unchanged.
    written = sum(1 for rel in changed if rel in files)
    removed = len(changed) - written
    print(f"{loaded.output_dir}: {written} file(s) written, {len(files) - written} unchanged"
          + (f", {removed} removed" if removed else ""))
    return 0


def add_parsers(sub: SubParsers, common: argparse.ArgumentParser,
                sel: argparse.ArgumentParser) -> None:
    sub.add_parser("validate", parents=[common], help="validate images.yaml (and images.lock)")
    s = sub.add_parser("schema", parents=[common], help="print the JSON Schema of images.yaml")
    s.add_argument("--output", "-o")
    s = sub.add_parser("plan", parents=[common, sel], help="show what would be built and tagged")
    s.add_argument("--json", action="store_true")
    s.add_argument("--shard", metavar="I/N", help="only shard I of N (split by CPython build)")
    build_cache.add_arguments(s)
    s = sub.add_parser("lock", parents=[common], help="resolve and pin sources into images.lock")
    s.add_argument("--upgrade", action="store_true", help="bump patch versions and digests")
    s.add_argument("--only", dest="only_names", action="append", metavar="NAME",
                   help="with --upgrade: only this Python minor or distro (repeatable)")
    s.add_argument("--from-pyenv", metavar="PYENV_ROOT",
                   help="resolve CPython from a pyenv checkout's pinned definitions (offline)")
    s.add_argument("--no-render", action="store_true")
    s = sub.add_parser("render", parents=[common], help="write the generated Dockerfiles")
    s.add_argument("--check", action="store_true", help="exit non-zero when they are stale")

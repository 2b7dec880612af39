"""add-python / retire-python: one command and one reviewable diff per CPython minor."""

from __future__ import annotations

import argparse
from pathlib import Path

from orchestrator import log, settings
from orchestrator.cli.common import SubParsers
from orchestrator.config.axes import METHODS
from orchestrator.config.model import ImagesConfig
from orchestrator.lock import sources
from orchestrator.versions import Index, IndexFor, Proposal, apply, propose_add, propose_retire, report

_log = log.get("versions")


def _index_for(args: argparse.Namespace) -> IndexFor:
    def make(cfg: ImagesConfig) -> Index:
        src = cfg.sources
        if args.from_pyenv:
            return sources.PyenvDefinitions(Path(args.from_pyenv), src.python_keys, src.python)
        return sources.PythonOrgIndex(src.python, src.python_keys)

    return make


def _finish(p: Proposal, dry_run: bool) -> int:
    for w in p.loaded.warnings:
        _log.warning(w)
    changed = None if dry_run else apply(p)
    print(report(p, changed), end="")
    return 0


def cmd_add_python(args: argparse.Namespace) -> int:
    p = propose_add(Path(args.config), args.version, _index_for(args), settings.get().today,
                    tuple(dict.fromkeys(args.method or ())), args.unsigned)
    return _finish(p, args.dry_run)


def cmd_retire_python(args: argparse.Namespace) -> int:
    p = propose_retire(Path(args.config), args.minor, settings.get().today)
    return _finish(p, args.dry_run)


def add_parsers(sub: SubParsers, common: argparse.ArgumentParser,
                sel: argparse.ArgumentParser) -> None:
    s = sub.add_parser("add-python", parents=[common],
                       help="add a CPython minor: images.yaml, images.lock, generated/")
    s.add_argument("version", metavar="VERSION",
                   help="3.14 (newest patch, resolved at sources.python) or 3.14.2 (pinned)")
    s.add_argument("--from-pyenv", metavar="PYENV_ROOT",
                   help="resolve from a pyenv checkout's pinned definitions (offline)")
    s.add_argument("--method", action="append", choices=METHODS, metavar="METHOD",
                   help="build the new minor only with this method (repeatable; adds an exclude "
                        "rule for each other method); deadsnakes alone needs no CPython tarball")
    s.add_argument("--unsigned", metavar="REASON",
                   help="lock and build a minor before 3.14 without its tarball's OpenPGP "
                        "signature, saying why (written as pythons[].unsigned; validate warns)")
    s.add_argument("--dry-run", action="store_true", help="print the diff; write nothing")
    s = sub.add_parser("retire-python", parents=[common],
                       help="remove a CPython minor (published tags stay in the registry)")
    s.add_argument("minor", metavar="MINOR", help="e.g. 3.11")
    s.add_argument("--dry-run", action="store_true", help="print the diff; write nothing")

"""The parser, the command table and ``main()``: the only place that exits with a code."""

from __future__ import annotations

import argparse
import sys

from orchestrator import __version__, log, settings
from orchestrator.cli import config_cmds, python_cmds, release_cmds, scan_cmds, supply_cmds
from orchestrator.cli.common import Handler
from orchestrator.errors import OrchestratorError

DESCRIPTION = "Command line: ``python -m orchestrator <command>``. Only ``main()`` exits."

# Every command and its handler; the parser's sub-commands come from the same groups.
COMMANDS: dict[str, Handler] = {
    "validate": config_cmds.cmd_validate,
    "schema": config_cmds.cmd_schema,
    "plan": config_cmds.cmd_plan,
    "lock": config_cmds.cmd_lock,
    "render": config_cmds.cmd_render,
    "add-python": python_cmds.cmd_add_python,
    "retire-python": python_cmds.cmd_retire_python,
    "build": release_cmds.cmd_build,
    "test": release_cmds.cmd_test,
    "push": release_cmds.cmd_push,
    "release": release_cmds.cmd_release,
    "nightly": release_cmds.cmd_nightly,
    "outdated": release_cmds.cmd_outdated,
    "promote": release_cmds.cmd_promote,
    "verify": supply_cmds.cmd_verify,
    "check-reproducible": supply_cmds.cmd_check_reproducible,
    "scan": scan_cmds.cmd_scan,
}


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

    p = argparse.ArgumentParser(prog="orchestrator", description=DESCRIPTION)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (config_cmds, python_cmds, release_cmds, supply_cmds, scan_cmds):
        group.add_parsers(sub, common, sel)
    return p


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

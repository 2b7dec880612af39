"""Command line: ``python -m orchestrator <command>``. Only ``main()`` exits.

``app`` holds the parser, the command table and ``main``; one module per command group
(``config_cmds``, ``python_cmds``, ``release_cmds``) holds its handlers and arguments. The
package uses the services below it; nothing outside it imports it.
"""

from orchestrator.cli.app import COMMANDS, main, parser

__all__ = ["COMMANDS", "main", "parser"]

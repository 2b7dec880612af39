"""What the command handlers share: the handler type and loading images.yaml."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeAlias

from orchestrator import config as config_mod
from orchestrator import log, settings
from orchestrator.config import Loaded

Handler = Callable[[argparse.Namespace], int]
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

_log = log.get("cli")


def load_config(args: argparse.Namespace) -> Loaded:
    """images.yaml of ``--config``, validated; its warnings logged."""
    loaded = config_mod.load(args.config, settings.get().today)
    for w in loaded.warnings:
        _log.warning(w)
    return loaded

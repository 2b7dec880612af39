"""What the command handlers share: the handler type and loading images.yaml."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeAlias

from orchestrator import log, settings
from orchestrator.config import loader
from orchestrator.config.model import Loaded
from orchestrator.engine import Engine
from orchestrator.lock import lockfile
from orchestrator.planning import build_cache, plan

Handler = Callable[[argparse.Namespace], int]
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

_log = log.get("cli")


def load_config(args: argparse.Namespace) -> Loaded:
    """images.yaml of ``--config``, validated; its warnings logged."""
    loaded = loader.load(args.config, settings.get().today)
    for w in loaded.warnings:
        _log.warning(w)
    return loaded


def load_plan(args: argparse.Namespace, *, shard: str | None = None,
              cache: build_cache.CacheOptions = build_cache.DEFAULT_OPTIONS,
              ) -> tuple[Loaded, plan.Plan]:
    """images.yaml and images.lock of ``--config``, checked against each other, and the plan
    of ``--only`` / ``--profile`` (no side effect)."""
    loaded = load_config(args)
    lock = lockfile.read(loaded)
    lockfile.check_against(loaded, lock)
    st = settings.get()
    planned = plan.build(loaded, lock, only=args.only, profile=args.profile, today=st.today,
                         shard=shard, ci=st.ci, cache=cache)
    return loaded, planned


def engine_for(args: argparse.Namespace, loaded: Loaded) -> Engine:
    """The Docker engine (``--builder`` or build.builder), buildx checked."""
    from orchestrator.engine.docker_engine import DockerEngine  # docker-py only when needed

    engine = DockerEngine(builder=getattr(args, "builder", None) or loaded.config.build.builder)
    engine.check_buildx()
    return engine

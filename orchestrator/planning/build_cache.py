"""Registry build cache: which refs each cell's build imports and exports (pure, no I/O).

One ref per cell: a BuildKit cache export replaces the whole ref with the records of that one
build, so cells sharing a ref would overwrite each other's cache. A dev cell's build includes
its runtime's stages and the CPython compile, so a runner that imports a cell's ref rebuilds
nothing that ref holds. `profile` is in the default ref because `release` and `fast` compile
differently; shards need no scope of their own (a cell belongs to one shard).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

from orchestrator.config.build import check_cache_template
from orchestrator.config.model import ImagesConfig
from orchestrator.errors import UsageError

_REF_RE = re.compile(
    r"^(?P<host>[A-Za-z0-9.-]+(?::\d+)?)/(?P<repo>[a-z0-9]+(?:[._/-][a-z0-9]+)*)"
    r":(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$"
)


@dataclass(frozen=True)
class CacheOptions:
    """What the command line says about the cache (None: images.yaml decides)."""

    read: tuple[str, ...] = ()  # --cache-from REF (added to what images.yaml imports)
    write: str | None = None  # --cache-to REF (replaces where the export goes)
    export: bool | None = None  # --cache-export / --no-cache-export
    disabled: bool = False  # --no-cache: neither import nor export


@dataclass(frozen=True)
class CellCache:
    read: tuple[str, ...] = ()  # refs imported (--cache-from type=registry,ref=...)
    write: str | None = None  # ref exported to (--cache-to type=registry,ref=...,mode=...)
    mode: str = "max"

    def cache_from(self) -> list[str]:
        return [f"type=registry,ref={r}" for r in self.read]

    def cache_to(self) -> list[str]:
        return [f"type=registry,ref={self.write},mode={self.mode}"] if self.write else []


NO_CACHE = CellCache()
DEFAULT_OPTIONS = CacheOptions()


def expand(template: str, values: dict[str, str]) -> str:
    problem = check_cache_template(template)
    if problem:
        raise UsageError(f"cache ref {template!r}: {problem}")
    ref = template.format(**values)
    if not _REF_RE.match(ref):
        raise UsageError(f"cache ref {ref!r} (from {template!r}) is not a registry reference "
                         "HOST[:PORT]/REPOSITORY:TAG with a lowercase repository")
    return ref


def for_cell(config: ImagesConfig, cell_id: str, distro: str, profile: str, *, ci: bool,
             options: CacheOptions) -> CellCache:
    """The cache refs of one cell's build."""
    if options.disabled:
        return CellCache()
    values = {"registry": config.publish.registry, "repository": config.publish.repository,
              "profile": profile, "distro": distro, "cell": cell_id}
    cache = config.build.cache
    read: list[str] = []
    own: str | None = None
    mode = "max"
    if cache is not None:
        own = expand(cache.ref, values)
        read = [own, *(expand(r, values) for r in cache.read_also)]
        mode = cache.mode
    read += [expand(r, values) for r in options.read]
    if options.export is False:
        write = None
    elif options.write is not None:
        write = expand(options.write, values)
    elif cache is None:
        write = None
    elif options.export or cache.export == "always" or (cache.export == "ci" and ci):
        write = own
    else:
        write = None
    return CellCache(tuple(dict.fromkeys(read)), write, mode)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("registry build cache (build.cache in images.yaml)")
    g.add_argument("--cache-from", action="append", default=[], metavar="REF",
                   help="also import this cache ref (placeholders as in build.cache.ref, e.g. "
                        "the default branch's REGISTRY/REPO/cache:{profile}-{cell}); repeatable")
    g.add_argument("--cache-to", metavar="REF", help="export the cache here instead")
    g.add_argument("--cache-export", dest="cache_export", action="store_true", default=None,
                   help="export even outside CI (build.cache.export: ci)")
    g.add_argument("--no-cache-export", dest="cache_export", action="store_false",
                   help="import only (merge-request pipelines: read the default branch's cache)")
    g.add_argument("--no-cache", action="store_true",
                   help="neither import nor export a registry cache")


def options_from(args: argparse.Namespace) -> CacheOptions:
    """The CacheOptions of parsed arguments (commands without the flags get the defaults)."""
    return CacheOptions(
        read=tuple(getattr(args, "cache_from", None) or ()),
        write=getattr(args, "cache_to", None),
        export=getattr(args, "cache_export", None),
        disabled=bool(getattr(args, "no_cache", False)),
    )

"""build.cache and --cache-*: which registry cache refs each cell's build imports and exports."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from orchestrator.config import loader
from orchestrator.config.model import ImagesConfig
from orchestrator.errors import ConfigError, UsageError
from orchestrator.planning import build_cache
from orchestrator.planning.build_cache import CacheOptions, CellCache
from tests.unit.helpers import FIXTURES, TODAY, write_config

CELL = "3.13-source-bookworm-runtime"


def _config(tmp_path: Path, cache_yaml: str) -> ImagesConfig:
    text = (FIXTURES / "minimal.yaml").read_text() + "\nbuild:\n  cache:\n" + cache_yaml
    return loader.load(write_config(tmp_path, text), TODAY).config


def _minimal() -> ImagesConfig:
    return loader.load(FIXTURES / "minimal.yaml", TODAY).config


def test_no_cache_configured_means_no_cache_flags() -> None:
    got = build_cache.for_cell(_minimal(), CELL, "bookworm", "fast", ci=True, options=CacheOptions())
    assert got == CellCache() and got.cache_from() == [] and got.cache_to() == []


@pytest.mark.parametrize(("ci", "export", "writes"), [
    (True, "ci", True), (False, "ci", False), (False, "always", True), (True, "never", False)])
def test_export_follows_build_cache_export(tmp_path: Path, ci: bool, export: str,
                                          writes: bool) -> None:
    c = _config(tmp_path, f"    export: {export}\n")
    got = build_cache.for_cell(c, CELL, "bookworm", "fast", ci=ci, options=CacheOptions())
    ref = f"{c.publish.registry}/{c.publish.repository}/cache:fast-{CELL}"
    assert got.read == (ref,)
    assert got.write == (ref if writes else None)
    assert got.cache_from() == [f"type=registry,ref={ref}"]
    assert got.cache_to() == ([f"type=registry,ref={ref},mode=max"] if writes else [])


def test_every_cell_and_profile_gets_its_own_ref(tmp_path: Path) -> None:
    c = _config(tmp_path, "    mode: min\n")
    refs = {build_cache.for_cell(c, cell, "bookworm", prof, ci=True, options=CacheOptions()).write
            for cell in (CELL, "3.13-source-bookworm-dev") for prof in ("fast", "release")}
    assert len(refs) == 4
    got = build_cache.for_cell(c, CELL, "bookworm", "fast", ci=True, options=CacheOptions())
    assert got.cache_to()[0].endswith(",mode=min")


def test_command_line_adds_reads_and_redirects_or_stops_the_export(tmp_path: Path) -> None:
    c = _config(tmp_path, "    read_also: ['{registry}/{repository}/cache:release-{cell}']\n")
    opts = CacheOptions(read=("r.test/x/cache:{profile}-{cell}",), write="r.test/y:{cell}")
    got = build_cache.for_cell(c, CELL, "bookworm", "fast", ci=False, options=opts)
    own = f"{c.publish.registry}/{c.publish.repository}/cache:fast-{CELL}"
    release = f"{c.publish.registry}/{c.publish.repository}/cache:release-{CELL}"
    assert got.read == (own, release, f"r.test/x/cache:fast-{CELL}")
    assert got.write == f"r.test/y:{CELL}"
    stopped = build_cache.for_cell(c, CELL, "bookworm", "fast", ci=True,
                             options=CacheOptions(write="r.test/y:{cell}", export=False))
    assert stopped.write is None and stopped.read == (own, release)
    off = build_cache.for_cell(c, CELL, "bookworm", "fast", ci=True, options=CacheOptions(disabled=True))
    assert off == CellCache()


def test_cli_only_cache_works_without_build_cache() -> None:
    opts = CacheOptions(read=("r.test/g/cache:{profile}-{cell}",),
                        write="r.test/g/cache:{profile}-{cell}")
    got = build_cache.for_cell(_minimal(), CELL, "bookworm", "release", ci=False, options=opts)
    assert got.read == (f"r.test/g/cache:release-{CELL}",)
    assert got.write == f"r.test/g/cache:release-{CELL}"


@pytest.mark.parametrize(("ref", "problem"), [
    ("r.test/x:{cell!r}", "{cell} takes no format spec or conversion"),
    ("r.test/x:{shard}-{cell}", "unknown placeholder {shard}"),
    ("r.test/x:{cell", "bad template"),
])
def test_bad_cache_ref_template_is_one_config_error(tmp_path: Path, ref: str, problem: str) -> None:
    with pytest.raises(ConfigError) as exc:
        _config(tmp_path, f"    ref: '{ref}'\n")
    assert "build.cache.ref" in str(exc.value) and problem in str(exc.value)
    assert len(str(exc.value).splitlines()) == 1


def test_a_ref_without_cell_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"build\.cache\.ref: the cache ref must contain \{cell\}"):
        _config(tmp_path, "    ref: 'r.test/x/cache:{profile}'\n")


@pytest.mark.parametrize("bad", ["r.test/X/cache:{cell}", "cache:{cell}", "r.test/x/cache:{cell} y",
                                 "https://r.test/x:{cell}"])
def test_a_command_line_ref_that_is_no_registry_ref_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError, match="is not a registry reference"):
        build_cache.for_cell(_minimal(), CELL, "bookworm", "fast", ci=False,
                       options=CacheOptions(write=bad))


def test_flags_parse_into_options() -> None:
    p = argparse.ArgumentParser()
    build_cache.add_arguments(p)
    assert build_cache.options_from(p.parse_args([])) == CacheOptions()
    args = p.parse_args(["--cache-from", "a/b:{cell}", "--cache-from", "c/d:{cell}",
                         "--cache-to", "e/f:{cell}", "--no-cache-export"])
    assert build_cache.options_from(args) == CacheOptions(("a/b:{cell}", "c/d:{cell}"), "e/f:{cell}",
                                                    False, False)
    assert build_cache.options_from(p.parse_args(["--cache-export"])).export is True
    assert build_cache.options_from(p.parse_args(["--no-cache"])).disabled is True
    assert build_cache.options_from(argparse.Namespace()) == CacheOptions()

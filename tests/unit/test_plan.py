"""The plan: every image once, CPython builds shared, dev after runtime, shards, --only."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import loader, matrix
from orchestrator.config.model import Loaded
from orchestrator.errors import UsageError
from orchestrator.lock import lockfile
from orchestrator.lock.lockfile import Lock
from orchestrator.planning import plan
from orchestrator.planning.build_cache import CellCache
from orchestrator.planning.plan import Plan, PlannedBuild, PlannedImage
from tests.unit.helpers import REPO, TODAY, edit, run_cli, write_config

BOTH_PLATFORMS = ("linux/amd64", "linux/arm64")


def _plan(loaded: Loaded, lock: Lock, **kw: Any) -> Plan:
    return plan.build(loaded, lock, today=TODAY, **kw)


def _from_json(text: str) -> Plan:
    data = json.loads(text)
    images = tuple(PlannedImage(**{**i, "tags": tuple(i["tags"]),
                                   "frozen_modules": tuple(i["frozen_modules"]),
                                   "platforms": tuple(i["platforms"]),
                                   "cache": CellCache(**{**i["cache"],
                                                         "read": tuple(i["cache"]["read"])})})
                   for i in data.pop("images"))
    builds = tuple(PlannedBuild(**{**b, "images": tuple(b["images"])}) for b in data.pop("builds"))
    return Plan(**data, images=images, builds=builds)


def test_plan_covers_the_matrix(repo_loaded: Loaded, repo_lock: Lock) -> None:
    p = _plan(repo_loaded, repo_lock)
    cells = matrix.expand(repo_loaded.config)
    assert [i.id for i in p.images] == [c.id for c in cells]
    assert [i.cell for i in p.images] == cells
    assert (p.profile, p.date, p.shard) == ("release", "2026-11-21", "1/1")


def test_table_lists_every_image(repo_loaded: Loaded, repo_lock: Lock) -> None:
    p = _plan(repo_loaded, repo_lock)
    lines = p.table().splitlines()
    assert lines[0].split() == ["ID", "VERSION", "BUILD", "PLATFORMS", "TAGS", "EOL(days)"]
    assert [line.split()[0] for line in lines[1:-1]] == [i.id for i in p.images]
    # 10 native compiles and 9 cross compiles (one per source build, for linux/arm64)
    assert lines[-1] == "30 images, 25 CPython builds, profile release, shard 1/1"
    row = next(line for line in lines if line.startswith("3.13-source-bookworm-runtime "))
    assert row.split()[1:5] == ["3.13.13", "bookworm/python-3.13-source", "amd64,arm64", "3.13-runtime,"]
    assert row.split()[-1] == str((dt.date(2028, 6, 30) - TODAY).days)  # the distro ends first
    deadsnakes = next(line for line in lines if line.startswith("3.13-deadsnakes-noble-runtime "))
    assert deadsnakes.split()[2:4] == ["-", "amd64,arm64"]
    pybuild = next(line for line in lines if line.startswith("3.13-python-build-bookworm-runtime "))
    assert pybuild.split()[2:4] == ["bookworm/python-3.13-python-build", "amd64"]
    # the column starts at the same offset on every row
    at = lines[0].index("PLATFORMS")
    assert row[at:].startswith("amd64,arm64 ") and pybuild[at:].startswith("amd64 ")


def test_json_round_trips(repo_loaded: Loaded, repo_lock: Lock) -> None:
    p = _plan(repo_loaded, repo_lock)
    data = json.loads(p.to_json())
    assert set(data) == {"config", "profile", "date", "shard", "images", "builds"}
    assert len(data["images"]) == 30
    runtime = next(i for i in data["images"] if i["id"] == "3.13-source-bookworm-runtime")
    assert runtime["platforms"] == list(BOTH_PLATFORMS)
    assert runtime["optimizations"] == {"linux/amd64": "pgo+lto", "linux/arm64": "lto"}
    assert _from_json(p.to_json()) == p


def test_image_fields(repo_loaded: Loaded, repo_lock: Lock) -> None:
    image = _plan(repo_loaded, repo_lock).image("3.13-python-build-bookworm-dev")
    assert image == PlannedImage(
        id="3.13-python-build-bookworm-dev", distro="bookworm", python="3.13", version="3.13.13",
        method="python-build", variant="dev", target="dev-3.13-python-build",
        bake_target="3_13-python-build-bookworm-dev", dockerfile="generated/bookworm/Dockerfile",
        build="bookworm/python-3.13-python-build", base="docker.io/library/debian:bookworm-slim",
        repository="registry.example.org/org/python",
        tags=("3.13-dev-bookworm-pybuild", "3.13.13-dev-bookworm-pybuild"),
        immutable_tag="3.13.13.20261121-dev-bookworm-pybuild",
        immutable_revision="3.13.13.20261121.{n}-dev-bookworm-pybuild",
        depends_on="3.13-python-build-bookworm-runtime", size_budget_mb=520,
        python_eol_days=(dt.date(2029, 10, 31) - TODAY).days,
        distro_eol_days=(dt.date(2028, 6, 30) - TODAY).days, frozen_modules=(), pie=False,
        platforms=("linux/amd64",), optimizations={"linux/amd64": "pgo+lto"},
    )


def test_only_source_images_carry_the_frozen_modules_and_get_their_smoke_check(
    repo_loaded: Loaded, repo_lock: Lock
) -> None:
    from orchestrator.smoke.suite import checks_for

    wanted = repo_loaded.config.build.freeze_modules
    assert wanted
    for image in _plan(repo_loaded, repo_lock).images:
        expected = wanted if image.method == "source" else ()
        assert image.frozen_modules == expected, image.id
        names = [c.name for c in checks_for(image, uid=10001, prefix="/opt/org/python/3.13",
                                             tls_host="pypi.org")]
        assert ("startup-modules-frozen" in names) == bool(expected), image.id
        assert image.pie == (None if image.method == "deadsnakes" else False), image.id
        assert ("interpreter-link" in names) == (image.method != "deadsnakes"), image.id


def test_one_build_per_distro_python_method_with_a_compile(
    repo_loaded: Loaded, repo_lock: Lock
) -> None:
    p = _plan(repo_loaded, repo_lock)
    cells = matrix.expand(repo_loaded.config)
    keys = {c.build_key for c in cells if c.compiles}
    native = [b for b in p.builds if "-cross-" not in b.id]
    assert len(native) == len(keys) == 13
    assert {(b.distro, b.python, b.method) for b in native} == keys
    assert all(b.method != "deadsnakes" for b in p.builds)
    for b in native:
        assert b.id == f"{b.distro}/python-{b.python}-{b.method}"
        assert b.version == repo_lock.python(b.python).version
        assert list(b.images) == [i.id for i in p.images if i.build == b.id]
        assert sorted(p.image(i).variant for i in b.images) == ["dev", "runtime"]
    # A cross compile is a build of its own: one per source build and other platform, for
    # the same images as the native compile it takes its build Python from.
    cross = {b.id: b for b in p.builds if "-cross-" in b.id}
    assert sorted(cross) == sorted(f"{b.id}-cross-arm64" for b in native if b.method == "source")
    assert len(p.builds) == 25
    for b in native:
        if b.method == "source":
            c = cross[f"{b.id}-cross-arm64"]
            assert (c.distro, c.python, c.version, c.method, c.images) == (
                b.distro, b.python, b.version, b.method, b.images)
    for i in p.images:
        assert (i.build is None) == (i.method == "deadsnakes")


def test_dev_depends_on_its_runtime(repo_loaded: Loaded, repo_lock: Lock) -> None:
    p = _plan(repo_loaded, repo_lock)
    ids = [i.id for i in p.images]
    for i in p.images:
        if i.variant == "dev":
            runtime = f"{i.python}-{i.method}-{i.distro}-runtime"
            assert i.depends_on == runtime
            assert runtime in ids
        else:
            assert i.depends_on is None


def test_dev_alone_depends_on_nothing_planned(repo_loaded: Loaded, repo_lock: Lock) -> None:
    # The dev target builds its runtime stage itself; only a planned image is a dependency.
    p = _plan(repo_loaded, repo_lock, only=["*-dev"])
    assert p.images and all(i.variant == "dev" and i.depends_on is None for i in p.images)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 13])
def test_shards_partition_the_images_by_build(repo_loaded: Loaded, repo_lock: Lock, n: int) -> None:
    full = _plan(repo_loaded, repo_lock)
    shards = [_plan(repo_loaded, repo_lock, shard=f"{i}/{n}") for i in range(1, n + 1)]
    assert [s.shard for s in shards] == [f"{i}/{n}" for i in range(1, n + 1)]
    seen: dict[str, int] = {}
    for k, s in enumerate(shards):
        for i in s.images:
            assert i.id not in seen, f"{i.id} in shards {seen[i.id] + 1} and {k + 1}"
            seen[i.id] = k
    assert sorted(seen) == sorted(i.id for i in full.images)
    # All images of one build (and a dev with its runtime) run on the same shard.
    for b in full.builds:
        assert len({seen[i] for i in b.images}) == 1, b.id
    for i in full.images:
        if i.depends_on:
            assert seen[i.id] == seen[i.depends_on]
    # Each compile is planned exactly once over all shards, a cross compile on the shard of
    # the native one it needs (its build Python).
    assert sorted(b.id for s in shards for b in s.builds) == sorted(b.id for b in full.builds)
    for s in shards:
        ids = {b.id for b in s.builds}
        assert all(b.partition("-cross-")[0] in ids for b in ids), s.shard
    # shards split the native compiles: as many of them as shards, no shard is idle
    if n <= len([b for b in full.builds if "-cross-" not in b.id]):
        assert all(s.images for s in shards)


def test_shard_and_only_combine(repo_loaded: Loaded, repo_lock: Lock) -> None:
    only = ["3.13-*"]
    selected = {i.id for i in _plan(repo_loaded, repo_lock, only=only).images}
    halves = [_plan(repo_loaded, repo_lock, only=only, shard=f"{i}/2") for i in (1, 2)]
    ids = [i.id for h in halves for i in h.images]
    assert sorted(ids) == sorted(selected)
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0/2", "--shard 0/2: I must be between 1 and N"),
        ("3/2", "--shard 3/2: I must be between 1 and N"),
        ("1/0", "--shard 1/0: I must be between 1 and N"),
        ("2", "--shard 2: expected I/N, e.g. 2/4"),
        ("a/b", "--shard a/b: expected I/N, e.g. 2/4"),
    ],
)
def test_bad_shard(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        plan.parse_shard(text)
    assert str(info.value) == message


def test_only_filters(repo_loaded: Loaded, repo_lock: Lock) -> None:
    p = _plan(repo_loaded, repo_lock, only=["3.13-*-bookworm-*", "3.14-deadsnakes-noble-runtime"])
    assert [i.id for i in p.images] == [
        "3.13-python-build-bookworm-dev",
        "3.13-python-build-bookworm-runtime",
        "3.13-source-bookworm-dev",
        "3.13-source-bookworm-runtime",
        "3.14-deadsnakes-noble-runtime",
    ]
    assert [b.id for b in p.builds] == ["bookworm/python-3.13-python-build", "bookworm/python-3.13-source",
                                        "bookworm/python-3.13-source-cross-arm64"]
    with pytest.raises(UsageError, match="matches no cell"):
        _plan(repo_loaded, repo_lock, only=["3.13-*-sid-*"])


def test_profile(repo_loaded: Loaded, repo_lock: Lock) -> None:
    assert _plan(repo_loaded, repo_lock, profile="fast").profile == "fast"
    with pytest.raises(UsageError, match=r"--profile turbo: no such profile in images.yaml "
                       r"\(profiles:\); use one of: release, fast$"):
        _plan(repo_loaded, repo_lock, profile="turbo")


def test_plan_command(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(REPO / "images.yaml")
    code, out, _ = run_cli(["plan", "--config", cfg, "--json", "--only", "3.12-*", "--shard", "2/3"], capsys)
    assert code == 0
    p = _from_json(out)
    assert p.shard == "2/3"
    assert p.images and all(i.python == "3.12" for i in p.images)
    code, out, _ = run_cli(["plan", "--config", cfg], capsys)
    assert code == 0
    assert out.splitlines()[-1] == "30 images, 25 CPython builds, profile release, shard 1/1"
    code, _, err = run_cli(["plan", "--config", cfg, "--shard", "5/4"], capsys)
    assert code == 2
    assert err.splitlines()[-1] == "error: --shard 5/4: I must be between 1 and N"


# --------------------------------------------------------------------------- platforms


def test_python_build_cells_get_the_native_platform_only(
    repo_loaded: Loaded, repo_lock: Lock
) -> None:
    """python-build cannot cross-compile: its images are built for build.native_platform only;
    source and deadsnakes images for every platform."""
    cfg = repo_loaded.config
    assert cfg.platforms == BOTH_PLATFORMS
    assert cfg.build.native_platform == "linux/amd64"
    p = _plan(repo_loaded, repo_lock)
    assert {i.method for i in p.images} == {"source", "python-build", "deadsnakes"}
    for i in p.images:
        expected = ("linux/amd64",) if i.method == "python-build" else BOTH_PLATFORMS
        assert i.platforms == expected, i.id
        assert plan.platforms_for(cfg, i.cell) == expected, i.id
    # and so no cross compile
    assert not [b.id for b in p.builds if b.method == "python-build" and "-cross-" in b.id]


def _both_methods_on_bookworm(tmp_path: Path) -> Path:
    """The repo's images.yaml with python-build among bookworm's methods (not an include)."""
    text = (REPO / "images.yaml").read_text()
    text = edit(text, "    eol: 2028-06-30             # end of Debian LTS\n    methods: [source]\n",
                "    eol: 2028-06-30\n    methods: [source, python-build]\n")
    text = edit(text, "include:                        # one pyenv python-build image, for teams that "
                "want pyenv parity\n  - {distro: bookworm, python: \"3.13\", method: python-build}\n", "")
    (tmp_path / "images.lock").write_bytes((REPO / "images.lock").read_bytes())
    return write_config(tmp_path, text)


def test_validate_warns_once_that_python_build_cells_stay_native(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _both_methods_on_bookworm(tmp_path)
    warning = (f"{path}: distros.bookworm.methods: python-build cannot cross-compile: its images on "
               "bookworm are built for linux/amd64 only (use method source for linux/arm64)")
    loaded = loader.load(path, today=TODAY)
    assert loaded.warnings == (warning,)
    code, out, err = run_cli(["validate", "--config", str(path)], capsys)
    assert code == 0
    # + the lock's 5 (4 base digests and pyenv's sha256 are not pinned in the repo lock)
    assert out == f"{path}: OK ({len(matrix.expand(loaded.config))} images, 6 warnings)\n"
    warned = [line for line in err.splitlines() if "cross-compile" in line]
    assert len(warned) == 1 and warned[0].endswith(warning)
    # the plan agrees: every python-build image of bookworm is amd64 only
    p = plan.build(loaded, lockfile.read(loaded), today=TODAY)
    pybuild = [i for i in p.images if i.method == "python-build"]
    assert pybuild and all(i.platforms == ("linux/amd64",) for i in pybuild)
    # one platform: nothing to warn about
    path.write_text(edit(path.read_text(), "platforms: [linux/amd64, linux/arm64]\n",
                         "platforms: [linux/amd64]\n"))
    assert loader.load(path, today=TODAY).warnings == ()


def test_validate_warns_for_python_build_cells_from_include_too(repo_loaded: Loaded) -> None:
    assert any("python-build cannot cross-compile" in w for w in repo_loaded.warnings)


def test_optimizations_per_platform(repo_loaded: Loaded, repo_lock: Lock) -> None:
    """What each platform's compile was built with: the cross compile cannot run PGO."""
    release = {i.id: i for i in _plan(repo_loaded, repo_lock, profile="release").images}
    fast = {i.id: i for i in _plan(repo_loaded, repo_lock, profile="fast").images}
    for image_id, i in release.items():
        if i.method == "source":
            assert i.optimizations == {"linux/amd64": "pgo+lto", "linux/arm64": "lto"}, image_id
            assert fast[image_id].optimizations == {"linux/amd64": "none", "linux/arm64": "none"}
        elif i.method == "python-build":
            assert i.optimizations == {"linux/amd64": "pgo+lto"}, image_id
            assert fast[image_id].optimizations == {"linux/amd64": "none"}
        else:  # deadsnakes: not our compile
            assert i.optimizations is None and fast[image_id].optimizations is None, image_id

"""pythons[].freethreaded (issue 18): the free-threaded build of a minor as cells of their own
(minor "3.13t"): their own compile and build id, the t ABI in the stages, tags, validation."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from orchestrator import naming, render
from orchestrator.config import loader, matrix
from orchestrator.config.matrix import Cell
from orchestrator.config.model import Loaded
from orchestrator.errors import ConfigError
from orchestrator.lock import lockfile
from orchestrator.planning import plan
from orchestrator.smoke import suite
from orchestrator.versions.python_entries import retire_python_text
from tests.unit.helpers import FIXTURES, REPO, TODAY, edit, line_of, write_config

FT = ('  - version: "3.13"\n', '  - version: "3.13"\n    freethreaded: true\n')
NO_FT_DEADSNAKES = ("exclude:\n", 'exclude:\n  - {python: "3.13t", method: deadsnakes}\n')


def _repo_copy(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """The organisation's images.yaml and images.lock, with each (old, new) text edit made."""
    for name in ("images.yaml", "images.lock"):
        shutil.copy2(REPO / name, tmp_path / name)
    cfg = tmp_path / "images.yaml"
    text = cfg.read_text()
    for old, new in edits:
        text = edit(text, old, new)
    cfg.write_text(text)
    return cfg


def _load(path: Path) -> Loaded:
    return loader.load(path, today=TODAY)


@pytest.fixture
def ft(tmp_path: Path) -> tuple[Loaded, lockfile.Lock]:
    loaded = _load(_repo_copy(tmp_path, FT, NO_FT_DEADSNAKES))
    return loaded, lockfile.read(loaded)


# --------------------------------------------------------------------------- matrix and tags


def test_minor_helpers_and_order() -> None:
    assert matrix.base_minor("3.13t") == matrix.base_minor("3.13") == "3.13"
    assert matrix.is_freethreaded("3.14t") and not matrix.is_freethreaded("3.14")
    assert sorted(["3.14", "3.13t", "3.9", "3.13", "3.14t"], key=matrix.minor_key) == [
        "3.9", "3.13", "3.13t", "3.14", "3.14t"]
    c = Cell("3.13t", "source", "bookworm", "runtime")
    assert (c.id, c.base_minor, c.freethreaded, c.target) == (
        "3.13t-source-bookworm-runtime", "3.13", True, "runtime-3.13t-source")
    assert naming.parse_stage("python-3.13t-source-cross-arm64") == naming.Stage(
        "python-cross", "3.13t", "source", "arm64")
    assert naming.native_build_id("bookworm/python-3.13t-source-cross-arm64") == \
        "bookworm/python-3.13t-source"


def test_freethreaded_adds_cells_of_every_method_but_the_excluded(
        ft: tuple[Loaded, lockfile.Lock]) -> None:
    loaded, _ = ft
    cells = matrix.expand(loaded.config)
    ft_cells = [c for c in cells if c.freethreaded]
    assert {c.id for c in ft_cells} == {f"3.13t-source-{d}-{v}" for d in
                                        ("bookworm", "noble", "resolute", "trixie")
                                        for v in ("runtime", "dev")}
    # the include rule names 3.13: it adds 3.13's python-build cell, not a 3.13t one
    assert Cell("3.13", "python-build", "bookworm", "runtime") in cells
    assert matrix.python_minors(loaded.config) == ["3.12", "3.13", "3.13t", "3.14"]
    assert [c.minor for c in cells] == sorted((c.minor for c in cells), key=matrix.minor_key)


def test_tags_carry_the_t_and_never_collide(ft: tuple[Loaded, lockfile.Lock]) -> None:
    loaded, lock = ft
    p = plan.build(loaded, lock, today=TODAY)
    img = p.image("3.13t-source-bookworm-runtime")
    version = lock.python("3.13").version
    assert img.version == version and img.python == "3.13t" and img.freethreaded
    assert img.base_minor == "3.13"
    assert img.tags == ("3.13t-runtime", "3.13t-runtime-bookworm", f"{version}t-runtime-bookworm")
    assert img.immutable_tag == f"{version}t.20261121-runtime-bookworm"
    assert p.image("3.13t-source-noble-dev").tags == ("3.13t-dev-noble", f"{version}t-dev-noble")
    gil = p.image("3.13-source-bookworm-runtime")
    assert not gil.freethreaded and "3.13-runtime" in gil.tags
    tags = [t for i in p.images for t in (*i.tags, i.immutable_tag)]
    assert len(tags) == len(set(tags))


def test_a_compile_of_its_own_counted_and_shown(ft: tuple[Loaded, lockfile.Lock]) -> None:
    loaded, lock = ft
    p = plan.build(loaded, lock, today=TODAY)
    base = plan.build(_load(REPO / "images.yaml"), lock, today=TODAY)
    ids = {b.id for b in p.builds}
    assert {"bookworm/python-3.13t-source", "bookworm/python-3.13t-source-cross-arm64"} <= ids
    assert len(p.builds) == len(base.builds) + 8  # native + arm64 cross on each of 4 distros
    assert p.image("3.13t-source-bookworm-dev").build == "bookworm/python-3.13t-source"
    assert p.image("3.13t-source-bookworm-runtime").python_eol_days == \
        p.image("3.13-source-bookworm-runtime").python_eol_days
    assert p.table().splitlines()[-1] == \
        "38 images (8 free-threaded), 33 CPython builds, profile release, shard 1/1"
    row = next(r for r in p.table().splitlines() if r.startswith("3.13t-source-bookworm-runtime "))
    assert row.split()[1:4] == [lock.python("3.13").version, "bookworm/python-3.13t-source",
                                "amd64,arm64"]
    assert '"freethreaded": true' in p.to_json()
    assert lockfile.compiled_minors(loaded.config) == {"3.12", "3.13", "3.14"}


# --------------------------------------------------------------------------- rendering


def test_the_free_threaded_stages(ft: tuple[Loaded, lockfile.Lock]) -> None:
    loaded, lock = ft
    text = render.render_all(loaded, lock)[Path("bookworm/Dockerfile")].decode()
    runs = {m.group(1): m.group(0) for m in re.finditer(
        r"^FROM \S+ AS (\S+)\n(?:(?!^FROM ).*\n)*", text, re.MULTILINE)}
    compile_ = runs["python-3.13t-source"]
    assert "--prefix=/opt/org/python/3.13t" in compile_ and " --disable-gil " in compile_
    assert "--disable-gil" not in runs["python-3.13-source"]
    assert "--disable-gil" not in runs["python-3.13-python-build"]
    cross = runs["python-3.13t-source-cross-arm64"]
    assert "--with-build-python=/opt/build-python/bin/python3.13t" in cross
    assert "--disable-gil" in cross and "readelf --file-header /opt/org/python/3.13t/bin/python3.13t" in cross
    prep = runs["prep-3.13t-source"]
    assert "L=/opt/org/python/3.13t/lib/python3.13t " in prep
    assert '"$L"/config-3.13t-*/Makefile' in prep and '"$D"/lib/python3.13t/site-packages' in prep
    assert 'ln -sf python3.13t "$P"/bin/python3.13 ' in prep
    assert "ln -sf python3.13t" not in runs["prep-3.13-source"]
    assert "COPY --link --from=tree-3.13t-source / /" in runs["runtime-3.13t-source"]
    assert 'PATH="/opt/org/python/3.13t/bin:' in runs["runtime-3.13t-source"]
    assert "COPY --link --from=devtree-3.13t-source / /" in runs["dev-3.13t-source"]


def test_python_build_builds_it_through_its_configure_options(tmp_path: Path) -> None:
    loaded = _load(_repo_copy(tmp_path, FT, NO_FT_DEADSNAKES, (
        "  - {distro: bookworm, python: \"3.13\", method: python-build}\n",
        "  - {distro: bookworm, python: \"3.13\", method: python-build}\n"
        "  - {distro: bookworm, python: \"3.13t\", method: python-build}\n")))
    lock = lockfile.read(loaded)
    text = render.render_all(loaded, lock)[Path("bookworm/Dockerfile")].decode()
    body = text.split("AS python-3.13t-python-build\n", 1)[1].split("\nFROM ", 1)[0]
    assert "verify_py313 ensurepip" in body  # pyenv's check of the 3.13 line
    assert re.search(r'PYTHON_CONFIGURE_OPTS="[^"]* --disable-gil[ "]', body)
    # --keep: the build tree stays for the PGO check (removed by the same RUN after it)
    assert re.search(r"/usr/src/pyenv/plugins/python-build/bin/python-build --verbose (--keep )?"
                     rf"/usr/src/defs/{re.escape(lock.python('3.13').version)} /opt/org/python/3.13t ",
                     body)
    p = plan.build(loaded, lock, today=TODAY)
    assert p.image("3.13t-python-build-bookworm-runtime").tags[:2] == (
        "3.13t-runtime-bookworm-pybuild", f"{lock.python('3.13').version}t-runtime-bookworm-pybuild")


def test_the_org_matrix_renders_unchanged_without_the_flag() -> None:
    loaded = _load(REPO / "images.yaml")
    files = render.render_all(loaded, lockfile.read(loaded))
    assert render.check(loaded, files) == []
    assert not any("3.13t" in data.decode() for data in files.values())


# --------------------------------------------------------------------------- validation


def _error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _load(path)
    return info.value


def test_refused_before_3_13(tmp_path: Path) -> None:
    text = (FIXTURES / "minimal.yaml").read_text()
    text = edit(text, '  - version: "3.12"\n', '  - version: "3.12"\n    freethreaded: true\n')
    path = write_config(tmp_path, text)
    err = _error(path)
    assert str(err) == (f"{path}:{line_of(text, 'freethreaded')}: pythons[0].freethreaded: Python 3.12 "
                        "has no free-threaded build (configure --disable-gil is 3.13+); remove "
                        "freethreaded from this entry or set it on 3.13 or later")


def test_refused_for_deadsnakes_with_the_exclude_to_add(tmp_path: Path) -> None:
    path = _repo_copy(tmp_path, FT)
    err = _error(path)
    assert err.key == "pythons[1].freethreaded"
    assert err.line == line_of(path.read_text(), "freethreaded: true")
    assert "3.13t-deadsnakes-noble-dev: the deadsnakes PPA ships its free-threaded build as " \
           "python3.13-nogil" in err.problem
    assert err.fix.startswith('add exclude: [{python: "3.13t", method: deadsnakes}]')
    assert "\n" not in str(err)


def test_a_rule_naming_3_13t_needs_the_flag(tmp_path: Path) -> None:
    path = _repo_copy(tmp_path, NO_FT_DEADSNAKES)
    err = _error(path)
    assert (err.key, err.problem) == ("exclude[0].python", 'Python "3.13t" is not in pythons')
    assert err.fix == "set freethreaded: true on pythons[1] (3.13) or name the cells of 3.13"


def test_the_schema_documents_the_flag() -> None:
    schema = (REPO / "images.schema.json").read_text()
    assert '"freethreaded"' in schema and "--disable-gil" in schema


def test_retire_python_drops_the_rules_of_its_free_threaded_cells() -> None:
    text = (REPO / "images.yaml").read_text()
    text = edit(text, *FT)
    text = edit(text, *NO_FT_DEADSNAKES)
    new, notes = retire_python_text(text, "3.13")
    assert "3.13t" not in new and 'python: "3.13"' not in new
    assert 'exclude -= {python: "3.13t", method: deadsnakes}' in notes


# --------------------------------------------------------------------------- smoke tests


def test_smoke_checks_the_gil_is_off_in_free_threaded_images_only(
        ft: tuple[Loaded, lockfile.Lock]) -> None:
    loaded, lock = ft
    p = plan.build(loaded, lock, today=TODAY)
    for img in p.images:
        if img.distro != "bookworm" or img.method != "source":
            continue
        checks = {c.name: c for c in suite.checks_for(img, uid=10001, prefix="/p", tls_host="x")}
        assert ("free-threaded" in checks) == img.freethreaded, img.id
        version = checks["python-version"].expect
        assert version(0, f"Python {img.version}\n") is None
        assert version(0, "Python 3.12.1\n") is not None
        if img.freethreaded:  # python3 -c <the script> <every stdlib module of the variant>
            argv = checks["free-threaded"].argv
            if img.has_shell:
                assert argv.pop(0) == "python3", img.id
            assert argv[:2] == ["-c", suite.snippet("free_threaded.py")], img.id
            dev = suite.DEV_STDLIB if img.variant in ("dev", "minimal") else []
            assert argv[2:] == suite.STDLIB + dev, img.id
    script = suite.snippet("free_threaded.py")
    assert "sys._is_gil_enabled()" in script and 'get_config_var("Py_GIL_DISABLED") == 1' in script

"""add-python / retire-python / lock for a minor only the deadsnakes PPA builds, on a copy of
tests/e2e/images.yaml (3.12: deadsnakes on noble only, its other methods excluded).

No network: the e2e's CPython mirror is a fake (``FakePythonOrg`` at sources.python, without any
3.12 release, as the host's mirror) and base digests come from a fake registry.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path
from typing import Any, cast

import pytest

from orchestrator import cli, log, render, versions
from orchestrator.config import loader
from orchestrator.errors import SourceError, UsageError
from orchestrator.lock import lockfile, sources
from orchestrator.lock.lockfile import Lock
from orchestrator.lock.sources import PythonOrgIndex
from tests.unit.helpers import REPO, TODAY, edit, run_cli
from tests.unit.test_versions import KEY_BYTES, FakePythonOrg, _refusal, fake_index_for, snapshot

E2E = REPO / "tests" / "e2e" / "images.yaml"
MIRROR = "http://127.0.0.1:8700/ftp/python/"  # the e2e's sources.python
PYENV = "http://127.0.0.1:8700/pyenv/pyenv-2.6.30.tar.gz"
# what the host's mirror carries: the pinned 3.14.4 and 3.13.15, no 3.12 at all
MIRROR_RELEASES = {"3.13.15": ["Python-3.13.15.tar.xz", "Python-3.13.15.tar.xz.asc"],
                   "3.14.4": ["Python-3.14.4.tar.xz"]}


class Mirror(FakePythonOrg):
    """The e2e mirror: CPython releases, their keys, pyenv's tarball."""

    def __call__(self, url: str) -> bytes:
        if url == PYENV:
            self.requests.append(url)
            return b"fake pyenv tarball\n"
        if url.startswith(f"{MIRROR}keys/"):
            self.requests.append(url)
            return KEY_BYTES
        return super().__call__(url)


@pytest.fixture(autouse=True)
def _log_to_this_tests_stderr() -> None:
    log.configure("console")


class Digests:
    def digest(self, repo: str, tag: str) -> str:
        return "sha256:" + hashlib.sha256(f"{repo}:{tag}".encode()).hexdigest()


def _write_lock(path: Path, mirror: Mirror) -> Lock:
    loaded = loader.load(path, TODAY)
    new, _changes = sources.update(
        loaded, Lock(), upgrade=False, only=None,
        index=PythonOrgIndex(MIRROR, loaded.config.sources.python_keys, mirror),
        registry_for=lambda host: cast(Any, Digests()), fetch=mirror)
    lockfile.write(loaded, new)
    render.write(loaded, render.render_all(loaded, new))
    return new


@pytest.fixture
def mirror() -> Mirror:
    return Mirror(MIRROR, dict(MIRROR_RELEASES))


@pytest.fixture
def e2e(tmp_path: Path, mirror: Mirror) -> Path:
    """A copy of the e2e matrix, locked (through the real `lock` code) and rendered."""
    shutil.copy(E2E, tmp_path / "images.yaml")
    _write_lock(tmp_path / "images.yaml", mirror)
    mirror.requests.clear()
    return tmp_path / "images.yaml"


@pytest.fixture
def cli_mirror(monkeypatch: pytest.MonkeyPatch, mirror: Mirror) -> Mirror:
    from orchestrator.cli import python_cmds

    monkeypatch.setattr(python_cmds, "_index_for", lambda args: fake_index_for(mirror))
    return mirror


def _no_fetch(url: str) -> bytes:
    raise AssertionError(f"fetched {url}: a deadsnakes-only minor needs no tarball")


def _lock_text(path: Path) -> str:
    return path.with_suffix(".lock").read_text()


# ====================================================================== lock


def test_lock_pins_no_tarball_for_the_deadsnakes_only_minor(tmp_path: Path, mirror: Mirror) -> None:
    shutil.copy(E2E, tmp_path / "images.yaml")
    lock = _write_lock(tmp_path / "images.yaml", mirror)
    assert sorted(lock.pythons) == ["3.13", "3.14"]
    assert lock.deadsnakes is not None and lock.deadsnakes.fingerprint == (
        "185F56993B9822610FFB408161A6241B8700AFBC")
    assert not [u for u in mirror.requests if "3.12" in u], mirror.requests
    # and `validate` (check_against) is happy without it
    lockfile.check_against(loader.load(tmp_path / "images.yaml", TODAY), lock)


def test_prune_drops_a_stale_entry_of_a_minor_nothing_compiles(e2e: Path) -> None:
    loaded = loader.load(e2e, TODAY)
    lock = lockfile.read(loaded)
    stale = Lock({**lock.pythons, "3.12": lock.pythons["3.13"]}, lock.bases, lock.pyenv, lock.deadsnakes)
    assert sorted(lockfile.prune(loaded.config, stale).pythons) == ["3.13", "3.14"]


# ====================================================================== retire, then add


def test_retire_says_how_to_add_the_minor_back(e2e: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["retire-python", "3.12", "--config", str(e2e)], capsys)
    assert code == 0, err
    assert (f"  {e2e}: to add 3.12 back with the same methods: orchestrator add-python 3.12 "
            "--method deadsnakes (the comments of the removed lines are not restored)") in out.splitlines()
    cfg = loader.load(e2e, TODAY).config
    assert [p.version for p in cfg.pythons] == ["3.14.4", "3.13.15"] and "3.12" not in cfg.tags.defaults
    assert [r for r in cfg.exclude if r.python == "3.12"] == []


def test_retire_then_add_with_method_deadsnakes_round_trips_without_a_tarball(
    e2e: Path, cli_mirror: Mirror, capsys: pytest.CaptureFixture[str]
) -> None:
    original, original_lock = e2e.read_text(), _lock_text(e2e)
    original_generated = snapshot(e2e.parent / "generated")
    assert run_cli(["retire-python", "3.12", "--config", str(e2e)], capsys)[0] == 0
    retired_lock = _lock_text(e2e)
    code, out, err = run_cli(["add-python", "3.12", "--method", "deadsnakes", "--config", str(e2e)], capsys)
    assert code == 0, err
    assert cli_mirror.requests == [], "a deadsnakes-only minor needs nothing from sources.python"
    back = e2e.read_text()
    # byte for byte but the three comments retire-python removed with their lines
    no_comments = [re.sub(r"\s+#.*", "", line) for line in original.splitlines(keepends=True)]
    assert back.splitlines(keepends=True) == [
        line if not line.startswith(("  - version: \"3.12\"", "  defaults:", '    "3.12"')) else nc
        for line, nc in zip(original.splitlines(keepends=True), no_comments, strict=True)]
    assert back != original  # (so the assertion above compared something)
    assert _lock_text(e2e) == retired_lock == original_lock  # no pythons entry for 3.12
    assert snapshot(e2e.parent / "generated") == original_generated
    lines = out.splitlines()
    assert f'  {e2e}: exclude += {{python: "3.12", method: source}} (--method deadsnakes)' in lines
    assert f'  {e2e}: exclude += {{python: "3.12", method: python-build}} (--method deadsnakes)' in lines
    assert (f'  {e2e}: tags.defaults += "3.12": {{distro: noble, method: deadsnakes}} '
            "(the only distro/method with 3.12: its short tags)") in lines
    assert (f"  {e2e}: no tarball locked: no cell compiles 3.12 (3.12-deadsnakes-noble-*: the "
            "deadsnakes PPA's packages)") in lines
    assert "plan: +2 image(s), -0 image(s); moving tags +4, -0" in lines
    assert not any("sha256" in line for line in lines)


def test_deadsnakes_only_add_fetches_nothing(e2e: Path) -> None:
    retired, _ = versions.retire_python_text(e2e.read_text(), "3.12")
    e2e.write_text(retired)
    p = versions.propose_add(e2e, "3.12", lambda cfg: PythonOrgIndex(MIRROR, "", _no_fetch), TODAY,
                             ("deadsnakes",))
    assert p.python is None and "3.12" not in p.lock.pythons
    assert {i.id for i in p.diff.added} == {"3.12-deadsnakes-noble-runtime", "3.12-deadsnakes-noble-dev"}
    assert "3.12-runtime" in p.diff.tags_added


def test_plain_add_after_retire_compiles_the_minor_so_needs_the_tarball(
    e2e: Path, cli_mirror: Mirror, capsys: pytest.CaptureFixture[str]
) -> None:
    """retire-python dropped the rules that kept 3.12 off source/python-build: without them
    the new minor compiles, the mirror has no 3.12, and the refusal says how to get it back."""
    assert run_cli(["retire-python", "3.12", "--config", str(e2e)], capsys)[0] == 0
    line = _refusal(["add-python", "3.12", "--config", str(e2e)], capsys, e2e.parent)
    assert line == (
        f"error: Python 3.12 is not released at {MIRROR} (sources.python): no 3.12.x release there; "
        "needed by 3.12-python-build-bookworm-*, 3.12-source-bookworm-*, 3.12-source-resolute-*, "
        "3.12-source-trixie-* (to build 3.12 with deadsnakes only: add-python 3.12 --method deadsnakes)")
    assert cli_mirror.requests == [MIRROR]


def test_a_compiled_minor_still_requires_the_tarball(e2e: Path, mirror: Mirror) -> None:
    retired, _ = versions.retire_python_text(e2e.read_text(), "3.12")
    e2e.write_text(retired)
    with pytest.raises(UsageError, match=r"^Python 3.12 is not released at .*no 3.12.x release there$"):
        versions.propose_add(e2e, "3.12", fake_index_for(mirror), TODAY, ("source",))
    mirror.releases["3.12.13"] = ["Python-3.12.13.tar.xz", "Python-3.12.13.tar.xz.asc"]
    p = versions.propose_add(e2e, "3.12", fake_index_for(mirror), TODAY, ("source",))
    assert p.python is not None and p.lock.pythons["3.12"] == p.python
    assert p.python.url == f"{MIRROR}3.12.13/Python-3.12.13.tar.xz"
    assert p.python.url in mirror.requests  # the tarball itself was fetched and hashed
    assert {i.id.split("-")[1] for i in p.diff.added} == {"source"}


def test_source_down_for_a_deadsnakes_only_add_does_not_matter(e2e: Path) -> None:
    def down(url: str) -> bytes:
        raise SourceError(f"cannot fetch {url}: [Errno 111] Connection refused")

    retired, _ = versions.retire_python_text(e2e.read_text(), "3.12")
    e2e.write_text(retired)
    p = versions.propose_add(e2e, "3.12", fake_index_for(cast(Any, down)), TODAY, ("deadsnakes",))
    assert p.python is None


# ====================================================================== refusals


def test_method_no_distro_offers_is_refused(
    e2e: Path, cli_mirror: Mirror, capsys: pytest.CaptureFixture[str]
) -> None:
    retired, _ = versions.retire_python_text(e2e.read_text(), "3.12")
    e2e.write_text(edit(retired, "    methods: [deadsnakes]\n", "    methods: [source]\n"))
    assert _refusal(["add-python", "3.12", "--method", "deadsnakes", "--config", str(e2e)],
                    capsys, e2e.parent) == (
        f"error: --method deadsnakes: no distro of {e2e} builds Python 3.12 with deadsnakes "
        "(distros.<name>.methods, include); methods it would have: source, python-build")
    assert cli_mirror.requests == []


def test_a_minor_no_method_left_can_build_is_refused(
    e2e: Path, cli_mirror: Mirror, capsys: pytest.CaptureFixture[str]
) -> None:
    """noble ships 3.12 itself (system_python), so the PPA does not publish it there: with the
    other methods excluded, nothing is left to build 3.12."""
    retired, _ = versions.retire_python_text(e2e.read_text(), "3.12")
    e2e.write_text(edit(retired, "    methods: [deadsnakes]\n",
                        '    methods: [deadsnakes]\n    system_python: "3.12"\n'))
    assert _refusal(["add-python", "3.12", "--method", "deadsnakes", "--config", str(e2e)],
                    capsys, e2e.parent) == (
        f"error: Python 3.12 would have no image in {e2e}: no distro builds it with the methods "
        "left (source, python-build, deadsnakes) once exclude rules apply; add a distro or method "
        "that can build it (distros.<name>.methods, include) first")
    assert cli_mirror.requests == []


def test_method_is_checked_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.parser().parse_args(["add-python", "3.12", "--method", "ppa"])
    assert exit_.value.code == 2 and "argument --method: invalid choice: 'ppa'" in capsys.readouterr().err
    args = cli.parser().parse_args(["add-python", "3.12", "--method", "deadsnakes", "--method", "source"])
    assert args.method == ["deadsnakes", "source"]

"""Hostile files (issue 12): unreadable or odd files, alias bombs, corrupt or foreign images.lock,
a bad SOURCE_DATE_EPOCH: one line each, exit 2, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator import settings
from orchestrator.config import loader
from orchestrator.errors import ConfigError, UsageError
from orchestrator.lock import lockfile
from tests.unit.helpers import REPO, TODAY, run_cli

FIX = "pass --config PATH or create it"
UTF8 = "save it as UTF-8 (without a byte order mark)"
BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9 if prev else ['lol'] * 9)}]\n"
    for prev, name in zip(["", "a", "b", "c", "d", "e", "f", "g", "h"], "abcdefghi", strict=True)
)


def _refused(path: Path | str) -> str:
    with pytest.raises(ConfigError) as info:
        loader.load(path, today=TODAY)
    return str(info.value)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "images.yaml"
    path.write_bytes(b"schema_version: 1\npublish: caf\xe9\n")
    assert _refused(path) == f"{path}:2: is not UTF-8 (byte 0xe9); {UTF8}"


def test_utf16(tmp_path: Path, minimal_text: str) -> None:
    path = tmp_path / "images.yaml"
    path.write_bytes(minimal_text.encode("utf-16"))
    assert _refused(path) == f"{path}: is UTF-16 (or UTF-32) text, not UTF-8; {UTF8}"


def test_binary(tmp_path: Path) -> None:
    path = tmp_path / "images.yaml"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00")
    assert _refused(path) == f"{path}: is a binary file, not YAML text; give the YAML file"


def test_utf8_bom_is_fine(tmp_path: Path, minimal_text: str) -> None:
    path = tmp_path / "images.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + minimal_text.encode())
    assert loader.load(path, today=TODAY).config.schema_version == 1


def test_config_is_a_directory_or_empty(tmp_path: Path) -> None:
    assert _refused(tmp_path) == f"{tmp_path}: is a directory, not a file; {FIX}"
    assert _refused(".") == f".: is a directory, not a file; {FIX}"
    assert _refused("") == "--config '': the path is empty; pass --config PATH (e.g. images.yaml)"


def test_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    assert _refused(tmp_path / "a.yaml") == f"{tmp_path / 'a.yaml'}: cannot be read (a symlink loop); {FIX}"


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "images.yaml"
    path.write_text(BOMB)
    assert len(BOMB.splitlines()) == 9
    start = time.monotonic()
    assert _refused(path) == (f"{path}:6: YAML aliases expand to more than 100000 nodes (an alias bomb?); "
                              "write the values out or use fewer nested aliases")
    assert time.monotonic() - start < 2


def test_the_repo_matrices_use_aliases_within_the_bound() -> None:
    for rel in ("images.yaml", "tests/e2e/images.yaml"):
        loader.load(REPO / rel, today=TODAY)


@pytest.mark.spawns("python")
@pytest.mark.parametrize("argv", [["--config", "."], ["--config", ""]], ids=["dot", "empty"])
def test_cli_without_traceback(tmp_path: Path, argv: list[str]) -> None:
    env = {**os.environ, "ORCH_DATE": "20261121", "ORCH_LOG_FORMAT": "console"}
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "validate", *argv], capture_output=True,
                          text=True, env=env, cwd=tmp_path, check=False, timeout=100)
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- images.lock


def _repo_copy(tmp_path: Path) -> Path:
    for name in ("images.yaml", "images.lock"):
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path / "images.yaml"


REGEN = "from the lock and run `orchestrator lock` (it fills in what is missing)"
LOCK_CASES = [
    ("sha256-abc123", "sha256: c08bc65a81971c1dd5783182826503369466c7e67374d1646519adf05207b684",
     "sha256: abc123", "sha256: abc123",
     "pythons.3.12.sha256: 'abc123' is not a sha256 (64 lowercase hex digits); remove pythons.3.12 " + REGEN),
    ("sha256-newline", "sha256: c08bc65a81971c1dd5783182826503369466c7e67374d1646519adf05207b684",
     'sha256: "c08bc65a\\nRUN id"', "sha256: \"c08bc65a",
     "pythons.3.12.sha256: 'c08bc65a\\nRUN id' is not a sha256 (64 lowercase hex digits); remove "
     "pythons.3.12 " + REGEN),
    ("version-of-another-minor", "version: 3.13.13", "version: 3.12.9", "version: 3.12.9",
     "pythons.3.13.version: 3.12.9 is not a 3.13 release; remove pythons.3.13 " + REGEN),
    ("digest-latest", "    image: docker.io/library/debian:bookworm-slim\n",
     "    image: docker.io/library/debian:bookworm-slim\n    digest: latest\n", "digest: latest",
     "bases.bookworm.digest: 'latest' is not a digest (sha256: and 64 hex digits); remove bases.bookworm "
     + REGEN),
    ("entry-not-a-mapping", "  bookworm:\n    image: docker.io/library/debian:bookworm-slim\n",
     "  bookworm: x\n", "bookworm: x",
     "bases.bookworm: expected a mapping, found text; remove bases.bookworm " + REGEN),
    ("unknown-key", "bases:\n", "colour: blue\nbases:\n", "colour:",
     "colour: unknown key; remove it (images.lock has schema_version, pythons, bases, pyenv, deadsnakes)"),
]


@pytest.mark.parametrize(("old", "new", "needle", "message"), [c[1:] for c in LOCK_CASES],
                         ids=[c[0] for c in LOCK_CASES])
def test_corrupt_lock_is_one_line_with_a_key_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, needle: str, message: str
) -> None:
    cfg = _repo_copy(tmp_path)
    lock = tmp_path / "images.lock"
    text = lock.read_text()
    assert text.count(old) == 1
    text = text.replace(old, new)
    lock.write_text(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if needle in t)
    for command in ("validate", "plan", "render"):
        code, out, err = run_cli([command, "--config", str(cfg)], capsys)
        assert (code, out) == (2, "")
        assert err.splitlines()[-1] == f"error: {lock}:{line}: {message}"
        assert sum(1 for e in err.splitlines() if e.startswith("error:")) == 1


@pytest.mark.parametrize(("text", "message"), [
    ("name: my-app\nversion: 2\nservices: {}\n",
     ":1: name: unknown key: this is not an images.lock (it has none of schema_version, pythons, bases, "
     "pyenv, deadsnakes); move it aside and run `orchestrator lock`"),
    ("- a\n- b\n", ": expected a mapping at the top level, found a list (not an images.lock?); "
                   "move it aside and run `orchestrator lock`"),
], ids=["foreign", "a-list"])
def test_foreign_lock(tmp_path: Path, text: str, message: str) -> None:
    cfg = _repo_copy(tmp_path)
    (tmp_path / "images.lock").write_text(text)
    with pytest.raises(ConfigError) as info:
        lockfile.read(loader.load(cfg, today=TODAY))
    assert str(info.value) == f"{tmp_path / 'images.lock'}{message}"


def test_lock_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _repo_copy(tmp_path)
    (tmp_path / "images.lock").unlink()
    (tmp_path / "images.lock").mkdir()
    code, _, err = run_cli(["render", "--config", str(cfg)], capsys)
    assert code == 2
    # the repo matrix's one warning (its python-build cell stays amd64) comes first
    assert err.splitlines()[-1] == (f"error: {tmp_path / 'images.lock'}: is a directory, not a file; "
                                    "move it aside and run `orchestrator lock`")
    assert all("warning" in line for line in err.splitlines()[:-1])


def test_validate_without_a_lock_says_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _repo_copy(tmp_path)
    (tmp_path / "images.lock").unlink()
    code, out, _ = run_cli(["validate", "--config", str(cfg)], capsys)
    assert code == 0
    assert "OK" not in out
    assert out == (f"{cfg}: valid (30 images, 1 warnings), but {tmp_path / 'images.lock'} is missing: "
                   f"run `orchestrator lock --config {cfg}` before plan, render or build\n")


def test_source_date_epoch_that_is_not_a_timestamp() -> None:
    with pytest.raises(UsageError) as info:
        settings.Settings.from_environ({"SOURCE_DATE_EPOCH": "yesterday"})
    assert str(info.value) == ("environment: SOURCE_DATE_EPOCH='yesterday' is not a Unix timestamp; set it "
                               "to seconds since 1970 (e.g. $(git log -1 --format=%ct)) or unset it")
    with pytest.raises(UsageError):
        settings.Settings.from_environ({"SOURCE_DATE_EPOCH": "9" * 30})

"""hostkit: pyenv tarball, registry lookups, summary, and the command line's one-line errors."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from hostkit import cli, matrix
from hostkit.common import E2E_MATRIX, REPO, HostEnv, HostkitError, Out
from hostkit.pyenv import PyenvTarball
from hostkit.summary import Summary
from orchestrator.registry import Registry, Response
from orchestrator.runner import Completed
from tests.fakes.fake_registry import FakeRegistry
from tests.unit.helpers import TODAY, edit
from tests.unit.hostkit_fakes import MATRIX, host_env

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"]


def _checkout(root: Path, version: str = "2.6.30", git: bool = True) -> None:
    (root / "libexec").mkdir(parents=True)
    script = root / "libexec" / "pyenv---version"
    script.write_text(f'#!/usr/bin/env bash\nset -e\nversion="{version}"\necho "pyenv $version"\n')
    script.chmod(0o755)
    (root / "README.md").write_text("pyenv\n")
    if git:
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "v"]):
            subprocess.run([*GIT, "-C", str(root), *args], check=True, capture_output=True, timeout=60)


def _pyenv(tmp_path: Path) -> tuple[PyenvTarball, io.StringIO]:
    text = io.StringIO()
    return PyenvTarball(host_env(tmp_path), matrix.load(MATRIX, TODAY), Out(text, text)), text


@pytest.mark.spawns("git", "gzip")
def test_pyenv_tarball_is_git_archive_gzip_n_and_idempotent(tmp_path: Path) -> None:
    _checkout(tmp_path / "pyenv")
    kit, text = _pyenv(tmp_path)
    dst = kit.update()
    assert dst == tmp_path / "mirror/pyenv/pyenv-2.6.30.tar.gz"
    tar = subprocess.run([*GIT, "-C", str(tmp_path / "pyenv"), "archive", "--format=tar",
                          "--prefix=pyenv-2.6.30/", "HEAD"], check=True, capture_output=True,
                         timeout=60).stdout
    assert dst.read_bytes() == subprocess.run(["gzip", "-n"], input=tar, check=True,
                                              capture_output=True, timeout=60).stdout
    assert (tmp_path / "mirror/SHA256SUMS").read_text().endswith("  pyenv/pyenv-2.6.30.tar.gz\n")
    assert "URL http://127.0.0.1:8700/pyenv/pyenv-2.6.30.tar.gz" in text.getvalue()
    kit, text = _pyenv(tmp_path)
    (tmp_path / "pyenv/README.md").write_text("changed, not committed\n")
    kit.update()
    out = text.getvalue()
    assert "skip: " in out and "pyenv-2.6.30.tar.gz present (git archive " in out
    assert "has uncommitted changes; the tarball contains HEAD only" in out
    assert "SHA256SUMS up to date" in out


@pytest.mark.spawns("git", "gzip", "tar")
def test_pyenv_tarball_without_git_is_reproducible(tmp_path: Path) -> None:
    _checkout(tmp_path / "pyenv", git=False)
    kit, text = _pyenv(tmp_path)
    first = kit.update().read_bytes()
    os.utime(tmp_path / "pyenv/README.md", (1, 1))
    kit.update()
    assert kit.update().read_bytes() == first
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = tar.getmembers()
    assert {m.name.split("/")[0] for m in members} == {"pyenv-2.6.30"}
    assert {(m.mtime, m.uid, m.gid) for m in members} == {(0, 0, 0)}
    assert "(tar of the working tree)" in text.getvalue()


@pytest.mark.spawns("git")
def test_pyenv_checkout_must_be_the_matrix_version(tmp_path: Path) -> None:
    _checkout(tmp_path / "pyenv", version="2.6.31")
    with pytest.raises(HostkitError, match=r"^pyenv checkout .*/pyenv is 2\.6\.31 but .*images\.yaml "
                       r"\(sources\.pyenv\.version\) wants 2\.6\.30; check out v2\.6\.30 there$"):
        _pyenv(tmp_path)[0].update()
    with pytest.raises(HostkitError, match=r"^pyenv checkout /nonexistent not found: "):
        PyenvTarball(host_env(tmp_path, pyenv_root=Path("/nonexistent")), matrix.load(MATRIX, TODAY),
                     Out(io.StringIO())).update()


class _Catalog(Registry):
    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                data: bytes | None = None, scope: str = "") -> Response:
        if path == "/v2/_catalog":
            return Response(200, {}, b'{"repositories":["debian","ubuntu"]}\n')
        return super().request(method, path, headers, data, scope)


def _commands(argv: Sequence[str | Path], *, check: bool = True, input: str | None = None,
              timeout: float | None = None, cwd: Path | None = None, env: dict[str, str] | None = None,
              on_line: Callable[[str], None] | None = None) -> Completed:
    args = [str(a) for a in argv]
    answers = {"dockerd": "Docker version 26.1.5+dfsg1, build a72d7cd", "containerd": "containerd 1.7.24",
               "runc": "runc version 1.1.15\ncommit: v1.1.15\nspec: 1.2.0", "dpkg-query": ""}
    if args[0] == "docker":
        return Completed(args, 1, "", "Cannot connect to the Docker daemon", 0.0)
    out = answers[args[0]]
    return Completed(args, 0 if out else 1, out + "\n", "", 0.0)


def test_summary_lines(tmp_path: Path) -> None:
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror/SHA256SUMS").write_text(f"{'a' * 64}  ftp/python/3.11.2/Python-3.11.2.tgz\n")
    with FakeRegistry() as reg:
        digest = reg.put_image("debian", "bookworm-slim", "x", ("linux/amd64", "linux/arm64"))
        env = host_env(tmp_path, registry=reg.address)
        text = io.StringIO()
        Summary(env, Out(text, text), _commands, _Catalog(reg.address, attempts=1)).print(
            ["debian:bookworm-slim", "ubuntu:noble"])
    lines = [line.removeprefix("[provision] ") for line in text.getvalue().splitlines()]
    assert lines[0] == "================ summary"
    assert lines[1].startswith("docker client : ") and lines[1].endswith(" ?")
    assert lines[2:8] == [
        "docker server : not running", "dockerd       : Docker version 26.1.5+dfsg1, build a72d7cd",
        "buildx        : ?", "containerd    : containerd 1.7.24", "runc          : runc version 1.1.15",
        "cosign        : not installed"]
    assert lines[8:] == [
        f'registry      : http://{reg.address}/v2/_catalog -> {{"repositories":["debian","ubuntu"]}}',
        f"image         : {reg.address}/debian:bookworm-slim {digest}",
        f"image         : {reg.address}/ubuntu:noble not in registry",
        f"mirror        : http://127.0.0.1:8700/ (root {tmp_path / 'mirror'})",
        f"  {'a' * 64}  http://127.0.0.1:8700/ftp/python/3.11.2/Python-3.11.2.tgz"]


def _main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, Out(out, err))
    return code, out.getvalue(), err.getvalue()


def test_registry_digest_exit_status(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeRegistry() as reg:
        digest = reg.put_image("debian", "trixie-slim", "x")
        monkeypatch.setenv("ORCH_REGISTRY", reg.address)
        assert _main(["registry-digest", "debian", "trixie-slim"]) == (0, "", "")  # printed to stdout
        assert _main(["registry-digest", "debian", "sid-slim"]) == (1, "", "")
    monkeypatch.setenv("ORCH_REGISTRY", "127.0.0.1:9")  # discard: nothing listens
    code, out, err = _main(["registry-digest", "debian", "trixie-slim"])
    assert (code, out) == (4, "")
    assert err == ("[provision] ERROR: registry 127.0.0.1:9 (ORCH_REGISTRY) did not answer for "
                   "debian:trixie-slim\n")
    assert digest.startswith("sha256:")


def test_registry_digest_prints_the_digest(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with FakeRegistry() as reg:
        digest = reg.put_image("debian", "trixie-slim", "x")
        monkeypatch.setenv("ORCH_REGISTRY", reg.address)
        assert cli.main(["registry-digest", "debian", "trixie-slim"]) == 0
    assert capsys.readouterr().out == digest + "\n"


def test_failures_are_one_line_without_traceback(tmp_path: Path) -> None:
    unpinned = tmp_path / "images.yaml"
    unpinned.write_text(edit(MATRIX.read_text(), '  - version: "3.13.15"\n', '  - version: "3.13"\n'))
    code, out, err = _main(["--matrix", str(unpinned), "mirror"])
    assert (code, out) == (3, "")
    assert err.startswith(f"[provision] ERROR: {unpinned}: pythons: 3.13 is built from a tarball but "
                          "not pinned")
    assert len(err.splitlines()) == 1


def test_versions_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--matrix", str(MATRIX), "versions"]) == 0
    assert capsys.readouterr().out.split() == ["3.11.2", "3.13.5", "3.13.15"]


@pytest.mark.spawns("python")
def test_module_entry_point_runs_from_the_repository_root() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "ORCH_E2E_MATRIX": str(MATRIX)}
    proc = subprocess.run([sys.executable, "-m", "hostkit", "versions"], cwd=REPO, check=False,
                          capture_output=True, text=True, env=env, timeout=100)
    assert (proc.returncode, proc.stdout.split(), proc.stderr) == (0, ["3.11.2", "3.13.5", "3.13.15"], "")


def test_host_env_defaults_and_settings() -> None:
    env = HostEnv.from_environ({})
    assert (env.matrix, env.org_lock) == (E2E_MATRIX, REPO / "images.lock")
    assert (env.ubuntu_mirror, env.ubuntu_security_mirror, env.ubuntu_keyring) == (
        "http://archive.ubuntu.com/ubuntu", "http://security.ubuntu.com/ubuntu",
        Path("/usr/local/share/keyrings/ubuntu-archive-keyring.gpg"))
    env = HostEnv.from_environ({"ORCH_ORG_LOCK": "/o/images.lock", "ORCH_UBUNTU_KEYRING": "/k/u.gpg",
                                "ORCH_UBUNTU_MIRROR": "http://u", "ORCH_UBUNTU_SECURITY_MIRROR": "http://s"})
    assert (env.org_lock, env.ubuntu_keyring, env.ubuntu_mirror, env.ubuntu_security_mirror) == (
        Path("/o/images.lock"), Path("/k/u.gpg"), "http://u", "http://s")

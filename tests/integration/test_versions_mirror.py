"""add-python / retire-python / lock --upgrade against the build host's local CPython mirror.

The mirror (scripts/provision-host.sh, step "mirror") is laid out like python.org at
http://127.0.0.1:8700/ftp/python/ and holds 3.11.2 (Python-3.11.2.tgz only), 3.13.5
(.tar.xz + .asc) and 3.13.15 (.tar.xz); release-manager keys are at keys/{fingerprint}.asc.
Base images come from the local registry 127.0.0.1:5000 when it answers (otherwise `lock`
leaves the digest unpinned with a warning). The orchestrator runs as a subprocess, as a user
would run it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests import require
from tests.e2e.conftest import BASES, DISTROS, drop_distro

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
MIRROR = "http://127.0.0.1:8700/ftp/python/"
KEY_FPR = "7169605F62C751356D054A26A821E680E5FA6305"  # 3.12/3.13 release manager

CONFIG = f"""\
# add-python / retire-python integration test matrix (local mirror + registry).
schema_version: 1

publish:
  registry: 127.0.0.1:5000
  repository: test/versions-it

sources:
  python: {MIRROR}
  python_keys: {MIRROR}keys/{{fingerprint}}.asc
  base_registry: 127.0.0.1:5000

distros:
  bookworm:
    family: debian
    release: "12"
    image: debian:bookworm-slim
    methods: [source]
    packages:
      runtime: [ca-certificates, netbase, tzdata, libssl3, libsqlite3-0, libffi8]
      build: [gcc, make, libc6-dev, pkg-config, xz-utils, curl, gnupg, libssl-dev]
      dev: [gcc, g++, make]

pythons:                        # pinned: lock --upgrade must not move it
  - version: "3.13.5"
max_pythons: 3

variants:
  runtime: {{size_budget_mb: 200}}
  dev: {{size_budget_mb: 600}}

tags:
  default_distro: bookworm
  moving:
    - {{template: "{{minor}}-{{variant}}", only_default: true}}
    - {{template: "{{version}}-{{variant}}-{{distro}}{{method}}"}}
"""


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as resp:
        data: bytes = resp.read()
        return data


@pytest.fixture(scope="module", autouse=True)
def mirror() -> None:
    try:
        listing = _get(MIRROR).decode()
    except (urllib.error.URLError, OSError) as exc:
        require.unavailable(f"local CPython mirror {MIRROR} does not answer ({exc})",
                            "run scripts/provision-host.sh (step mirror) first")
    missing = [v for v in ("3.11.2", "3.13.5", "3.13.15") if f'href="{v}/"' not in listing]
    if missing:
        require.unavailable(f"local CPython mirror {MIRROR} lacks {', '.join(missing)}",
                            "re-run scripts/provision-host.sh mirror")


def sha256_of(url: str) -> str:
    return hashlib.sha256(_get(url)).hexdigest()


def orch(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "ORCH_LOG_FORMAT")}
    env.update(ORCH_DATE="20261121", DOCKER_CONFIG=str(cwd / ".docker"), ORCH_LOG_FORMAT="console")
    return subprocess.run([sys.executable, "-m", "orchestrator", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def ok(*argv: str, cwd: Path) -> str:
    r = orch(*argv, cwd=cwd)
    assert r.returncode == 0, f"{argv}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def state(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and ".docker" not in p.parts}


def locked(tmp_path: Path, text: str = CONFIG) -> Path:
    (tmp_path / "images.yaml").write_text(text)
    ok("lock", "--config", "images.yaml", cwd=tmp_path)
    ok("render", "--config", "images.yaml", cwd=tmp_path)
    return tmp_path / "images.yaml"


def lock_of(root: Path) -> dict[str, dict[str, object]]:
    data: dict[str, dict[str, object]] = yaml.safe_load((root / "images.lock").read_text())["pythons"]
    return data


def test_lock_pins_the_signed_release_and_its_key(tmp_path: Path) -> None:
    locked(tmp_path)
    entry = lock_of(tmp_path)["3.13"]
    url = f"{MIRROR}3.13.5/Python-3.13.5.tar.xz"
    key_url = f"{MIRROR}keys/{KEY_FPR}.asc"
    assert entry == {
        "version": "3.13.5", "url": url, "sha256": sha256_of(url),
        "signature_url": url + ".asc",
        "signing_key": {"fingerprint": KEY_FPR, "url": key_url, "sha256": sha256_of(key_url)},
        "resolved_from": "python.org layout",
    }


def test_add_python_resolves_the_tgz_only_release_then_retire_round_trips(tmp_path: Path) -> None:
    locked(tmp_path)
    before = state(tmp_path)

    out = ok("add-python", "3.11", "--config", "images.yaml", cwd=tmp_path)
    url = f"{MIRROR}3.11.2/Python-3.11.2.tgz"
    assert lock_of(tmp_path)["3.11"] == {
        "version": "3.11.2", "url": url, "sha256": sha256_of(url),
        "resolved_from": "python.org layout",
    }
    text = (tmp_path / "images.yaml").read_text()
    assert text == CONFIG.replace('  - version: "3.13.5"', '  - version: "3.11"\n  - version: "3.13.5"')
    assert "signature  none (no .asc next to the tarball at the source)" in out
    assert "plan: +2 image(s), -0 image(s); moving tags +4, -0" in out
    assert any(" ".join(line.split()) == "+ 3.11-source-bookworm-runtime 3.11.2 3.11-runtime, "
               "3.11.2-runtime-bookworm, 3.11.2.<date>-runtime-bookworm" for line in out.splitlines())
    dockerfile = (tmp_path / "generated" / "bookworm" / "Dockerfile").read_text()
    assert "Python-3.11.2.tgz" in dockerfile and sha256_of(url) in dockerfile
    ok("render", "--check", "--config", "images.yaml", cwd=tmp_path)
    ok("validate", "--config", "images.yaml", cwd=tmp_path)
    after_add = state(tmp_path)

    out = ok("retire-python", "3.11", "--config", "images.yaml", cwd=tmp_path)
    assert state(tmp_path) == before, "retire undoes add byte for byte (yaml, lock, generated)"
    assert "plan: +0 image(s), -2 image(s); moving tags +0, -4" in out
    assert ("note: tags already published to 127.0.0.1:5000/test/versions-it are NOT deleted"
            in out)

    ok("add-python", "3.11", "--config", "images.yaml", cwd=tmp_path)
    assert state(tmp_path) == after_add


def test_add_pinned_release(tmp_path: Path) -> None:
    locked(tmp_path)
    ok("add-python", "3.11.2", "--config", "images.yaml", cwd=tmp_path)
    assert '  - version: "3.11.2"\n  - version: "3.13.5"' in (tmp_path / "images.yaml").read_text()
    assert lock_of(tmp_path)["3.11"]["version"] == "3.11.2"


def test_lock_upgrade_bumps_unpinned_patch(tmp_path: Path) -> None:
    cfg = locked(tmp_path)
    old_sha = lock_of(tmp_path)["3.13"]["sha256"]
    out = ok("lock", "--upgrade", "--config", "images.yaml", cwd=tmp_path)
    assert "python 3.13" not in out, "a pinned version is not upgraded"

    cfg.write_text(cfg.read_text().replace('"3.13.5"', '"3.13"'))
    out = ok("lock", "--config", "images.yaml", cwd=tmp_path)
    assert "python 3.13" not in out and lock_of(tmp_path)["3.13"]["version"] == "3.13.5", (
        "without --upgrade, lock only fills what is missing")

    out = ok("lock", "--upgrade", "--only", "3.13", "--config", "images.yaml", cwd=tmp_path)
    url = f"{MIRROR}3.13.15/Python-3.13.15.tar.xz"
    new_sha = sha256_of(url)
    assert f"  python 3.13: 3.13.5 ({str(old_sha)[:12]}) -> 3.13.15 ({new_sha[:12]})" in out
    assert "base bookworm" not in out  # --only 3.13
    entry = lock_of(tmp_path)["3.13"]
    assert (entry["version"], entry["url"], entry["sha256"]) == ("3.13.15", url, new_sha)
    assert "signature_url" not in entry  # 3.13.15 has no .asc at the mirror
    assert "Python-3.13.15.tar.xz" in (tmp_path / "generated" / "bookworm" / "Dockerfile").read_text()
    ok("render", "--check", "--config", "images.yaml", cwd=tmp_path)

    out = ok("lock", "--upgrade", "--only", "3.13", "--config", "images.yaml", cwd=tmp_path)
    assert out.splitlines()[-1] == "images.lock: 0 change(s)"


def _refused(tmp_path: Path, *argv: str) -> str:
    before = state(tmp_path)
    r = orch(*argv, cwd=tmp_path)
    assert r.returncode == 2, f"{argv}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    assert r.stdout == ""
    assert state(tmp_path) == before, "a refusal writes nothing"
    lines = r.stderr.strip().splitlines()
    return lines[-1]


def test_refusals(tmp_path: Path) -> None:
    locked(tmp_path)
    assert _refused(tmp_path, "add-python", "3.12", "--config", "images.yaml") == (
        f"error: Python 3.12 is not released at {MIRROR} (sources.python): no 3.12.x release there")
    assert _refused(tmp_path, "add-python", "3.11.9", "--config", "images.yaml") == (
        f"error: Python 3.11.9 is not released at {MIRROR} (sources.python): newest 3.11.x there "
        "is 3.11.2")
    assert _refused(tmp_path, "add-python", "3.10", "--config", "images.yaml") == (
        "error: Python 3.10 reached its end of life on 2026-10-31 (orchestrator/eol.py); "
        "refusing to add it")
    assert _refused(tmp_path, "add-python", "3.13", "--config", "images.yaml") == (
        'error: Python 3.13 is already in images.yaml (pythons[0]: "3.13.5"); to move to a newer '
        "patch run `orchestrator lock --upgrade --only 3.13`")
    assert _refused(tmp_path, "retire-python", "3.13", "--config", "images.yaml") == (
        "error: Python 3.13 is the only Python in images.yaml; add its successor first "
        "(orchestrator add-python X.Y), then retire it")


def test_refusal_beyond_max_pythons(tmp_path: Path) -> None:
    three = CONFIG.replace('  - version: "3.13.5"',
                           '  - version: "3.11"\n  - version: "3.12"\n  - version: "3.13.5"')
    (tmp_path / "images.yaml").write_text(three)
    assert _refused(tmp_path, "add-python", "3.14", "--config", "images.yaml") == (
        "error: images.yaml already has 3 Pythons (3.11, 3.12, 3.13) and max_pythons is 3; "
        "retire the oldest first: orchestrator retire-python 3.11")


def test_e2e_matrix_retire_and_re_add(tmp_path: Path) -> None:
    """The e2e matrix (tests/e2e/images.yaml): trailing comments on the pythons lines, and
    exclude rules without a distro."""
    text = (REPO / "tests" / "e2e" / "images.yaml").read_text()  # in the repository
    for distro in set(BASES) - set(DISTROS):  # `make test` provisions bookworm + noble only
        text = drop_distro(text, distro)
    locked(tmp_path, text)
    out = ok("retire-python", "3.11", "--config", "images.yaml", cwd=tmp_path)
    retired = (tmp_path / "images.yaml").read_text()
    assert [p["version"] for p in yaml.safe_load(retired)["pythons"]] == ["3.13.15", "3.12"]
    assert "3.11" not in lock_of(tmp_path)
    assert "exclude -= {python: \"3.11\", method: source}" in out
    removed = [line for line in text.splitlines() if line not in retired.splitlines()]
    assert all("3.11" in line for line in removed), removed
    out = ok("add-python", "3.11", "--config", "images.yaml", cwd=tmp_path)
    assert lock_of(tmp_path)["3.11"]["url"] == f"{MIRROR}3.11.2/Python-3.11.2.tgz"
    ok("render", "--check", "--config", "images.yaml", cwd=tmp_path)

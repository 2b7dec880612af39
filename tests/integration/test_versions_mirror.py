"""add-python / retire-python / lock --upgrade against the build host's local CPython mirror.

The mirror (scripts/provision-host.sh, step "mirror"; hostkit/mirror.py) is laid out like
python.org at http://127.0.0.1:8700/ftp/python/ and holds 3.13.5 (.tar.xz; its .asc is not
served: Thomas Wouters' key 7169605F... expired on 2026-07-02 in every copy reachable here, and
provisioning withdrew the signature, saying so in Python-3.13.5.tar.xz.checked), 3.13.15
(.tar.xz, no .asc) and 3.14.4 (.tar.xz; 3.14 has no .asc upstream, PEP 761). The release
manager key stays at keys/{fingerprint}.asc. 3.13 releases are PGP-signed, so the matrix says
why they may be locked without one (pythons[].unsigned; else `lock` refuses). Base images come
from the local registry 127.0.0.1:5000 when it answers (otherwise `lock` leaves the digest
unpinned with a warning).
The orchestrator runs as a subprocess, as a user would run it; nothing here builds an image.
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
RELEASES = ("3.13.5", "3.13.15", "3.14.4")  # what the mirror must list
# python.org's bytes as the mirror's provisioning checked them (each tarball's .checked: the
# signed Debian/Ubuntu Sources index, pyenv's pin); 3.14.4's is also the repository's
# images.lock pin (test_add_python_...). The lock must pin exactly these.
SHA256 = {
    "3.13.5": "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640",
    "3.13.15": "1e66a7945a48390ee4c2a4268a0e4185884059a13c4aab6d148aa208deea4a76",
    "3.14.4": "d923c51303e38e249136fc1bdf3568d56ecb03214efdef48516176d3d7faaef8",
}

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
    unsigned: "the local mirror serves no 3.13 .asc: its key 7169605F... expired on 2026-07-02"
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


# 3.13 releases are PGP-signed: the lock pins them without their .asc only for this reason.
UNSIGNED = next(line for line in CONFIG.splitlines() if line.startswith("    unsigned: "))


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as resp:
        data: bytes = resp.read()
        return data


def _listing(url: str) -> str:
    return _get(url).decode()


@pytest.fixture(scope="module", autouse=True)
def mirror() -> None:
    try:
        listing = _listing(MIRROR)
    except (urllib.error.URLError, OSError) as exc:
        require.unavailable(f"local CPython mirror {MIRROR} does not answer ({exc})",
                            "run scripts/provision-host.sh (step mirror) first")
    missing = [v for v in RELEASES if f'href="{v}/"' not in listing]
    if missing:
        require.unavailable(f"local CPython mirror {MIRROR} lacks {', '.join(missing)}",
                            "re-run scripts/provision-host.sh mirror")


def tarball(version: str) -> str:
    return f"{MIRROR}{version}/Python-{version}.tar.xz"


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


def dockerfile(root: Path) -> str:
    return (root / "generated" / "bookworm" / "Dockerfile").read_text()


def unsigned_entry(version: str) -> dict[str, object]:
    """What the lock records for a release the mirror serves without an .asc."""
    return {"version": version, "url": tarball(version), "sha256": SHA256[version],
            "resolved_from": "python.org layout"}


def test_lock_pins_the_release_whose_signature_was_withdrawn_without_one(tmp_path: Path) -> None:
    """3.13.5's .asc is no longer served (its key expired): the lock pins the tarball by sha256
    alone, records no signature and no key, and the Dockerfile verifies no signature."""
    folder = _listing(f"{MIRROR}3.13.5/")
    assert "Python-3.13.5.tar.xz.asc" not in folder, (
        "the mirror serves 3.13.5's signature again (a key with its expiry extended?): "
        "this test, and test_a_lock_written_before_the_withdrawal_..., assume it does not")
    checked = _get(tarball("3.13.5") + ".checked").decode()
    assert f"Python-3.13.5.tar.xz.asc not served: EXPKEYSIG by {KEY_FPR}" in checked

    locked(tmp_path)
    assert lock_of(tmp_path) == {"3.13": unsigned_entry("3.13.5")}
    text = dockerfile(tmp_path)
    assert f"ADD --checksum=sha256:{SHA256['3.13.5']} {tarball('3.13.5')} " in text
    assert ".asc" not in text and "verify-signature.sh" not in text


def test_a_lock_written_before_the_withdrawal_drops_the_signature_on_upgrade(tmp_path: Path) -> None:
    """A lock made while the mirror still served 3.13.5's .asc names it; the build would fetch
    it (a 404 now). `lock --upgrade --only 3.13` re-resolves the pinned release: same version
    and sha256, no signature, no key."""
    key_url = f"{MIRROR}keys/{KEY_FPR}.asc"
    key_sha = hashlib.sha256(_get(key_url)).hexdigest()
    cfg = locked(tmp_path)
    lock = (tmp_path / "images.lock").read_text()
    resolved = "    resolved_from: python.org layout\n"
    assert resolved in lock
    (tmp_path / "images.lock").write_text(lock.replace(resolved, (
        f"    signature_url: {tarball('3.13.5')}.asc\n"
        f"    signing_key:\n      fingerprint: {KEY_FPR}\n      url: {key_url}\n"
        f"      sha256: {key_sha}\n") + resolved))
    ok("render", "--config", cfg.name, cwd=tmp_path)
    assert f"ADD {tarball('3.13.5')}.asc " in dockerfile(tmp_path)
    with pytest.raises(urllib.error.HTTPError) as gone:
        _get(tarball("3.13.5") + ".asc")
    assert gone.value.code == 404

    out = ok("lock", "--upgrade", "--only", "3.13", "--config", cfg.name, cwd=tmp_path)
    short = SHA256["3.13.5"][:12]
    assert out.splitlines() == [f"  python 3.13: 3.13.5 ({short}) -> 3.13.5 ({short})",
                                "images.lock: 1 change(s)", "re-rendered 1 file(s) under generated"]
    assert (tmp_path / "images.lock").read_text() == lock
    assert ".asc" not in dockerfile(tmp_path)
    ok("render", "--check", "--config", cfg.name, cwd=tmp_path)


def test_add_python_resolves_the_sigstore_only_release_then_retire_round_trips(tmp_path: Path) -> None:
    locked(tmp_path)
    before = state(tmp_path)

    out = ok("add-python", "3.14", "--config", "images.yaml", cwd=tmp_path)
    repo_lock = yaml.safe_load((REPO / "images.lock").read_text())["pythons"]["3.14"]
    assert (repo_lock["version"], repo_lock["sha256"]) == ("3.14.4", SHA256["3.14.4"]), (
        "the mirror's 3.14.4 is python.org's tarball, as the repository's lock pins it")
    assert lock_of(tmp_path) == {"3.13": unsigned_entry("3.13.5"), "3.14": unsigned_entry("3.14.4")}
    text = (tmp_path / "images.yaml").read_text()
    assert text == CONFIG.replace(f"{UNSIGNED}\n", f'{UNSIGNED}\n  - version: "3.14"\n')
    lines = out.splitlines()
    assert "    signature  none (Python 3.14 releases are signed with Sigstore only, no .asc)" in lines
    assert f"  images.lock: python 3.14: (none) -> 3.14.4 ({SHA256['3.14.4'][:12]})" in lines
    assert "plan: +2 image(s), -0 image(s); moving tags +4, -0" in lines
    assert any(" ".join(line.split()) == "+ 3.14-source-bookworm-runtime 3.14.4 3.14-runtime, "
               "3.14.4-runtime-bookworm, 3.14.4.<date>-runtime-bookworm" for line in lines)
    assert f"ADD --checksum=sha256:{SHA256['3.14.4']} {tarball('3.14.4')} " in dockerfile(tmp_path)
    ok("render", "--check", "--config", "images.yaml", cwd=tmp_path)
    ok("validate", "--config", "images.yaml", cwd=tmp_path)
    after_add = state(tmp_path)

    out = ok("retire-python", "3.14", "--config", "images.yaml", cwd=tmp_path)
    assert state(tmp_path) == before, "retire undoes add byte for byte (yaml, lock, generated)"
    assert "plan: +0 image(s), -2 image(s); moving tags +0, -4" in out.splitlines()
    assert ("note: tags already published to 127.0.0.1:5000/test/versions-it are NOT deleted"
            in out)

    ok("add-python", "3.14", "--config", "images.yaml", cwd=tmp_path)
    assert state(tmp_path) == after_add


def test_add_pinned_release(tmp_path: Path) -> None:
    locked(tmp_path)
    out = ok("add-python", "3.14.4", "--config", "images.yaml", cwd=tmp_path)
    assert '  images.yaml: pythons += "3.14.4"' in out.splitlines()
    assert f'{UNSIGNED}\n  - version: "3.14.4"\n' in (tmp_path / "images.yaml").read_text()
    assert lock_of(tmp_path)["3.14"] == unsigned_entry("3.14.4")
    ok("render", "--check", "--config", "images.yaml", cwd=tmp_path)


def test_lock_upgrade_bumps_unpinned_patch(tmp_path: Path) -> None:
    cfg = locked(tmp_path)
    out = ok("lock", "--upgrade", "--config", "images.yaml", cwd=tmp_path)
    assert "python 3.13" not in out, "a pinned version is not upgraded"
    assert lock_of(tmp_path)["3.13"] == unsigned_entry("3.13.5")

    cfg.write_text(cfg.read_text().replace('"3.13.5"', '"3.13"'))
    out = ok("lock", "--config", "images.yaml", cwd=tmp_path)
    assert "python 3.13" not in out and lock_of(tmp_path)["3.13"]["version"] == "3.13.5", (
        "without --upgrade, lock only fills what is missing")

    out = ok("lock", "--upgrade", "--only", "3.13", "--config", "images.yaml", cwd=tmp_path)
    old, new = SHA256["3.13.5"][:12], SHA256["3.13.15"][:12]
    assert f"  python 3.13: 3.13.5 ({old}) -> 3.13.15 ({new})" in out.splitlines()
    assert "base bookworm" not in out  # --only 3.13
    assert lock_of(tmp_path)["3.13"] == unsigned_entry("3.13.15")  # no .asc at the mirror either
    assert "Python-3.13.15.tar.xz" in dockerfile(tmp_path)
    assert "Python-3.13.5" not in dockerfile(tmp_path)
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
    assert _refused(tmp_path, "add-python", "3.14.9", "--config", "images.yaml") == (
        f"error: Python 3.14.9 is not released at {MIRROR} (sources.python): newest 3.14.x there "
        "is 3.14.4")
    assert _refused(tmp_path, "add-python", "3.10", "--config", "images.yaml") == (
        "error: Python 3.10 reached its end of life on 2026-10-31 (orchestrator/config/eol.py); "
        "refusing to add it")
    assert _refused(tmp_path, "add-python", "3.13", "--config", "images.yaml") == (
        'error: Python 3.13 is already in images.yaml (pythons[0]: "3.13.5"); to move to a newer '
        "patch run `orchestrator lock --upgrade --only 3.13`")
    assert _refused(tmp_path, "retire-python", "3.14", "--config", "images.yaml") == (
        "error: Python 3.14 is not in images.yaml (pythons: 3.13); nothing to retire")
    assert _refused(tmp_path, "retire-python", "3.13", "--config", "images.yaml") == (
        "error: Python 3.13 is the only Python in images.yaml; add its successor first "
        "(orchestrator add-python X.Y), then retire it")


def test_refusal_beyond_max_pythons(tmp_path: Path) -> None:
    three = CONFIG.replace('  - version: "3.13.5"\n', '  - version: "3.12"\n  - version: "3.13.5"\n')
    three = three.replace(f"{UNSIGNED}\n", f'{UNSIGNED}\n  - version: "3.14"\n')
    (tmp_path / "images.yaml").write_text(three)
    assert _refused(tmp_path, "add-python", "3.15", "--config", "images.yaml") == (
        "error: images.yaml already has 3 Pythons (3.12, 3.13, 3.14) and max_pythons is 3; "
        "retire the oldest first: orchestrator retire-python 3.12")


def _e2e_matrix(tmp_path: Path) -> str:
    """The e2e matrix (tests/e2e/images.yaml) as `make test` provisions it (bookworm + noble:
    the other distros' blocks and their exclude rules left out), locked and rendered."""
    text = (REPO / "tests" / "e2e" / "images.yaml").read_text()  # in the repository
    for distro in set(BASES) - set(DISTROS):
        text = drop_distro(text, distro)
        text = "".join(line for line in text.splitlines(keepends=True)
                       if f"distro: {distro}}}" not in line)
    locked(tmp_path, text)
    return text


def _pythons(text: str) -> list[str]:
    return [str(p["version"]) for p in yaml.safe_load(text)["pythons"]]


def test_e2e_matrix_retire_and_re_add(tmp_path: Path) -> None:
    """Trailing comments on the pythons lines, exclude rules without a distro, the python-build
    minor: 3.13 retired, then re-added at the same pin."""
    text = _e2e_matrix(tmp_path)
    assert _pythons(text) == ["3.14.4", "3.13.15", "3.12"]
    lock = (tmp_path / "images.lock").read_text()
    assert lock_of(tmp_path)["3.13"] == unsigned_entry("3.13.15")

    out = ok("retire-python", "3.13", "--config", "images.yaml", cwd=tmp_path)
    retired = (tmp_path / "images.yaml").read_text()
    assert _pythons(retired) == ["3.14.4", "3.12"]
    assert set(lock_of(tmp_path)) == {"3.14"}
    lines = out.splitlines()
    assert '  images.yaml: exclude -= {python: "3.13", method: source}' in lines
    assert '  images.yaml: exclude -= {python: "3.13", method: deadsnakes}' in lines
    assert "plan: +0 image(s), -2 image(s); moving tags +0, -6" in lines
    removed = [line for line in text.splitlines() if line not in retired.splitlines()]
    # the pythons entry (its version and unsigned lines) and the two exclude rules
    assert len(removed) == 4 and all("3.13" in line for line in removed), removed
    ok("render", "--check", "--config", "images.yaml", cwd=tmp_path)

    # no .asc on the mirror for 3.13.15: add-python refuses it without a reason ...
    assert "pythons[1].unsigned" in _refused(tmp_path, "add-python", "3.13.15", "--config",
                                             "images.yaml")
    reason = yaml.safe_load(text)["pythons"][1]["unsigned"]
    out = ok("add-python", "3.13.15", "--unsigned", reason, "--config", "images.yaml", cwd=tmp_path)
    assert (tmp_path / "images.lock").read_text() == lock, "the same pin, locked the same way"
    assert sorted(_pythons((tmp_path / "images.yaml").read_text())) == ["3.12", "3.13.15", "3.14.4"]
    ok("render", "--check", "--config", "images.yaml", cwd=tmp_path)
    ok("validate", "--config", "images.yaml", cwd=tmp_path)


def test_e2e_matrix_retire_the_deadsnakes_only_minor(tmp_path: Path) -> None:
    """3.12 (deadsnakes on noble, nothing locked for it): its pythons line, exclude rules and
    tags.defaults entry go; the lock is unchanged."""
    text = _e2e_matrix(tmp_path)
    lock = (tmp_path / "images.lock").read_text()
    assert "3.12" not in lock_of(tmp_path)

    out = ok("retire-python", "3.12", "--config", "images.yaml", cwd=tmp_path)
    retired = (tmp_path / "images.yaml").read_text()
    assert _pythons(retired) == ["3.14.4", "3.13.15"]
    assert '  images.yaml: tags.defaults -= "3.12"' in out.splitlines()
    assert "tags" in yaml.safe_load(retired) and "defaults" not in yaml.safe_load(retired)["tags"]
    removed = [line for line in text.splitlines() if line not in retired.splitlines()]
    assert len(removed) == 5, removed
    assert all("3.12" in line for line in removed if not line.startswith("  defaults:")), removed
    assert (tmp_path / "images.lock").read_text() == lock
    ok("render", "--check", "--config", "images.yaml", cwd=tmp_path)
    ok("validate", "--config", "images.yaml", cwd=tmp_path)

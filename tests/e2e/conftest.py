"""End-to-end fixtures: a real dockerd + BuildKit, the local registry and the local mirrors.

The host is made by scripts/provision-host.sh (`make provision`). Nothing here is faked:
images are built by BuildKit, run in containers and pushed to the registry on 127.0.0.1:5000.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import gzip
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator import settings
from orchestrator.config import loader
from orchestrator.errors import SupplyChainError
from orchestrator.lock import lockfile
from orchestrator.planning import plan
from orchestrator.registry import Registry
from orchestrator.supplychain import sbom

REPO = Path(__file__).resolve().parents[2]
E2E_CONFIG = REPO / "tests" / "e2e" / "images.yaml"
MIRROR_DIR = Path(os.environ.get("ORCH_MIRROR_DIR", "/srv/orchestrator-mirror"))
MIRROR_URL = "http://127.0.0.1:8700"
APT_DIR = MIRROR_DIR / "apt-e2e"
APT_LIST = f"deb [trusted=yes] {MIRROR_URL}/apt-e2e ./"
REGISTRY = "127.0.0.1:5000"
FULL = bool(os.environ.get("ORCH_E2E_FULL"))  # make test-full
COSIGN_PASSWORD = "e2e-throwaway"  # of the key pair the multi-platform release signs with
# distro -> (repository, tag) of its provisioned base; `make test` builds bookworm and noble only
BASES = {"bookworm": ("debian", "bookworm-slim"), "trixie": ("debian", "trixie-slim"),
         "noble": ("ubuntu", "noble"), "resolute": ("ubuntu", "resolute")}
DISTROS = tuple(BASES) if FULL else ("bookworm", "noble")


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    seconds: float
    report: dict[str, Any]

    def cells(self) -> dict[str, dict[str, Any]]:
        return {c["id"]: c for c in self.report.get("cells", [])}

    def explain(self) -> str:
        return f"exit {self.rc}\nstdout:\n{self.stdout[-4000:]}\nstderr:\n{self.stderr[-6000:]}"


# A fixed SOURCE_DATE_EPOCH (what `orchestrator` would take from the last commit of images.lock
# in a full clone; the e2e's images.lock is not committed): every release build of the e2e
# clamps its layers' file times to it (build.rewrite_timestamps). ORCH_DATE stays today: without
# it the epoch would also be the run's date (tags, created labels, "first seen" dates).
E2E_EPOCH = "1764547200"  # 2025-12-01
# The run date of the whole session (UTC, read once): every orchestrator call gets it as
# ORCH_DATE and every assertion about dates uses it, so a session across midnight UTC
# does not see two dates.
SESSION_DATE = dt.datetime.now(dt.UTC).date()


def orch(*args: str, config: Path, report: Path | None = None, env: dict[str, str] | None = None,
         timeout: float = 5400) -> Result:
    """Run `python -m orchestrator` as a user would; returns exit code, output and report."""
    argv = [sys.executable, "-m", "orchestrator", *args, "--config", str(config)]
    if report is not None:
        argv += ["--report", str(report)]
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, "ORCH_LOG_FORMAT": "console",
                               "SOURCE_DATE_EPOCH": E2E_EPOCH,
                               "ORCH_DATE": SESSION_DATE.strftime("%Y%m%d"), **(env or {})},
                          check=False)
    data = json.loads(report.read_text()) if report is not None and report.exists() else {}
    return Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start, data)


def registry() -> Registry:
    return Registry(REGISTRY, attempts=2, backoff=0.2)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def host() -> None:
    problems = []
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        problems.append("no Docker engine answers")
    if not _answers(f"http://{REGISTRY}/v2/"):
        problems.append(f"no registry on {REGISTRY}")
    if not _answers(f"{MIRROR_URL}/ftp/python/"):
        problems.append(f"no CPython mirror on {MIRROR_URL}")
    if problems:
        pytest.fail("; ".join(problems) + ": run `make provision` (scripts/provision-host.sh)")


def write_apt_repo(debs: list[Path]) -> None:
    """A flat, trusted apt repository at {MIRROR_URL}/apt-e2e (the e2e bases list it)."""
    APT_DIR.mkdir(parents=True, exist_ok=True)
    for old in APT_DIR.glob("*.deb"):
        old.unlink()
    stanzas = []
    for deb in debs:
        target = APT_DIR / deb.name
        target.write_bytes(deb.read_bytes())
        fields = subprocess.run(["dpkg-deb", "-f", str(target)], capture_output=True, text=True,
                                check=True).stdout.strip()
        data = target.read_bytes()
        stanzas.append(f"{fields}\nFilename: ./{deb.name}\nSize: {len(data)}\n"
                       f"SHA256: {hashlib.sha256(data).hexdigest()}\n")
    packages = "\n".join(stanzas).encode()
    (APT_DIR / "Packages").write_bytes(packages)
    (APT_DIR / "Packages.gz").write_bytes(gzip.compress(packages, mtime=0))
    # a security suite, as `orchestrator outdated` tells them (Suite/Codename/Label say so)
    lines = ["Origin: orchestrator-e2e", "Label: orchestrator-e2e", "Suite: e2e-security",
             "Codename: e2e-security", "Date: " + email.utils.formatdate(usegmt=True), "SHA256:"]
    for name in ("Packages", "Packages.gz"):
        blob = (APT_DIR / name).read_bytes()
        lines.append(f" {hashlib.sha256(blob).hexdigest()} {len(blob)} {name}")
    release = APT_DIR / "Release"
    before = release.stat().st_mtime if release.exists() else 0.0
    release.write_text("\n".join(lines) + "\n")
    stamp = max(time.time(), before + 1)  # a new Last-Modified: HTTP dates have 1 s resolution
    os.utime(release, (stamp, stamp))


@pytest.fixture(scope="session")
def e2e_bases(host: None) -> dict[str, str]:
    """Base images = the provisioned slim bases + one apt source for simulated security fixes.

    Built once per machine (skipped when the registry has them), so their digests, and
    with them the BuildKit cache of every CPython compile, stay stable across test runs.
    """
    if not (APT_DIR / "Release").exists():
        write_apt_repo([])
    refs = {}
    reg = registry()
    for distro in DISTROS:
        repo, tag = BASES[distro]
        ref = f"{REGISTRY}/e2e/{repo}:{tag}"
        base = reg.platform_manifests(repo, tag) or {}
        have = reg.platform_manifests(f"e2e/{repo}", tag) or {}
        base_digest = reg.digest(repo, tag)
        if not base or not base_digest:
            pytest.fail(f"no base {REGISTRY}/{repo}:{tag}: run `make provision`")
        if set(have) != set(base) or _built_from(reg, repo, tag) != base_digest:
            # one index like the provisioned base (amd64 + arm64; the arm64 RUN under QEMU)
            dockerfile = (f"FROM {REGISTRY}/{repo}:{tag}@{base_digest}\n"
                          f"RUN echo '{APT_LIST}' > /etc/apt/sources.list.d/e2e-security.list\n"
                          f'LABEL org.orchestrator.e2e.base="{base_digest}"\n')
            subprocess.run(["docker", "buildx", "build", "--network", "host", "--platform",
                            ",".join(sorted(base)), "--push", "-t", ref, "-"],
                           input=dockerfile, text=True, check=True, capture_output=True)
        refs[distro] = ref
    return refs


def _built_from(reg: Registry, repo: str, tag: str) -> str | None:
    """The provisioned base digest an e2e base was built from (its label)."""
    configs = reg.platform_configs(f"e2e/{repo}", tag) or {}
    for cfg in configs.values():
        return str((cfg.get("config") or {}).get("Labels", {}).get("org.orchestrator.e2e.base"))
    return None


BOTH_PLATFORMS = "platforms: [linux/amd64, linux/arm64]\n"


TRIXIE_AMD64_ONLY = \
    "    platforms: [linux/amd64]    # make test-full: both (arm64 compiles cost CI time)\n"


def drop_distro(text: str, distro: str) -> str:
    """images.yaml text without one distro's block (its anchors are defined by bookworm)."""
    lines = text.splitlines(keepends=True)
    start = lines.index(f"  {distro}:\n")
    end = start + 1
    while end < len(lines) and (lines[end].startswith("    ") or not lines[end].strip()):
        end += 1
    return "".join(lines[:start] + lines[end:])


def make_config(dest: Path, repository: str, **replace: str) -> Path:
    return _make_config(dest, repository, False, replace)


def make_multiplatform_config(dest: Path, repository: str) -> Path:
    return _make_config(dest, repository, True, {})


def cosign_key_pair(dest: Path) -> None:
    """A throwaway cosign.key (encrypted with COSIGN_PASSWORD) and cosign.pub in ``dest``."""
    if shutil.which("cosign") is None:
        pytest.fail("cosign is not installed: run `make provision` (scripts/provision-host.sh "
                    "step 10)")
    try:  # the SBOMs of a signed push: the pinned syft (provisioning's step 11 builds it)
        sbom.syft_path(settings.Settings.from_environ().tools_dir)
    except SupplyChainError as exc:
        pytest.fail(str(exc))
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["cosign", "generate-key-pair"], cwd=dest, capture_output=True, text=True,
                          env={**os.environ, "COSIGN_PASSWORD": COSIGN_PASSWORD}, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert (dest / "cosign.key").is_file() and (dest / "cosign.pub").is_file()


def _make_config(dest: Path, repository: str, arm64: bool, replace: dict[str, str]) -> Path:
    """A copy of tests/e2e/images.yaml using the e2e bases and its own repository.

    amd64 only unless ``arm64`` (or `make test-full`): the release/nightly tests run the whole
    matrix several times, and every arm64 step runs under QEMU; test_multiplatform.py releases
    the arm64 cells once (`make test-full`: every cell, every distro, both platforms).
    `make test` (CI budget) drops trixie and resolute: bookworm covers source (3.14, 3.14t,
    minimal) and python-build (3.13), noble covers Ubuntu with deadsnakes (3.12)."""
    text = E2E_CONFIG.read_text()
    text = text.replace("repository: org/python", f"repository: {repository}")
    text = text.replace("image: debian:", "image: e2e/debian:")
    text = text.replace("image: ubuntu:", "image: e2e/ubuntu:")
    if FULL:
        text = text.replace(TRIXIE_AMD64_ONLY, "")
    else:
        for distro in set(BASES) - set(DISTROS):
            text = drop_distro(text, distro)
            text = "".join(line for line in text.splitlines(keepends=True)
                           if f"distro: {distro}}}" not in line)  # its exclude rules
        if not arm64:
            assert BOTH_PLATFORMS in text
            text = text.replace(BOTH_PLATFORMS, "platforms: [linux/amd64]\n")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "images.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def session_id() -> str:
    return time.strftime("%Y%m%d%H%M%S")


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory, e2e_bases: dict[str, str],
              session_id: str) -> Path:
    ws = tmp_path_factory.mktemp("e2e")
    config = make_config(ws, f"e2e-{session_id}/python")
    for step in (("lock",), ("render",)):
        res = orch(*step, config=config)
        assert res.rc == 0, res.explain()
    return config


@pytest.fixture(scope="session")
def team_flow(e2e_bases: dict[str, str], tmp_path_factory: pytest.TempPathFactory,
              session_id: str) -> dict[str, Any]:
    """The platform team's add-python -> lock -> release -> retire-python flow (issue 28 item 5;
    test_add_python.py judges it): from the e2e matrix as it was before 3.14 (bookworm, 3.13
    with python-build, published), `add-python 3.14`, `lock` against the mirror, a signed
    release for linux/amd64 + linux/arm64 (also `make test`'s multi-platform release), then
    `retire-python 3.13`."""
    return run_team_flow(tmp_path_factory.mktemp("team"), f"e2e-{session_id}/team")


@pytest.fixture(scope="session")
def multiplatform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                  session_id: str) -> tuple[Path, Result]:
    """A signed release for linux/amd64 + linux/arm64 (``signing: {key: cosign.key}``, a key pair
    made for the session; test_supply_chain.py checks what the push phase attached). `make
    test`: the team flow's release of the bookworm 3.14 source cells (one release serves both:
    CI budget); `make test-full`: every cell of the e2e matrix, every platform."""
    if not FULL:
        flow: dict[str, Any] = request.getfixturevalue("team_flow")
        return flow["config"], flow["release"]
    request.getfixturevalue("e2e_bases")
    ws = tmp_path_factory.mktemp("multiplatform")
    config = make_multiplatform_config(ws, f"e2e-{session_id}/multi")
    cosign_key_pair(ws)
    with config.open("a") as f:
        f.write("\nsigning:\n  key: cosign.key\n")
    for step in (("lock",), ("render",)):
        res = orch(*step, config=config)
        assert res.rc == 0, res.explain()
    return config, orch("release", config=config, report=ws / "release.json",
                        env={"COSIGN_PASSWORD": COSIGN_PASSWORD})


@pytest.fixture(scope="session")
def release(workspace: Path) -> Result:
    """The first release of the e2e matrix into a fresh repository."""
    return orch("release", config=workspace, report=workspace.parent / "release.json")


class Server:
    """A static HTTP server on 127.0.0.1 (random port), for a private copy of a mirror."""

    def __init__(self, root: Path) -> None:
        handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(root))  # noqa: E731
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server() -> Iterator[type[Server]]:
    yield Server


# ------------------------------------------------------------- the team flow


def team_matrix(path: Path) -> None:
    """The e2e matrix as it was before 3.14: bookworm only, 3.13 built with python-build (as
    the org's `include` does), source for new minors; signed."""
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    data["distros"] = {"bookworm": {**data["distros"]["bookworm"], "methods": ["source"]}}
    data["pythons"] = [p for p in data["pythons"] if p["version"].startswith("3.13.")]
    data["include"] = [{"distro": "bookworm", "python": "3.13", "method": "python-build"}]
    data["exclude"] = [{"python": "3.13", "method": "source"},
                       {"method": "python-build", "variant": "minimal"}]
    data["tags"].pop("defaults", None)
    data["signing"] = {"key": "cosign.key"}
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=100))


def plan_ids(config: Path) -> set[str]:
    loaded = loader.load(config, SESSION_DATE)
    return {i.id for i in plan.build(loaded, lockfile.read(loaded), today=SESSION_DATE).images}


def tags(repo: str) -> dict[str, str | None]:
    reg = registry()
    return {t: reg.digest(repo, t) for t in reg.tags(repo)}


def run_team_flow(ws: Path, repo: str) -> dict[str, Any]:
    config = make_multiplatform_config(ws, repo)
    team_matrix(config)
    cosign_key_pair(ws)
    signed = {"COSIGN_PASSWORD": COSIGN_PASSWORD}
    steps: dict[str, Any] = {"config": config, "repo": repo}
    for step in (("lock",), ("render",)):
        res = orch(*step, config=config)
        assert res.rc == 0, res.explain()
    first: Result = orch("release", config=config, report=ws / "first.json", env=signed)
    steps["first"] = first
    steps["ids_before_add"] = plan_ids(config)
    steps["add"] = orch("add-python", "3.14", config=config)
    steps["lock"] = orch("lock", config=config)
    steps["ids_after_add"] = plan_ids(config)
    steps["release"] = orch("release", "--only", "3.14-*", config=config,
                            report=ws / "release.json", env=signed)
    steps["tags_before_retire"] = tags(repo)
    steps["retire"] = orch("retire-python", "3.13", config=config)
    steps["ids_after_retire"] = plan_ids(config)
    steps["tags_after_retire"] = tags(repo)
    return steps

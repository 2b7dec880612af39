"""Supply chain against the real tools: a throwaway cosign key pair, the runtime image the
multi-platform release pushed (bookworm, CPython 3.13 from source, amd64 + arm64) signed and
attested with release/attest.attach (real syft, real cosign, no transparency log), then:
- `cosign verify --key` (the application teams' recipe) and `orchestrator verify --key` pass;
- each platform's SBOM attestation lists CPython with the locked version and sha256, and the
  image's dpkg packages (every runtime package images.yaml installs);
- a tag re-pointed to an unsigned digest (the dev image, never signed here) fails both, and
  promote refuses to move a tag to that digest while it moves one to the signed digest.
Only tags of its own are written ("supply-chain-*"), besides cosign's .sig/.att tags.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from orchestrator import config as config_mod
from orchestrator import lock as lock_mod
from orchestrator import plan as plan_mod
from orchestrator import sbom, settings, signing, verify
from orchestrator.config import Signing
from orchestrator.registry import Registry, registry_for
from orchestrator.release import promote
from orchestrator.release.attest import attach
from orchestrator.release.state import Run, work_dir
from orchestrator.report import Report
from tests.e2e.conftest import REGISTRY, Result
from tests.fake_engine import FakeEngine

pytestmark = [pytest.mark.docker, pytest.mark.slow]

RUNTIME, DEV = "3.13-source-bookworm-runtime", "3.13-source-bookworm-dev"
PASSWORD = "e2e-throwaway"
REPO_ROOT = Path(__file__).resolve().parents[2]


def key_pair(dest: Path) -> None:
    """cosign.key (encrypted with PASSWORD) and cosign.pub in ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["cosign", "generate-key-pair"], cwd=dest, capture_output=True, text=True,
                          env={**os.environ, "COSIGN_PASSWORD": PASSWORD}, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (dest / "cosign.key").is_file() and (dest / "cosign.pub").is_file()


def cosign_verify(public_key: Path, ref: str) -> subprocess.CompletedProcess[str]:
    """The README's one-line recipe for application teams."""
    return subprocess.run(["cosign", "verify", "--key", str(public_key),
                           "--insecure-ignore-tlog=true", ref],
                          capture_output=True, text=True, timeout=120, check=False)


def orchestrator_verify(public_key: Path, ref: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", "verify", "--key", str(public_key),
                           ref], capture_output=True, text=True, timeout=300, check=False,
                          cwd=REPO_ROOT, env={**os.environ, "ORCH_LOG_FORMAT": "console"})


def staged(cell: str, repository: str, digest: str, tag: str) -> promote.StagedCell:
    return {"id": cell, "status": "ok", "phase": "staged", "repository": repository,
            "digest": digest, "tags": [tag]}


def check_supply_chain(config: Path, signed_digest: str, unsigned_digest: str, keys_dir: Path,
                       *, cell: str = RUNTIME) -> None:
    """Sign and attest ``signed_digest`` (the pushed image of ``cell``), then check it and a
    tag re-pointed to ``unsigned_digest``. Needs the cell's build record (its state file)."""
    today = settings.get().today
    loaded = config_mod.load(config, today)
    lock = lock_mod.read(loaded)
    plan = plan_mod.build(loaded, lock, only=[cell], today=today)
    run = Run(loaded, lock, plan, Report("push", plan.profile, plan.date), work_dir(loaded),
              engine=FakeEngine(registry_for))
    host, repo = loaded.config.publish.registry, loaded.config.publish.repository
    name, reg = f"{host}/{repo}", Registry(host)
    key_pair(keys_dir)
    public = keys_dir / "cosign.pub"
    cosign = signing.Cosign(signing.keys_for(Signing(key=str(keys_dir / "cosign.key")), loaded.root))
    img = plan.image(cell)

    out = attach(run, img, signed_digest, cosign, formats=("spdx", "cyclonedx"))
    assert set(out.platforms) == set(img.platforms)

    reg.tag(repo, signed_digest, "supply-chain-check")
    tagged = f"{name}:supply-chain-check"
    proc = cosign_verify(public, tagged)
    assert proc.returncode == 0, proc.stderr
    proc = orchestrator_verify(public, tagged)
    assert proc.returncode == 0 and proc.stdout.startswith(f"verified  {tagged} "), proc.stdout + proc.stderr

    py = lock.python(img.python)
    cpython = sbom.CPython(py.version, img.method, py.url, py.sha256, run.prefix(img))
    runtime_packages = set(loaded.config.distros[img.distro].packages.runtime)
    for plat, digest in out.platforms.items():
        got = cosign.verify_attestation(f"{name}@{digest}", "spdxjson")
        assert got.ok, (plat, got.reason)
        doc = got.statements[0]["predicate"]
        assert sbom.check_spdx(doc, cpython) == [], plat
        assert runtime_packages <= set(sbom.dpkg_packages(doc)), (plat, runtime_packages)
        arch = plat.split("/")[1]
        assert any(f"arch={arch}" in r["referenceLocator"] for p in doc["packages"]
                   for r in p.get("externalRefs", []) if r["referenceType"] == "purl"), plat

    reg.tag(repo, unsigned_digest, "supply-chain-check")  # re-pointed: tampered
    proc = cosign_verify(public, tagged)
    assert proc.returncode != 0 and "no signatures found" in proc.stderr, proc.stderr
    proc = orchestrator_verify(public, tagged)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"FAILED    {tagged} ({unsigned_digest}): signature: no "
                                  "signatures found"), proc.stdout

    gate = verify.promote_gate(cosign, reg)
    refused = promote.promote([staged(cell, name, unsigned_digest, "supply-chain-promoted")], reg,
                              all_or_nothing=False, today=today, gate=gate).cell(cell)
    assert (refused.status, refused.phase) == ("failed", "verify"), refused.message
    assert refused.message.startswith(f"refused: {name}@{unsigned_digest} is unsigned")
    assert reg.digest(repo, "supply-chain-promoted") is None
    moved = promote.promote([staged(cell, name, signed_digest, "supply-chain-promoted")], reg,
                            all_or_nothing=False, today=today, gate=gate).cell(cell)
    assert moved.status == "ok" and moved.tags_moved == ["supply-chain-promoted"]
    assert reg.digest(repo, "supply-chain-promoted") == signed_digest


@pytest.fixture
def cosign_password() -> Iterator[None]:
    old = settings.get()
    settings.override(dataclasses.replace(old, environ={**old.environ, "COSIGN_PASSWORD": PASSWORD}))
    yield
    settings.override(old)


def test_sign_attest_verify_and_refuse_a_re_pointed_tag(
        multiplatform: tuple[Path, Result], tmp_path: Path, cosign_password: None) -> None:
    config, release = multiplatform
    assert release.rc == 0, release.explain()
    assert yaml.safe_load(config.read_text())["publish"]["registry"] == REGISTRY
    cells = release.cells()
    check_supply_chain(config, cells[RUNTIME]["digest"], cells[DEV]["digest"], tmp_path / "keys")

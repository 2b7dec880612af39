"""Supply chain against the real tools, through the real push path: the multi-platform release
(bookworm, CPython 3.14 from source, amd64 + arm64; conftest.multiplatform) has ``signing:`` in
its images.yaml with a key pair made for the session, so its push phase ran syft and cosign on
every image it pushed, before the tags moved. Then:
- the report says what was signed and attested, per cell;
- `cosign verify --key` (the application teams' recipe) and `orchestrator verify --key` pass
  on the public tag;
- each platform's SBOM attestation lists CPython with the locked version and sha256, and the
  image's dpkg packages (every runtime package images.yaml installs); the provenance names the
  cell, both platforms, the pinned base and the build's args;
- a tag re-pointed to an unsigned digest (an index of the same platform manifests with an
  annotation of its own: a digest nobody signed) fails both, and promote refuses to move a tag
  to that digest while it moves one to the signed digest.
Only tags of its own are written ("supply-chain-*"), besides cosign's .sig/.att tags.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator import settings
from orchestrator.config import loader
from orchestrator.lock import lockfile
from orchestrator.planning import plan
from orchestrator.registry import Registry
from orchestrator.release import promote
from orchestrator.supplychain import sbom, signing, verify
from tests.e2e.conftest import REGISTRY, SESSION_DATE, Result

pytestmark = [pytest.mark.docker, pytest.mark.slow]

RUNTIME, DEV = "3.14-source-bookworm-runtime", "3.14-source-bookworm-dev"
REPO_ROOT = Path(__file__).resolve().parents[2]
SPDX, SLSA = signing.PREDICATE_TYPES["spdxjson"], signing.PREDICATE_TYPES["slsaprovenance1"]


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


def unsigned_copy(reg: Registry, repo: str, digest: str, tag: str) -> str:
    """Under ``tag``: the index ``digest`` with an annotation of its own, so a digest nobody
    signed (its platform manifests are the signed ones); what a tag re-pointed by someone
    without the key shows."""
    found = reg.manifest(repo, digest)
    assert found is not None, digest
    body, media_type, _ = found
    doc = json.loads(body)
    assert "manifests" in doc, media_type  # a multi-platform image is an index
    doc["annotations"] = {**doc.get("annotations", {}), "org.orchestrator.e2e.unsigned": "1"}
    copy = reg.put_manifest(repo, tag, json.dumps(doc).encode(), media_type)
    assert copy != digest
    return copy


def check_report(cell: dict[str, Any], name: str, platforms: dict[str, str]) -> None:
    """What the push phase says it signed and attested for one pushed cell."""
    digest = cell["digest"]
    assert cell["signed"] is True, cell
    assert set(cell["signatures"]) == {f"{name}@{d}" for d in (digest, *platforms.values())}
    atts = cell["attestations"]
    # no scan.vex rule in this config: no OpenVEX document (OpenVEX wants one statement)
    assert Counter(a["predicate_type"] for a in atts) == {SPDX: len(platforms), SLSA: 1}
    assert {(a["platform"], a["subject"]) for a in atts if a["predicate_type"] == SPDX} == {
        (p, f"{name}@{d}") for p, d in platforms.items()}
    assert [a["subject"] for a in atts if a["predicate_type"] == SLSA] == [f"{name}@{digest}"]


def test_the_release_signed_and_attested_what_it_pushed_and_a_re_pointed_tag_fails(
        multiplatform: tuple[Path, Result]) -> None:
    config, release = multiplatform
    assert release.rc == 0, release.explain()
    assert yaml.safe_load(config.read_text())["signing"] == {"key": "cosign.key"}
    today = SESSION_DATE  # the ORCH_DATE the release ran with
    loaded = loader.load(config, today)
    lock = lockfile.read(loaded)
    host, repo = loaded.config.publish.registry, loaded.config.publish.repository
    assert host == REGISTRY
    name, reg = f"{host}/{repo}", Registry(host)
    public = config.parent / "cosign.pub"
    cosign = signing.Cosign(signing.keys_from_option(str(public)), settings.get().child_env({}))
    cells = release.cells()
    img = plan.build(loaded, lock, only=[RUNTIME], today=today).image(RUNTIME)
    signed_digest = cells[RUNTIME]["digest"]
    platforms = reg.platform_manifests(repo, signed_digest) or {}
    assert set(platforms) == set(img.platforms) == {"linux/amd64", "linux/arm64"}
    for cid in (RUNTIME, DEV):
        check_report(cells[cid], name, reg.platform_manifests(repo, cells[cid]["digest"]) or {})

    tagged = f"{name}:{cells[RUNTIME]['tags'][0]}"  # a public tag the release moved
    proc = cosign_verify(public, tagged)
    assert proc.returncode == 0, proc.stderr
    proc = orchestrator_verify(public, tagged)
    assert proc.returncode == 0 and proc.stdout.startswith(f"verified  {tagged} "), \
        proc.stdout + proc.stderr
    # shown, not required: no scan.vex rule applies here (test_scan.py checks one that does)
    assert "openvex linux/arm64 (none)" in proc.stdout, proc.stdout

    py = lock.python(img.python)
    cpython = sbom.CPython(py.version, img.method, py.url, py.sha256,
                           plan.prefix_for(loaded.config, img.python))
    runtime_packages = set(loaded.config.distros[img.distro].packages.runtime)
    for plat, digest in platforms.items():
        got = cosign.verify_attestation(f"{name}@{digest}", "spdxjson")
        assert got.ok, (plat, got.reason)
        doc = got.statements[0]["predicate"]
        assert sbom.check_spdx(doc, cpython) == [], plat
        assert runtime_packages <= set(sbom.dpkg_packages(doc)), (plat, runtime_packages)
        arch = plat.split("/")[1]
        assert any(f"arch={arch}" in r["referenceLocator"] for p in doc["packages"]
                   for r in p.get("externalRefs", []) if r["referenceType"] == "purl"), plat
    got = cosign.verify_attestation(f"{name}@{signed_digest}", "slsaprovenance1")
    assert got.ok, got.reason
    build = got.statements[0]["predicate"]["buildDefinition"]
    external = build["externalParameters"]
    assert (external["cell"], external["target"]) == (RUNTIME, img.target)
    assert external["platforms"] == list(img.platforms)
    assert external["buildArgs"]["SECURITY_REFRESH"] == "0"  # release, not a nightly
    base = lock.base(img.distro)
    assert build["resolvedDependencies"][0]["digest"] == {
        "sha256": str(base.digest).removeprefix("sha256:")}
    assert {"uri": py.url, "digest": {"sha256": py.sha256}, "name": py.filename} in \
        build["resolvedDependencies"]

    check = f"{name}:supply-chain-check"
    unsigned_digest = unsigned_copy(reg, repo, signed_digest, "supply-chain-check")
    proc = cosign_verify(public, check)
    assert proc.returncode != 0 and "no signatures found" in proc.stderr, proc.stderr
    proc = orchestrator_verify(public, check)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"FAILED    {check} ({unsigned_digest}): signature: no "
                                  "signatures found"), proc.stdout

    gate = verify.promote_gate(cosign, reg)
    refused = promote.promote([staged(RUNTIME, name, unsigned_digest, "supply-chain-promoted")],
                              reg, all_or_nothing=False, today=today, gate=gate).cell(RUNTIME)
    assert (refused.status, refused.phase) == ("failed", "verify"), refused.message
    assert refused.message.startswith(f"refused: {name}@{unsigned_digest} is unsigned")
    assert reg.digest(repo, "supply-chain-promoted") is None
    moved = promote.promote([staged(RUNTIME, name, signed_digest, "supply-chain-promoted")], reg,
                            all_or_nothing=False, today=today, gate=gate).cell(RUNTIME)
    assert moved.status == "ok" and moved.tags_moved == ["supply-chain-promoted"]
    assert reg.digest(repo, "supply-chain-promoted") == signed_digest

"""Supply chain of a pushed image: per platform an SBOM (syft + the CPython entry) and an
OpenVEX document when a scan.vex rule applies (supplychain/vex.py: the rules against what the
smoke test found absent; OpenVEX wants at least one statement), the performance record on the
platform it was measured on when ``perf.enabled`` made one (release/perf.py), one SLSA
provenance for the build, a cosign signature on the pushed digest and on each platform
manifest, and the SBOMs, OpenVEX documents, performance records and provenance attested with
cosign. Called by the push phase for
every pushed digest when images.yaml has ``signing:``; what it made is kept under the work dir
(``supply/<cell>/``).

Where things go: the signature on the pushed digest (the index of a multi-platform image) and
on each platform manifest, so that a pull by tag, index digest or platform digest verifies;
each platform's SBOM, OpenVEX document and performance record on that platform's manifest
digest (an SBOM describes one filesystem, a record one interpreter's speed);
the provenance on the pushed digest (one build made every platform).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator import naming, runner, timestamps
from orchestrator.config.publish import VexRule
from orchestrator.errors import SupplyChainError
from orchestrator.lock import lockfile
from orchestrator.perf import predicate as perf_predicate
from orchestrator.planning.plan import PlannedImage
from orchestrator.registry import Registry, scheme_for
from orchestrator.release.state import Run
from orchestrator.scan import images
from orchestrator.supplychain import provenance, sbom, signing, vex
from orchestrator.supplychain.signing import Cosign

SBOM_TYPES = {"spdx": "spdxjson", "cyclonedx": "cyclonedx"}  # format -> cosign --type
PROVENANCE_TYPE = "slsaprovenance1"
VEX_TYPE = "openvex"
PERF_TYPE = perf_predicate.PREDICATE_TYPE


@dataclass(frozen=True)
class Attached:
    name: str  # host/repo
    digest: str
    platforms: dict[str, str]  # platform -> manifest digest
    sboms: dict[str, dict[str, Path]]  # platform -> format -> file
    provenance: Path  # the in-toto statement (its predicate is what cosign attested)
    vex: dict[str, Path] = field(default_factory=dict)  # platform -> OpenVEX document
    perf: dict[str, Path] = field(default_factory=dict)  # platform -> performance record

    @property
    def signed(self) -> list[str]:
        """What cosign signed: the pushed digest, then each other platform manifest."""
        return [f"{self.name}@{d}" for d in self.subjects]

    @property
    def subjects(self) -> list[str]:
        return [self.digest] + [d for d in self.platforms.values() if d != self.digest]

    def attestations(self) -> list[dict[str, str]]:
        """What cosign attested, for the report: predicate type, subject, platform, local file."""
        out = [{"predicate_type": signing.PREDICATE_TYPES[SBOM_TYPES[fmt]],
                "subject": f"{self.name}@{self.platforms[plat]}", "platform": plat,
                "file": str(path)}
               for plat, paths in self.sboms.items() for fmt, path in paths.items()]
        out += [{"predicate_type": signing.PREDICATE_TYPES[VEX_TYPE],
                 "subject": f"{self.name}@{self.platforms[plat]}", "platform": plat,
                 "file": str(path)} for plat, path in self.vex.items()]
        out += [{"predicate_type": PERF_TYPE, "subject": f"{self.name}@{self.platforms[plat]}",
                 "platform": plat, "file": str(path)} for plat, path in self.perf.items()]
        out.append({"predicate_type": signing.PREDICATE_TYPES[PROVENANCE_TYPE],
                    "subject": f"{self.name}@{self.digest}", "platform": "",
                    "file": str(self.provenance)})
        return out


@dataclass(frozen=True)
class Tools:
    """The external commands of the supply chain: ``runner.run`` unless a test passes fakes."""

    cosign: signing.Runner | None = None
    syft: sbom.Runner | None = None


def cosign_for(run: Run, tools: Tools = Tools()) -> Cosign | None:
    """The signer images.yaml's ``signing:`` configures (None: not configured). Its public key
    file, private key file and password are checked here, before anything is pushed."""
    sig = run.config.signing
    if sig is None:
        return None
    cosign = Cosign(signing.keys_for(sig, run.loaded.root, str(run.loaded.path)),
                    run.settings.child_env({}), run=tools.cosign)
    cosign.check_signing_key()
    return cosign


def syft_for(run: Run, tools: Tools = Tools()) -> sbom.Syft:
    """The pinned syft in the tools dir the settings name (none there: SupplyChainError, one
    line naming the install command), run by ``tools.syft`` (runner.run unless a test's fake)."""
    return sbom.Syft(sbom.syft_path(run.settings.tools_dir), tools.syft or runner.run)


def _time(text: str, what: str, cell: str) -> dt.datetime:
    try:
        return timestamps.parse(text)
    except ValueError:
        raise SupplyChainError(f"{cell}: no {what} time recorded by its build ({text!r}); build "
                               "it again with this orchestrator, then push") from None


def provenance_inputs(run: Run, img: PlannedImage) -> provenance.Inputs:
    """What the provenance of ``img`` says, from the plan, the lock, the rendered files and
    what its build recorded in the cell state."""
    st = run.load_state(img.id)
    base = run.lock.base(img.distro)
    if base.digest is None:
        raise SupplyChainError(f"{img.id}: base image {base.image} is not pinned in images.lock")
    sources: list[provenance.Source] = []
    if img.build:  # compiled from the locked tarball
        py = run.lock.python(img.base_minor)
        sources.append(provenance.Source(py.filename, py.url, py.sha256))
        pyenv = run.lock.pyenv
        if img.method == "python-build" and pyenv is not None and pyenv.sha256:
            sources.append(provenance.Source(f"pyenv-{pyenv.version}", pyenv.url, pyenv.sha256))
    root = run.loaded.root
    return provenance.Inputs(
        cell=img.id, target=img.target, dockerfile=img.dockerfile,
        dockerfile_sha256=provenance.sha256_file(root / img.dockerfile),
        platforms=img.platforms, build_args=st.build_args, profile=run.plan.profile,
        base_image=base.image, base_digest=base.digest,
        lock_sha256=provenance.sha256_file(lockfile.lock_path(run.loaded)),
        config_sha256=provenance.sha256_file(run.loaded.path),
        builder_id=run.settings.builder_id,
        started=_time(st.build_started, "start", img.id),
        finished=_time(st.build_finished, "finish", img.id),
        sources=tuple(sources), revision=run.settings.revision,
        repository=run.config.labels.get(naming.OCI.source, ""),
        invocation_id=run.settings.invocation_id, labels=run.config.labels,
        vulnerability_db=run.scan_db)


def sbom_cpython(run: Run, img: PlannedImage) -> sbom.CPython | None:
    """The compiled CPython the SBOM of ``img`` names: the locked tarball of its CPython minor
    (3.14 for a 3.14t image; images.lock has no pythons.3.14t)."""
    return sbom.cpython_for(run.lock, img.base_minor, img.method, run.prefix(img))


def vex_rules(run: Run) -> tuple[VexRule, ...]:
    return run.config.scan.vex if run.config.scan is not None else ()


def expected_vex(run: Run, img: PlannedImage) -> dict[str, frozenset[str]]:
    """platform -> the advisories the OpenVEX document of ``img`` would say not_affected now
    (the current scan.vex rules against its last smoke-test record; platforms without a record
    are left out)."""
    rules = vex_rules(run)
    return {plat: frozenset(r.advisory for r in vex.absent(found, rules))
            for plat, found in run.load_state(img.id).components.items()}


def vex_document(run: Run, img: PlannedImage, ref: str, platform: str,
                 sboms: dict[str, Path]) -> dict[str, object]:
    """The OpenVEX document of ``img`` on ``platform`` (pushed as ``ref``): images.yaml's
    scan.vex rules against what its last passing smoke test found absent there."""
    rules = vex_rules(run)
    st = run.load_state(img.id)
    components = st.components.get(platform)
    if rules and components is None:
        raise SupplyChainError(f"{img.id}: no smoke-test record of its components on {platform} "
                               "(the OpenVEX document is made from it); run `orchestrator "
                               "test` on it again, then push")
    spdx = sboms.get("spdx")
    sbom_doc = json.loads(spdx.read_text()) if spdx is not None else {}
    return vex.document(ref, platform, sbom_doc, components or {}, rules,
                        author=f"{run.config.publish.org} (python -m orchestrator)",
                        timestamp=st.build_finished)  # provenance_inputs checked it


def attach(run: Run, img: PlannedImage, digest: str, cosign: Cosign, syft: sbom.Syft, *,
           registry: Registry | None = None, formats: tuple[str, ...] = ("spdx",)) -> Attached:
    """SBOMs (made by ``syft``: syft_for), provenance, signatures and attestations of ``img``
    pushed as ``digest``."""
    registry = registry or run.registry()
    plats = registry.platform_manifests(run.repo, digest)
    if not plats:
        raise SupplyChainError(f"{run.repo_host}/{run.repo}@{digest}: not in the registry")
    name = naming.repository_ref(run.repo_host, run.repo)
    out = run.work / "supply" / img.id
    cpython = sbom_cpython(run, img)
    sboms = {plat: sbom.image_sboms(syft, f"{name}@{d}", plat, cpython,
                                    out / plat.replace("/", "-"), formats,
                                    http=scheme_for(run.repo_host) == "http",
                                    env=run.settings.child_env({}),
                                    source_name=name, source_version=img.immutable_tag)
             for plat, d in plats.items()}
    inputs = provenance_inputs(run, img)
    vex_docs = {plat: doc for plat, d in plats.items()
                if (doc := vex_document(run, img, f"{name}@{d}", plat, sboms[plat]))["statements"]}
    attached = Attached(name, digest, plats, sboms, out / "provenance.json",
                        {plat: out / f"{plat.replace('/', '-')}.openvex.json" for plat in vex_docs})
    statement = provenance.statement([(name, d) for d in attached.subjects], inputs)
    out.mkdir(parents=True, exist_ok=True)
    predicate_path = out / "provenance.predicate.json"
    attached.provenance.write_text(json.dumps(statement, indent=2) + "\n")
    predicate_path.write_text(json.dumps(statement["predicate"], indent=2) + "\n")
    for plat, doc in vex_docs.items():
        attached.vex[plat].write_text(json.dumps(doc, indent=2) + "\n")

    cosign.sign(attached.signed)
    for plat, paths in sboms.items():
        for fmt, path in paths.items():
            cosign.attest(f"{name}@{plats[plat]}", path, SBOM_TYPES[fmt])
    for plat, path in attached.vex.items():
        cosign.attest(f"{name}@{plats[plat]}", path, VEX_TYPE)
    cosign.attest(f"{name}@{digest}", predicate_path, PROVENANCE_TYPE)
    return dataclasses.replace(attached, perf=attach_perf(run, img, name, plats, out, cosign))


def built_sboms(run: Run, img: PlannedImage, digest: str | None, syft: sbom.Syft,
                registry: Registry) -> images.EvidenceSource:
    """Without ``signing:``, what a scan gives grype for ``img`` pushed as ``digest`` (None:
    not an image of the inputs planned now) and for the image it replaces: the SPDX SBOM of
    each platform manifest, made when asked for as ``attach`` makes the attested one (syft,
    then the CPython entry: on ``digest``'s platform manifests always, on another image's when
    its label says it carries the locked CPython version), into ``scan/sboms/<cell>/`` of the
    work dir, so the compiled CPython is matched by its purl and CPE either way; on
    ``digest``'s platforms also the OpenVEX document when a scan.vex rule applies. An SBOM
    that cannot be made: grype reads the image (the note says why)."""
    name = naming.repository_ref(run.repo_host, run.repo)
    out = images.sbom_dir(run.work) / img.id
    cpython = sbom_cpython(run, img)
    built = frozenset((registry.platform_manifests(run.repo, digest) or {}).values()
                      if digest else ())

    def source(ref: str, platform: str) -> images.Evidence:
        pdigest = ref.rpartition("@")[2]
        ours = pdigest in built
        entry = cpython if ours else None
        if cpython is not None and not ours:
            labels = ((registry.image_config(run.repo, pdigest) or {}).get("config") or {}) \
                .get("Labels") or {}
            entry = cpython if labels.get(run.label_keys.python_version) == cpython.version \
                else None
        try:
            paths = sbom.image_sboms(syft, ref, platform, entry,
                                     out / pdigest.removeprefix("sha256:"), ("spdx",),
                                     http=scheme_for(run.repo_host) == "http",
                                     env=run.settings.child_env({}), source_name=name,
                                     source_version=img.immutable_tag)
        except SupplyChainError as exc:
            return images.Evidence(None, None, f"no SBOM ({exc}): grype read the image")
        vex_path = None
        if ours and vex_rules(run):
            try:
                doc = vex_document(run, img, ref, platform, paths)
            except SupplyChainError:
                doc = {"statements": []}  # no smoke-test record: no document, as attach
            if doc["statements"]:
                vex_path = paths["spdx"].with_name(paths["spdx"].name.replace(".spdx.json",
                                                                              ".openvex.json"))
                vex_path.write_text(json.dumps(doc, indent=2) + "\n")
        return images.Evidence(paths["spdx"], vex_path, "no signing: in images.yaml: the SBOM "
                               "this run made, not attested")

    return source


def perf_record(run: Run, img: PlannedImage) -> dict[str, Any] | None:
    """The performance record this run made of ``img``'s tested image (release/perf.py), or
    None: perf is off, or the record is of another image (an earlier run's)."""
    st = run.load_state(img.id)
    rec = st.perf
    if not run.config.perf.enabled or not rec:
        return None
    return rec if rec.get("candidate", {}).get("image_id") == st.tested_image_id else None


def attach_perf(run: Run, img: PlannedImage, name: str, plats: dict[str, str], out: Path,
                cosign: Cosign) -> dict[str, Path]:
    """The performance record attested on the platform manifest it was measured on, beside
    that platform's SBOM (platform -> the predicate file; none without a record)."""
    rec = perf_record(run, img)
    plat = str(rec.get("platform", "")) if rec else ""
    if rec is None or plat not in plats:
        return {}
    path = out / f"{plat.replace('/', '-')}.perf.json"
    path.write_text(json.dumps(rec, indent=2) + "\n")
    cosign.attest(f"{name}@{plats[plat]}", path, PERF_TYPE)
    return {plat: path}

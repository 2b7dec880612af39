"""Fingerprint and relabel a built candidate: read what each platform's image really holds,
compute its fingerprint, and bake it (with dates and hardening) into the image's labels."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json

from orchestrator import naming, render, timestamps
from orchestrator.apt import sources
from orchestrator.planning.plan import PlannedImage
from orchestrator.registry import fingerprint
from orchestrator.release.state import CellState, Run
from orchestrator.smoke import hardening


def stages_hash(run: Run, img: PlannedImage) -> str:
    """The hash of the Dockerfile stages ``img`` is built from, and of the CA certificates."""
    dockerfile = (run.loaded.output_dir / naming.dockerfile_path(img.distro)).read_text()
    certs = b"".join((run.loaded.root / c).read_bytes() for c in run.config.ca_certificates)
    return hashlib.sha256(render.stage_closure(dockerfile, img.target).encode()
                          + certs).hexdigest()


# Plan fields that change with the date, not with what is built.
_DATED = ("immutable_tag", "immutable_revision", "python_eol_days", "distro_eol_days", "cache")


def inputs_hash(run: Run, img: PlannedImage, base_digest: str) -> str:
    """Everything a cell is built and tested from, known before any build: the base digest,
    the rendered stages it is built from (and the CA certificates), its build args (the lock's
    versions, URLs and sha256) and profile, its distro's and variant's settings and its plan
    entry. Equal inputs and no pending apt upgrade: the nightly has nothing to rebuild."""
    bake = json.loads((run.loaded.output_dir / naming.BAKE_FILE).read_text())
    spec = bake["target"][img.bake_target]
    args = {k: v for k, v in spec.get("args", {}).items() if k != "SECURITY_REFRESH"}
    if img.build:
        args |= render.profile_args(run.config, run.plan.profile)
    planned = {k: v for k, v in dataclasses.asdict(img).items() if k not in _DATED}
    doc = {"base": base_digest, "stages": stages_hash(run, img), "args": args,
           "labels": spec.get("labels", {}), "plan": planned,
           "distro": run.config.distros[img.distro].model_dump(mode="json"),
           "variant": {k: v.model_dump(mode="json") for k, v in run.config.variants.items()
                       if k == img.variant},
           "runtime_user": run.config.runtime_user.model_dump(mode="json")}
    return "sha256:" + hashlib.sha256(json.dumps(doc, sort_keys=True, default=str)
                                      .encode()).hexdigest()


def _labels(run: Run, img: PlannedImage, unlabelled: str, plat: str,
            contents: fingerprint.Contents, content_fingerprint: str, inputs: str) -> dict[str, str]:
    keys, oci = run.label_keys, naming.OCI
    created = timestamps.rfc3339(dt.datetime.combine(run.settings.today, dt.time(), dt.UTC),
                                 offset="+00:00")
    labels = {
        keys.fingerprint: content_fingerprint,
        keys.packages: contents.packages_label(),
        keys.python_tree: contents.tree_hash,
        keys.inputs: inputs,
        keys.apt_sources: sources.to_label(list(contents.apt_sources)),
        oci.created: created,
        oci.revision: run.settings.revision or "unknown",
        oci.ref_name: img.tags[0] if img.tags else img.immutable_tag,
    }
    if img.optimizations:
        labels[keys.optimizations] = img.optimizations[plat]
    if img.build:  # what the compiled tree really has, read from its ELF files
        labels[keys.hardening] = hardening.tree_hardening(
            run.engine, unlabelled, run.prefix(img), plat).summary
    return labels


def label(run: Run, img: PlannedImage, unlabelled_id: str, base_digest: str) -> None:
    """Read the real contents of every platform's image, compute its fingerprint, and bake it
    (and dates) into that platform's labels: one stage per platform, FROM the unlabelled
    candidate, picked by TARGETARCH."""
    unlabelled = run.unlabelled_ref(img.id)
    stages = stages_hash(run, img)
    read = fingerprint.read_contents if img.has_shell else fingerprint.read_contents_without_shell
    contents = {p: read(run.engine, unlabelled, run.prefix(img), platform=p) for p in img.platforms}
    fps = {p: fingerprint.fingerprint(base_digest, c, stages) for p, c in contents.items()}
    inputs = inputs_hash(run, img, base_digest)
    lines = []
    for plat, c in contents.items():
        labels = _labels(run, img, unlabelled, plat, c, fps[plat], inputs)
        lines += [f"FROM {unlabelled} AS {naming.relabel_stage(naming.platform_arch(plat))}"]
        lines += [f"LABEL {k}={json.dumps(v)}" for k, v in sorted(labels.items())]
    lines += [f"FROM {naming.relabel_stage('${TARGETARCH}')}"]
    image_id = run.engine.build_dockerfile("\n".join(lines) + "\n", run.candidate_ref(img.id),
                                           network=None, platforms=list(img.platforms),
                                           log_path=run.work / "logs" / f"{img.id}.label.log")
    native = img.platforms[0]
    sizes = {p: c.unpacked_bytes for p, c in contents.items()}
    combined = fingerprint.combined_fingerprint(fps)
    st = CellState(img.id, image_id, combined, contents[native].packages, "", sizes[native],
                   fps, sizes)
    run.save_state(st)
    res = run.report.cell(img.id)
    res.image_id, res.fingerprint, res.size_bytes = image_id, combined, sizes[native]
    res.platforms, res.sizes = list(img.platforms), sizes

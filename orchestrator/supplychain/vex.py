"""The OpenVEX document of one platform of a pushed image (OpenVEX 0.2.0), generated from the
build, never written by hand: images.yaml's ``scan.vex`` rules say which component an
advisory's flaw is in; the smoke test's probe (smoke/checks/components.py) says which of
those components this platform of the image ships; every rule whose component the image does
not ship becomes a ``not_affected`` statement with its justification and reason. Rules whose
component the image ships say nothing: the scanner's finding stands.

Products: the platform manifest as an OCI purl (with its sha-256 hash, the way grype names a
scanned image), its subcomponents the packages the flaw would be in (the SBOM's CPython
entries for the parts of CPython, pip's purl for pip). Each subcomponent is also a product of
its own: grype (v0.121) derives no image identifiers from an SPDX SBOM, so when it scans the
attested SBOM it matches a statement by the package's purl alone. The document is attached to
this platform manifest only, so such a statement speaks for this image and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.config.publish import VexRule
from orchestrator.imageref import parse

CONTEXT = "https://openvex.dev/ns/v0.2.0"
PREDICATE_TYPE = "https://openvex.dev/ns"  # what cosign attest --type openvex writes

# component -> (OpenVEX justification, what it is, whether it is part of CPython)
COMPONENTS: dict[str, tuple[str, str, bool]] = {
    "cpython-tests": ("vulnerable_code_not_present", "CPython's test suite (Lib/test)", True),
    "idle": ("vulnerable_code_not_present", "IDLE (Lib/idlelib)", True),
    "tkinter": ("vulnerable_code_not_present", "tkinter (Lib/tkinter)", True),
    "ensurepip": ("vulnerable_code_not_present", "ensurepip's bundled pip wheel", True),
    "pip": ("component_not_present", "pip", False),
    "headers": ("vulnerable_code_not_present", "CPython's C headers (Python.h)", True),
}
# deadsnakes' and Ubuntu's packages of CPython (noble's time_t transition: libpython3.12t64)
_CPYTHON_DEB = re.compile(r"^(lib)?python3\.\d+t?(t64)?(-minimal|-stdlib|-venv|-dev)?$")


def _purl(pkg: Mapping[str, Any]) -> str:
    for ref in pkg.get("externalRefs") or []:
        if ref.get("referenceType") == "purl":
            return str(ref.get("referenceLocator", ""))
    return ""


def cpython_purls(sbom: Mapping[str, Any]) -> list[str]:
    """The purls (without qualifiers) of the SBOM's CPython packages: the compiled CPython's
    entries (syft's ``python`` binary, our ``cpython``) or deadsnakes' python3.X packages."""
    found = {_purl(p).split("?", 1)[0] for p in sbom.get("packages") or []
             if str(p.get("name", "")) in ("python", "cpython")
             or _CPYTHON_DEB.match(str(p.get("name", "")))}
    return sorted(p for p in found if p)


def image_purl(ref: str) -> str:
    """host/repo@sha256:... as purl-spec's oci type: pkg:oci/NAME@DIGEST?repository_url=..."""
    parsed = parse(ref)
    name = parsed.repository.rsplit("/", 1)[-1]
    return f"pkg:oci/{name}@{parsed.digest}?repository_url={parsed.host}/{parsed.repository}"


def absent(components: Mapping[str, str | None], rules: Sequence[VexRule]) -> list[VexRule]:
    """The rules whose component the probe found absent (never probed: not absent)."""
    return [r for r in rules if r.component in components and components[r.component] is None]


def statements(ref: str, platform: str, sbom: Mapping[str, Any],
               components: Mapping[str, str | None], rules: Sequence[VexRule],
               timestamp: str) -> list[dict[str, Any]]:
    """One not_affected statement per rule whose component ``components`` (the probe's
    findings on ``platform``) says is absent."""
    digest = parse(ref).digest
    out: list[dict[str, Any]] = []
    for rule in absent(components, rules):  # shipped (or never probed): the finding stands
        justification, what, in_cpython = COMPONENTS[rule.component]
        subs = cpython_purls(sbom) if in_cpython else (["pkg:pypi/pip"] if rule.component == "pip"
                                                       else [])
        image: dict[str, Any] = {"@id": image_purl(ref),
                                 "hashes": {"sha-256": digest.removeprefix("sha256:")}}
        if subs:
            image["subcomponents"] = [{"@id": s} for s in subs]
        out.append({
            "vulnerability": {"name": rule.advisory},
            "timestamp": timestamp,
            "products": [image, *({"@id": s} for s in subs)],
            "status": "not_affected",
            "justification": justification,
            "impact_statement": f"{rule.reason} {what} is not in this image: the build left "
                                f"it out, and the smoke test found it absent on {platform}.",
        })
    return out


def document(ref: str, platform: str, sbom: Mapping[str, Any],
             components: Mapping[str, str | None], rules: Sequence[VexRule], *,
             author: str, timestamp: str) -> dict[str, Any]:
    """The OpenVEX document of the platform manifest ``ref`` (host/repo@sha256:...), its id
    derived from its content (the same build gives the same document)."""
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "author": author,
        "timestamp": timestamp,
        "version": 1,
        "tooling": "python -m orchestrator (generated from the build's smoke-test probe)",
        "statements": statements(ref, platform, sbom, components, rules, timestamp),
    }
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return {"@id": f"https://openvex.dev/docs/public/vex-{hashlib.sha256(canonical).hexdigest()}",
            **doc}

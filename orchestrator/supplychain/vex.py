"""The OpenVEX document of one platform of a pushed image (OpenVEX 0.2.0), generated from the
build, never written by hand: images.yaml's ``scan.vex`` rules say which component an
advisory's flaw is in; the smoke test's probe (smoke/checks/components.py) says which of
those components this platform of the image ships; every rule whose component the image does
not ship becomes a ``not_affected`` statement with its justification and reason. Rules whose
component the image ships say nothing: the scanner's finding stands.

Products: the platform manifest as an OCI purl (with its sha-256 hash, the way grype names a
scanned image), its subcomponents the packages the flaw would be in (the SBOM's CPython
entries for the parts of CPython, pip's purl for pip, for the compilers the SBOM's packages
built from gcc's and binutils' sources: gcc's runtime libraries in a runtime image). Each
subcomponent is also a product of its own: grype (v0.121) derives no image identifiers from an
SPDX SBOM, so when it scans the attested SBOM it matches a statement by the package's purl
alone. The document is attached to this platform manifest only, so such a statement speaks
for this image and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.config.publish import VexRule
from orchestrator.imageref import parse

CONTEXT = "https://openvex.dev/ns/v0.2.0"
PREDICATE_TYPE = "https://openvex.dev/ns"  # what cosign attest --type openvex writes

# component -> (OpenVEX justification, what it is, the packages a flaw in it is reported in:
# "cpython" the SBOM's CPython entries, "pip" pip, "toolchain" the SBOM's packages built from
# the compiler's and binutils' sources)
COMPONENTS: dict[str, tuple[str, str, str]] = {
    "cpython-tests": ("vulnerable_code_not_present", "CPython's test suite (Lib/test)", "cpython"),
    "idle": ("vulnerable_code_not_present", "IDLE (Lib/idlelib)", "cpython"),
    "tkinter": ("vulnerable_code_not_present", "tkinter (Lib/tkinter)", "cpython"),
    "ensurepip": ("vulnerable_code_not_present", "ensurepip's bundled pip wheel", "cpython"),
    "pip": ("component_not_present", "pip", "pip"),
    "headers": ("vulnerable_code_not_present", "CPython's C headers (Python.h)", "cpython"),
    # a runtime image has none of gcc, cc, g++, ld, as, cc1, but it ships gcc's runtime
    # libraries (libgcc-s1, libstdc++6, gcc-N-base: source package gcc-N), which the scanner
    # matches a gcc advisory against: those packages are the statement's subcomponents
    "compilers": ("vulnerable_code_not_present",
                  "The C toolchain (gcc, cc, g++, cc1, ld, as)", "toolchain"),
}
# deadsnakes' and Ubuntu's packages of CPython (noble's time_t transition: libpython3.12t64)
_CPYTHON_DEB = re.compile(r"^(lib)?python3\.\d+t?(t64)?(-minimal|-stdlib|-venv|-dev)?$")
# the source packages of the toolchain: gcc-12, gcc-14 (and their runtime libraries),
# gcc-defaults (gcc, cc, cpp, g++), binutils (ld, as, libbinutils)
_TOOLCHAIN_SOURCE = re.compile(r"^(gcc-\d+|gcc-defaults|binutils)$")


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


def _source(purl: str) -> str:
    """The source package a deb purl names (its ``upstream`` qualifier, syft's
    ``SOURCE[@VERSION]``), else the package itself; "" for another kind of purl."""
    if not purl.startswith("pkg:deb/"):
        return ""
    name = purl.split("?", 1)[0].rsplit("/", 1)[-1].split("@", 1)[0]
    query = purl.split("?", 1)[1] if "?" in purl else ""
    upstream = dict(urllib.parse.parse_qsl(query)).get("upstream", "")
    return upstream.split("@", 1)[0] or urllib.parse.unquote(name)


def toolchain_purls(sbom: Mapping[str, Any]) -> list[str]:
    """The purls (without qualifiers) of the SBOM's packages built from the toolchain's
    sources (gcc-N, gcc-defaults, binutils): in a runtime image gcc's runtime libraries. None
    there (a minimal image): the toolchain's own packages, unversioned, in the namespace of the
    SBOM's deb packages (debian when it has none), which name what is absent and match nothing
    the image has; never no subcomponent, which would make the statement speak for every
    package of the image."""
    purls = [p for pkg in sbom.get("packages") or [] if (p := _purl(pkg))]
    found = {p.split("?", 1)[0] for p in purls if _TOOLCHAIN_SOURCE.match(_source(p))}
    if found:
        return sorted(found)
    namespace = next((p.split("/")[1] for p in purls if p.startswith("pkg:deb/")), "debian")
    return [f"pkg:deb/{namespace}/{name}" for name in ("binutils", "gcc")]


def _subcomponents(kind: str, sbom: Mapping[str, Any]) -> list[str]:
    if kind == "cpython":
        return cpython_purls(sbom)
    if kind == "toolchain":
        return toolchain_purls(sbom)
    return ["pkg:pypi/pip"]


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
        justification, what, kind = COMPONENTS[rule.component]
        subs = _subcomponents(kind, sbom)
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

"""SBOMs of pushed images: syft (the one tools/go-tools.txt pins, built by
scripts/install-go-tools.sh into Settings.tools_dir) reads the image from the registry
(``registry:`` source, no Docker), one SPDX JSON (and optionally CycloneDX JSON) document per
platform; then the orchestrator adds the exact entry for the CPython it compiled, which no
scanner can know: version, build method, the source tarball's URL and sha256 from images.lock,
PURL, licence.

Naming follows syft's own binary classifier, so scanners that match syft's ``python`` package
(``pkg:generic/python@X.Y.Z``, CPEs ``python:python`` and ``python_software_foundation:python``)
match ours too. The PURL is purl-spec's ``generic`` type with its two documented qualifiers,
``download_url`` and ``checksum`` (``pkg:generic/python@3.13.15?checksum=sha256:...&
download_url=https://...``). The SPDX package is named ``cpython`` (the source package; syft's
``python`` is the binary it finds) and linked: image CONTAINS cpython, python GENERATED_FROM
cpython. Deadsnakes images have no such entry: their CPython is dpkg packages syft lists.
"""

from __future__ import annotations

import copy
import json
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import runner
from orchestrator.errors import SupplyChainError
from orchestrator.lock.lockfile import Lock

Doc = dict[str, Any]
Runner = Callable[..., runner.Completed]

SYFT_FORMATS = {"spdx": "spdx-json", "cyclonedx": "cyclonedx-json"}
LICENSE = "PSF-2.0"
SUPPLIER = "Organization: Python Software Foundation"
HOMEPAGE = "https://www.python.org/"
CPE_TEMPLATES = ("cpe:2.3:a:python:python:{v}:*:*:*:*:*:*:*",
                 "cpe:2.3:a:python_software_foundation:python:{v}:*:*:*:*:*:*:*")


@dataclass(frozen=True)
class CPython:
    """The CPython an image carries, as the orchestrator compiled it."""

    version: str  # 3.13.15
    method: str  # source | python-build
    url: str  # the source tarball (images.lock)
    sha256: str
    prefix: str  # /opt/<org>/python/3.13

    @property
    def purl(self) -> str:
        # purl-spec: qualifiers sorted by key, values percent-encoded except ':' and '/'.
        quals = {"checksum": f"sha256:{self.sha256}", "download_url": self.url}
        query = "&".join(f"{k}={urllib.parse.quote(v, safe=':/')}" for k, v in sorted(quals.items()))
        return f"pkg:generic/python@{urllib.parse.quote(self.version)}?{query}"

    @property
    def cpes(self) -> list[str]:
        return [t.format(v=self.version) for t in CPE_TEMPLATES]

    @property
    def spdx_id(self) -> str:
        return f"SPDXRef-Package-cpython-{self.version}-{self.method}"

    @property
    def comment(self) -> str:
        return (f"compiled by the orchestrator (build method {self.method}) from the tarball "
                f"pinned in images.lock; installed in {self.prefix}")


def cpython_for(lock: Lock, minor: str, method: str, prefix: str) -> CPython | None:
    """What an image of ``minor`` built with ``method`` carries (None: deadsnakes, no compile)."""
    if method == "deadsnakes":
        return None
    p = lock.python(minor)
    return CPython(p.version, method, p.url, p.sha256, prefix)


# --------------------------------------------------------------------------- syft


@dataclass(frozen=True)
class Syft:
    """The syft the SBOMs come from: its binary (``syft_path``) and what runs it
    (``runner.run``; tests pass a fake)."""

    binary: str
    run: Runner = runner.run


def syft_path(tools_dir: Path) -> str:
    """The pinned syft scripts/install-go-tools.sh built (``tools_dir/bin/syft``); not one
    from PATH, whose version (and so output shape) is anybody's. Missing: SupplyChainError,
    one line naming ``bash scripts/install-go-tools.sh syft``."""
    return runner.go_tool(tools_dir, "syft", SupplyChainError)


def scan(syft: Syft, ref: str, platform: str, outputs: dict[str, Path], *, http: bool,
         env: Mapping[str, str], source_name: str = "", source_version: str = "") -> None:
    """syft on ``ref`` (host/repo@digest, read from the registry) for ``platform``; one output
    file per format (``outputs``: "spdx"/"cyclonedx" -> path). ``http``: a plain-HTTP registry;
    ``env``: the environment syft runs in (Settings.child_env: ours and DOCKER_CONFIG)."""
    argv = [syft.binary, "scan", f"registry:{ref}", "--platform", platform, "--quiet"]
    for fmt, path in outputs.items():
        argv += ["--output", f"{SYFT_FORMATS[fmt]}={path}"]
    if source_name:
        argv += ["--source-name", source_name]
    if source_version:
        argv += ["--source-version", source_version]
    syft.run(argv, env={**env, "SYFT_CHECK_FOR_APP_UPDATE": "false",
                        "SYFT_REGISTRY_INSECURE_USE_HTTP": "true" if http else "false"},
             timeout=1800)


def read_doc(path: Path) -> Doc:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SupplyChainError(f"{path}: syft wrote no readable JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise SupplyChainError(f"{path}: not a JSON object")
    return doc


def write_doc(path: Path, doc: Doc) -> None:
    path.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")


def image_sboms(syft: Syft, ref: str, platform: str, cpython: CPython | None, out: Path,
                formats: tuple[str, ...] = ("spdx",), *, http: bool, env: Mapping[str, str],
                source_name: str = "", source_version: str = "", require_dpkg: bool = True,
                ) -> dict[str, Path]:
    """The SBOMs of one platform of a pushed image, with the CPython entry added:
    ``out``.spdx.json (and ``out``.cdx.json); returns format -> path. Refuses an SPDX document
    that lacks the dpkg packages (``require_dpkg``) or the locked CPython. ``env``: syft's
    environment (``scan``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = {"spdx": ".spdx.json", "cyclonedx": ".cdx.json"}
    paths = {fmt: out.with_name(out.name + suffix[fmt]) for fmt in formats}
    scan(syft, ref, platform, paths, http=http, env=env, source_name=source_name,
         source_version=source_version)
    edit = {"spdx": add_cpython_spdx, "cyclonedx": add_cpython_cyclonedx}
    for fmt, path in paths.items():
        doc = read_doc(path)
        if cpython is not None:
            doc = edit[fmt](doc, cpython)
        if fmt == "spdx":
            problems = check_spdx(doc, cpython, require_dpkg=require_dpkg)
            if problems:
                raise SupplyChainError(f"{path}: " + "; ".join(problems))
        write_doc(path, doc)
    return paths


# --------------------------------------------------------------------------- SPDX 2.3


def spdx_root(doc: Doc) -> str:
    """The SPDXID the document DESCRIBES (syft: the image)."""
    for rel in doc.get("relationships") or []:
        if rel.get("spdxElementId") == "SPDXRef-DOCUMENT" and rel.get("relationshipType") == "DESCRIBES":
            return str(rel["relatedSpdxElement"])
    described = doc.get("documentDescribes") or []
    if described:
        return str(described[0])
    raise SupplyChainError("the SPDX document describes nothing (no DESCRIBES relationship)")


def _purl(pkg: Doc) -> str:
    for ref in pkg.get("externalRefs") or []:
        if ref.get("referenceType") == "purl":
            return str(ref.get("referenceLocator", ""))
    return ""


def add_cpython_spdx(doc: Doc, cp: CPython) -> Doc:
    """``doc`` with the CPython package and its relationships (a new document; again: replaced)."""
    out = copy.deepcopy(doc)
    root = spdx_root(out)
    refs = [{"referenceCategory": "SECURITY", "referenceType": "cpe23Type", "referenceLocator": c}
            for c in cp.cpes]
    refs.append({"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                 "referenceLocator": cp.purl})
    package = {
        "name": "cpython", "SPDXID": cp.spdx_id, "versionInfo": cp.version,
        "supplier": SUPPLIER, "originator": SUPPLIER, "downloadLocation": cp.url,
        "filesAnalyzed": False, "checksums": [{"algorithm": "SHA256", "checksumValue": cp.sha256}],
        "homepage": HOMEPAGE, "sourceInfo": cp.comment, "licenseConcluded": LICENSE,
        "licenseDeclared": LICENSE, "copyrightText": "NOASSERTION",
        "summary": f"CPython {cp.version} (build method {cp.method}), prefix {cp.prefix}",
        "externalRefs": refs, "primaryPackagePurpose": "APPLICATION",
    }
    packages = [p for p in out.get("packages") or [] if p.get("SPDXID") != cp.spdx_id]
    binaries = [p["SPDXID"] for p in packages
                if _purl(p).split("?")[0] == f"pkg:generic/python@{cp.version}"]
    out["packages"] = packages + [package]
    rels = [r for r in out.get("relationships") or []
            if cp.spdx_id not in (r.get("spdxElementId"), r.get("relatedSpdxElement"))]
    rels.append({"spdxElementId": root, "relatedSpdxElement": cp.spdx_id,
                 "relationshipType": "CONTAINS"})
    rels += [{"spdxElementId": b, "relatedSpdxElement": cp.spdx_id,
              "relationshipType": "GENERATED_FROM"} for b in binaries]
    out["relationships"] = rels
    return out


def find_cpython_spdx(doc: Doc) -> Doc | None:
    return next((p for p in doc.get("packages") or [] if p.get("name") == "cpython"), None)


def dpkg_packages(doc: Doc) -> dict[str, str]:
    """name -> version of the dpkg packages an SPDX document lists (purl type deb)."""
    return {str(p["name"]): str(p.get("versionInfo", "")) for p in doc.get("packages") or []
            if _purl(p).startswith("pkg:deb/")}


def check_spdx(doc: Doc, cp: CPython | None, *, require_dpkg: bool = True) -> list[str]:
    """What is wrong with an image's SPDX SBOM: dpkg packages missing (``require_dpkg``); for a
    compiled CPython, its entry missing or not the locked one."""
    problems = []
    if require_dpkg and not dpkg_packages(doc):
        problems.append("no dpkg package listed (syft found no dpkg database)")
    if cp is None:
        return problems
    pkg = find_cpython_spdx(doc)
    if pkg is None:
        return problems + [f"no cpython package (expected {cp.version})"]
    sums = {c.get("algorithm"): c.get("checksumValue") for c in pkg.get("checksums") or []}
    for what, have, want in (("version", pkg.get("versionInfo"), cp.version),
                             ("sha256", sums.get("SHA256"), cp.sha256),
                             ("downloadLocation", pkg.get("downloadLocation"), cp.url),
                             ("purl", _purl(pkg), cp.purl),
                             ("licenseDeclared", pkg.get("licenseDeclared"), LICENSE)):
        if have != want:
            problems.append(f"cpython {what} is {have!r}, not {want!r}")
    contains = {(r.get("spdxElementId"), r.get("relationshipType"))
                for r in doc.get("relationships") or [] if r.get("relatedSpdxElement") == pkg["SPDXID"]}
    if (spdx_root(doc), "CONTAINS") not in contains:
        problems.append("the image does not CONTAIN the cpython package")
    return problems


# --------------------------------------------------------------------------- CycloneDX


def add_cpython_cyclonedx(doc: Doc, cp: CPython) -> Doc:
    """``doc`` (syft's CycloneDX JSON) with the CPython component (a new document)."""
    out = copy.deepcopy(doc)
    ref = f"cpython-{cp.version}-{cp.method}"
    component = {
        "bom-ref": ref, "type": "application", "supplier": {"name": "Python Software Foundation"},
        "name": "cpython", "version": cp.version,
        "hashes": [{"alg": "SHA-256", "content": cp.sha256}],
        "licenses": [{"license": {"id": LICENSE}}],
        "cpe": cp.cpes[0], "purl": cp.purl,
        "externalReferences": [{"type": "distribution", "url": cp.url},
                               {"type": "website", "url": HOMEPAGE}],
        "properties": [{"name": "org.python-base-orchestrator:build-method", "value": cp.method},
                       {"name": "org.python-base-orchestrator:prefix", "value": cp.prefix}],
    }
    out["components"] = [c for c in out.get("components") or [] if c.get("bom-ref") != ref]
    out["components"].append(component)
    root = (out.get("metadata") or {}).get("component", {}).get("bom-ref")
    if root:
        deps = [d for d in out.get("dependencies") or [] if d.get("ref") != root]
        mine = next((d for d in out.get("dependencies") or [] if d.get("ref") == root), None)
        on = [x for x in (mine or {}).get("dependsOn", []) if x != ref] + [ref]
        out["dependencies"] = deps + [{"ref": root, "dependsOn": on}]
    return out

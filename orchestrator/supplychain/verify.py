"""Verify a pushed image as release/attest.py signed it: the signature of the digest and of
each platform manifest, each platform's SBOM and OpenVEX attestations (and its performance
record, where one was measured), and the provenance attestation of the digest, all with the
configured public key. ``orchestrator verify REF...`` and promote's
gate use it; application teams can run it too (``--key cosign.pub``, no images.yaml).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator import imageref
from orchestrator.config import grammar
from orchestrator.errors import RegistryAuthError, RegistryError
from orchestrator.perf import predicate as perf_predicate
from orchestrator.registry import Registry
from orchestrator.supplychain.signing import Cosign


@dataclass(frozen=True)
class Check:
    name: str  # "signature", "signature linux/arm64", "sbom linux/amd64", "provenance"
    ok: bool
    detail: str = ""
    # shown, never failing: an OpenVEX document only sets findings aside, so an image without
    # one (none of its scan.vex rules applies, or pushed before they existed) is not less
    # trustworthy; scan and the gate use only a document that verifies. The performance
    # record likewise (shown only where one verifies: the measured platform, perf.enabled)
    informational: bool = False


@dataclass(frozen=True)
class Verification:
    ref: str  # as asked (tag or digest)
    digest: str  # what it resolved to ("" when it did not)
    checks: tuple[Check, ...]
    # platform -> the advisories its verified OpenVEX document says not_affected (no verified
    # document: no entry)
    vex: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks if not c.informational)

    def problems(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.ok and not c.informational]

    def line(self) -> str:
        at = f" ({self.digest})" if self.digest and self.digest not in self.ref else ""
        if self.ok:
            return f"verified  {self.ref}{at}: " + ", ".join(
                c.name + (f" ({c.detail})" if c.ok and c.detail else "" if c.ok else " (none)")
                for c in self.checks)
        return f"FAILED    {self.ref}{at}: " + "; ".join(self.problems())


def _vex_statements(statements: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    predicate = statements[0].get("predicate") if statements else None
    said = predicate.get("statements") if isinstance(predicate, dict) else None
    return [st for st in said if isinstance(st, dict)] if isinstance(said, list) else []


def vex_summary(statements: Sequence[Mapping[str, Any]]) -> str:
    """What an OpenVEX attestation says, in a few words: each statement's status and advisory."""
    said = _vex_statements(statements)
    if not said:
        return "no statements"
    return ", ".join(f"{st.get('status', '?')}: {(st.get('vulnerability') or {}).get('name', '?')}"
                     for st in said)


def not_affected(statements: Sequence[Mapping[str, Any]]) -> frozenset[str]:
    """The advisories a verified OpenVEX attestation says not_affected."""
    return frozenset(str((st.get("vulnerability") or {}).get("name", ""))
                     for st in _vex_statements(statements) if st.get("status") == "not_affected")


def verify_digest(cosign: Cosign, registry: Registry, repo: str, digest: str, *,
                  provenance: bool = True, perf: bool = True, ref: str = "") -> Verification:
    """Every check of ``registry.host``/``repo``@``digest``; registry errors other than refused
    credentials are a failed check (an image that cannot be read is not verified). ``perf``:
    look for performance records to show (push's and promote's checks need none of it)."""
    name = f"{registry.host}/{repo}"
    ref = ref or f"{name}@{digest}"
    try:
        plats = registry.platform_manifests(repo, digest)
    except RegistryAuthError:
        raise
    except RegistryError as exc:
        return Verification(ref, digest, (Check("manifest", False, str(exc)),))
    if plats is None:
        return Verification(ref, digest, (Check("manifest", False, "not in the registry"),))
    single = list(plats.values()) == [digest]
    checks: list[Check] = []
    targets = [("signature", digest)] + [(f"signature {p}", d) for p, d in plats.items() if not single]
    for what, d in targets:
        v = cosign.verify(f"{name}@{d}")
        checks.append(Check(what, v.ok, v.reason))
    for plat, d in plats.items():
        v = cosign.verify_attestation(f"{name}@{d}", "spdxjson")
        checks.append(Check(f"sbom {plat}", v.ok, v.reason))
    vex: dict[str, frozenset[str]] = {}
    for plat, d in plats.items():
        v = cosign.verify_attestation(f"{name}@{d}", "openvex")
        checks.append(Check(f"openvex {plat}", v.ok, vex_summary(v.statements) if v.ok else v.reason,
                            informational=True))
        if v.ok:
            vex[plat] = not_affected(v.statements)
    # the performance record: shown where one verifies (the measured platform, never an
    # emulated one), nothing said where there is none
    for plat, d in (plats if perf else {}).items():
        v = cosign.verify_attestation(f"{name}@{d}", perf_predicate.PREDICATE_TYPE)
        if v.ok:
            checks.append(Check(f"perf {plat}", True, perf_predicate.statements_summary(
                v.statements), informational=True))
    if provenance:
        v = cosign.verify_attestation(f"{name}@{digest}", "slsaprovenance1")
        checks.append(Check("provenance", v.ok, v.reason))
    return Verification(ref, digest, tuple(checks), vex)


def verify_ref(cosign: Cosign, ref: str, registry_for: Callable[[str], Registry], *,
               provenance: bool = True) -> Verification:
    """A tag or digest reference (host/repo:tag, host/repo@sha256:...), resolved and verified."""
    parsed = imageref.parse(ref)
    host, repo, tag_or_digest = parsed.host, parsed.repository, parsed.reference
    registry = registry_for(host)
    digest: str | None = tag_or_digest
    if not grammar.DIGEST.fullmatch(tag_or_digest):
        try:
            digest = registry.digest(repo, tag_or_digest)
        except RegistryAuthError:
            raise
        except RegistryError as exc:
            return Verification(ref, "", (Check("manifest", False, str(exc)),))
    if digest is None:
        return Verification(ref, "", (Check("manifest", False,
                                            f"tag {tag_or_digest} not in {host}/{repo}"),))
    return verify_digest(cosign, registry, repo, digest, provenance=provenance, ref=ref)


Gate = Callable[[str, str], str | None]


def promote_gate(cosign: Cosign, registry: Registry, *, provenance: bool = True) -> Gate:
    """For promote: (repository, digest) -> why the digest may not be promoted, or None."""

    def gate(repo: str, digest: str) -> str | None:
        v = verify_digest(cosign, registry, repo, digest, provenance=provenance, perf=False)
        if v.ok:
            return None
        return (f"{registry.host}/{repo}@{digest} is unsigned or does not verify ("
                + "; ".join(v.problems()) + "); sign and attest it (push with signing: in "
                "images.yaml) or set signing.required: false")

    return gate

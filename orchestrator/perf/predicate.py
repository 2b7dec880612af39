"""The performance record as an in-toto predicate of the orchestrator's own type, attested with
cosign on the platform manifest it was measured on (beside that platform's SBOM), and what
``orchestrator verify`` says of it.

The predicate (version 1) holds: the platform and why only the native one is measured, the
measured cell (a variant shares its interpreter with the others of its build), the candidate
(its image id, the interpreter's version) and the published image it was compared with (its
reference and digest; none on a first publish), the method (pyperf's version and options,
rounds, the statistic), per workload the medians, the spread and the ratio, the geometric mean
of the ratios, each round's, the noise, the limit and the verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.perf.compare import Verdict, medians, relative_mad
from orchestrator.perf.measure import CANDIDATE, PUBLISHED, Measurement

# The orchestrator's own predicate type (cosign attest --type takes a URI as it is); the same
# urn: namespace as the provenance's build type.
PREDICATE_TYPE = "urn:python-base-orchestrator:predicate:performance:v1"
VERSION = 1
NATIVE_ONLY = ("measured on the build host's native platform only: other platforms run under "
               "QEMU emulation there, whose speed says nothing about the image")
STATISTIC = ("per workload the median of every value (seconds per call, all rounds pooled); "
             "ratio = candidate median / published median; the image's figure is the geometric "
             "mean of the ratios (above 1: slower); noise = the median over the workloads of "
             "the larger median absolute deviation / median")


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def record(m: Measurement, verdict: Verdict, *, cell: str, measured_cell: str, platform: str,
           image_id: str, published_ref: str | None, published_digest: str | None,
           rounds: int, args: Sequence[str], pyperf: str, measured_at: str) -> dict[str, Any]:
    """The record of one measurement (the predicate, the cell state's and the report's)."""
    cand, pub = m.values(CANDIDATE), m.values(PUBLISHED)
    cand_med, pub_med = medians(cand), medians(pub)
    workloads: dict[str, Any] = {}
    for name in sorted(cand):
        row: dict[str, Any] = {"candidate_median_ms": _ms(cand_med[name]),
                               "candidate_spread": round(relative_mad(cand[name]), 4),
                               "values": len(cand[name])}
        if name in pub_med:
            row |= {"published_median_ms": _ms(pub_med[name]),
                    "published_spread": round(relative_mad(pub[name]), 4),
                    "ratio": round(verdict.ratios[name], 4)}
        workloads[name] = row
    first_c, first_p = m.first(CANDIDATE), m.first(PUBLISHED)
    return {
        "version": VERSION,
        "cell": cell,
        "measured_cell": measured_cell,
        "platform": platform,
        "platforms_note": NATIVE_ONLY,
        "measured_at": measured_at,
        "candidate": {"image_id": image_id, "python": first_c.python if first_c else ""},
        "published": None if published_digest is None else {
            "ref": published_ref, "digest": published_digest,
            "python": first_p.python if first_p else ""},
        "method": {"tool": "pyperf", "pyperf": pyperf, "args": list(args), "rounds": rounds,
                   "interleaved": published_digest is not None, "statistic": STATISTIC},
        "workloads": workloads,
        "slowdown": None if verdict.slowdown is None else round(verdict.slowdown, 4),
        "round_slowdowns": [round(x, 4) for x in verdict.round_slowdowns],
        "noise": round(verdict.noise, 4),
        "max_slowdown": verdict.max_slowdown,
        "verdict": verdict.outcome,
        "summary": verdict.line(),
    }


def summary(predicate: Mapping[str, Any]) -> str:
    """A verified record in a few words, for verify: its figure against what it replaced."""
    slowdown = predicate.get("slowdown")
    workloads = predicate.get("workloads")
    n = len(workloads) if isinstance(workloads, Mapping) else 0
    published = predicate.get("published")
    if not isinstance(slowdown, (int, float)) or not isinstance(published, Mapping):
        return f"first record, {n} workload(s), nothing to compare with"
    digest = str(published.get("digest", ""))
    return (f"{slowdown:.3f}x the time of {digest[:19]} over {n} workload(s), "
            f"limit {predicate.get('max_slowdown', '?')}")


def statements_summary(statements: Sequence[Mapping[str, Any]]) -> str:
    """What the first verified statement's predicate says (verify's detail)."""
    predicate = statements[0].get("predicate") if statements else None
    return summary(predicate) if isinstance(predicate, Mapping) else "unreadable record"

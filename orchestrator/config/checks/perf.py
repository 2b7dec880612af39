"""Semantic checks of images.yaml's ``perf:`` section (one line per problem, collected with the
other semantic checks); its shape (rounds, processes, values, the workload names) is pydantic's."""

from __future__ import annotations

from orchestrator.config.model import ImagesConfig
from orchestrator.config.yamlsafe import Problems

# Above this a gate would let through any regression worth the name: a typo (5 for 1.05)
MAX_SLOWDOWN_CEILING = 2.0


def check(config: ImagesConfig, report: Problems) -> None:
    perf = config.perf
    limit = perf.max_slowdown
    if not 1.0 < limit <= MAX_SLOWDOWN_CEILING:
        why = ("refuses an image for being as fast as the published one, noise included"
               if limit <= 1.0 else "lets through an image more than twice as slow")
        report(("perf", "max_slowdown"), f"{limit:g} {why}",
               "write a factor between 1 and 2 above the noise, e.g. 1.05 (refuse an image more "
               "than 5 % slower than the one it replaces)")
    seen: set[str] = set()
    for i, name in enumerate(perf.workloads):
        if name in seen:
            report(("perf", "workloads", i), f"{name} is listed twice", "list each workload once")
        seen.add(name)
    if perf.enabled and config.signing is None:
        report.warn(("perf",), "enabled without signing: the figures go to the JSON report only, "
                    "not into an attestation (add signing: to attest them)")

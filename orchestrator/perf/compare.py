"""The comparison behind the performance gate, pure functions over the measured values.

Per workload the median of every value (seconds per call, all rounds pooled) of the candidate
and of the published image; the image's figure is the geometric mean over the workloads of
candidate median / published median (1.03: 3 % slower; < 1: faster). The gate refuses a
candidate whose figure is above ``max_slowdown``, and only then: no published image (a first
publish) means nothing to compare, the figures are recorded and nothing is refused.

The noise is measured, not assumed: per workload the median absolute deviation of the values
divided by their median (the larger of the two images'), and per round the same geometric mean
from that round's values alone. A record whose noise reaches the threshold's margin says so:
a verdict there is no better than a coin toss, so max_slowdown wants raising (or more rounds).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

Values = Mapping[str, Sequence[float]]  # workload -> seconds per call


def geomean(xs: Sequence[float]) -> float:
    """The geometric mean of positive numbers (ValueError for none, or one not above 0)."""
    if not xs or any(x <= 0 for x in xs):
        raise ValueError(f"geometric mean of {list(xs)}: needs positive numbers")
    return math.exp(math.fsum(math.log(x) for x in xs) / len(xs))


def medians(values: Values) -> dict[str, float]:
    return {name: statistics.median(vals) for name, vals in values.items() if vals}


def relative_mad(vals: Sequence[float]) -> float:
    """The median absolute deviation over the median: the spread of one workload's values,
    robust to the odd slow value a busy host gives."""
    med = statistics.median(vals)
    return statistics.median(abs(v - med) for v in vals) / med if med > 0 else 0.0


def ratios(candidate: Values, published: Values) -> dict[str, float]:
    """workload -> candidate median / published median, for the workloads both ran."""
    cand, pub = medians(candidate), medians(published)
    return {name: cand[name] / pub[name] for name in sorted(cand) if pub.get(name, 0) > 0}


@dataclass(frozen=True)
class Verdict:
    # geometric mean of the ratios; None: nothing to compare with (a first publish)
    slowdown: float | None
    max_slowdown: float
    ratios: dict[str, float] = field(default_factory=dict)
    noise: float = 0.0  # the median over the workloads of the larger relative MAD
    round_slowdowns: tuple[float, ...] = ()

    @property
    def refused(self) -> bool:
        return self.slowdown is not None and self.slowdown > self.max_slowdown

    @property
    def outcome(self) -> str:
        """first (nothing to compare) | ok | refused"""
        return "first" if self.slowdown is None else "refused" if self.refused else "ok"

    @property
    def noisy(self) -> bool:
        """The noise reaches the margin the threshold leaves: the verdict is not to be trusted."""
        return self.noise >= self.max_slowdown - 1.0

    def line(self) -> str:
        """The figure in one line: '1.021x the published image's time (limit 1.05; noise 0.8 %)'."""
        noise = f"noise {self.noise * 100:.1f} %"
        if self.slowdown is None:
            return f"first record: nothing published to compare with ({noise})"
        said = (f"{self.slowdown:.3f}x the published image's time, geometric mean over "
                f"{len(self.ratios)} workload(s) (limit {self.max_slowdown:g}; {noise}")
        return said + ("; noisier than the limit's margin)" if self.noisy else ")")


def judge(candidate: Values, published: Values | None, max_slowdown: float,
          rounds: Sequence[tuple[Values, Values]] = ()) -> Verdict:
    """The verdict on ``candidate`` against ``published`` (None: a first publish, record only).
    ``rounds``: the (candidate, published) values of each round, for the per-round figures."""
    spread = [relative_mad(v) for v in candidate.values() if v]
    if published is None:
        return Verdict(None, max_slowdown, {}, statistics.median(spread) if spread else 0.0)
    by_workload = ratios(candidate, published)
    if not by_workload:
        raise ValueError("no workload ran on both images: nothing to compare")
    noise = statistics.median(max(relative_mad(candidate[n]), relative_mad(published[n]))
                              for n in by_workload)
    per_round = tuple(geomean(list(r.values())) for c, p in rounds if (r := ratios(c, p)))
    return Verdict(geomean(list(by_workload.values())), max_slowdown, by_workload, noise,
                   per_round)

"""Bootstrap confidence intervals and paired comparisons, in plain Python (no numpy needed)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["Comparison", "Interval", "bootstrap_mean", "compare_paired"]

Verdict = Literal["improved", "no evidence", "worse"]
RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% bootstrap confidence interval."""

    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


@dataclass(frozen=True)
class Comparison:
    """Candidate ``a`` against ``b`` on one metric, example by example."""

    a: str
    b: str
    metric: str
    mean_a: float
    mean_b: float
    delta: float
    low: float
    high: float
    wins: int
    ties: int
    losses: int
    p_value: float
    verdict: Verdict
    n: int
    resamples: int = 0

    @property
    def p_text(self) -> str:
        """``p_value`` to four places; ``<0.0002`` when no random sign flip was as extreme
        (``resamples`` > 0: the p-value is then only a bound, not the exact figure)."""
        if self.resamples and self.p_value * (self.resamples + 1) <= 1 + 1e-9:
            return f"<{self.p_value:.4f}"
        return f"{self.p_value:.4f}"

    def __str__(self) -> str:
        p = self.p_text if self.p_text.startswith("<") else f"={self.p_text}"
        return (
            f"{self.a} vs {self.b} on {self.metric}: delta {self.delta:+.3f} "
            f"(95% CI {self.low:+.3f} to {self.high:+.3f}), "
            f"{self.wins}/{self.ties}/{self.losses} win/tie/loss, p{p}: {self.verdict}"
        )


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    position = q * (len(sorted_values) - 1)
    low, high = math.floor(position), math.ceil(position)
    fraction = position - low
    return sorted_values[low] * (1 - fraction) + sorted_values[high] * fraction


def bootstrap_mean(
    values: Sequence[float], *, resamples: int = RESAMPLES, seed: int = 0
) -> Interval:
    """The mean and its 95% percentile-bootstrap interval."""
    n = len(values)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = sum(values) / n
    if min(values) == max(values):
        return Interval(mean, mean, mean, n)
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    return Interval(mean, _percentile(means, 0.025), _percentile(means, 0.975), n)


_EXACT_UP_TO = 16  # nonzero deltas: every sign flip is enumerated (65,536 of them)


def _permutation_p(deltas: Sequence[float], resamples: int, seed: int) -> tuple[float, int]:
    """Two-sided paired permutation (sign-flip) test of mean delta = 0: the p-value and how
    many random flips it drew (0 when every flip was enumerated)."""
    observed = abs(sum(deltas))
    nonzero = [d for d in deltas if d != 0]
    if not nonzero:
        return 1.0, 0
    if len(nonzero) <= _EXACT_UP_TO:
        return _exact_sign_flip(nonzero, observed), 0
    rng = random.Random(seed)
    extreme = 0
    for _ in range(resamples):
        total = sum(d if rng.random() < 0.5 else -d for d in nonzero)
        if abs(total) >= observed - 1e-12:
            extreme += 1
    return (extreme + 1) / (resamples + 1), resamples


def _exact_sign_flip(deltas: Sequence[float], observed: float) -> float:
    count = 0
    total = 1 << len(deltas)
    for mask in range(total):
        flipped = sum(-d if mask >> i & 1 else d for i, d in enumerate(deltas))
        if abs(flipped) >= observed - 1e-12:
            count += 1
    return count / total


def compare_paired(
    a_name: str,
    a: Sequence[float],
    b_name: str,
    b: Sequence[float],
    *,
    metric: str = "",
    resamples: int = RESAMPLES,
    seed: int = 0,
    alpha: float = 0.05,
) -> Comparison:
    """Mean delta (a - b), paired-bootstrap 95% CI, win/tie/loss and a permutation p-value.

    The verdict is "improved" only when the whole interval lies above 0 and p < ``alpha``;
    "worse" when it lies below 0 and p < ``alpha``; "no evidence" otherwise.
    """
    if len(a) != len(b):
        raise ValueError(f"paired scores differ in length: {len(a)} and {len(b)}")
    deltas = [x - y for x, y in zip(a, b, strict=True)]
    interval = bootstrap_mean(deltas, resamples=resamples, seed=seed)
    p_value, flips = _permutation_p(deltas, max(resamples, 5000), seed)
    verdict: Verdict = "no evidence"
    if interval.n and interval.low > 0 and p_value < alpha:
        verdict = "improved"
    elif interval.n and interval.high < 0 and p_value < alpha:
        verdict = "worse"
    n = len(deltas)
    return Comparison(
        a=a_name,
        b=b_name,
        metric=metric,
        mean_a=sum(a) / n if n else math.nan,
        mean_b=sum(b) / n if n else math.nan,
        delta=interval.mean,
        low=interval.low,
        high=interval.high,
        wins=sum(d > 0 for d in deltas),
        ties=sum(d == 0 for d in deltas),
        losses=sum(d < 0 for d in deltas),
        p_value=p_value,
        verdict=verdict,
        n=n,
        resamples=flips,
    )

"""Confidence intervals and paired comparisons, in plain Python (no numpy needed).

Scores that are all 0 or 1 (exact match, a regex, a pass/fail judge) get score intervals:
Wilson's for a mean, Newcombe's (1998, method 10) for a paired difference. A percentile
bootstrap would give them a zero-width interval whenever every example scored the same,
claiming certainty that 40 out of 40 cannot give. Other scores get the percentile bootstrap.

The resampling is seeded, so its results depend on the scores alone: they are remembered by
the scores' content, and a result table shown again (each notebook display, each
``to_markdown``) does not resample again.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
from array import array
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import compress
from typing import Literal, TypeVar

from finetune._words import counted

__all__ = [
    "Comparison",
    "Interval",
    "bootstrap_mean",
    "compare_paired",
    "holm",
    "mean_interval",
    "wilson_interval",
]

Verdict = Literal["improved", "no evidence", "worse"]
IntervalMethod = Literal["bootstrap", "wilson", "newcombe"]
RESAMPLES = 2000
_Z = 1.959963984540054  # the standard normal's 97.5th percentile: two-sided 95%
T = TypeVar("T")


class _Memo:
    """The latest results of costly resampling, by key, least recently used dropped first."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The result remembered for ``key``, or ``compute()``'s, remembered."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]  # type: ignore[return-value]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget every result (for benchmarks that time the first computation)."""
        with self._lock:
            self._items.clear()


_MEMO = _Memo()


def _content(values: Sequence[float]) -> bytes:
    """A digest of the scores, exact enough to stand for them as a key."""
    return hashlib.blake2b(array("d", values).tobytes(), digest_size=20).digest()


@dataclass(frozen=True)
class Interval:
    """A mean with its 95% confidence interval, and the ``method`` that gave it."""

    mean: float
    low: float
    high: float
    n: int
    method: IntervalMethod = "bootstrap"

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
    method: IntervalMethod = "bootstrap"
    p_holm: float | None = None
    """``p_value`` adjusted by Holm's method across the comparisons it was made with
    (``EvalResult.compare_all``), for a claim that holds with all of them counted; ``None``
    for a comparison made alone."""

    @property
    def p_text(self) -> str:
        """``p_value`` to four places; ``<0.0002`` when no random sign flip was as extreme
        (``resamples`` > 0: the p-value is then only a bound, not the exact figure), and
        ``<0.0001`` for an exact p-value too small for four places."""
        return _p_text(self.p_value, self._is_bound)

    @property
    def p_holm_text(self) -> str:
        """``p_holm`` as ``p_text`` writes ``p_value`` (a bound stays a bound); ``-`` when
        the comparison was made alone."""
        if self.p_holm is None:
            return "-"
        return _p_text(self.p_holm, self._is_bound and self.p_holm < 1)

    @property
    def _is_bound(self) -> bool:
        return bool(self.resamples) and self.p_value * (self.resamples + 1) <= 1 + 1e-9

    @property
    def too_few_to_tell(self) -> bool:
        """Whether so few examples scored differently that no outcome of them could give
        p < 0.05 (the smallest two-sided p of m differences is 2/2^m: 0.0625 for 5), so that
        ``no evidence`` speaks of the sample's size, not of the candidates."""
        differing = self.wins + self.losses
        return differing > 0 and 2 / 2**differing >= 0.05

    def __str__(self) -> str:
        p = self.p_text if self.p_text.startswith("<") else f"={self.p_text}"
        on = f" on {self.metric}" if self.metric else ""
        few = ""
        if self.too_few_to_tell:
            differing = counted(self.wins + self.losses, "differing example")
            few = f" ({differing} cannot give p < 0.05: 6 at the least)"
        return (
            f"{self.a} vs {self.b}{on}: delta {self.delta:+.3f} "
            f"(95% CI {self.low:+.3f} to {self.high:+.3f}), "
            f"{self.wins}/{self.ties}/{self.losses} win/tie/loss, p{p}: {self.verdict}{few}"
        )


def _p_text(p: float, bound: bool) -> str:
    if bound:
        return f"<{p:.4f}"
    if p < 0.0001:
        return "<0.0001"
    return f"{p:.4f}"


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of ``p_values``, in their order: the k-th smallest is
    multiplied by (m - k + 1), kept at least the one before it, and capped at 1. Rejecting
    where the adjusted value is below alpha keeps the chance of any false claim among all m
    at most alpha, whatever their dependence."""
    count = len(p_values)
    adjusted = [1.0] * count
    running = 0.0
    for rank, index in enumerate(sorted(range(count), key=p_values.__getitem__)):
        running = max(running, min(1.0, (count - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


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
    key = ("bootstrap", _content(values), resamples, seed)
    return _MEMO.get(key, partial(_bootstrap, values, mean, resamples, seed))


def _bootstrap(values: Sequence[float], mean: float, resamples: int, seed: int) -> Interval:
    n = len(values)
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    return Interval(mean, _percentile(means, 0.025), _percentile(means, 0.975), n)


def wilson_interval(successes: int, n: int) -> Interval:
    """The proportion ``successes / n`` and its 95% Wilson score interval (never zero width,
    even at 0 or ``n`` successes)."""
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be 0 to n ({n}), not {successes}")
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "wilson")
    p = successes / n
    z2 = _Z * _Z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # the interval holds p (at 0 or n successes, ends at exactly 0 or 1); rounding must not
    # leave p 1e-16 outside it
    low, high = min(p, centre - half), max(p, centre + half)
    return Interval(p, max(0.0, low), min(1.0, high), n, "wilson")


def _is_binary(values: Sequence[float]) -> bool:
    return bool(values) and all(v in (0.0, 1.0) for v in values)


def mean_interval(
    values: Sequence[float], *, resamples: int = RESAMPLES, seed: int = 0
) -> Interval:
    """The mean and its 95% interval: Wilson's when every score is 0 or 1, otherwise the
    percentile bootstrap."""
    if _is_binary(values):
        return wilson_interval(round(sum(values)), len(values))
    return bootstrap_mean(values, resamples=resamples, seed=seed)


def _newcombe(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Newcombe's 95% interval for the difference of two paired proportions (method 10:
    the two Wilson intervals, joined through the pairs' phi correlation)."""
    n = len(a)
    pairs = Counter((bool(x), bool(y)) for x, y in zip(a, b, strict=True))
    both, only_a, only_b = pairs[True, True], pairs[True, False], pairs[False, True]
    neither = pairs[False, False]
    first, second = wilson_interval(both + only_a, n), wilson_interval(both + only_b, n)
    margins = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    cross = both * neither - only_a * only_b
    corrected = cross - n / 2 if cross > n / 2 else min(cross, 0)
    phi = corrected / math.sqrt(margins) if margins else 0.0
    down_a, up_a = first.mean - first.low, first.high - first.mean
    down_b, up_b = second.mean - second.low, second.high - second.mean
    delta = first.mean - second.mean
    below = math.sqrt(max(0.0, down_a**2 - 2 * phi * down_a * up_b + up_b**2))
    above = math.sqrt(max(0.0, up_a**2 - 2 * phi * up_a * down_b + down_b**2))
    return max(-1.0, delta - below), min(1.0, delta + above)


_EXACT_UP_TO = 16  # nonzero deltas: every sign flip is enumerated (65,536 of them)
_ROUNDING = 1e-9  # relative: sums that differ by less are the same sum, rounded two ways


def _permutation_p(deltas: Sequence[float], resamples: int, seed: int) -> tuple[float, int]:
    """Two-sided paired permutation (sign-flip) test of mean delta = 0: the p-value and how
    many random flips it drew (0 when every flip was enumerated)."""
    nonzero = [d for d in deltas if d != 0]
    if not nonzero:
        return 1.0, 0
    sizes = [abs(d) for d in nonzero]
    if max(sizes) - min(sizes) <= _ROUNDING * max(sizes):
        return _sign_test(len(nonzero), sum(d > 0 for d in nonzero)), 0
    # a flip as extreme as the observed sum, but for rounding, counts: the margin grows with
    # the scores' size (a sum of deltas near 10,000 is off by more than 1e-12)
    threshold = abs(sum(nonzero)) - _ROUNDING * sum(sizes)
    if len(nonzero) <= _EXACT_UP_TO:
        exact = partial(_exact_sign_flip, nonzero, threshold)
        return _MEMO.get(("exact sign flip", _content(nonzero)), exact), 0
    key = ("sign flip", _content(nonzero), resamples, seed)
    sampled = partial(_sampled_sign_flip, nonzero, threshold, resamples, seed)
    return _MEMO.get(key, sampled), resamples


_KEEP_SIGN = bytes.maketrans(b"01", b"\x00\x01")


def _sampled_sign_flip(
    deltas: Sequence[float], threshold: float, resamples: int, seed: int
) -> float:
    """``resamples`` random sign flips; each one's bits say which deltas keep their sign, so
    the sum is twice the kept ones' less the total (summed in C, not a Python loop)."""
    rng = random.Random(seed)
    total = sum(deltas)
    bits = f"0{len(deltas)}b"
    extreme = 0
    for _ in range(resamples):
        kept = format(rng.getrandbits(len(deltas)), bits).encode().translate(_KEEP_SIGN)
        if abs(2 * sum(compress(deltas, kept)) - total) >= threshold:
            extreme += 1
    return (extreme + 1) / (resamples + 1)


def _sign_test(flips: int, wins: int) -> float:
    """The exact sign-flip p-value when every nonzero delta has the same size (scores of 0
    or 1: McNemar's exact test): the number of wins is then binomial(flips, 1/2)."""
    margin = abs(2 * wins - flips)
    if margin == 0:
        return 1.0
    tail, term = 0, 1  # sum of C(flips, k) for k <= (flips - margin) / 2, in whole numbers
    for k in range((flips - margin) // 2 + 1):
        tail += term
        term = term * (flips - k) // (k + 1)
    return min(1.0, 2 * tail / (1 << flips))


def _exact_sign_flip(deltas: Sequence[float], threshold: float) -> float:
    count = 0
    total = 1 << len(deltas)
    for mask in range(total):
        flipped = sum(-d if mask >> i & 1 else d for i, d in enumerate(deltas))
        if abs(flipped) >= threshold:
            count += 1
    return count / total


def _paired_interval(
    a: Sequence[float], b: Sequence[float], deltas: list[float], resamples: int, seed: int
) -> Interval:
    if _is_binary(a) and _is_binary(b):
        low, high = _newcombe(a, b)
        return Interval(sum(deltas) / len(deltas), low, high, len(deltas), "newcombe")
    return bootstrap_mean(deltas, resamples=resamples, seed=seed)


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
    """Mean delta (a - b), its paired 95% CI, win/tie/loss and a permutation p-value.

    The interval is Newcombe's when every score of both is 0 or 1, otherwise a paired
    bootstrap of the per-example differences. The verdict is "improved" only when the whole
    interval lies above 0 and p < ``alpha``; "worse" when it lies below 0 and p < ``alpha``;
    "no evidence" otherwise.
    """
    if len(a) != len(b):
        raise ValueError(f"paired scores differ in length: {len(a)} and {len(b)}")
    deltas = [x - y for x, y in zip(a, b, strict=True)]
    interval = _paired_interval(a, b, deltas, resamples, seed)
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
        method=interval.method,
    )

"""What the statistics of an evaluation cost as the held-out set grows.

Usage: python benchmarks/eval_statistics.py [--sizes 200,2000,10000]

For each size: one candidate's interval and one paired comparison, on graded scores (token F1:
the 2000-resample bootstrap and 5000 random sign flips) and on scores of 0 or 1 (exact match:
Wilson's interval, Newcombe's interval and the exact sign test), computed afresh and then
shown again (resampled results are remembered by the scores' content). The graded comparison
computed afresh is the baseline, measured in the same process.

A second table times 5000 random sign flips alone: drawn one random number per difference, in
a Python loop (the way until 2026-12-01, the baseline, written out below), against one random
bit string per flip, summed in C (the way now).

A result table costs about (candidates x metrics) intervals plus (candidates - 1) x metrics
comparisons, each time it is shown.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence

from finetune.evaluation import _stats, compare_paired, mean_interval

FLIPS = 5000


def seconds(work: Callable[[], object], *, fresh: bool = True) -> float:
    """The best of three runs of ``work``; ``fresh`` forgets remembered results before each."""
    best = float("inf")
    for _ in range(3):
        if fresh:
            _stats._MEMO.clear()
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def scores(size: int, seed: int) -> tuple[list[float], list[float], list[float], list[float]]:
    """Tuned and base scores: 0 or 1 (tuned right 60% of the time, base 50%), and graded."""
    rng = random.Random(seed)
    right = [float(rng.random() < 0.6) for _ in range(size)]
    base_right = [float(rng.random() < 0.5) for _ in range(size)]
    graded = [rng.random() for _ in range(size)]
    base_graded = [0.9 * rng.random() for _ in range(size)]
    return right, base_right, graded, base_graded


def per_difference_flips(deltas: Sequence[float], observed: float, seed: int) -> float:
    """The baseline: the sampled sign-flip p-value as computed until 2026-12-01."""
    rng = random.Random(seed)
    extreme = 0
    for _ in range(FLIPS):
        total = sum(d if rng.random() < 0.5 else -d for d in deltas)
        if abs(total) >= observed - 1e-12:
            extreme += 1
    return (extreme + 1) / (FLIPS + 1)


def table_rows(size: int) -> list[str]:
    """The rows of the first table for one size: each against the graded comparison's first
    run (the resampling every other figure is compared with)."""
    right, base_right, graded, base_graded = scores(size, seed=size)
    timed = {}
    for name, a, b in (("graded", graded, base_graded), ("0 or 1", right, base_right)):
        compare = seconds(lambda a=a, b=b: compare_paired("t", a, "b", b))
        again = seconds(lambda a=a, b=b: compare_paired("t", a, "b", b), fresh=False)
        timed[name] = (seconds(lambda a=a: mean_interval(a)), compare, again)
    baseline = timed["graded"][1]
    return [
        f"| {size} | {name} | {interval:.4f} | {compare:.4f} | {again:.4f} | "
        f"{baseline / compare:.0f}x | {baseline / again:.0f}x |"
        for name, (interval, compare, again) in timed.items()
    ]


def flip_row(size: int) -> str:
    """The row of the second table for one size."""
    _, _, graded, base_graded = scores(size, seed=size)
    deltas = [x - y for x, y in zip(graded, base_graded, strict=True)]
    observed = abs(sum(deltas))
    before = seconds(lambda: per_difference_flips(deltas, observed, 0))
    now = seconds(lambda: _stats._sampled_sign_flip(deltas, observed, FLIPS, 0))
    return f"| {size} | {before:.3f} | {now:.3f} | {before / now:.1f}x faster |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="200,2000,10000")
    sizes = [int(size) for size in parser.parse_args().sizes.split(",")]
    print(
        "| examples | scores | interval s | comparison s | shown again s "
        "| vs graded | again vs graded |"
    )
    print("|---|---|---|---|---|---|---|")
    for size in sizes:
        print("\n".join(table_rows(size)))
    print()
    print(f"| examples | {FLIPS} flips, per difference (baseline) s | bit strings s | ratio |")
    print("|---|---|---|---|")
    for size in sizes:
        print(flip_row(size))


if __name__ == "__main__":
    main()

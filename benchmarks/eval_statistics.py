"""What the statistics of an evaluation cost as the held-out set grows.

Usage: python benchmarks/eval_statistics.py [--sizes 200,2000,10000]

For each size: one candidate's interval and one paired comparison, on scores of 0 or 1 (exact
match: Wilson's interval, Newcombe's interval and the exact sign test) and on graded scores
(token F1: the 2000-resample bootstrap and 5000 random sign flips). The graded figures are the
baseline, measured in the same process: the closed forms should cost a small fraction of them.
A result table costs about (candidates x metrics) intervals plus (candidates - 1) x metrics
comparisons, each time it is shown.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from finetune.evaluation import compare_paired, mean_interval


def seconds(work: Callable[[], object]) -> float:
    """The best of three runs of ``work``."""
    best = float("inf")
    for _ in range(3):
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


def measure(size: int) -> tuple[float, float, float, float]:
    """Seconds for a graded interval and comparison, then for a 0-or-1 one."""
    right, base_right, graded, base_graded = scores(size, seed=size)
    return (
        seconds(lambda: mean_interval(graded)),
        seconds(lambda: compare_paired("t", graded, "b", base_graded)),
        seconds(lambda: mean_interval(right)),
        seconds(lambda: compare_paired("t", right, "b", base_right)),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="200,2000,10000")
    sizes = [int(size) for size in parser.parse_args().sizes.split(",")]
    print("| examples | scores | interval s | comparison s | comparison vs graded |")
    print("|---|---|---|---|---|")
    for size in sizes:
        graded_interval, graded_compare, binary_interval, binary_compare = measure(size)
        print(f"| {size} | graded (baseline) | {graded_interval:.3f} | {graded_compare:.3f} | 1x |")
        print(
            f"| {size} | 0 or 1 | {binary_interval:.4f} | {binary_compare:.4f} | "
            f"{graded_compare / binary_compare:.0f}x faster |"
        )


if __name__ == "__main__":
    main()

"""What a fit spends keeping a digest of each training row, and what evaluating reads back.

Usage: python benchmarks/training_rows.py [--rows 10000 100000] [--evaluated 200]

After a job is created, the Tuner keeps 8 bytes per training row in the job registry (once per
training set), so that ``ft.evaluate`` can tell when a hosted model is scored on rows it was
trained on. Baseline: ``Dataset.fingerprint()``, the pass over the training set every fit
already makes. Target: within 1.5x the baseline; the evaluation side (the registry lookup and
the evaluated rows' digests) is shown in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import finetune as ft
from finetune._fit import FitPlan, keep_training_rows
from finetune.dataset._formats import split_turns
from finetune.evaluation._run import _learned


def row(i: int) -> dict[str, object]:
    return {
        "messages": [
            {"role": "system", "content": "You are Acme's support assistant."},
            {"role": "user", "content": f"Where is my order #{i}? It was due on Monday."},
            {"role": "assistant", "content": f"Order #{i} left our warehouse today."},
        ]
    }


def best_of(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def measure(rows: int, evaluated: int, repeat: int) -> str:
    """One row of the table for a training file of ``rows`` rows."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "train.jsonl"
        path.write_text("".join(json.dumps(row(i)) + "\n" for i in range(rows)))
        train = ft.Dataset.from_jsonl(path)
        fingerprint = train.fingerprint()
        plan = FitPlan(train, None, "m", "sft", ft.Hyperparameters(), None, "k", fingerprint, None)
        registries = iter(range(repeat))

        def keep() -> None:  # a fresh registry each time: the digests are computed and written
            keep_training_rows(ft.JobRegistry(Path(scratch) / f"{next(registries)}.db"), plan)

        baseline = best_of(repeat, train.fingerprint)
        kept = best_of(repeat, keep)
        registry = ft.JobRegistry(Path(scratch) / "0.db")
        job = ft.Job(id="ftjob-1", backend="openai", base_model="m", status="succeeded")
        registry.record(job, train_fingerprint=fingerprint)
        asked = [row(i) for i in range(rows - evaluated // 2, rows + evaluated // 2)]
        keys = {split_turns(e): i for i, e in enumerate(ft.Dataset.from_records(asked))}
        tuned = ft.ModelRef(backend="openai", name="ft:m", job_id="ftjob-1")
        os.environ["FINETUNE_REGISTRY"] = str(registry.path)
        assert len(_learned(tuned, {}, keys)) == evaluated // 2
        lookup = best_of(repeat, lambda: _learned(tuned, {}, keys))
    return (
        f"| {rows:,} | {baseline:.2f} | {kept:.2f} | {kept / baseline:.2f}x | "
        f"{rows * 8 / 1e6:.2f} MB | {lookup * 1000:.1f} ms |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--evaluated", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.evaluated} evaluated rows, half of them trained on; best of {args.repeat}\n")
    print(
        "| training rows | fingerprint s (baseline) | keep digests s | vs baseline | kept | "
        "evaluate's lookup |"
    )
    print("|---|---|---|---|---|---|")
    for rows in args.rows:
        print(measure(rows, args.evaluated, args.repeat))


if __name__ == "__main__":
    main()

"""What ``ft.evaluate`` spends telling whether a local model was trained on the evaluated rows.

Usage: python benchmarks/training_overlap.py [--rows 10000 100000] [--evaluated 200]

Before it asks any model, ``ft.evaluate`` reads the training file of each local (``hf``)
candidate's job (``HFBackend.trained_on``) and looks for the evaluated examples in it, to
note any it was trained on. The job folder here is laid out as the ``hf`` backend writes one
(``config.json`` naming the training file, the model beside it). Baseline: reading the same
training file into typed examples, one by one (``for example in ft.Dataset.from_jsonl(path)``),
the least any such
check costs. Target: within 1.5x the baseline.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import finetune as ft
from finetune.dataset._formats import split_turns
from finetune.evaluation._predictors import trained_on
from finetune.evaluation._run import _notes_on_what_was_trained_on


def row(i: int) -> dict[str, object]:
    return {
        "messages": [
            {"role": "system", "content": "You are Acme's support assistant."},
            {"role": "user", "content": f"Where is my order #{i}? It was due on Monday."},
            {"role": "assistant", "content": f"Order #{i} left our warehouse today."},
        ]
    }


def local_job(folder: Path, rows: int) -> str:
    """A job folder as the hf backend leaves it; the model folder's path."""
    training = folder / "files" / "train.jsonl"
    training.parent.mkdir(parents=True)
    training.write_text("".join(json.dumps(row(i)) + "\n" for i in range(rows)))
    job = folder / "hfjob-bench"
    (job / "model").mkdir(parents=True)
    (job / "config.json").write_text(
        json.dumps({"job_id": job.name, "training_file": str(training)})
    )
    return str(job / "model")


def best_of(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def measure(rows: int, evaluated: int, repeat: int) -> str:
    """One row of the table: the baseline and the check on a job trained on ``rows``."""
    with tempfile.TemporaryDirectory() as scratch:
        model = local_job(Path(scratch), rows)
        training = Path(scratch) / "files" / "train.jsonl"
        # half the evaluated rows come from training: the check must find each of them
        asked = [row(i) for i in range(rows - evaluated // 2, rows + evaluated // 2)]
        examples = list(ft.Dataset.from_records(asked))
        candidates = {"tuned": ft.ModelRef(backend="hf", name=model)}
        assert trained_on(candidates["tuned"], {}) is not None
        turns = [split_turns(example) for example in examples]  # as ft.evaluate does once
        keys = {key: index for index, key in enumerate(turns)}

        def check_overlap() -> list[str]:
            return _notes_on_what_was_trained_on(candidates, {}, keys, turns)

        notes = check_overlap()
        assert f"{evaluated // 2} of the {evaluated}" in notes[0], notes
        baseline = best_of(repeat, lambda: sum(1 for _ in ft.Dataset.from_jsonl(training)))
        check = best_of(repeat, check_overlap)
        size = training.stat().st_size / 1e6
    return f"| {rows:,} | {size:.1f} | {baseline:.2f} | {check:.2f} | {check / baseline:.2f}x |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--evaluated", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("| training rows | file MB | read as examples s (baseline) | overlap check s | ratio |")
    print("|---|---|---|---|---|")
    for rows in args.rows:
        print(measure(rows, args.evaluated, args.repeat))


if __name__ == "__main__":
    main()

"""What telling whether a model was trained on the evaluated rows costs: two tables.

Usage: python benchmarks/training_overlap.py [--rows 10000 100000] [--evaluated 200]

**Local models.**
Before it asks any model, ``ft.evaluate`` reads the training file of each local (``hf``)
candidate's job (``HFBackend.trained_on``) and looks for the evaluated examples in it, to
note any it was trained on. The job folder here is laid out as the ``hf`` backend writes one
(``config.json`` naming the training file, the model beside it). Baseline: reading the same
training file into typed examples, one by one (``for example in ft.Dataset.from_jsonl(path)``),
the least any such
check costs. Target: within 1.5x the baseline.

**Hosted models.** After a job is created, the Tuner keeps 8 bytes per training row in the job
registry (once per training set), which ``ft.evaluate`` looks up. Baseline:
``Dataset.fingerprint()``, the pass over the training set every fit already makes. Target:
within 1.5x the baseline; evaluation's lookup is shown in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
from pathlib import Path

from _timing import best_of

import finetune as ft
from finetune._fit import FitPlan, keep_training_rows
from finetune.dataset._formats import split_turns
from finetune.evaluation._overlap import notes_on_what_was_trained_on, what_was_trained_on
from finetune.evaluation._predictors import trained_on


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
    (job / "status.json").write_text(json.dumps({"status": "succeeded"}))
    return str(job / "model")


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
            learned = what_was_trained_on(candidates, {}, keys)
            return notes_on_what_was_trained_on(learned, len(turns))

        notes = check_overlap()
        assert f"{evaluated // 2} of the {evaluated}" in notes[0], notes
        baseline = best_of(repeat, lambda: sum(1 for _ in ft.Dataset.from_jsonl(training)))
        check = best_of(repeat, check_overlap)
        size = training.stat().st_size / 1e6
    return f"| {rows:,} | {size:.1f} | {baseline:.2f} | {check:.2f} | {check / baseline:.2f}x |"


def measure_digests(rows: int, evaluated: int, repeat: int) -> str:
    """One row of the hosted table: keeping the digests of ``rows`` rows, and the lookup."""
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
        assert len(what_was_trained_on({"tuned": tuned}, {}, keys)["tuned"]) == evaluated // 2
        lookup = best_of(repeat, lambda: what_was_trained_on({"tuned": tuned}, {}, keys))
    return (
        f"| {rows:,} | {baseline:.2f} | {kept:.2f} | {kept / baseline:.2f}x | "
        f"{rows * 8 / 1e6:.2f} MB | {lookup * 1000:.1f} ms |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--evaluated", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("finetune").setLevel(logging.ERROR)  # the notes' warnings, 6 per row
    print(f"{args.evaluated} evaluated rows, half of them trained on; best of {args.repeat}")
    print("\nLocal models: the job's training file read and searched\n")
    print("| training rows | file MB | read as examples s (baseline) | overlap check s | ratio |")
    print("|---|---|---|---|---|")
    for rows in args.rows:
        print(measure(rows, args.evaluated, args.repeat))
    print("\nHosted models: the digests a fit keeps in the registry, and evaluation's lookup\n")
    print(
        "| training rows | fingerprint s (baseline) | keep digests s | vs baseline | kept | "
        "evaluate's lookup |"
    )
    print("|---|---|---|---|---|---|")
    for rows in args.rows:
        print(measure_digests(rows, args.evaluated, args.repeat))


if __name__ == "__main__":
    main()

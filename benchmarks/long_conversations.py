"""Validation of long multi-turn conversations for local training (``hf``), whose assistant
masks render the conversation up to each assistant turn.

Usage: python benchmarks/long_conversations.py [--model PATH] [--max-length 2048] [--repeat 3]

One conversation of N turns (N = 100 to 1,600) among 11 short rows, validated for
``Tuner("hf")`` with ``max_length``. The baseline, in the same process, validates with a
``max_length`` that holds the whole conversation, so every turn is rendered: what every
validation did before the masks stopped at the turns truncation keeps. The model is the
tiny one built on the spot (offline, seconds), or ``--model`` (the SmolLM2 GGUF file).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _timing import best_of

import finetune as ft
from finetune.demo import build_tiny_base

TURNS = (100, 400, 800, 1600)


def write_rows(path: Path, turns: int) -> None:
    """One conversation of ``turns`` messages, then 11 short rows."""
    messages = []
    for n in range(turns // 2):
        messages += [
            {"role": "user", "content": f"Question {n}: where is my order?"},
            {"role": "assistant", "content": f"Order {n} ships tomorrow."},
        ]
    short = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}
        for i in range(11)
    ]
    rows = [{"messages": messages}, *short]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        model = args.model or str(build_tiny_base(Path(folder, "tiny"), pretrain_steps=5))
        tuner = ft.Tuner("hf", model=model, registry=False)
        tuner.validate(ft.Dataset.from_records([]), options={"max_length": 64})  # loads it
        print(f"model: {Path(model).name}, max_length={args.max_length}\n")
        print("| turns | every turn rendered (baseline) s | to max_length s | ratio |")
        print("|---|---|---|---|")
        for turns in TURNS:
            path = Path(folder, f"{turns}.jsonl")
            write_rows(path, turns)
            data = ft.Dataset.from_jsonl(path)

            def validate(limit: int, data: ft.Dataset = data) -> None:
                tuner.validate(data, options={"max_length": limit})

            baseline = best_of(args.repeat, lambda: validate(1_000_000))
            measured = best_of(args.repeat, lambda: validate(args.max_length))
            print(f"| {turns:,} | {baseline:.2f} | {measured:.2f} | {measured / baseline:.2f}x |")


if __name__ == "__main__":
    main()

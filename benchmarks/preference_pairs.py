"""Validation of DPO preference pairs for local training (``hf``), against the same
conversations as SFT rows.

Usage: python benchmarks/preference_pairs.py [--model PATH] [--n 3000] [--repeat 3]

N pairs (a system prompt, a question, a good and a bad answer), validated for
``Tuner("hf")``. The baseline, in the same process, validates the same conversations as SFT
rows (the prompt and the good answer), rendered and masked. Pairs are tokenized, as TRL's DPO
does, only where one may be cut by ``max_length`` or run past the context: short pairs
(``max_length`` 1024) are rendered alone; long ones (``max_length`` 16, under every prompt)
are tokenized three times, and each is reported. The model is the tiny one built on the spot
(offline, seconds), or ``--model`` (the SmolLM2 GGUF file).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from _timing import best_of

import finetune as ft
from finetune.demo import build_tiny_base

SYSTEM = {"role": "system", "content": "You are Acme's support agent. Answer in one sentence."}


def pair(i: int) -> dict[str, Any]:
    """A preference pair: a question, a good answer and a bad one."""
    asked = f"Where is my order #{i}? It was due last week and nothing came."
    return {
        "input": [SYSTEM, {"role": "user", "content": asked}],
        "chosen": [{"role": "assistant", "content": f"Order #{i} ships tomorrow, tracked."}],
        "rejected": [{"role": "assistant", "content": "No idea."}],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    records = [pair(i) for i in range(args.n)]
    pairs = ft.Dataset.from_records(records, name="pairs")
    rows = ft.Dataset.from_records(
        [{"messages": p["input"] + p["chosen"]} for p in records], name="rows"
    )
    with tempfile.TemporaryDirectory() as folder:
        model = args.model or str(build_tiny_base(Path(folder, "tiny"), pretrain_steps=5))
        tuner = ft.Tuner("hf", model=model, registry=False)
        tuner.validate(rows[:12])  # loads it
        print(f"model: {Path(model).name}, {args.n:,} examples\n")
        print("| max_length | SFT rows (baseline) s | DPO pairs s | ratio | pairs said cut |")
        print("|---|---|---|---|---|")
        for limit in (1024, 16):
            options = {"max_length": limit}

            def validate(
                data: ft.Dataset, options: dict[str, int] = options
            ) -> ft.ValidationReport:
                return tuner.validate(data, options=options)

            sft = best_of(args.repeat, lambda: validate(rows))
            dpo = best_of(args.repeat, lambda: validate(pairs))
            report = validate(pairs)
            cut = report.counts.get("no_trainable_tokens", 0)
            print(f"| {limit:,} | {sft:.2f} | {dpo:.2f} | {dpo / sft:.2f}x | {cut:,} |")


if __name__ == "__main__":
    main()

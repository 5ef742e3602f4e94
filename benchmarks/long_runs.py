"""Validation of text holding long runs with no space (a hex dump, a base64url blob, a DNA
sequence) against text of the same length in ordinary words.

Usage: python benchmarks/long_runs.py [--rows 20] [--repeat 3] [--lengths 10000,40000]

Each row's answer is one run of N characters (N = 10,000 to 320,000); the baseline in the same
process validates the same characters cut into 64-character words. The ratio stays near 1 when
validation is linear in the length of a run; the privacy scan's email pattern used to be tried
from every place of a run, which made it quadratic (80,000 characters: 6 s a row).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

from _timing import best_of

import finetune as ft

MODEL = "gpt-4.1-mini-2025-04-14"
LENGTHS = (10_000, 40_000, 160_000, 320_000)


def write_rows(path: Path, rows: int, length: int, *, spaced: bool, seed: int = 0) -> None:
    """``rows`` chat examples whose answers are ``length`` hex characters, in one run or in
    64-character words."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(rows):
            run = rng.randbytes(length // 2).hex()
            if spaced:
                run = " ".join(run[at : at + 64] for at in range(0, length, 64))
            messages = [
                {"role": "user", "content": f"The checksum of file {i}?"},
                {"role": "assistant", "content": run},
            ]
            handle.write(json.dumps({"messages": messages}) + "\n")


def seconds_to_validate(path: Path, repeat: int) -> float:
    """The best of ``repeat`` validations of the file for OpenAI (tiktoken counts)."""
    tuner = ft.Tuner("openai", model=MODEL, registry=False)
    data = ft.Dataset.from_jsonl(path)
    return best_of(repeat, lambda: tuner.validate(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lengths", default=",".join(map(str, LENGTHS)))
    args = parser.parse_args()
    print("| characters a row | rows | words of 64 (baseline) s | one run s | ratio |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for length in map(int, args.lengths.split(",")):
            spaced, unbroken = Path(folder, "spaced.jsonl"), Path(folder, "run.jsonl")
            write_rows(spaced, args.rows, length, spaced=True)
            write_rows(unbroken, args.rows, length, spaced=False)
            baseline = seconds_to_validate(spaced, args.repeat)
            measured = seconds_to_validate(unbroken, args.repeat)
            print(
                f"| {length:,} | {args.rows} | {baseline:.3f} | {measured:.3f} | "
                f"{measured / baseline:.2f}x |"
            )


if __name__ == "__main__":
    main()

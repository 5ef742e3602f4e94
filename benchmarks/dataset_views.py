"""What a Dataset's views cost to make, beside reading the file once: a table.

Usage: python benchmarks/dataset_views.py [--rows 100000] [--repeat 3]

A view (``deduplicated()``, ``excluding(other)``, ``filter(keep)``) reads its source once to
choose its rows and keeps only their positions. Baseline: reading the same JSONL file into
typed examples, one by one (``for example in ft.Dataset.from_jsonl(path)``), the least any
view costs. Half the rows repeat an earlier one. Target: within 2x the baseline. Best of
``--repeat`` runs each.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _timing import best_of


def write_rows(path: Path, rows: int) -> None:
    """``rows`` chat examples of three turns; each of the second half repeats one of the first."""
    with path.open("w", encoding="utf-8") as handle:
        for index in range(rows):
            order = index % max(rows // 2, 1)
            row = {
                "messages": [
                    {"role": "system", "content": "You are a helpful support agent."},
                    {"role": "user", "content": f"Where is my order #{order}? It is late."},
                    {"role": "assistant", "content": f"Order #{order} ships tomorrow."},
                ]
            }
            handle.write(json.dumps(row) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import finetune as ft

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "train.jsonl"
        write_rows(path, args.rows)
        data = ft.Dataset.from_jsonl(path)
        other = data[: args.rows // 10]
        cases: dict[str, Callable[[], Any]] = {
            "read every example (baseline)": lambda: sum(1 for _ in data),
            "deduplicated()": data.deduplicated,
            "excluding(a tenth of it)": lambda: data.excluding(other),
            "filter(keep)": lambda: data.filter(lambda e: "#1" in e.messages[1].text),
        }
        seconds = {name: best_of(args.repeat, work) for name, work in cases.items()}
        kept = len(data.deduplicated())
    baseline = seconds["read every example (baseline)"]
    print(f"{args.rows:,} rows ({kept:,} after deduplicated()), best of {args.repeat}")
    print("| what | seconds | vs baseline |")
    print("|---|---|---|")
    for name, took in seconds.items():
        print(f"| {name} | {took:.2f} | {took / baseline:.2f}x |")


if __name__ == "__main__":
    main()

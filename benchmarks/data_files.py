"""Validating a Parquet, JSON or CSV file: ``Dataset.from_parquet``, ``from_json`` and
``from_csv`` against the ways they were read before (``pandas.read_parquet`` or
``pandas.read_csv`` then ``Dataset.from_pandas``; ``json.load`` then ``Dataset.from_records``),
with the same rows as JSONL beside.

Usage: python benchmarks/data_files.py [--n 50000] [--repeat 3]

Each contender validates for OpenAI (every rule, exact token counts) in a fresh process, so
its peak RSS is its own; runs are interleaved and the best time and largest memory growth are
kept. The table gives seconds, examples/s, the memory the run added and the ratios against
the first row, the Parquet file read by pandas (speed: higher is better; memory: lower is
better). RSS added: the peak
while validating over the resident size just before (Linux: the peak is reset through
/proc/self/clear_refs, then read as VmHWM), plus each forked worker's peak over that size.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from validate import MODEL, generate

READERS = {  # name: (the dataset, validation's workers)
    "pandas + from_pandas (before)": ("ft.Dataset.from_pandas(pandas.read_parquet(path))", 1),
    "from_parquet": ("ft.Dataset.from_parquet(path)", 1),
    "from_jsonl (same rows)": ("ft.Dataset.from_jsonl(path)", 1),
    "from_parquet, a worker per core": ("ft.Dataset.from_parquet(path)", None),
    "from_jsonl, a worker per core": ("ft.Dataset.from_jsonl(path)", None),
    "json.load + from_records (before)": ("ft.Dataset.from_records(json.load(open(path)))", 1),
    "from_json": ("ft.Dataset.from_json(path)", 1),
    "pandas.read_csv + from_pandas": ("ft.Dataset.from_pandas(pandas.read_csv(path))", 1),
    "from_csv": ("ft.Dataset.from_csv(path)", 1),
}
CHILD = """
import json, re, resource, sys, time
import pandas, tiktoken
import finetune as ft
from finetune.validation import counter_for, validate
def status(field):
    return int(re.search(field + r":\\s+(\\d+)", open("/proc/self/status").read()).group(1))
path = sys.argv[1]
counter = counter_for("openai", "{model}")
tiktoken.get_encoding("o200k_base")
open("/proc/self/clear_refs", "w").write("5")  # the peak so far (imports) forgotten
start_rss = status("VmRSS")
started = time.perf_counter()
report = validate(
    {reader}, target="openai", model="{model}", token_counter=counter, workers={workers}
)
seconds = time.perf_counter() - started
assert report.ok, report.summary()
grown = (status("VmHWM") - start_rss) / 1024
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
grown += {forked} * max(0.0, workers - start_rss / 1024)  # each worker's own growth
print(json.dumps({{"seconds": seconds, "examples": report.examples, "grown_mb": grown}}))
"""


def measure(reader: str, workers: int | None, path: Path) -> dict[str, float]:
    """One contender's run in a fresh process."""
    forked = (os.cpu_count() or 1) if workers is None else 0
    code = CHILD.format(model=MODEL, reader=reader, workers=workers, forked=forked)
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def write_parquet(jsonl: Path, parquet: Path) -> None:
    """The JSONL rows as the Hub serves them (pyarrow, row groups of 10,000)."""
    import pyarrow as arrow
    import pyarrow.parquet as pq

    with jsonl.open(encoding="utf-8") as handle:
        table = arrow.Table.from_pylist([json.loads(line) for line in handle])
    pq.write_table(table, parquet, row_group_size=10_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        jsonl, parquet = Path(folder) / "data.jsonl", Path(folder) / "data.parquet"
        array = Path(folder) / "data.json"
        generate(jsonl, args.n)
        write_parquet(jsonl, parquet)
        with jsonl.open(encoding="utf-8") as lines:  # pretty-printed, as LLaMA-Factory's
            rows = [json.loads(line) for line in lines]
        array.write_text(json.dumps(rows, indent=2))
        table = Path(folder) / "data.csv"  # a column per role, as a spreadsheet exports chat
        with table.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["system", "user", "assistant"])
            writer.writerows([[m["content"] for m in row["messages"]] for row in rows])
        files = {"jsonl": jsonl, "parquet": parquet, "csv": table}
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in READERS}
        for _ in range(args.repeat):
            for name, (reader, workers) in READERS.items():
                file = next((path for tag, path in files.items() if tag in reader), array)
                runs[name].append(measure(reader, workers, file))
    best = {
        name: {
            "seconds": min(run["seconds"] for run in found),
            "grown_mb": max(run["grown_mb"] for run in found),
        }
        for name, found in runs.items()
    }
    base = best["pandas + from_pandas (before)"]
    print(f"validate {args.n:,} chat rows for OpenAI, a process each, best of {args.repeat}\n")
    print("| reader | seconds | examples/s | RSS added (MB) | speed | memory |")
    print("|---|---|---|---|---|---|")
    for name, figures in best.items():
        print(
            f"| {name} | {figures['seconds']:.2f} | {args.n / figures['seconds']:,.0f} | "
            f"{figures['grown_mb']:.0f} | {base['seconds'] / figures['seconds']:.2f}x | "
            f"{figures['grown_mb'] / max(base['grown_mb'], 1e-9):.2f}x |"
        )


if __name__ == "__main__":
    main()

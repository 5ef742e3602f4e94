"""Validate + count tokens for OpenAI vs a plain "json.loads every line + encode" loop.

Usage: python benchmarks/validate.py [--n 100000] [--scale 4] [--repeat 3] [--whole-process]

Each contender runs in its own process so peak RSS is its own, ``--repeat`` times, interleaved;
the table shows each one's best time and its largest memory figures. Prints examples/s, peak
RSS, and the ratios. Targets: >= 3x the baseline's speed, <= 0.3x the memory it adds, and
memory flat as N grows (N x scale uses <= 1.2x the RSS of N).

``--whole-process`` measures what a user runs instead: a fresh ``python`` that imports, builds
``Tuner("openai")`` and validates, against the cookbook script in a fresh ``python``, wall time
from start to exit and each process's peak RSS (targets: >= 3x, <= 0.3x).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL = "gpt-4.1-mini-2025-04-14"
SYSTEM = (
    "You are Acme's customer-service assistant. Answer in two short sentences, be polite, "
    "never promise refunds, and end with 'Anything else I can help with?'"
)
WORDS = [
    "order",
    "parcel",
    "refund",
    "invoice",
    "address",
    "delivery",
    "tracking",
    "account",
    "password",
    "warranty",
    "replacement",
    "courier",
    "package",
    "damaged",
    "late",
    "missing",
    "charge",
    "subscription",
    "cancel",
    "update",
]


def generate(path: Path, n: int, seed: int = 0) -> None:
    """N realistic chat examples: one system prompt, varied questions and answers."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            question = " ".join(rng.choices(WORDS, k=rng.randint(8, 20)))
            answer = " ".join(rng.choices(WORDS, k=rng.randint(15, 35)))
            row = {
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"Ticket {i}: {question}?"},
                    {"role": "assistant", "content": f"{answer.capitalize()}. Anything else?"},
                ]
            }
            handle.write(json.dumps(row) + "\n")


def run_baseline(path: Path) -> dict[str, float]:
    """The cookbook way: load every line, then encode every value of every message."""
    import tiktoken

    encoding = tiktoken.get_encoding("o200k_base")
    started = time.perf_counter()
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    total = 0
    for row in rows:
        total += 3
        for message in row["messages"]:
            total += 3
            for value in message.values():
                total += len(encoding.encode(value))
    return {"seconds": time.perf_counter() - started, "examples": len(rows), "tokens": total}


def run_ours(path: Path) -> dict[str, float]:
    """finetune's validation: every rule, exact counts, quality checks, streamed."""
    import finetune as ft
    from finetune.validation import counter_for, validate

    counter = counter_for("openai", MODEL)
    started = time.perf_counter()
    report = validate(
        ft.Dataset.from_jsonl(path), target="openai", model=MODEL, token_counter=counter
    )
    seconds = time.perf_counter() - started
    assert report.ok, report.summary()
    return {"seconds": seconds, "examples": report.examples, "tokens": report.stats["tokens_total"]}


def child(which: str, path: str) -> None:
    import tiktoken

    tiktoken.get_encoding("o200k_base")  # both load the encoding before the clock and RSS
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = (run_baseline if which == "baseline" else run_ours)(Path(path))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["start_rss_mb"] = base / 1024
    workers = (os.cpu_count() or 1) if which == "ours" else 0
    worker_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    # memory the run added: the parent's growth plus each forked worker's growth over the
    # parent it was forked from (pages shared with the parent are not counted twice)
    growth = result["peak_rss_mb"] - result["start_rss_mb"]
    if worker_peak:
        growth += workers * max(0.0, worker_peak - result["start_rss_mb"])
    result["worker_peak_rss_mb"] = worker_peak
    result["growth_mb"] = growth
    print(json.dumps(result))


WHOLE_OURS = f"""
import resource, sys
import finetune as ft
report = ft.Tuner("openai", model="{MODEL}").validate(ft.Dataset.from_jsonl(sys.argv[1]))
assert report.ok, report.summary()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(report.stats["tokens_total"], peak, workers)
"""
WHOLE_BASELINE = """
import json, resource, sys
import tiktoken
encoding = tiktoken.get_encoding("o200k_base")
with open(sys.argv[1], encoding="utf-8") as handle:
    rows = [json.loads(line) for line in handle]
total = 0
for row in rows:
    total += 3
    for message in row["messages"]:
        total += 3
        for value in message.values():
            total += len(encoding.encode(value))
print(total, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)
"""


def whole_process(code: str, path: Path) -> dict[str, float]:
    """A fresh interpreter running ``code``: wall time from start to exit, peak RSS."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    seconds = time.perf_counter() - started
    tokens, peak, workers = out.stdout.split()
    return {
        "seconds": seconds,
        "tokens": float(tokens),
        "peak_rss_mb": float(peak),
        "worker_peak_rss_mb": float(workers),
        "growth_mb": 0.0,
        "start_rss_mb": 0.0,
    }


def main_whole_process(n: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "n.jsonl"
        generate(path, n)
        whole_process(WHOLE_OURS, path)  # the first run prepares the tokenizer's cached copy
        base_runs, our_runs = [], []
        for _ in range(repeat):
            base_runs.append(whole_process(WHOLE_BASELINE, path))
            our_runs.append(whole_process(WHOLE_OURS, path))
    base, ours = _best(base_runs), _best(our_runs)
    speed = base["seconds"] / ours["seconds"]
    memory = ours["peak_rss_mb"] / base["peak_rss_mb"]
    print("contender | N | wall s | peak RSS MB | largest worker MB")
    print("---|---|---|---|---")
    print(
        f"cookbook script (fresh python) | {n} | {base['seconds']:.2f} | "
        f"{base['peak_rss_mb']:.0f} | -"
    )
    print(
        f"import finetune + Tuner + validate (fresh python) | {n} | {ours['seconds']:.2f} | "
        f"{ours['peak_rss_mb']:.0f} | {ours['worker_peak_rss_mb']:.0f}"
    )
    print()
    print(f"token totals agree: {int(base['tokens']) == int(ours['tokens'])}")
    print(f"whole process speed: {speed:.2f}x (target >= 3x) {'PASS' if speed >= 3 else 'FAIL'}")
    print(
        f"whole process peak RSS: {memory:.2f}x (target <= 0.3x) "
        f"{'PASS' if memory <= 0.3 else 'FAIL'}"
    )


def measure(which: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _best(runs: list[dict[str, float]]) -> dict[str, float]:
    """The fastest run's time with the largest memory figures of all runs (the cautious pair)."""
    best = dict(min(runs, key=lambda run: run["seconds"]))
    for key in ("peak_rss_mb", "worker_peak_rss_mb", "growth_mb"):
        best[key] = max(run[key] for run in runs)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender (best time)")
    parser.add_argument("--whole-process", action="store_true", help="fresh processes, as run")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.whole_process:
        main_whole_process(args.n, args.repeat)
        return
    with tempfile.TemporaryDirectory() as folder:
        small, large = Path(folder) / "n.jsonl", Path(folder) / "nx.jsonl"
        generate(small, args.n)
        generate(large, args.n * args.scale, seed=1)
        runs: dict[str, list[dict[str, float]]] = {"base": [], "ours": [], "large": []}
        for _ in range(args.repeat):  # interleaved, so a slow spell of the machine hits all
            runs["base"].append(measure("baseline", small))
            runs["ours"].append(measure("ours", small))
            runs["large"].append(measure("ours", large))
        base, ours, ours_large = (_best(runs[key]) for key in ("base", "ours", "large"))
    speed = base["seconds"] / ours["seconds"]
    memory = ours["growth_mb"] / base["growth_mb"]
    flat = ours_large["peak_rss_mb"] / ours["peak_rss_mb"]
    rows = [
        ("baseline (json.loads + encode)", args.n, base),
        ("finetune validate (openai)", args.n, ours),
        ("finetune validate (openai)", args.n * args.scale, ours_large),
    ]
    head = [
        "contender",
        "N",
        "seconds",
        "examples/s",
        "tokens",
        "start MB",
        "peak MB",
        "worker MB",
        "added MB",
    ]
    print(" | ".join(head))
    print("|".join("-" * (len(h) + 2) for h in head))
    for name, n, r in rows:
        cells = [
            name,
            n,
            f"{r['seconds']:.2f}",
            f"{n / r['seconds']:.0f}",
            int(r["tokens"]),
            f"{r['start_rss_mb']:.0f}",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['worker_peak_rss_mb']:.0f}",
            f"{r['growth_mb']:.0f}",
        ]
        print(" | ".join(str(c) for c in cells))
    print()
    print(f"token totals agree: {int(base['tokens']) == int(ours['tokens'])}")
    print(f"speed vs baseline: {speed:.2f}x (target >= 3x) {'PASS' if speed >= 3 else 'FAIL'}")
    print(
        f"memory added vs baseline: {memory:.2f}x (target <= 0.3x) "
        f"{'PASS' if memory <= 0.3 else 'FAIL'}"
    )
    print(
        f"RSS at {args.scale}N vs N: {flat:.2f}x (target <= 1.2x) "
        f"{'PASS' if flat <= 1.2 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()

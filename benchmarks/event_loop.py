"""How long ``ft.aevaluate`` keeps its event loop from other work (a web server's requests).

Usage: python benchmarks/event_loop.py [--examples 20000] [--delay 0.05] [--concurrency 64]
       [--judge]

A ticker on the same loop sleeps 5 ms at a time and notes how late it wakes. Each run
evaluates ``--examples`` rows with one async candidate that answers after ``--delay``
seconds. The baseline is the run with ``cache=False``, which reads and writes no file; then
a run with a fresh prediction cache (every answer written) and one with every answer in it
(every answer read). Reported: wall time, the longest stall, and the time the loop spent
stalled in waits over 10 ms, with the stalled time as a ratio of the baseline's. The
cache's file lies in a folder on the disk the user cache would be on (not /tmp). With
``--judge``, an ``llm_judge`` whose async judge answers after ``--delay`` grades every answer
too (its requests, their cache, and the scoring after them on the same loop).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import finetune as ft
from finetune.evaluation import CallablePredictor

TICK = 0.005


def rows(count: int) -> list[dict[str, Any]]:
    return [
        {
            "messages": [
                {"role": "user", "content": f"q{i}"},
                {"role": "assistant", "content": f"a{i}"},
            ]
        }
        for i in range(count)
    ]


async def run(
    data: ft.Dataset, delay: float, concurrency: int, cache: Any, judge: bool
) -> dict[str, float]:
    async def answer(messages: list[dict[str, str]]) -> str:
        await asyncio.sleep(delay)
        return "a" + messages[-1]["content"][1:]

    async def grade(messages: list[dict[str, str]]) -> str:
        await asyncio.sleep(delay)
        return "Grade: 5"

    metrics: list[Any] = [ft.metrics.exact_match]
    if judge:
        metrics.append(ft.metrics.llm_judge(CallablePredictor(grade, name="judge")))

    lags: list[float] = []

    async def tick() -> None:
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(TICK)
            lags.append(time.perf_counter() - asked - TICK)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    started = time.perf_counter()
    result = await ft.aevaluate(
        data,
        {"m": CallablePredictor(answer, name="m")},
        metrics,
        cache=cache,
        max_concurrency=concurrency,
    )
    wall = time.perf_counter() - started
    ticker.cancel()
    assert result.summary()["m"]["exact_match"].mean == 1.0
    return {
        "wall": wall,
        "longest": max(lags, default=wall),
        "stalled": sum(lag for lag in lags if lag > 0.01) if lags else wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=20000)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--judge", action="store_true", help="grade every answer with a judge")
    args = parser.parse_args()
    data = ft.Dataset.from_records(rows(args.examples))
    folder = Path(tempfile.mkdtemp(prefix="finetune-bench-", dir=Path.home()))
    try:
        cache = str(folder / "predictions.sqlite3")
        runs = {
            "cache=False (baseline)": asyncio.run(
                run(data, args.delay, args.concurrency, cache=False, judge=args.judge)
            ),
            "fresh cache (every answer written)": asyncio.run(
                run(data, args.delay, args.concurrency, cache=cache, judge=args.judge)
            ),
            "full cache (every answer read)": asyncio.run(
                run(data, args.delay, args.concurrency, cache=cache, judge=args.judge)
            ),
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    base = runs["cache=False (baseline)"]["stalled"]
    print(f"{args.examples} examples, answers after {args.delay * 1000:.0f} ms, ", end="")
    print(f"max_concurrency={args.concurrency}; a tick every {TICK * 1000:.0f} ms")
    print()
    print("| run | wall s | longest stall ms | stalled s (waits > 10 ms) | vs baseline |")
    print("|---|---|---|---|---|")
    for name, figures in runs.items():
        ratio = figures["stalled"] / base if base else float("inf")
        print(
            f"| {name} | {figures['wall']:.2f} | {figures['longest'] * 1000:.0f} | "
            f"{figures['stalled']:.2f} | {ratio:.2f}x |"
        )


if __name__ == "__main__":
    main()

"""A rubric judge's cost inside ``ft.evaluate``, against a loopback API that answers after 50 ms.

Usage: python benchmarks/judge.py [--examples 100] [--candidates 2] [--delay 0.05]
       [--concurrency 8]

The OpenAI loopback fake runs in its own process and answers every request with a grade.
The candidates are instant functions, so the run's time is the judge's: one request per
example and candidate. Baseline: the same requests one after another through the openai SDK
(what a metric asking its judge in a loop costs). Then ``ft.evaluate`` with
``ft.metrics.llm_judge`` (fresh cache), and the same run again (every grade cached).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import openai
from _loopback import openai_fake, order_questions

import finetune as ft
from finetune.evaluation import CallablePredictor


def candidate(number: int) -> CallablePredictor:
    async def answer(messages: list[dict[str, str]]) -> str:
        return f"candidate {number}: {messages[-1]['content']}"

    return CallablePredictor(answer, name=f"instant-{number}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--candidates", type=int, default=2)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asks = args.examples * args.candidates
    candidates = {f"c{n}": candidate(n) for n in range(args.candidates)}
    served = openai_fake("--reply", "Grade: 4", "--chat-delay", str(args.delay))
    with served as (base_url, api_key), tempfile.TemporaryDirectory() as cache:
        client = openai.OpenAI(api_key=api_key, base_url=base_url)
        started = time.perf_counter()
        for n in range(asks):
            ask = [{"role": "user", "content": f"Grade answer {n}"}]
            client.chat.completions.create(model="judge", messages=ask)  # type: ignore[arg-type]
        sequential = time.perf_counter() - started
        os.environ["FINETUNE_CACHE_DIR"] = cache
        judge = ft.metrics.llm_judge(ft.ModelRef.openai_compatible(base_url, "judge", api_key))
        data, runs = order_questions(args.examples), []
        for _ in range(2):
            started = time.perf_counter()
            result = ft.evaluate(data, candidates, [judge], max_concurrency=args.concurrency)
            runs.append(time.perf_counter() - started)
    assert all(row["llm_judge"] == 0.75 for row in result.rows)
    ideal = asks * args.delay / args.concurrency
    print(
        f"{args.examples} examples x {args.candidates} candidates = {asks} judge requests, "
        f"{args.delay * 1000:.0f} ms each, max_concurrency={args.concurrency}"
    )
    print()
    first, again = runs
    print("| run | wall s | vs ideal | vs sequential |")
    print("|---|---|---|---|")
    print(f"| ideal (requests x delay / concurrency) | {ideal:.2f} | 1.00x | |")
    for name, seconds in [
        ("sequential SDK loop (baseline)", sequential),
        ("ft.evaluate, llm_judge", first),
        ("the same again (cache)", again),
    ]:
        print(f"| {name} | {seconds:.2f} | {seconds / ideal:.2f}x | {sequential / seconds:.1f}x |")


if __name__ == "__main__":
    main()

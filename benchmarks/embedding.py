"""An embedding metric's cost inside ``ft.evaluate``: one call per answer against batches.

Usage: python benchmarks/embedding.py [--examples 200] [--candidates 3] [--latency 0.02]

The embedding function stands in for an embedding API: each call waits ``--latency``
seconds (a request's round trip) plus 0.05 ms per text. Three candidates answer 200
questions. Baseline, in the same run: the metric called once per answer, two texts a call,
as ``evaluate`` called it before. Then ``ft.evaluate`` with ``embedding_similarity``, which
gives the function the run's distinct texts, 256 at a time.
"""

from __future__ import annotations

import argparse
import time

from _loopback import order_questions

import finetune as ft


class SlowEmbedding:
    """Counts its calls and texts; each call costs a round trip."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.calls = 0
        self.texts = 0

    def __call__(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        self.texts += len(texts)
        time.sleep(self.latency + 0.00005 * len(texts))
        return [[float(len(text)), float(sum(map(ord, text)) % 97), 1.0] for text in texts]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.02)
    args = parser.parse_args()
    data = order_questions(args.examples)
    candidates = {
        f"c{n}": (lambda messages, n=n: f"{n}: {messages[-1]['content']}")
        for n in range(args.candidates)
    }
    per_answer = SlowEmbedding(args.latency)
    metric = ft.metrics.embedding_similarity(per_answer)
    result = ft.evaluate(data, candidates, [ft.metrics.exact_match], cache=False)
    started = time.perf_counter()
    one_by_one = [metric(r["prediction"], r["reference"], None) for r in result.rows]
    baseline = time.perf_counter() - started

    batched = SlowEmbedding(args.latency)
    started = time.perf_counter()
    scored = ft.evaluate(data, candidates, [ft.metrics.embedding_similarity(batched)], cache=False)
    ours = time.perf_counter() - started
    assert [row["embedding_similarity"] for row in scored.rows] == one_by_one

    answers = len(result.rows)
    print(
        f"{args.examples} examples x {args.candidates} candidates = {answers} answers, "
        f"{args.latency * 1000:.0f} ms a call"
    )
    print()
    print("| run | calls | texts | wall s | vs baseline |")
    print("|---|---|---|---|---|")
    for name, embedding, seconds in [
        ("a call per answer (baseline: before)", per_answer, baseline),
        ("ft.evaluate, embedding_similarity", batched, ours),
    ]:
        ratio = f"{baseline / seconds:.1f}x faster" if seconds < baseline else "1.0x"
        print(f"| {name} | {embedding.calls} | {embedding.texts} | {seconds:.2f} | {ratio} |")


if __name__ == "__main__":
    main()

"""Evaluation throughput against a loopback API that answers after 100 ms.

Usage: python benchmarks/evaluate.py [--prompts 200] [--delay 0.1] [--concurrency 16]

The OpenAI loopback fake runs in its own process. Contenders, all through the real openai SDK:
a sequential loop (one ``chat.completions.create`` after another: the baseline most scripts
use), and ``ft.evaluate`` with ``max_concurrency``. The ideal is prompts x delay / concurrency.
Targets: <= 1.3x the ideal, >= 10x faster than the sequential loop.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import openai
from _loopback import loopback_fake, order_questions

import finetune as ft


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with loopback_fake("--chat-delay", str(args.delay)) as (base_url, api_key):
        data = order_questions(args.prompts)
        client = openai.OpenAI(api_key=api_key, base_url=base_url)
        started = time.perf_counter()
        for example in data:
            messages = [{"role": "user", "content": example.messages[0].text}]  # type: ignore[union-attr]
            client.chat.completions.create(model="gpt-4.1-mini", messages=messages)  # type: ignore[arg-type]
        sequential = time.perf_counter() - started

        with tempfile.TemporaryDirectory() as cache:
            os.environ["FINETUNE_CACHE_DIR"] = cache
            model = ft.ModelRef(backend="openai", name="gpt-4.1-mini")
            options = {"model": {"api_key": api_key, "base_url": base_url}}
            started = time.perf_counter()
            result = ft.evaluate(
                data,
                {"model": model},
                [ft.metrics.exact_match],
                max_concurrency=args.concurrency,
                predictor_options=options,
            )
            ours = time.perf_counter() - started
            started = time.perf_counter()
            ft.evaluate(data, {"model": model}, [ft.metrics.exact_match], predictor_options=options)
            cached = time.perf_counter() - started
    assert result.summary()["model"]["exact_match"].mean == 1.0
    ideal = args.prompts * args.delay / args.concurrency
    each = f"{args.delay * 1000:.0f} ms each"
    print(f"{args.prompts} prompts, {each}, max_concurrency={args.concurrency}")
    print()
    print("| run | wall s | vs ideal | vs sequential |")
    print("|---|---|---|---|")
    print(f"| ideal (prompts x delay / concurrency) | {ideal:.2f} | 1.00x | |")
    print(
        f"| sequential SDK loop (baseline) | {sequential:.2f} | {sequential / ideal:.1f}x | 1.0x |"
    )
    print(f"| ft.evaluate | {ours:.2f} | {ours / ideal:.2f}x | {sequential / ours:.1f}x faster |")
    print(f"| ft.evaluate again (cache) | {cached:.2f} | | {sequential / cached:.0f}x faster |")


if __name__ == "__main__":
    main()

"""How long a process's first hosted call keeps its event loop from other work.

Usage: python benchmarks/first_call.py [--runs 3]

Each run is a fresh interpreter (nothing imported yet) with an ``AsyncTuner`` on the OpenAI or
the Mistral loopback fake (each in its own process) and a ticker on the same loop that sleeps
5 ms at a time and notes how late it wakes, while the Tuner's backend uploads a small
dataset: its first call, which makes the SDK client. Reported: the longest stall and the
call's wall time, the median of ``--runs``, for the client made in a worker thread (ours)
and, as the baseline, made on the loop itself (as before: ``OwnedClient.get``), with the
longest stall as a ratio of the baseline's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from _loopback import ROOT, loopback_fake

TICK = 0.005

ONE_RUN = """
import asyncio, json, sys, time

import finetune as ft
from finetune.backends.hosted import HostedBackend

backend, model, settings, on_loop = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
if on_loop == "yes":  # the baseline: the client made by the loop's own thread

    async def made_on_the_loop(self):
        return self._sdk_client()

    HostedBackend._ready_client = made_on_the_loop


async def first_call():
    lags = []

    async def tick():
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(TICK)
            lags.append(time.perf_counter() - asked - TICK)

    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    data = ft.Dataset.from_records([{"messages": turns}] * 10)
    async with ft.AsyncTuner(backend, model=model, registry=False, **settings) as tuner:
        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        await tuner.backend.upload(data)
        wall = time.perf_counter() - started
        ticker.cancel()
    print(json.dumps({"longest": max(lags), "wall": wall}))


TICK = float(sys.argv[5])
asyncio.run(first_call())
"""


def measure(backend: str, model: str, settings: dict[str, str], on_loop: bool) -> dict[str, float]:
    arguments = [backend, model, json.dumps(settings), "yes" if on_loop else "no", str(TICK)]
    done = subprocess.run(
        [sys.executable, "-c", ONE_RUN, *arguments],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    figures: dict[str, float] = json.loads(done.stdout)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    providers = {
        "openai": ("openai", "gpt-4.1-mini-2025-04-14", "base_url"),
        "mistral": ("mistral", "open-mistral-nemo", "server_url"),
    }
    print(f"median of {args.runs} fresh processes each; a tick every {TICK * 1000:.0f} ms")
    print()
    print("| backend | client made | longest stall ms | first upload s | stall vs baseline |")
    print("|---|---|---|---|---|")
    for backend, (kind, model, url_option) in providers.items():
        with loopback_fake(kind=kind) as (url, key):
            settings = {"api_key": key, url_option: url}
            rows = {}
            for on_loop in (True, False):
                runs = [measure(backend, model, settings, on_loop) for _ in range(args.runs)]
                rows[on_loop] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        base = rows[True]["longest"]
        for on_loop, label in ((True, "on the loop (baseline)"), (False, "in a worker thread")):
            figures = rows[on_loop]
            print(
                f"| {backend} | {label} | {figures['longest'] * 1000:.0f} | "
                f"{figures['wall']:.2f} | {figures['longest'] / base:.2f}x |"
            )


if __name__ == "__main__":
    main()

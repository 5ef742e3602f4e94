"""Upload a generated file through the OpenAI Uploads path and report peak RSS growth.

Usage: python benchmarks/upload.py [--size-mb 1024] [--part-mb 8] [--concurrency 4]

The loopback fake runs in its own process, so the figures are the client's alone. The
baseline is the same process's RSS just before the upload starts; target: growth <= 64 MB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINE = (
    json.dumps(
        {
            "messages": [
                {"role": "system", "content": "You are a concise support agent."},
                {"role": "user", "content": "Where is my order? " + "details " * 20},
                {"role": "assistant", "content": "It ships tomorrow. " + "thanks " * 20},
            ]
        }
    ).encode()
    + b"\n"
)


def generate(path: Path, size: int) -> None:
    block = LINE * max(1, (1 << 20) // len(LINE))
    with path.open("wb") as handle:
        written = 0
        while written < size:
            handle.write(block)
            written += len(block)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / (1 << 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--part-mb", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    from finetune.backends.openai import OpenAIBackend

    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.serve", "openai"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fake.stdout is not None
    base_url, api_key = fake.stdout.readline().split()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.jsonl"
        generate(path, args.size_mb << 20)
        size = path.stat().st_size
        backend = OpenAIBackend(
            api_key=api_key,
            base_url=base_url,
            upload_threshold=1,
            part_size=args.part_mb << 20,
            upload_concurrency=args.concurrency,
            file_poll_interval=0.05,
        )
        backend.list_jobs()  # warm the client: connections, imports
        before_current, before_peak = current_rss_mb(), peak_rss_mb()
        started = time.perf_counter()
        ref = backend.upload_file(path, filename="big.jsonl")
        wall = time.perf_counter() - started
        growth = peak_rss_mb() - max(before_current, before_peak)
        backend.close()
    fake.stdin.close()  # type: ignore[union-attr]
    fake.wait(timeout=30)
    parts = -(-size // (args.part_mb << 20))
    rows = [
        ("file size", f"{size / (1 << 20):.0f} MB"),
        ("parts x size", f"{parts} x {args.part_mb} MB, {args.concurrency} in flight"),
        ("wall", f"{wall:.1f} s ({size / (1 << 20) / wall:.0f} MB/s)"),
        ("RSS before upload (baseline)", f"{max(before_current, before_peak):.0f} MB"),
        ("peak RSS growth", f"{max(growth, 0):.0f} MB"),
        ("growth / file size", f"{max(growth, 0) / (size / (1 << 20)):.3f}"),
        ("target", "growth <= 64 MB"),
        ("result", "PASS" if growth <= 64 else "FAIL"),
        ("file id", ref.id),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"{'metric':<{width}} | value")
    print(f"{'-' * width}-|------")
    for key, value in rows:
        print(f"{key:<{width}} | {value}")


if __name__ == "__main__":
    main()

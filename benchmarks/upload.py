"""Upload a generated file through the OpenAI Uploads path and report peak RSS growth.

Usage: python benchmarks/upload.py [--size-mb 1024] [--part-mb 8] [--concurrency 4]

The loopback fake runs in its own process, so the figures are the client's alone. Ours: the
async backend's parts upload (``upload_concurrency`` parts in flight on one event loop). The
baseline, in a fresh process of its own: the plain SDK call most scripts make,
``client.files.create(file=open(path, "rb"))``, one request. Growth is measured over each
process's RSS just before its upload starts; target: ours grows <= 64 MB.
"""

from __future__ import annotations

import argparse
import asyncio
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


async def ours(
    path: Path, base_url: str, api_key: str, part_size: int, concurrency: int
) -> tuple[float, float, float, str]:
    """Upload through the async backend: wall seconds, RSS growth, RSS before, file id."""
    from finetune.backends.openai import OpenAIBackend

    backend = OpenAIBackend(
        api_key=api_key,
        base_url=base_url,
        upload_threshold=1,
        part_size=part_size,
        upload_concurrency=concurrency,
        file_poll_interval=0.05,
    )
    await backend.list_jobs()  # warm the client: connections, imports
    before = max(current_rss_mb(), peak_rss_mb())
    started = time.perf_counter()
    ref = await backend.upload_file(path, filename="big.jsonl")
    wall = time.perf_counter() - started
    growth = peak_rss_mb() - before
    await backend.aclose()
    return wall, growth, before, ref.id


def plain_sdk(path: str, base_url: str, api_key: str) -> None:
    """The baseline, in this fresh process: one ``files.create`` with the open file."""
    import openai

    client = openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=0)
    client.fine_tuning.jobs.list(limit=1)  # warm the client as ours is
    before = max(current_rss_mb(), peak_rss_mb())
    started = time.perf_counter()
    with open(path, "rb") as handle:
        created = client.files.create(file=handle, purpose="fine-tune")
    wall = time.perf_counter() - started
    print(json.dumps({"wall": wall, "growth": peak_rss_mb() - before, "id": created.id}))


def main() -> None:
    if sys.argv[1:2] == ["--plain"]:
        plain_sdk(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--part-mb", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

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
        wall, growth, before, file_id = asyncio.run(
            ours(path, base_url, api_key, args.part_mb << 20, args.concurrency)
        )
        plain = json.loads(
            subprocess.run(
                [sys.executable, __file__, "--plain", str(path), base_url, api_key],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    fake.stdin.close()  # type: ignore[union-attr]
    fake.wait(timeout=30)
    parts = -(-size // (args.part_mb << 20))
    rows = [
        ("file size", f"{size / (1 << 20):.0f} MB"),
        ("parts x size", f"{parts} x {args.part_mb} MB, {args.concurrency} in flight"),
        ("wall, ours", f"{wall:.1f} s ({size / (1 << 20) / wall:.0f} MB/s)"),
        ("wall, plain SDK files.create", f"{plain['wall']:.1f} s"),
        ("speed vs plain SDK", f"{plain['wall'] / wall:.2f}x"),
        ("RSS before upload, ours", f"{before:.0f} MB"),
        ("peak RSS growth, ours", f"{max(growth, 0):.0f} MB"),
        ("peak RSS growth, plain SDK", f"{max(plain['growth'], 0):.0f} MB"),
        ("growth / file size, ours", f"{max(growth, 0) / (size / (1 << 20)):.3f}"),
        ("target", "ours grows <= 64 MB"),
        ("result", "PASS" if growth <= 64 else "FAIL"),
        ("file ids", f"{file_id}, {plain['id']}"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"{'metric':<{width}} | value")
    print(f"{'-' * width}-|------")
    for key, value in rows:
        print(f"{key:<{width}} | {value}")


if __name__ == "__main__":
    main()

"""PUT a generated file to a signed upload URL on 127.0.0.1 and report peak RSS growth.

Usage: python benchmarks/signed_put.py [--size-mb 512]

Ours: ``finetune.backends.http.put_file``, which Together and Fireworks (files over 150 MB)
use, streaming the file in 1 MiB blocks. Baseline: the same PUT with the whole file read into
memory first (``content=handle.read()``), as the Fireworks backend did before. Each runs in a
fresh process; the sink that receives the bytes runs in a third. Growth is measured over each
process's RSS just before its PUT starts.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Sink(BaseHTTPRequestHandler):
    """Reads a PUT body by its Content-Length, keeps nothing, answers 200."""

    protocol_version = "HTTP/1.1"

    def do_PUT(self) -> None:
        left = int(self.headers["Content-Length"])
        while left:
            left -= len(self.rfile.read(min(left, 1 << 20)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / (1 << 20)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def put(way: str, url: str, path: Path) -> None:
    if way == "ours":
        from finetune.backends.http import put_file

        await put_file("bench", url, path)
        return
    import httpx

    async with httpx.AsyncClient(timeout=None) as client:
        with path.open("rb") as handle:
            answer = await client.put(url, content=handle.read())
        answer.raise_for_status()


def measure(way: str, url: str, path: Path) -> None:
    import httpx  # noqa: F401 (loaded before the baseline RSS is taken, as in real use)

    import finetune.backends.http  # noqa: F401

    before = current_rss_mb()
    started = time.perf_counter()
    asyncio.run(put(way, url, path))
    print(f"{time.perf_counter() - started:.3f} {peak_rss_mb() - before:.1f}")


def run_in_child(way: str, url: str, path: Path) -> tuple[float, float]:
    argv = [sys.executable, __file__, "--child", way, "--url", url, "--path", str(path)]
    out = subprocess.run(argv, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    seconds, growth = out.split()
    return float(seconds), float(growth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=512)
    parser.add_argument("--child", choices=("ours", "read_all"))
    parser.add_argument("--url")
    parser.add_argument("--path")
    parser.add_argument("--serve", action="store_true")
    args = parser.parse_args()
    if args.serve:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
        print(server.server_address[1], flush=True)
        server.serve_forever()
    if args.child:
        measure(args.child, args.url, Path(args.path))
        return
    sink = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert sink.stdout is not None
        url = f"http://127.0.0.1:{sink.stdout.readline().strip()}/signed/data.jsonl"
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "data.jsonl"
            with path.open("wb") as handle:
                block = b'{"messages": []}\n' * (1 << 16)
                while handle.tell() < args.size_mb << 20:
                    handle.write(block)
            rows = {way: run_in_child(way, url, path) for way in ("read_all", "ours")}
    finally:
        sink.terminate()
    base_seconds, base_growth = rows["read_all"]
    print(f"signed-URL PUT of {args.size_mb} MB to 127.0.0.1, each way in a fresh process")
    print(f"{'way':<34}{'seconds':>9}{'peak RSS growth MB':>20}{'x baseline':>12}")
    for way, (seconds, growth) in rows.items():
        label = "put_file (streamed)" if way == "ours" else "baseline: read whole, then PUT"
        ratio = growth / base_growth if base_growth else float("nan")
        print(f"{label:<34}{seconds:>9.2f}{growth:>20.1f}{ratio:>12.3f}")
    print(f"time ours / baseline: {rows['ours'][0] / base_seconds:.2f}")


if __name__ == "__main__":
    main()

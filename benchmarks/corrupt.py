"""Validate a generated, badly corrupt JSONL file and show memory stays bounded.

Usage: python benchmarks/corrupt.py [--size-mb 1024]

One line in three is broken (invalid JSON, invalid UTF-8, not an object, no assistant turn).
Prints the findings per code and peak RSS of the scan (parent and largest worker) beside the
file size.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

MODEL = "gpt-4.1-mini-2025-04-14"
GOOD = json.dumps(
    {
        "messages": [
            {"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": "Where is my parcel? It is late again."},
            {"role": "assistant", "content": "It ships tomorrow, sorry for the wait."},
        ]
    }
).encode()
BAD = [
    b'{"messages": [{"role": "user", "content": "cut off',
    b'{"messages": "\xff\xfe broken bytes"}',
    b"[1, 2, 3]",
    json.dumps({"messages": [{"role": "user", "content": "no answer"}]}).encode(),
]


def generate(path: Path, size: int) -> int:
    lines = 0
    with path.open("wb") as handle:
        written = 0
        block = []
        for index in range(3000):
            good = GOOD.replace(b"again", f"again {index}".encode())
            block.append(good if index % 3 else BAD[index % len(BAD)])
        data = b"\n".join(block) + b"\n"
        while written < size:
            handle.write(data)
            written += len(data)
            lines += len(block)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    args = parser.parse_args()

    import finetune as ft
    from finetune.validation import counter_for, validate

    counter = counter_for("openai", MODEL)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "corrupt.jsonl"
        lines = generate(path, args.size_mb << 20)
        start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        began = time.perf_counter()
        report = validate(
            ft.Dataset.from_jsonl(path), target="openai", model=MODEL, token_counter=counter
        )
        seconds = time.perf_counter() - began
        size = path.stat().st_size
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"file: {size / (1 << 20):.0f} MB, {lines} lines, scanned in {seconds:.1f} s")
    print("code | severity | count | first lines")
    print("---|---|---|---")
    for code, entry in report.to_dict()["codes"].items():
        print(f"{code} | {entry['severity']} | {entry['count']} | {entry['lines'][:5]}")
    print()
    print(
        f"RSS before the scan: {start:.0f} MB; peak: parent {peak:.0f} MB, "
        f"largest worker {worker:.0f} MB"
    )


if __name__ == "__main__":
    main()

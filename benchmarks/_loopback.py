"""What the benchmarks share: a loopback fake (OpenAI's or Mistral's) in its own process, and
questions about orders to ask it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import finetune as ft

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def loopback_fake(*flags: str, kind: str = "openai") -> Iterator[tuple[str, str]]:
    """The fake's base URL and API key while it serves (``--chat-delay S``, ``--reply T``);
    ``kind`` ``"mistral"`` serves Mistral's API."""
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.serve", kind, *flags],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdin is not None
    try:
        base_url, api_key = server.stdout.readline().split()
        yield base_url, api_key
    finally:
        server.stdin.close()  # the fake serves until its stdin closes
        server.wait()


def order_questions(count: int) -> ft.Dataset:
    """``count`` one-turn questions, each answered by the fake's echo of it."""
    return ft.Dataset.from_records(
        [
            {
                "messages": [
                    {"role": "user", "content": f"Where is order {i}?"},
                    {"role": "assistant", "content": f"echo: Where is order {i}?"},
                ]
            }
            for i in range(count)
        ]
    )

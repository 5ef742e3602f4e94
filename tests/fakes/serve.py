"""Run a provider fake as its own process: ``python -m tests.fakes.serve openai``.

Prints the base URL and API key on one line, then serves until stdin closes.
"""

from __future__ import annotations

import sys

from .openai_fake import OpenAIFake


def main() -> None:
    kind = sys.argv[1] if len(sys.argv) > 1 else "openai"
    if kind != "openai":
        raise SystemExit(f"unknown fake {kind!r}")
    with OpenAIFake() as server:
        print(server.base_url, server.api_key, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()

"""Run a provider fake as its own process:
``python -m tests.fakes.serve openai [--chat-delay S] [--reply TEXT]``.

Prints the base URL and API key on one line, then serves until stdin closes.
"""

from __future__ import annotations

import argparse
import sys

from .mistral_fake import MistralFake
from .openai_fake import OpenAIFake


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", nargs="?", default="openai", choices=["openai", "mistral"])
    parser.add_argument("--chat-delay", type=float, default=0.0)
    parser.add_argument("--reply", help="every chat answer's text (a judge's grade, say)")
    args = parser.parse_args()
    fake = OpenAIFake() if args.kind == "openai" else MistralFake()
    fake.chat_delay = args.chat_delay
    if args.reply is not None:
        fake.chat_responder = lambda model, messages: args.reply
    with fake as server:
        print(server.base_url, server.api_key, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()

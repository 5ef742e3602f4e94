"""``finetune ask MODEL PROMPT``: one model's reply to one prompt, as ``ref.ask`` gives it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import finetune as ft
from finetune._arguments import option_setting

__all__ = ["add_ask_command"]

_SERVER = "openai-compatible"


def add_ask_command(
    command: Callable[[str, Callable[[argparse.Namespace], int], str], Any],
) -> None:
    """Add ``ask`` through the CLI's ``command`` maker."""
    ask = command("ask", _cmd_ask, "a model's reply to one prompt, before a whole evaluation")
    ask.add_argument(
        "model",
        help="backend:model, as an eval config names a candidate: hf:hfjob-... (a local "
        "job's model), openai:ft:gpt-4.1-mini:..., together:..., gguf:/path/m.gguf",
    )
    ask.add_argument(
        "prompt",
        help="the user's turn; - reads it from standard input (less the newlines that end it)",
    )
    ask.add_argument("--system", help="a system turn before it")
    ask.add_argument(
        "--endpoint",
        help="an OpenAI-compatible server's URL (vLLM, llama.cpp's server, Ollama's /v1), "
        "MODEL being the name it serves, as an eval config's endpoint",
    )
    ask.add_argument(
        "--option",
        action="append",
        type=option_setting,
        metavar="KEY=VALUE",
        help="a predictor option (a local model's max_new_tokens=64; a hosted one's max_tokens=64, "
        "temperature=0.7); repeat it for several",
    )


def _cmd_ask(args: argparse.Namespace) -> int:
    from finetune.evaluation._model_text import model_named

    served = args.model.removeprefix(f"{_SERVER}:")
    if args.endpoint is not None:
        model: Any = ft.ModelRef.openai_compatible(args.endpoint, served)
    elif served != args.model and "@" not in served:  # no URL after the name, as str(ref)'s
        raise ft.FinetuneError(f"{args.model!r} is served at a URL: give it as --endpoint URL")
    else:
        model = model_named(args.model)  # a job's model is found by ask, which says "job"
    if not isinstance(model, ft.ModelRef):
        from finetune.backends import available_backends

        raise ft.FinetuneError(
            f"{args.model!r} names no model: write it backend:model, a backend being one of "
            f"{', '.join(available_backends())} (hf:hfjob-... for a local job's model)"
        )
    prompt = sys.stdin.read().rstrip("\n") if args.prompt == "-" else args.prompt
    system = [{"role": "system", "content": args.system}] if args.system else []
    print(model.ask([*system, {"role": "user", "content": prompt}], **dict(args.option or [])))
    return 0

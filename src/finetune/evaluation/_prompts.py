"""Turning examples into prompts and references, and few-shot prompts into messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from finetune.dataset._formats import split_turns
from finetune.types import Example

__all__ = ["Messages", "build_prompt", "split_example", "transcript"]

Messages = list[dict[str, str]]


def split_example(example: Example) -> tuple[Messages, str]:
    """The prompt (every turn before the last assistant turn) and the reference answer."""
    turns, answer = split_turns(example)
    return [{"role": role, "content": text} for role, text in turns], answer


def build_prompt(example: Example, few_shot: Sequence[Any] | None = None) -> Messages:
    """The messages sent to a model: the example's system turn, the shots as prior turns, then
    the example's own turns."""
    messages, _ = split_example(example)
    if not few_shot:
        return messages
    system = [m for m in messages[:1] if m["role"] == "system"]
    shots: Messages = []
    for shot in few_shot:
        prompt, answer = split_example(shot)
        shots.extend(m for m in prompt if m["role"] != "system")
        shots.append({"role": "assistant", "content": answer})
    return [*system, *shots, *messages[len(system) :]]


def transcript(messages: Messages) -> str:
    """Messages as ``role: content`` lines, for a judge's prompt."""
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages)

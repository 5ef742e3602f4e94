"""Turning examples into prompts and references, and few-shot prompts into messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from finetune.types import ChatExample, CompletionExample, Example, Message, PreferenceExample

__all__ = ["Messages", "build_prompt", "split_example", "split_turns", "transcript"]

Messages = list[dict[str, str]]


def _pairs(messages: Sequence[Message]) -> tuple[tuple[str, str], ...]:
    return tuple((m.role, m.text) for m in messages)


def split_example(example: Example) -> tuple[Messages, str]:
    """The prompt (every turn before the last assistant turn) and the reference answer."""
    turns, answer = split_turns(example)
    return [{"role": role, "content": text} for role, text in turns], answer


def split_turns(example: Example) -> tuple[tuple[tuple[str, str], ...], str]:
    """``split_example`` as ``(role, text)`` pairs: hashable, so two examples compare."""
    if isinstance(example, ChatExample):
        messages = example.messages
        last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=None)
        if last is None:
            return _pairs(messages), ""
        return _pairs(messages[:last]), messages[last].text
    if isinstance(example, CompletionExample):
        return (("user", example.prompt),), example.completion
    if isinstance(example, PreferenceExample):
        reference = example.chosen[-1].text if example.chosen else ""
        return _pairs(example.input), reference
    raise TypeError(f"cannot evaluate {type(example).__name__}")


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

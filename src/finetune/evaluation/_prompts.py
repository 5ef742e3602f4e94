"""Turning examples into prompts and references, and few-shot prompts into messages."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from finetune.dataset._formats import split_turns
from finetune.evaluation._tools import format_tool_calls
from finetune.types import ChatExample, CompletionExample, Example, Message, PreferenceExample
from finetune.validation._tokens import text_of

__all__ = [
    "Messages",
    "a_plain_prompt",
    "build_prompt",
    "example_key",
    "example_tools",
    "sent",
    "shot_turns",
    "shows_non_text",
    "split_example",
    "transcript",
    "uses_tools",
]

Messages = list[dict[str, Any]]


def split_example(example: Example) -> tuple[Messages, str]:
    """The prompt (every turn before the last assistant turn) and the reference answer.

    An example that uses tools keeps its tool calls and tool results in the prompt, as the
    chat APIs take them, and an answer that calls tools is their ``format_tool_calls`` text;
    one that shows an image keeps its content parts, image and text.
    """
    if not uses_tools(example) and not shows_non_text(example):
        turns, answer = split_turns(example)
        return [{"role": role, "content": text} for role, text in turns], answer
    prompt, last = _prompt_and_answer(example)
    if last is None:
        return [sent(m) for m in prompt], ""
    calls = last.tool_calls
    return [sent(m) for m in prompt], format_tool_calls(calls) if calls else last.text


def a_plain_prompt(messages: Messages) -> bool:
    """One user turn of text: what a completion example's prompt is to a predictor."""
    return (
        len(messages) == 1
        and messages[0].get("role") == "user"
        and isinstance(messages[0].get("content"), str)
    )


def uses_tools(example: Example) -> bool:
    """Whether an example defines tools, or calls them or answers a call in its turns (a
    preference pair's answers included)."""
    if isinstance(example, CompletionExample):
        return False
    turns = _every_turn(example)
    return bool(example.tools) or any(m.tool_calls or m.role == "tool" for m in turns)


def shows_non_text(example: Example) -> bool:
    """Whether an example's turns hold a content part that is not text (an image)."""
    return any(
        part.type != "text"
        for message in _every_turn(example)
        if isinstance(message.content, list)
        for part in message.content
    )


def _every_turn(example: Example) -> Sequence[Message]:
    """An example's messages (a preference pair's input and both answers); none for a
    completion."""
    if isinstance(example, ChatExample):
        return example.messages
    if isinstance(example, PreferenceExample):
        return [*example.input, *example.chosen, *example.rejected]
    return []


def example_key(example: Example) -> str:
    """A short digest of what an evaluation shows of an example (its prompt, tools and
    reference answer), so a result can tell the examples it was run on from others."""
    prompt, reference = split_example(example)
    shown = json.dumps([prompt, example_tools(example), reference], sort_keys=True, default=str)
    return hashlib.sha256(shown.encode()).hexdigest()[:16]


def example_tools(example: Example) -> list[dict[str, Any]] | None:
    """The tools an example offers the model, as the chat APIs take them."""
    if not isinstance(example, ChatExample | PreferenceExample) or not example.tools:
        return None
    return [tool.model_dump(mode="json", exclude_none=True) for tool in example.tools]


def _prompt_and_answer(example: Example) -> tuple[Sequence[Message], Message | None]:
    if isinstance(example, ChatExample):
        messages = example.messages
        last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=None)
        return (messages, None) if last is None else (messages[:last], messages[last])
    assert isinstance(example, PreferenceExample)
    return example.input, example.chosen[-1] if example.chosen else None


def sent(message: Message) -> dict[str, Any]:
    """A turn as a chat API takes it: its tool calls and tool call id kept, no weight, and no
    chain of thought (a chat API takes none in the history; a model's own is its reply's)."""
    return message.model_dump(
        mode="json", exclude_none=True, exclude={"weight", "reasoning_content"}
    )


def shot_turns(few_shot: Sequence[Any] | None) -> Messages:
    """A few-shot prompt's shots as prior turns: each one's turns but its system turn, then
    its answer as the assistant's. Shots of which any uses tools are one system turn instead
    (``_shots_shown``): a tool call as a prior turn would want its result before the next
    question, and a shot that ends on its call has none."""
    shots = list(few_shot or ())
    if any(uses_tools(shot) for shot in shots):
        return [{"role": "system", "content": _shots_shown(shots)}]
    return [turn for shot in shots for turn in _turns_of(shot)]


def _turns_of(shot: Any) -> Messages:
    """A shot's turns but its system turn, then its answer as the assistant's."""
    prompt, answer = split_example(shot)
    return [*(m for m in prompt if m["role"] != "system"), {"role": "assistant", "content": answer}]


def _shots_shown(shots: Sequence[Any]) -> str:
    """Each shot as a transcript in ``<example>`` tags, its tool calls and results as text."""
    blocks = [f"<example>\n{transcript(_turns_of(shot))}\n</example>" for shot in shots]
    return "\n".join([_SHOTS_INTRO, *blocks])


_SHOTS_INTRO = (
    "Examples of conversations and the answers expected (a tool call is written "
    'name({"argument": value}), a tool\'s result as a tool line):'
)


def build_prompt(messages: Messages, shots: Messages) -> Messages:
    """The messages sent to a model: an example's system turn, the ``shot_turns``, then the
    example's own turns (``messages``, its prompt as ``split_example`` gives it); shots shown
    as a system turn follow the example's own system text in one system turn."""
    if not shots:
        return messages
    system = [m for m in messages[:1] if m["role"] == "system"]
    rest = messages[len(system) :]
    if shots[0]["role"] != "system":
        return [*system, *shots, *rest]
    own = text_of(system[0]["content"]) if system else ""
    merged = "\n\n".join(filter(None, [own, shots[0]["content"]]))
    return [{**(system[0] if system else {}), "role": "system", "content": merged}, *rest]


def example_text(example: ChatExample | PreferenceExample) -> str:
    """A chat example as ``transcript`` writes its turns; a preference pair as its input's,
    then ``chosen:`` and ``rejected:`` with their answers."""
    if isinstance(example, ChatExample):
        return transcript(_as_dicts(example.messages))
    answers = [
        f"{label}: {' '.join(_said(m) for m in _as_dicts(turns))}"
        for label, turns in (("chosen", example.chosen), ("rejected", example.rejected))
    ]
    return "\n".join([transcript(_as_dicts(example.input)), *answers])


def _as_dicts(messages: Sequence[Message]) -> Messages:
    return [m.model_dump(exclude_none=True) for m in messages]


def transcript(messages: Messages) -> str:
    """Messages as ``role: content`` lines, for a judge's prompt (a tool call as its
    ``format_tool_calls`` text)."""
    return "\n".join(f"{m['role']}: {_said(m)}" for m in messages)


def _said(message: dict[str, Any]) -> str:
    calls = message.get("tool_calls")
    text = _shown(message.get("content"))
    return "\n".join(filter(None, [text, format_tool_calls(calls) if calls else ""]))


def _shown(content: Any) -> str:
    """A message's content as a reader is told it: its text, and, where it shows an image
    (a part that is not text), ``[image]`` in its place (``[input_audio]`` for another)."""
    if not isinstance(content, list) or all(
        not isinstance(part, dict) or part.get("type") == "text" for part in content
    ):
        return text_of(content)
    return " ".join(filter(None, (_piece(part) for part in content if isinstance(part, dict))))


def _piece(part: dict[str, Any]) -> str:
    if part.get("type") == "text":
        return str(part.get("text") or "")
    return "[image]" if part.get("type") == "image_url" else f"[{part.get('type')}]"

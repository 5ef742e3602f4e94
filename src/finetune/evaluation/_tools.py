"""Tool calls as text: what a model that calls tools is scored on, and read back from."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from finetune._json_text import json_from_text

__all__ = ["Tools", "format_tool_calls", "is_tool_call", "read_tool_calls"]

Tools = list[dict[str, Any]]
"""The tools an example offers, as the chat APIs take them (``{"type": "function", ...}``)."""

_CALL = re.compile(r"([A-Za-z0-9_.:-]{1,64})\((.*)\)")


def format_tool_calls(calls: Iterable[Any]) -> str:
    """Tool calls as the text ``ft.evaluate`` scores: one ``name({"arg": ...})`` a line, the
    arguments as JSON with sorted keys (so the same call is the same text, whatever order
    the model wrote its arguments in); arguments that are no JSON stay as they were written.

    A call is an OpenAI-shaped dict (``{"function": {"name", "arguments"}}``), a
    ``{"name", "arguments"}`` dict, a ``ToolCall``, or an SDK's tool-call object.
    """
    return "\n".join(
        f"{name}({_arguments_text(arguments)})" for name, arguments in map(_parts, calls)
    )


def read_tool_calls(text: str) -> list[tuple[str, Any]] | None:
    """The calls in a text ``format_tool_calls`` wrote, each ``(name, arguments)``; ``None``
    for a reply that calls no tool (text that is not every line ``name(JSON)``)."""
    calls = []
    for line in text.strip().splitlines() or [""]:
        match = _CALL.fullmatch(line.strip())
        if match is None:
            return None
        try:
            calls.append((match.group(1), json_from_text(match.group(2))))
        except ValueError:
            return None
    return calls


def is_tool_call(item: Any) -> bool:
    """Whether ``item`` is a tool call in one of the shapes ``format_tool_calls`` takes: it
    names a function."""
    return bool(_parts(item)[0])


def _parts(call: Any) -> tuple[str, Any]:
    """A call's function name and arguments, whatever shape it comes in."""
    if isinstance(call, dict):
        function = call.get("function", call)
        if not isinstance(function, dict):  # no call: {"function": "name"}
            return "", None
        return str(function.get("name") or ""), function.get("arguments")
    function = getattr(call, "function", call)
    return str(getattr(function, "name", "") or ""), getattr(function, "arguments", None)


def _arguments_text(arguments: Any) -> str:
    """The arguments as JSON with sorted keys; a text that is no JSON (a model's broken
    arguments) as a JSON string, so the line still reads back."""
    value = arguments
    if isinstance(arguments, str):
        try:
            value = json_from_text(arguments) if arguments.strip() else {}
        except ValueError:
            value = arguments
    try:
        return json.dumps({} if value is None else value, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return json.dumps(str(arguments), ensure_ascii=False)

"""OpenAI's function-calling rows from before tools (its 2023 fine-tuning format, still in
many datasets): ``functions`` beside the messages, an assistant turn's ``function_call``, and
its result in a ``function`` turn named after the function. Read as the tools shape every
backend trains on: ``tools``, ``tool_calls`` with ids, and ``tool`` turns answering them; an
error in one is named by the row's own fields."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["LEGACY_FUNCTIONS", "function_field", "functions_as_tools", "is_function_row"]

LEGACY_FUNCTIONS = (
    "OpenAI's function calling from before tools: a row that lists its 'functions' has its "
    "function_call and function turns read as tool calls and tool turns; give the row its "
    "functions, or write the call as tool_calls and the result as a tool turn"
)

_CALL = re.compile(r"messages\[(\d+)\]\.tool_calls(?:\[0\])?(?:\.(id|type|function))?")
_TOOL = re.compile(r"tools(?:\[(\d+)\])?")


def is_function_row(data: dict[str, Any]) -> bool:
    """A chat row with ``functions`` (and no ``tools``)."""
    return "functions" in data and "tools" not in data and data.get("messages").__class__ is list


def call_id(index: int) -> str:
    """The id given the call in the message at ``index`` (the format has none): nine
    letters and digits, which every provider takes (Mistral takes no other)."""
    return f"call{index:05d}"


def functions_as_tools(data: dict[str, Any]) -> dict[str, Any]:
    """A row in the legacy shape as one in the tools shape; any other row as it is. A
    ``function`` turn answers the earliest call of its name not yet answered (else the
    earliest not yet answered: the format pairs them by order)."""
    if not is_function_row(data):
        return data
    waiting: list[tuple[str, Any]] = []  # (call id, function name) not yet answered
    messages = [_turn(index, message, waiting) for index, message in enumerate(data["messages"])]
    functions = data["functions"]
    tools = (
        [{"type": "function", "function": f} for f in functions]
        if isinstance(functions, list)
        else functions
    )
    rest = {key: value for key, value in data.items() if key != "functions"}
    return {**rest, "messages": messages, "tools": tools}


def _turn(index: int, message: Any, waiting: list[tuple[str, Any]]) -> Any:
    if not isinstance(message, dict):
        return message
    if "function_call" in message and "tool_calls" not in message:
        call = message["function_call"]
        waiting.append((call_id(index), call.get("name") if isinstance(call, dict) else None))
        rest = {key: value for key, value in message.items() if key != "function_call"}
        return {
            **rest,
            "tool_calls": [{"id": call_id(index), "type": "function", "function": call}],
        }
    if message.get("role") != "function":
        return message
    name = message.get("name")
    named = (i for i, (_, called) in enumerate(waiting) if called == name)
    answered = next(named, 0 if waiting else None)
    rest = {key: value for key, value in message.items() if key not in ("role", "name")}
    turn = {**rest, "role": "tool"}
    if answered is not None:
        turn["tool_call_id"] = waiting.pop(answered)[0]
    return turn


def function_field(field: str | None, data: dict[str, Any]) -> str | None:
    """A field of ``functions_as_tools(data)`` (``messages[1].tool_calls[0].function.name``,
    ``tools[0].function.parameters``) as the row spells it (``messages[1].function_call.name``,
    ``functions[0].parameters``)."""
    if field is None or not is_function_row(data):
        return field
    head, _, rest = field.partition(".")
    found = _TOOL.fullmatch(head) or _CALL.match(field)
    if found is None:
        return _result_field(field)
    if found.re is _TOOL:
        index = f"[{found.group(1)}]" if found.group(1) else ""
        after = rest.removeprefix("function").removeprefix("type").lstrip(".")
        return f"functions{index}" + (f".{after}" if after else "")
    tail = field[found.end() :]
    return f"messages[{found.group(1)}].function_call{tail if found.group(2) == 'function' else ''}"


def _result_field(field: str) -> str:
    """A ``tool`` turn's ``tool_call_id`` is its ``name`` in the row."""
    found = re.fullmatch(r"(messages\[\d+\])\.tool_call_id", field)
    return f"{found.group(1)}.name" if found else field

"""Tool definitions and tool calls as other tools write them, read as ours: ``tools`` (and
``messages``) kept as the JSON text of a list (a table's column), a call's arguments as an
object (transformers' chat templates, TRL's datasets), and the null keys Arrow gives a
table's rows."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from finetune.dataset._community import messages_from_text, tools_from_text

__all__ = ["MESSAGE_LIST_KEYS", "arguments_as_text", "lists_from_text", "without_table_nulls"]

# the keys of a raw row, in any provider's shape, that hold a list of messages, in turn order
MESSAGE_LIST_KEYS = (
    "messages",
    "prompt",
    "input",
    "chosen",
    "rejected",
    "preferred_output",
    "non_preferred_output",
)


def lists_from_text(data: dict[str, Any]) -> dict[str, Any]:
    """A record whose ``tools`` or ``messages`` are the JSON text of a list (a table's column,
    as a Hugging Face dataset often keeps them; a CSV file's cell) with the list; any other
    record as it is."""
    tools, messages = data.get("tools"), data.get("messages")
    if tools.__class__ is not str and messages.__class__ is not str:
        return data
    read = dict(data)
    if tools.__class__ is str:
        read["tools"] = tools_from_text(tools)
    if messages.__class__ is str:
        read["messages"] = messages_from_text(messages)
    return read


def arguments_as_text(data: dict[str, Any]) -> dict[str, Any]:
    """A record whose tool calls give their arguments as an object (the convention of
    transformers' chat templates and TRL's datasets) with each object as its JSON text, as
    OpenAI writes them and our examples keep them; any other record as it is."""
    messages = data.get("messages")
    if messages.__class__ is not list:
        return _pair_arguments_as_text(data) if messages is None else data
    for message in messages:
        if message.__class__ is dict and "tool_calls" in message:
            break
    else:
        return data  # the usual row: no tool calls to look into
    if not any(_object_arguments(message) for message in messages):
        return data
    return {**data, "messages": [_with_text_arguments(message) for message in messages]}


def _pair_arguments_as_text(data: dict[str, Any]) -> dict[str, Any]:
    """The same for a preference pair's lists of messages, OpenAI's ``input.messages``
    among them."""
    changed: dict[str, Any] = {}
    for key in MESSAGE_LIST_KEYS:
        holder = data.get(key)
        if key == "input" and isinstance(holder, dict):  # OpenAI's: {"messages": [...]}
            turns = holder.get("messages")
            read = arguments_as_text({"messages": turns})["messages"]
            if read is not turns:
                changed[key] = {**holder, "messages": read}
        elif isinstance(holder, list):
            read = arguments_as_text({"messages": holder})["messages"]
            if read is not holder:
                changed[key] = read
    return {**data, **changed} if changed else data


def _object_arguments(message: Any) -> bool:
    calls = message.get("tool_calls") if isinstance(message, dict) else None
    return isinstance(calls, list) and any(_arguments_of(call) is not None for call in calls)


def _arguments_of(call: Any) -> dict[str, Any] | None:
    """A tool call's arguments when they are an object, not its text."""
    function = call.get("function") if isinstance(call, dict) else None
    arguments = function.get("arguments") if isinstance(function, dict) else None
    return arguments if isinstance(arguments, dict) else None


def _with_text_arguments(message: Any) -> Any:
    """A message whose tool calls' object arguments are their JSON text."""
    return _with_arguments(message, lambda arguments: json.dumps(arguments, ensure_ascii=False))


def _with_arguments(message: Any, change: Callable[[dict[str, Any]], Any]) -> Any:
    """``message`` with ``change`` applied to each of its tool calls' object arguments."""
    if not _object_arguments(message):
        return message
    calls = [
        {**call, "function": {**call["function"], "arguments": change(arguments)}}
        if (arguments := _arguments_of(call)) is not None
        else call
        for call in message["tool_calls"]
    ]
    return {**message, "tool_calls": calls}


# JSON schema's keys whose value may be null (every other one is a schema, text or a list)
_NULL_ALLOWED = frozenset({"default", "const"})


def without_table_nulls(record: dict[str, Any]) -> dict[str, Any]:
    """A row read from a table (a Hugging Face dataset; a DataFrame read from Parquet)
    without the null keys Arrow gives each tool definition, and each tool call's object
    arguments, from every other row's: no JSON schema holds them (its ``default`` and
    ``const`` keep theirs), and a call would learn to send them."""
    cleaned = dict(record)
    if isinstance(record.get("tools"), list):
        cleaned["tools"] = _without_nulls(record["tools"], _NULL_ALLOWED)
    for key in (*MESSAGE_LIST_KEYS, "completion"):  # TRL's: a list of messages too
        turns = record.get(key)
        if isinstance(turns, list) and any(map(_object_arguments, turns)):
            cleaned[key] = [_with_arguments(message, _without_nulls) for message in turns]
    return cleaned


def _without_nulls(value: Any, kept: frozenset[str] = frozenset()) -> Any:
    """``value`` without its null keys at any depth (but the ``kept`` ones)."""
    if isinstance(value, dict):
        return {
            key: _without_nulls(item, kept)
            for key, item in value.items()
            if item is not None or key in kept
        }
    if isinstance(value, list):
        return [_without_nulls(item, kept) for item in value]
    return value

"""The rules of a conversation's turns: each message, its content and tool calls, and how
the conversation ends; and the keys an example or a message may hold."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from finetune._json_text import json_from_text
from finetune._words import json_kind, number_as_text
from finetune.dataset._formats import (
    FUNCTION_KEYS,
    KNOWN_KEYS,
    MESSAGE_READ_KEYS,
    REASONING_KEYS,
    TOOL_CALL_KEYS,
    is_empty,
)
from finetune.dataset._shape_hints import IGNORED_KEYS, role_meant
from finetune.dataset._unknown_keys import columns_kept, unknown_key_message
from finetune.validation._call_arguments import arguments_object
from finetune.validation._images import check_images

if TYPE_CHECKING:
    from finetune.validation._rules import Target

__all__ = ["ROLES", "Issue", "check_function_type", "check_keys", "check_messages"]

Issue = tuple[str, str, str, str | None]  # code, severity, message, field

ROLES = {"system", "user", "assistant", "tool"}
_MISTRAL_TOOL_ID = re.compile(r"^[A-Za-z0-9]{9}$")
# the keys of the objects inside an example, and how a message names their owner
_PART_KEYS = {
    "message": (MESSAGE_READ_KEYS, "a message"),
    "tool call": (TOOL_CALL_KEYS, "a tool call"),
    "function": (FUNCTION_KEYS, "a tool call's function"),
}


def check_keys(
    data: dict[str, Any], kind: str, where: str = "", columns: Iterable[str] = ()
) -> Iterator[Issue]:
    """Unknown keys of an example of ``kind`` (its ``IGNORED_KEYS`` aside), or of a message,
    a tool call or its function (``kind="message"``, ``"tool call"``, ``"function"``, at
    ``where``): dropped when empty (a warning), refused when they hold a value (exactly what
    parsing does, so ``fit`` refuses nothing ``validate`` let through). ``columns``: the
    row's keys as read, for an example read from another shape (ShareGPT's)."""
    if kind in _PART_KEYS:
        (known, owner), ignored = _PART_KEYS[kind], frozenset[str]()
    else:
        known, owner, ignored = KNOWN_KEYS[kind], f"a {kind} example", IGNORED_KEYS
    for key, value in data.items():
        if key in known or key in ignored:
            continue
        path = f"{where}.{key}" if where else key
        if is_empty(value):
            yield "unknown_field", "warning", f"unknown key {key!r} holds nothing: dropped", path
        else:  # the row's other columns, only once one is refused: rows seldom are
            kept = [] if where else columns_kept(columns or data, data, known, ignored)
            message = unknown_key_message(
                key,
                known,
                owner,
                top_level=not where,
                value=value,
                kept=kept,
                columns=list(columns or data),
            )
            yield "unexpected_field", "error", message, path


def check_function_type(item: dict[str, Any], path: str, code: str) -> Iterator[Issue]:
    """A tool's or a tool call's ``type``, when given, is ``"function"``: the only one."""
    if item.get("type", "function") != "function":
        message = f'type must be "function", not {item["type"]!r}'
        yield code, "error", message, f"{path}.type"


def check_messages(
    messages: list[Any], path: str, target: Target, *, final: bool
) -> Iterator[Issue]:
    open_calls: dict[str, str] = {}
    assistants = weighted = trainable = unknown_roles = 0
    for index, message in enumerate(messages):
        where = f"{path}[{index}]"
        if not isinstance(message, dict):
            yield "message_not_object", "error", "each message must be an object", where
            continue
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            yield (
                "unknown_role",
                "error",
                f"role {role!r} is not one of {sorted(ROLES)}{role_meant(role, message)}",
                (f"{where}.role"),
            )
            unknown_roles += 1
            continue
        yield from _check_message(message, role, where, target, open_calls)
        if role == "assistant":
            assistants += 1
            weight = message.get("weight")
            weighted += weight is not None
            trainable += weight != 0
    if final and (assistants or not unknown_roles):  # "Assistant" is not also "no assistant"
        yield from _check_conversation_end(messages, path, assistants, weighted, trainable)
        is_last_call = _last_tool_calls(messages)
        for call_id, where in open_calls.items():
            if call_id not in is_last_call:
                yield (
                    "tool_call_without_result",
                    "error",
                    f"tool call {call_id!r} has no tool message answering it",
                    where,
                )


def _last_tool_calls(messages: list[Any]) -> set[str]:
    last = messages[-1] if messages else None
    if isinstance(last, dict) and last.get("role") == "assistant":
        calls = last.get("tool_calls")
        if isinstance(calls, list):
            ids = (c.get("id") for c in calls if isinstance(c, dict))
            return {i for i in ids if isinstance(i, str)}
    return set()


def _check_conversation_end(
    messages: list[Any], path: str, assistants: int, weighted: int, trainable: int
) -> Iterator[Issue]:
    if assistants == 0:
        yield "missing_assistant", "error", "no assistant message to learn from", path
        return
    if trainable == 0:
        yield "no_trainable_turns", "error", "every assistant message has weight 0", path
    last = messages[-1]
    if isinstance(last, dict) and last.get("role") != "assistant" and not weighted:
        yield (
            "assistant_not_last",
            "error",
            f"the last message is {last.get('role')!r}; end with the assistant's answer",
            f"{path}[{len(messages) - 1}]",
        )


def _check_message(
    message: dict[str, Any], role: str, where: str, target: Target, open_calls: dict[str, str]
) -> Iterator[Issue]:
    yield from check_keys(message, "message", where)
    weight = message.get("weight")
    if weight is not None:
        if role != "assistant":
            yield (
                "weight_not_on_assistant",
                "error",
                f"weight is only allowed on assistant messages, not {role}",
                f"{where}.weight",
            )
        elif weight not in (0, 1) or isinstance(weight, bool):
            yield (
                "invalid_weight",
                "error",
                f"weight must be 0 or 1, got {weight!r}",
                (f"{where}.weight"),
            )
    yield from _check_content(message, role, where, target)
    if len(message) > 2:  # role and content alone (most turns); other pairs lack one, refused
        yield from _check_name(message.get("name"), where)
        yield from _check_placement(message, role, where)
        yield from _check_reasoning(message, role, where, target)
    if role == "assistant" and message.get("tool_calls") is not None:
        yield from _check_tool_calls(message["tool_calls"], where, target, open_calls)
    if role == "tool":
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str) or call_id not in open_calls:
            yield (
                "tool_result_without_call",
                "error",
                f"tool_call_id {call_id!r} answers no earlier tool call"
                if call_id is not None
                else "a tool result with no earlier tool call to answer",
                f"{where}.tool_call_id",
            )
        else:
            del open_calls[call_id]


def _check_reasoning(
    message: dict[str, Any], role: str, where: str, target: Target
) -> Iterator[Issue]:
    """An assistant turn's chain of thought (``reasoning_content``, or ``reasoning``): text,
    once, and only where the target trains it."""
    given = [key for key in REASONING_KEYS if message.get(key) is not None]
    if not given:
        return
    path = f"{where}.{given[0]}"
    if len(given) > 1:
        text = "reasoning_content and reasoning are one field by two names: keep one"
        yield "invalid_reasoning", "error", text, f"{where}.reasoning"
    elif role != "assistant":
        text = f"reasoning is an assistant turn's chain of thought, not a {role} message's"
        yield "invalid_reasoning", "error", text, path
    elif not isinstance(message[given[0]], str):
        text = f"{given[0]} is the chain of thought as text, not {json_kind(message[given[0]])}"
        yield "invalid_reasoning", "error", text, path
    elif not target.reasoning:
        text = (
            f"{target.name} trains no reasoning: the chain of thought would be dropped, and a "
            "model that reasons, trained on answers alone, unlearns to reason; train it on "
            "together, fireworks or hf (a model whose chat template writes it), or remove the "
            "key to train the answers alone on a model that does not reason"
        )
        yield "unsupported_reasoning", "error", text, path


def _check_name(name: Any, where: str) -> Iterator[Issue]:
    """A message's ``name`` (its speaker's), when given, is text."""
    if name is not None and not isinstance(name, str):
        message = f"name is the speaker's name, text, not {json_kind(name)}{number_as_text(name)}"
        yield "invalid_name", "error", message, f"{where}.name"


def _check_placement(message: dict[str, Any], role: str, where: str) -> Iterator[Issue]:
    """Tool calls only on the assistant's turns, a ``tool_call_id`` only on a tool result
    (null, or empty of its own type, is nothing: a table's column gives every row one)."""
    if role != "assistant" and message.get("tool_calls") not in (None, []):
        message_text = f"tool_calls are made by the assistant, not by a {role} message"
        yield "misplaced_field", "error", message_text, f"{where}.tool_calls"
    if role != "tool" and message.get("tool_call_id") not in (None, ""):
        message_text = f"tool_call_id names the call a tool result answers, not a {role} message"
        yield "misplaced_field", "error", message_text, f"{where}.tool_call_id"


def _check_content(
    message: dict[str, Any], role: str, where: str, target: Target
) -> Iterator[Issue]:
    content = message.get("content")
    if content is None:
        if not (role == "assistant" and message.get("tool_calls")):
            yield "missing_content", "error", f"{role} message has no content", (f"{where}.content")
        return
    if isinstance(content, list):
        if not content:
            yield "invalid_content", "error", "content is an empty list", f"{where}.content"
        for index, part in enumerate(content):
            problem = _part_problem(part)
            if problem is not None:
                yield "invalid_content", "error", problem, f"{where}.content[{index}]"
        yield from check_images(content, role, where, target)
        return
    if not isinstance(content, str):
        yield (
            "invalid_content",
            "error",
            f"content must be a string or a list of parts, got {json_kind(content)}"
            f"{number_as_text(content)}",
            f"{where}.content",
        )
    elif not content.strip() and not (role == "assistant" and message.get("tool_calls")):
        yield "empty_content", "warning", f"{role} content is empty", f"{where}.content"


_GEMINI_PARTS = frozenset({"functionCall", "functionResponse", "inlineData", "fileData"})


def _part_problem(part: Any) -> str | None:
    """What is wrong with one content part, if anything."""
    if not isinstance(part, dict):
        return "content parts must be objects"
    if part.get("text") is not None and not isinstance(part["text"], str):
        return f'a part\'s "text" is a string, not {json_kind(part["text"])}'
    if not isinstance(part.get("type"), str):
        gemini = sorted(_GEMINI_PARTS & part.keys())
        if gemini:
            return (
                f"Gemini's {gemini[0]} part is not read: of Gemini's rows, finetune reads text "
                "parts only; write the turn in OpenAI's shape (tool_calls, a tool turn, an "
                "image_url part)"
            )
        return 'a content part needs a "type" ("text", "image_url", ...)'
    if part["type"] == "text" and not isinstance(part.get("text"), str):
        return 'a "text" part needs a string "text"'
    return None


def _check_tool_calls(
    calls: Any, where: str, target: Target, open_calls: dict[str, str]
) -> Iterator[Issue]:
    if not isinstance(calls, list):
        yield "invalid_tool_call", "error", "tool_calls must be a list", f"{where}.tool_calls"
        return
    for index, call in enumerate(calls):
        path = f"{where}.tool_calls[{index}]"
        function = call.get("function") if isinstance(call, dict) else None
        call_id = call.get("id") if isinstance(call, dict) else None
        if not isinstance(call_id, str) or not isinstance(function, dict):
            yield "invalid_tool_call", "error", "a tool call needs an id and a function", path
            continue
        yield from check_keys(call, "tool call", path)
        yield from check_keys(function, "function", f"{path}.function")
        yield from check_function_type(call, path, "invalid_tool_call")
        if not isinstance(function.get("name"), str):
            yield "invalid_tool_call", "error", "function.name is missing", f"{path}.function"
        arguments = function.get("arguments")
        if not isinstance(arguments, str) or arguments_object(arguments) is None:
            yield (
                "tool_arguments_not_json",
                "error",
                "function.arguments must be a JSON object, as its text or as the object, not "
                + _what_arguments_are(arguments),
                f"{path}.function.arguments",
            )
        if target.mistral_tool_ids and not _MISTRAL_TOOL_ID.match(call_id):
            yield (
                "invalid_tool_call_id",
                "error",
                f"Mistral needs tool call ids of exactly 9 letters or digits, got {call_id!r}",
                f"{path}.id",
            )
        open_calls[call_id] = path


def _what_arguments_are(value: Any) -> str:
    """``a string that is not JSON``, ``the text of an array``, or the JSON kind of a value."""
    if not isinstance(value, str):
        return json_kind(value)
    try:
        return f"the text of {json_kind(json_from_text(value))}"
    except ValueError:
        return f"a string that is not JSON ({value!r:.40})"

"""Structural rules per target, run on raw records so one bad row never stops the scan.

Every rule has a stable code (``RULES``, in ``_codes.py``); docs/validation-rules.md lists
them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from finetune._errors import did_you_mean
from finetune._words import json_kind, number_as_text
from finetune.dataset._formats import detect_kind
from finetune.dataset._implicit_prompt import not_messages
from finetune.dataset._role_columns import completion_as_chat
from finetune.dataset._shape_hints import shape_hint
from finetune.dataset._tool_rows import MESSAGE_LIST_KEYS
from finetune.types import EXAMPLE_KINDS
from finetune.validation._call_arguments import arguments_mismatch, arguments_object
from finetune.validation._images import non_text_parts
from finetune.validation._turns import Issue, check_function_type, check_keys, check_messages

__all__ = [
    "Issue",
    "Target",
    "check_record",
    "first_tool_use",
    "register_rules",
    "target_rules",
]


@dataclass(frozen=True)
class Target:
    """What a provider accepts: kinds, minimum examples, file size cap, strict shapes.

    A plugin builds its own (``Target("acme", frozenset({"chat"}), 10, None)``) and returns it
    from its backend's ``validation_rules()``; ``extra_checks(record)`` yields more issues
    ``(code, severity, message, field)`` for each record that passed the built-in rules.
    """

    name: str
    kinds: frozenset[str]
    min_examples: int
    max_file_bytes: int | None
    mistral_tool_ids: bool = False
    truncates: bool = False
    one_answer_pairs: bool = False  # each side of a preference pair is one assistant message
    completion_models: tuple[str, ...] = ()
    extra_checks: Callable[[dict[str, Any]], Iterable[Issue]] | None = None
    tools: bool = True  # trains tool definitions, calls and results
    images: bool = True  # trains content parts that are not text (images); else they'd be dropped
    inline_images_only: bool = False  # images as base64 data URLs only, no links
    image_types: frozenset[str] = frozenset()  # the image/... types it takes (empty: any)
    lists_models: bool = False  # the model table holds all it trains: others are unknown_model
    reasoning: bool = False  # trains an assistant turn's reasoning_content (chain of thought)


TARGETS = {
    "openai": Target(
        "openai",
        frozenset(EXAMPLE_KINDS),
        min_examples=10,
        max_file_bytes=None,
        completion_models=("babbage-002", "davinci-002"),
        lists_models=True,
        image_types=frozenset({"jpeg", "png", "webp"}),
    ),
    "mistral": Target(
        "mistral",
        frozenset({"chat", "completion"}),
        min_examples=1,
        max_file_bytes=512 * 1024 * 1024,
        mistral_tool_ids=True,
        images=False,  # its format's content is text: the parts' texts, joined
    ),
    "hf": Target(
        "hf", frozenset(EXAMPLE_KINDS), 1, None, truncates=True, images=False, reasoning=True
    ),
    "together": Target(
        "together",
        frozenset(EXAMPLE_KINDS),
        min_examples=1,
        max_file_bytes=50 * 1024**3,
        inline_images_only=True,
        reasoning=True,  # reasoning or reasoning_content on assistant turns (its docs)
        image_types=frozenset({"jpeg", "png", "webp"}),
    ),
    # Fireworks: chat JSONL (or one-turn preference pairs for DPO), 3 to 3 million examples;
    # larger than 150 MB needs the signed-URL upload path, which this backend takes
    "fireworks": Target(
        "fireworks",
        frozenset({"chat", "preference"}),
        min_examples=3,
        max_file_bytes=None,
        one_answer_pairs=True,
        inline_images_only=True,
        image_types=frozenset({"jpeg", "png"}),
        reasoning=True,  # thinking traces on assistant turns, for the models that think
    ),
}


def register_rules(target: Target) -> None:
    """Make a rule set known by name (``validate(target="acme")``, ``finetune validate``)."""
    TARGETS[target.name] = target


def target_rules(name: str) -> Target:
    """The rule set of a target (``openai``, ``mistral``, ``hf`` or one registered)."""
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown validation target {name!r}; use {sorted(TARGETS)}") from None


def record_kind(record: dict[str, Any]) -> str | None:
    """The example kind of a raw record, or None when the shape is unknown."""
    return detect_kind(record, loose=True)


_PLAIN_ROLES = ("system", "user", "assistant")


def plain_chat(record: dict[str, Any]) -> tuple[list[str], list[str]] | None:
    """The roles and texts of a chat record in the usual shape, which no rule of any target
    objects to: only ``messages``, each exactly a system, user or assistant ``role`` and a
    non-blank string ``content``, the last from the assistant. ``None`` for anything else, which
    then goes through every rule (this is a shortcut, never a second rule set)."""
    messages = record.get("messages")
    if len(record) != 1 or messages.__class__ is not list or not messages:
        return None
    roles, texts = [], []
    for message in messages:
        if message.__class__ is not dict or len(message) != 2:
            return None
        role, content = message.get("role"), message.get("content")
        if role not in _PLAIN_ROLES or content.__class__ is not str or not content.strip():
            return None
        roles.append(role)
        texts.append(content)
    return (roles, texts) if role == "assistant" else None


def check_record(
    record: dict[str, Any], target: Target, model: str, columns: Iterable[str] = ()
) -> Iterator[Issue]:
    """Structural issues of one raw record for ``target`` (``columns``: the keys of the row
    it was read from, which another shape names otherwise)."""
    kind = record_kind(record)
    if kind is None:
        more = f" and {len(record) - 8} more" if len(record) > 8 else ""
        keys = (", ".join(sorted(record)[:8]) + more) or "none"
        message = f"unrecognized example shape (keys: {keys}){shape_hint(record)}"
        yield "unknown_format", "error", message, None
        return
    if kind not in target.kinds:
        told = f"{target.name} cannot train on {kind} examples"
        yield "unsupported_kind", "error", told + completion_as_chat(kind, target.kinds), None
        return
    yield from check_keys(record, kind, columns=columns)
    if kind == "chat":
        yield from _check_chat(record, target)
    elif kind == "completion":
        yield from _check_completion(record, target, model)
    else:
        yield from _check_preference(record, target)
    if not target.tools and (place := first_tool_use(record)):
        yield (
            "unsupported_tools",
            "error",
            f"the {target.name} backend trains on text turns only: this example's tool "
            "definitions, calls and results would be dropped (a tool call trained as an empty "
            "turn); remove them, or train it on a backend that takes tools",
            place,
        )
    if target.extra_checks is not None:
        yield from target.extra_checks(record)


def first_tool_use(record: dict[str, Any]) -> str | None:
    """Where an example first uses tools: a message's tool call or tool result, else its
    tool definitions."""
    for path, message in _turns_of(record):
        if message.get("tool_calls"):
            return f"{path}.tool_calls"
        if message.get("role") == "tool":
            return path
    given = record.get("input")
    source: dict[str, Any] = given if isinstance(given, dict) else {}
    for path, tools in (("tools", record.get("tools")), ("input.tools", source.get("tools"))):
        if tools:
            return path
    return None


def first_non_text_part(record: dict[str, Any]) -> tuple[str, str] | None:
    """Where an example first holds a content part that is not text (an image), and its
    type."""
    for path, message in _turns_of(record):
        found = non_text_parts(message.get("content"))
        if found:
            index, part = found[0]
            return f"{path}.content[{index}]", part["type"]
    return None


def _turns_of(record: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each message of an example in any shape, with its path (``input.messages[0]``)."""
    given = record.get("input")
    source: dict[str, Any] = given if isinstance(given, dict) else {}
    named = [(key, record.get(key)) for key in MESSAGE_LIST_KEYS]
    named.append(("input.messages", source.get("messages")))
    for path, messages in named:
        for index, message in enumerate(messages if isinstance(messages, list) else []):
            if isinstance(message, dict):
                yield f"{path}[{index}]", message


def _check_completion(record: dict[str, Any], target: Target, model: str) -> Iterator[Issue]:
    for key in ("prompt", "completion"):
        value = record.get(key)
        if not isinstance(value, str):
            given = json_kind(value) + number_as_text(value) if key in record else "missing"
            yield ("invalid_completion", "error", f"{key} must be a string, not {given}", key)
        yield from _check_text(value, key)
    base = model.removeprefix("ft:").split(":")[0]
    if target.completion_models and base not in target.completion_models:
        only = ", ".join(target.completion_models)
        cure = completion_as_chat("completion", target.kinds)
        told = f"{model} fine-tunes on chat data; prompt/completion pairs are only for {only}"
        yield "unsupported_kind", "error", told + cure, None


def _check_preference(record: dict[str, Any], target: Target) -> Iterator[Issue]:
    openai_shape = "preferred_output" in record  # its outputs are lists; TRL's may be text
    if openai_shape:
        source = record.get("input")
        prompt = source.get("messages") if isinstance(source, dict) else None
        parts = (
            ("input.messages", prompt),
            ("preferred_output", record.get("preferred_output")),
            ("non_preferred_output", record.get("non_preferred_output")),
        )
    else:
        asked = "input" if "input" in record else "prompt"  # the key the row spells (TRL's)
        parts = (
            (asked, record.get(asked)),
            ("chosen", record.get("chosen")),
            ("rejected", record.get("rejected")),
        )
    tools_path, tools = _pair_tools(record, openai_shape)
    if tools is not None:
        yield from _check_tools(tools, tools_path)
    for path, value in parts:
        if isinstance(value, str) and not openai_shape:
            yield from _check_text(value, path)
            continue
        if not isinstance(value, list) or not value:
            problem = not_messages(path, value, record, text_allowed=not openai_shape)
            yield "invalid_preference", "error", problem, path
            continue
        yield from check_messages(value, path, target, final=False)
        yield from _check_calls(value, tools, path)
    for path, value in parts[1:]:
        if isinstance(value, list) and value:
            last = value[-1]
            if isinstance(last, dict) and last.get("role") != "assistant":
                yield "invalid_preference", "error", "must end with an assistant message", path
            yield from _answer_turns(value, path)
            if target.one_answer_pairs and len(value) > 1:
                message = f"{target.name} takes one assistant message here, not {len(value)}"
                yield "invalid_preference", "error", message, path
    (chosen_path, chosen), (rejected_path, rejected) = parts[1:]
    if isinstance(chosen, list | str) and chosen and _answer(chosen) == _answer(rejected):
        yield "identical_pair", "warning", f"the same as {chosen_path}", rejected_path


def _answer_turns(answer: list[Any], path: str) -> Iterator[Issue]:
    """A user or system turn in an answer: DPO trains on every turn of it, as the model's."""
    for index, message in enumerate(answer):
        role = message.get("role") if isinstance(message, dict) else None
        if role in ("user", "system"):
            message_text = (
                f"a {role} turn in an answer, which DPO trains as the model's words: an answer "
                "holds the model's turns (assistant, and tool results); the conversation "
                "before it goes in the prompt"
            )
            yield "invalid_preference", "error", message_text, f"{path}[{index}].role"
            return


def _pair_tools(record: dict[str, Any], openai_shape: bool) -> tuple[str, Any]:
    """Where a preference row defines its tools, and what it gives there (``None``: none):
    OpenAI's in ``input.tools``, TRL's beside the pair."""
    if not openai_shape:
        return "tools", record.get("tools")
    source = record.get("input")
    return "input.tools", source.get("tools") if isinstance(source, dict) else None


def _answer(value: Any) -> Any:
    """A pair's answer as messages: TRL's plain string is one assistant message."""
    return [{"role": "assistant", "content": value}] if isinstance(value, str) else value


def _check_text(value: Any, path: str) -> Iterator[Issue]:
    """A prompt, a completion or a pair's answer given as a string: empty or whitespace
    teaches nothing (a message's content is checked by ``_check_content``)."""
    if isinstance(value, str) and not value.strip():
        yield "empty_content", "warning", f"{path} is empty", path


def _check_chat(record: dict[str, Any], target: Target) -> Iterator[Issue]:
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        text = " (or its JSON text), not text that is no JSON list of messages"
        told = text if isinstance(messages, str) else ""
        yield "missing_messages", "error", f"'messages' must be a non-empty list{told}", "messages"
        return
    if record.get("tools") is not None:  # null: no tools (a table's row without the column)
        yield from _check_tools(record["tools"])
        yield from _check_calls(messages, record["tools"])
    yield from check_messages(messages, "messages", target, final=True)


def _check_calls(messages: list[Any], tools: Any, path: str = "messages") -> Iterator[Issue]:
    """A call of a function the row's ``tools`` do not define teaches the model to call
    one that is not there (a misspelling, a renamed tool); one whose arguments break the
    function's parameters, to call it wrongly."""
    defined = _defined_functions(tools)
    if not defined:
        return
    names = sorted(defined)
    for index, message in enumerate(messages):
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        for number, call in enumerate(calls if isinstance(calls, list) else ()):
            function = call.get("function") if isinstance(call, dict) else None
            name = function.get("name") if isinstance(function, dict) else None
            if not isinstance(function, dict) or not isinstance(name, str):
                continue
            where = f"{path}[{index}].tool_calls[{number}].function"
            if name not in defined:
                hint = did_you_mean(name, names) or f"; they define {', '.join(names)}"
                message_text = f"calls {name!r}, not a tool of the row{hint}"
                yield "undefined_tool", "warning", message_text, f"{where}.name"
                continue
            arguments = arguments_object(function.get("arguments"))
            if arguments is not None and (wrong := arguments_mismatch(arguments, defined[name])):
                yield (
                    "tool_arguments_off_schema",
                    "warning",
                    f"{name}() {wrong}",
                    f"{where}.arguments",
                )


def _defined_functions(tools: Any) -> dict[str, Any]:
    """The functions a row's ``tools`` define: each name with its parameters."""
    functions = (
        (t.get("function") for t in tools if isinstance(t, dict)) if isinstance(tools, list) else ()
    )
    return {
        f["name"]: f.get("parameters")
        for f in functions
        if isinstance(f, dict) and isinstance(f.get("name"), str)
    }


def _check_tools(tools: Any, path: str = "tools") -> Iterator[Issue]:
    if not isinstance(tools, list):
        text_read = path == "tools"  # a table's column of JSON text is read as its list
        given = json_kind(tools)
        if isinstance(tools, str):
            given = "text that is no JSON list" if text_read else "text"
        also = " (or its JSON text)" if text_read else ""
        message = f"'{path}' must be a list of function definitions{also}, not {given}"
        yield "invalid_tools", "error", message, path
        return
    for index, tool in enumerate(tools):
        where = f"{path}[{index}]"
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            message = 'each tool needs {"type": "function", "function": {"name": ...}}'
            yield "invalid_tools", "error", message, where
            continue
        yield from check_function_type(tool, where, "invalid_tools")
        if not isinstance(function.get("parameters", {}), dict):
            message = 'parameters is a JSON schema object, as {"type": "object", ...}'
            yield "invalid_tools", "error", message, f"{where}.function.parameters"

"""Chat rows in two other APIs' shapes, and a preference pair's system prompt beside its
prompt, read as ours; an error in one is named by the row's own fields.

- Anthropic's (Amazon Bedrock's fine-tuning files for Claude): the system prompt as a
  ``system`` key beside the ``messages``, read as their first, system turn.
- A preference pair's ``system`` beside its ``prompt`` (Intel/orca_dpo_pairs, its
  ``question`` named ``prompt``): the prompt's first, system turn; an empty one, none.
- Google's (Vertex AI's tuning files for Gemini): ``contents`` of ``role`` (``user``,
  ``model``) and ``parts`` turns, the system prompt in ``systemInstruction``; a turn whose
  parts are all text is a message of that text (several parts, a list of text parts).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["api_field", "api_record", "is_api_shape", "is_gemini"]

_GEMINI_ROLES = {"user": "user", "model": "assistant"}
_SYSTEM_KEYS = ("systemInstruction", "system_instruction")
_MESSAGE = re.compile(r"messages(?:\[(\d+)\])?")
_PROMPT = re.compile(r"prompt\[(\d+)\]")


def _begins_with_system(turns: list[Any]) -> bool:
    """Whether a list of turns opens with a system turn of its own."""
    first = turns[0] if turns else None
    return isinstance(first, dict) and first.get("role") == "system"


def _system_beside(data: dict[str, Any]) -> bool:
    """A ``system`` prompt beside messages that do not begin with one of their own."""
    if "system" not in data or data.get("messages").__class__ is not list:
        return False
    return not _begins_with_system(data["messages"])


def _system_beside_prompt(data: dict[str, Any]) -> bool:
    """A preference pair's ``system`` prompt beside a ``prompt`` in text, or in turns that do
    not begin with a system turn of their own."""
    if "system" not in data or "chosen" not in data:
        return False
    prompt = data.get("prompt")
    if prompt.__class__ is not list:
        return isinstance(prompt, str)
    return not _begins_with_system(prompt)


def _without_empty_system(data: dict[str, Any]) -> bool:
    """Whether a pair's system prompt beside its prompt (``_system_beside_prompt``, which
    the caller has checked) is empty: no system turn is made."""
    return data["system"] in ("", None)


def is_gemini(data: dict[str, Any]) -> bool:
    """A row of Gemini's ``contents`` in place of ``messages``."""
    return "messages" not in data and data.get("contents").__class__ is list


def is_api_shape(data: dict[str, Any]) -> bool:
    """A row in any of these shapes."""
    return _system_beside(data) or is_gemini(data) or _system_beside_prompt(data)


def api_record(data: dict[str, Any]) -> dict[str, Any]:
    """A row in either shape as our chat record; any other row as it is."""
    if _system_beside(data):
        rest = {key: value for key, value in data.items() if key != "system"}
        return {**rest, "messages": [_system(data["system"]), *data["messages"]]}
    if _system_beside_prompt(data):
        rest = {key: value for key, value in data.items() if key != "system"}
        if _without_empty_system(data):
            return rest
        prompt = data["prompt"]
        turns = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        return {**rest, "prompt": [_system(data["system"]), *turns]}
    if not is_gemini(data):
        return data
    system = _gemini_system(data)
    turns = [_gemini_message(turn) for turn in data["contents"]]
    rest = {k: v for k, v in data.items() if k != "contents" and k not in _SYSTEM_KEYS}
    return {**rest, "messages": turns if system is None else [_system(system), *turns]}


def _system(content: Any) -> dict[str, Any]:
    return {"role": "system", "content": content}


def _gemini_system(data: dict[str, Any]) -> Any:
    """The text of ``systemInstruction`` (``None`` without one)."""
    instruction = next((data[key] for key in _SYSTEM_KEYS if key in data), None)
    if isinstance(instruction, dict):
        return _parts_content(instruction.get("parts"))
    return instruction


def _gemini_message(turn: Any) -> Any:
    if not isinstance(turn, dict):
        return turn
    role = turn.get("role")
    message = {k: v for k, v in turn.items() if k not in ("role", "parts")}
    message["role"] = _GEMINI_ROLES.get(role, role) if isinstance(role, str) else role
    message["content"] = _parts_content(turn.get("parts"))
    return message


def _parts_content(parts: Any) -> Any:
    """Text parts as a message's content: one part's text, or text parts for several; any
    other parts as they are, for validation to name."""
    if not isinstance(parts, list) or not parts:
        return parts
    if not all(isinstance(part, dict) and set(part) == {"text"} for part in parts):
        return parts
    if not all(isinstance(part["text"], str) for part in parts):
        return parts  # named by its part, as it is
    if len(parts) == 1:
        return parts[0]["text"]
    return [{"type": "text", "text": part["text"]} for part in parts]


def api_field(field: str | None, data: dict[str, Any]) -> str | None:
    """A field of ``api_record(data)`` (``messages[1].content``) as the row spells it
    (``messages[0].content`` beside ``system``, ``contents[0].parts``)."""
    if _system_beside_prompt(data):
        return _prompt_field(field, data)
    found = _MESSAGE.match(field or "")
    if field is None or found is None or not is_api_shape(data):
        return field
    rest, asked = field[found.end() :], found.group(1)
    gemini = is_gemini(data)
    if asked is None:
        return ("contents" if gemini else "messages") + rest
    index = int(asked) - (1 if not gemini or _gemini_system(data) is not None else 0)
    if index < 0:
        return next((key for key in _SYSTEM_KEYS if key in data), "system")
    if not gemini:
        return f"messages[{index}]{rest}"
    return f"contents[{index}]" + re.sub(r"^\.content", ".parts", rest)


def _prompt_field(field: str | None, data: dict[str, Any]) -> str | None:
    """A field of a pair's prompt with its system turn (``prompt[1].content``) as the row
    spells it (``prompt``, a text; ``system``; ``prompt[0].content``)."""
    found = _PROMPT.match(field or "")
    if field is None or found is None or _without_empty_system(data):
        return field
    index = int(found.group(1)) - 1
    if index < 0:
        return "system"
    if isinstance(data["prompt"], str):
        return "prompt"
    return f"prompt[{index}]{field[found.end() :]}"

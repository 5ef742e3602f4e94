"""Capybara's rows (LDJnr/Capybara, Puffin): a ``conversation`` of exchanges, each an
``input`` (the user's turn) and an ``output`` (the assistant's answer), read as a chat
example's messages; an error in one is named by the row's own fields
(``conversation[1].output``)."""

from __future__ import annotations

from typing import Any

from finetune.dataset._community import MESSAGES_FIELD

__all__ = ["is_turn_pairs", "turn_pairs_field", "turn_pairs_record"]

_EXCHANGE = frozenset({"input", "output"})


def is_turn_pairs(data: dict[str, Any]) -> bool:
    """A ``conversation`` of ``input``/``output`` exchanges (and nothing else in them) in
    place of ``messages``."""
    turns = data.get("conversation")
    if "messages" in data or turns.__class__ is not list or not turns:
        return False
    return all(turn.__class__ is dict and turn.keys() == _EXCHANGE for turn in turns)


def turn_pairs_record(data: dict[str, Any]) -> dict[str, Any]:
    """The row as our chat record: a user turn and an assistant turn an exchange."""
    messages = []
    for exchange in data["conversation"]:
        messages.append({"role": "user", "content": exchange["input"]})
        messages.append({"role": "assistant", "content": exchange["output"]})
    rest = {key: value for key, value in data.items() if key != "conversation"}
    return {**rest, "messages": messages}


def turn_pairs_field(field: str | None, data: dict[str, Any]) -> str | None:
    """A field of ``turn_pairs_record(data)`` (``messages[3].content``) as the row spells it
    (``conversation[1].output``)."""
    found = MESSAGES_FIELD.match(field or "")
    if field is None or found is None:
        return field
    rest, asked = field[found.end() :], found.group(1)
    if asked is None:
        return f"conversation{rest}"
    exchange, answer = divmod(int(asked), 2)
    side = "output" if answer else "input"
    said = rest.lstrip(".")
    if said == "" or said.startswith("content"):
        return f"conversation[{exchange}].{side}{said.removeprefix('content')}"
    return f"conversation[{exchange}]"  # a role, a weight: the exchange says them

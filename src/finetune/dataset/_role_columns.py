"""A table's row of one conversation in columns named by role (``system``, ``user``,
``assistant``: a spreadsheet's, a CSV's usual shape), read as our chat record: a turn each,
in that order, whatever the columns' order or case; an empty or null cell is no turn."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from finetune.dataset._community import MESSAGES_FIELD

__all__ = [
    "as_turns_cure",
    "completion_as_chat",
    "is_role_columns",
    "renames_cure",
    "role_columns_field",
    "role_columns_record",
]

_ROLES = ("system", "user", "assistant")
_OTHER_SHAPES = ("messages", "prompt", "completion", "chosen", "input", "conversations")


def _columns(data: dict[str, Any]) -> dict[str, str]:
    """Each role's column name as the row spells it (``System``)."""
    return {key.lower(): key for key in data if isinstance(key, str) and key.lower() in _ROLES}


def is_role_columns(data: dict[str, Any]) -> bool:
    """A row with a ``user`` or an ``assistant`` column (each role once, in any case), and
    none of another shape's keys (a CSV's empty answer is no ``assistant`` key: a row without
    its answer)."""
    roles = [key.lower() for key in data if isinstance(key, str) and key.lower() in _ROLES]
    if len(roles) != len(set(roles)) or any(key in data for key in _OTHER_SHAPES):
        return False  # a "user" column beside a prompt and completion names who asked
    return "user" in roles or "assistant" in roles


def _turns(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, column) of each turn the row holds, in turn order."""
    found = _columns(data)
    return [
        (role, found[role])
        for role in _ROLES
        if role in found and data[found[role]] not in (None, "")
    ]


def role_columns_record(data: dict[str, Any]) -> dict[str, Any]:
    """The row as our chat record; its other keys kept, for validation to name."""
    columns = set(_columns(data).values())
    rest = {key: value for key, value in data.items() if key not in columns}
    turns = [{"role": role, "content": data[column]} for role, column in _turns(data)]
    return {**rest, "messages": turns}


def role_columns_field(field: str | None, data: dict[str, Any]) -> str | None:
    """A field of the record (``messages[2].content``) as the row spells it (``assistant``)."""
    found = MESSAGES_FIELD.match(field or "")
    if field is None or found is None:
        return field
    turns = _turns(data)
    asked = found.group(1)
    if asked is None or not turns:  # the conversation, or its answer, missing
        return _columns(data).get("assistant", "assistant")
    return turns[min(int(asked), len(turns) - 1)][1]


def as_turns_cure(asked: str, answer: str) -> str:
    """How to read a row's question and answer columns as a user turn and an assistant turn:
    the ``select_columns`` call and the command line's ``--columns`` that rename them."""
    return renames_cure({asked: "user", answer: "assistant"})


def renames_cure(renames: dict[str, str]) -> str:
    """The ``select_columns`` call and the command line's ``--columns`` that keep a row's
    columns ``renames`` names, each under its new name (a column kept as it is, bare)."""
    flag = ",".join(old if old == new else f"{old}={new}" for old, new in renames.items())
    return f"ds.select_columns({renames!r}), or --columns {flag} on the command line"


def completion_as_chat(kind: str, kinds: Iterable[str]) -> str:
    """How to train completion pairs where only chat trains, as the end of a refusal ("" for
    any other kind, or where chat does not train either)."""
    if kind != "completion" or "chat" not in kinds:
        return ""
    return (
        ": write each pair as a user turn and an assistant turn, "
        f"{as_turns_cure('prompt', 'completion')}"
    )

"""pydantic's complaint about a row's value, said in JSON's words, as validation says it:
``name must be a string, not an array`` where pydantic said ``Input should be a valid
string``, ``role is missing`` where it said ``Field required``."""

from __future__ import annotations

from typing import Any

from finetune._words import asked_for, json_kind

__all__ = ["in_json_words"]


def in_json_words(error: Any, field: str | None) -> str:
    """The message of one pydantic ``error`` about ``field``: a value of the wrong kind, or a
    missing key, in JSON's words; any other error, pydantic's own message."""
    key = (field or "").rpartition(".")[2] or "the value"
    if error["type"] == "missing":
        return f"{key} is missing"
    wanted = asked_for(error["type"], in_json=True)
    if error["type"] == "literal_error":  # one of a few values: 'system', 'user', ...
        wanted = (error.get("ctx") or {}).get("expected")
    if wanted is None:
        return str(error["msg"])
    return f"{key} must be {wanted}, not {_given(error.get('input'))}"


def _given(value: Any) -> str:
    """A short text or a number as itself; any other value by its kind."""
    if isinstance(value, str) and len(value) <= 40:
        return repr(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return json_kind(value)

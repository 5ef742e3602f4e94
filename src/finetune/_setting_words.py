"""pydantic's complaint about a setting, said plainly: ``must be a whole number or 'auto'``
where pydantic said ``Input should be a valid integer, unable to parse string as an integer``
and, for the same setting, ``Input should be 'auto'``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from finetune._words import asked_for

__all__ = ["setting_wanted"]

# a check of ours, and a setting of a nested model already said plainly
_OURS = ("value_error", "invalid_setting")
_BOUNDS = {
    "greater_than": "above {gt}",
    "greater_than_equal": "{ge} or more",
    "less_than": "below {lt}",
    "less_than_equal": "at most {le}",
}


def setting_wanted(problems: Sequence[Any]) -> str | None:
    """What one setting must be, from pydantic's problems with it (one per type it may take):
    ``must be a whole number or 'auto'``; a check of ours, its own words; ``None`` where
    pydantic's words are the only ones there are."""
    ours = [_ours(problem) for problem in problems if problem["type"] in _OURS]
    if ours:
        return "; ".join(ours)
    wanted = [_wanted(problem) for problem in problems]
    if not wanted or None in wanted:
        return None
    return "must be " + " or ".join(dict.fromkeys(str(words) for words in wanted))


def _ours(problem: Any) -> str:
    """The message of a check of ours, without pydantic's ``Value error, ``."""
    return str(problem["msg"]).removeprefix("Value error, ")


def _wanted(problem: Any) -> str | None:
    """What one problem asked for: a kind (``a whole number``), a bound (``above 0``) or the
    values a choice takes (``'auto', 'bf16' or 'fp32'``)."""
    kind, context = problem["type"], problem.get("ctx") or {}
    if kind == "literal_error":
        return str(context.get("expected")) if "expected" in context else None
    if kind in _BOUNDS:
        return _BOUNDS[kind].format_map({name: _plain(bound) for name, bound in context.items()})
    if kind in ("model_type", "model_attributes_type") and "class_name" in context:
        return f"ft.{context['class_name']}(...) or a dict of its settings"
    return asked_for(kind, in_json=False)


def _plain(bound: object) -> object:
    """A bound as a person wrote it: ``0``, not the ``0.0`` a float field holds."""
    return int(bound) if isinstance(bound, float) and bound.is_integer() else bound

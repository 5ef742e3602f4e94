"""A tool call's arguments against its function's parameters, at their top level.

The checks a trained model's calls most often fail, kept to what every JSON schema of a
function states plainly: a required argument missing, one the function does not take (where
``additionalProperties`` is false), a value of another type or outside its ``enum``. Nested
schemas, ``$ref``, ``anyOf`` and formats are not followed: a data bug sits at the top.
"""

from __future__ import annotations

from typing import Any

from finetune._errors import did_you_mean
from finetune._json_text import json_from_text
from finetune._words import json_kind

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def arguments_object(arguments: Any) -> dict[str, Any] | None:
    """The arguments as an object, read from their JSON text where given so; ``None`` where
    they are no object (``tool_arguments_not_json`` says so)."""
    if isinstance(arguments, str):
        try:
            arguments = json_from_text(arguments)
        except ValueError:
            return None
    return arguments if isinstance(arguments, dict) else None


def arguments_mismatch(arguments: dict[str, Any], parameters: Any) -> str | None:
    """What in ``arguments`` breaks the ``parameters`` schema, in words; ``None`` if nothing."""
    if not isinstance(parameters, dict):
        return None
    required = parameters.get("required")
    for name in required if isinstance(required, list) else ():
        if isinstance(name, str) and name not in arguments:
            return f"lacks the required argument {name!r}"
    properties = parameters.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    for name, value in arguments.items():
        schema = properties.get(name)
        if schema is None and parameters.get("additionalProperties") is False:
            meant = did_you_mean(name, [str(p) for p in properties])
            return f"passes {name!r}, an argument the function does not take{meant}"
        if isinstance(schema, dict) and (problem := _value_mismatch(value, schema)):
            return f"passes {name}={_shown(value)}, {problem}"
    return None


def _value_mismatch(value: Any, schema: dict[str, Any]) -> str | None:
    allowed = schema.get("enum")
    if isinstance(allowed, list) and allowed and value not in allowed:
        return f"not one of {', '.join(_shown(v) for v in allowed[:8])}"
    wanted = schema.get("type")
    names = [wanted] if isinstance(wanted, str) else wanted if isinstance(wanted, list) else []
    known = [n for n in names if isinstance(n, str) and (n in _TYPES or n == "null")]
    if not known or names != known or any(_is_of(value, n) for n in known):
        return None
    return f"{json_kind(value)} where the function takes {' or '.join(known)}"


def _is_of(value: Any, type_name: str) -> bool:
    if type_name == "null":
        return value is None
    if isinstance(value, bool) and type_name != "boolean":
        return False
    if type_name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES[type_name])


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."

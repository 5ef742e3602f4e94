"""Settings passed through to a provider or a trainer as JSON (``Hyperparameters.extra``,
the local backend's ``trainer_args`` and ``peft_args``), made JSON when they are given."""

from __future__ import annotations

import math

from finetune._numbers import is_real, is_whole
from finetune._secret_fields import names_a_credential

__all__ = ["json_settings"]


def json_settings(value: object, name: str) -> object:
    """A dict of settings as JSON (anything else is returned for pydantic to refuse by
    type): NumPy's numbers become Python's and tuples lists; a set, a date, NaN or another
    value JSON cannot carry is a ``ValueError`` naming where it stands (``extra['curve'][1]``),
    raised when the settings are given, before anything is uploaded or started."""
    if not isinstance(value, dict):
        return value
    return _as_json(value, name)


def _as_json(value: object, where: str) -> object:
    if value is None or isinstance(value, bool | str):
        return value
    if is_whole(value):
        return int(value)  # type: ignore[call-overload]
    if is_real(value):
        number = float(value)  # type: ignore[arg-type]
        if math.isfinite(number):
            return number
        raise ValueError(f"{where} is {number}, which JSON cannot carry; give a finite number")
    if isinstance(value, dict):
        return {
            _key(key, where): _as_json(item, f"{where}[{key!r}]") for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_as_json(item, f"{where}[{n}]") for n, item in enumerate(value)]
    shown = "***" if names_a_credential(where) else f"{value!r:.60}"  # a key, by its name
    raise ValueError(
        f"{where} is {type(value).__name__} {shown}, not a JSON value (text, a number, "
        "True/False, None, a list or a dict): these settings are passed on as JSON"
    )


def _key(key: object, where: str) -> str:
    if not isinstance(key, str):
        raise ValueError(f"{where} has the key {key!r}; JSON's keys are text")
    return key

"""What counts as a number a user gives: Python's and NumPy's alike, never a flag.

``True`` is an ``int`` to Python, and ``np.int64(3)`` is no ``int``; a check written with
``isinstance(value, int)`` gets both wrong. These predicates are the one place that says
it; each caller keeps its own message, which names its own setting.
"""

from __future__ import annotations

import numbers
from typing import Any

__all__ = ["is_amount", "is_real", "is_whole", "no_flag"]


def is_whole(value: Any) -> bool:
    """A whole number (``3``, ``np.int64(3)``), not a bool, a float or text."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A real number, whole or not (``0.5``, ``np.float32(0.5)``, ``2``), not a bool or text;
    NaN and the infinities are real numbers here, for the caller to bound."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_amount(value: Any) -> bool:
    """An amount of money, or a price: a finite real number of 0 or more."""
    return is_real(value) and 0 <= value < float("inf")


def no_flag(value: object) -> object:
    """A pydantic validator's refusal of ``True`` (a YAML ``yes``) given as a number setting,
    which pydantic would read as 1: a learning rate of 1.0."""
    if isinstance(value, bool):
        raise ValueError("is a number, not a boolean")
    return value

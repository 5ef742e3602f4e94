"""Counts in prose: ``1 example``, ``2 examples``."""

from __future__ import annotations

__all__ = ["counted"]


def counted(number: int, noun: str) -> str:
    """``number`` and ``noun``, plural unless the number is 1 (``-es`` after a sibilant)."""
    if number == 1:
        return f"{number} {noun}"
    return f"{number} {noun}{'es' if noun.endswith(('s', 'sh', 'ch', 'x', 'z')) else 's'}"

"""Counts in prose: ``1 example``, ``2 examples``."""

from __future__ import annotations

__all__ = ["counted"]


def counted(number: int, noun: str) -> str:
    """``number`` and ``noun``, plural unless the number is 1 (regular nouns only)."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"

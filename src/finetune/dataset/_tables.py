"""Rows of tables (a pandas DataFrame, a Hugging Face dataset) as JSON records hold them:
pandas' marks of a missing cell, numpy's arrays and scalars."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["empty_cell", "plain_cell"]


def empty_cell(value: Any) -> bool:
    """pandas' marks of a missing value; a list, a dict or a string is a value."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NAType", "NaTType")


def plain_cell(value: Any) -> Any:
    """A cell as JSON holds it: numpy's arrays (how pandas reads a list column from Parquet)
    as lists and numpy's scalars as Python's, at any depth."""
    if isinstance(value, Mapping):
        return {key: plain_cell(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_cell(item) for item in value]
    if type(value).__module__ == "numpy" and callable(getattr(value, "tolist", None)):
        return plain_cell(value.tolist())
    return value

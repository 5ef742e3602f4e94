"""JSON read from text that others wrote: a data file's field, a model's reply, a provider's
answer. Whatever the text, what is not JSON Python can read is a ``ValueError``."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["TOO_DEEP", "json_at", "json_from_text"]

TOO_DEEP = "JSON nested too deeply to read (Python's parser stops at about 1,000 levels)"


def json_from_text(text: str | bytes, **options: Any) -> Any:
    """``json.loads``, except that brackets nested deeper than Python's parser goes (``[[[[``
    a thousand times: a degenerate model's reply, a generator gone into a loop) are a
    ``ValueError`` like any other text that is not JSON, never a ``RecursionError``."""
    try:
        return json.loads(text, **options)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None


def json_at(decoder: json.JSONDecoder, text: str, at: int) -> tuple[Any, int]:
    """The JSON value that starts at ``at`` in ``text`` and the place past its end
    (``decoder.raw_decode``); nesting too deep to read is a ``ValueError``, as above."""
    try:
        return decoder.raw_decode(text, at)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None

"""Numbers in prose: counts (``1 example``, ``2 examples``), money and sizes; JSON values
named as a JSON file's author knows them."""

from __future__ import annotations

import math
import shlex
import subprocess
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finetune.types import CostEstimate

__all__ = [
    "asked_for",
    "command_line",
    "cost_figure",
    "counted",
    "duration",
    "json_kind",
    "money",
    "size",
    "table_cell",
]


def counted(number: int, noun: str) -> str:
    """``number`` and ``noun``, plural unless the number is 1 (``-es`` after a sibilant)."""
    if number == 1:
        return f"{number} {noun}"
    sibilant = noun.endswith(("s", "sh", "ch", "x", "z")) and noun not in _HARD_CH
    return f"{number} {noun}{'es' if sibilant else 's'}"


_HARD_CH = frozenset({"epoch"})  # a "ch" said as "k" takes a plain -s


def command_line(*words: object) -> str:
    """A command a user can paste into their shell as it is: each word quoted where it needs
    to be (a path with a space, a quote or a ``$`` stays one word, taken literally)."""
    texts = [str(word) for word in words]
    if sys.platform == "win32":  # pragma: no cover - cmd.exe does not read POSIX quotes
        return subprocess.list2cmdline(texts)
    return shlex.join(texts)


def table_cell(text: str) -> str:
    """Text that stays in its cell of a Markdown table: ``|`` escaped, line breaks as spaces."""
    return " ".join(text.replace("|", "\\|").splitlines())


def money(amount: float, currency: str) -> str:
    """An amount as people read it: in cents from 1 up, to three significant digits below, so
    that a cost of 0.0113 is not shown as 0.01 (nor 0.004 as 0.00)."""
    if 0 < amount < 1:  # three significant digits, written out (never 3.12e-05)
        places = 2 - math.floor(math.log10(amount))
        amount = float(text := f"{amount:.{places}f}")
        if amount < 1:  # not rounded up to 1
            return f"{text.rstrip('0')} {currency}"
    return f"{amount:,.2f} {currency}"


def cost_figure(cost: CostEstimate, dash: str = "–") -> str | None:
    """What an estimate says a run costs: its range where the provider's rule leaves one,
    else its cost; ``None`` when it has no price."""
    low, high = cost.cost_low, cost.cost_high
    if low is not None and high is not None and low != high:
        return f"{money(low, cost.currency)} {dash} {money(high, cost.currency)}"
    return None if cost.cost is None else money(cost.cost, cost.currency)


def duration(seconds: float) -> str:
    """``1h05m`` or ``4m20s``: a job's time, elapsed or left."""
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def size(count: int) -> str:
    """A number of bytes in the largest decimal unit that keeps it at 1 or more (``244 KB``,
    not ``0 MB``)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= scale:
            return f"{count / scale:.{1 if count < 10 * scale else 0}f} {unit}"
    return f"{count} B"


def json_kind(value: Any) -> str:
    """What a parsed JSON value is, in JSON's words (``null``, ``an array``, ``a number``),
    not Python's (``NoneType``, ``list``, ``int``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    kinds: tuple[tuple[type | tuple[type, ...], str], ...] = (
        (str, "a string"),
        ((int, float), "a number"),
        ((list, tuple), "an array"),
        (dict, "an object"),
    )
    return next((name for kind, name in kinds if isinstance(value, kind)), "a value")


def number_as_text(value: Any) -> str:
    """The cure for a number given where text is read (``: write it as text, "7"``: a
    DataFrame's or a JSON file's number is not the text a model learns), or ``""``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    return f': write it as text, "{value}"'


def cost_text(cost: CostEstimate) -> str:
    """An estimate in a few lines, as ``print(estimate)`` and ``finetune estimate`` show it."""
    figure = cost_figure(cost, dash="-")
    price = figure or ("unknown" if cost.hosted else "no provider bill (local training)")
    if figure and cost.pricing_date:
        price += f" (prices of {cost.pricing_date})"
    fits = "unknown" if cost.context_limit is None else cost.fits_context
    lines = [
        f"{cost.backend} / {cost.model}: {counted(cost.examples, 'example')}",
        f"tokens: {cost.tokens_total} (p50 {cost.tokens_p50}, p95 {cost.tokens_p95}, "
        f"max {cost.tokens_max})",
        f"epochs: {cost.epochs}, billed tokens: {cost.billed_tokens}, cost: {price}",
        f"fits context: {fits}, exact: {cost.exact}",
    ]
    return "\n".join(lines + [f"note: {note}" for note in cost.notes])


def asked_for(error_type: str, *, in_json: bool) -> str | None:
    """What a pydantic error of this type asked for, in JSON's words (a data file's row:
    ``an array``) or in a setting's (Python's, a config file's: ``a list``); ``None`` for a
    type that asks for no kind of value."""
    words = _ASKED_FOR.get(error_type)
    return None if words is None else words[0 if in_json else 1]


# pydantic's error type: what it asked for, in JSON's words and in a setting's
_ASKED_FOR = {
    "string_type": ("a string", "text"),
    "list_type": ("an array", "a list"),
    "dict_type": ("an object", "a dict (a table in a config file)"),
    "model_type": ("an object", "a dict"),
    "model_attributes_type": ("an object", "a dict"),
    "int_type": ("a whole number", "a whole number"),
    "int_parsing": ("a whole number", "a whole number"),
    "int_from_float": ("a whole number", "a whole number"),
    "float_type": ("a number", "a number"),
    "float_parsing": ("a number", "a number"),
    "finite_number": ("a finite number", "a finite number"),
    "bool_type": ("true or false", "true or false"),
    "bool_parsing": ("true or false", "true or false"),
}

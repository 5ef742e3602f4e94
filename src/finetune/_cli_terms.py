"""What a message says in Python's terms, as the command line says it: a backend option as
``--option KEY=VALUE``, a hyperparameter's ``extra`` as its key in a config file, a price of
one's own as ``--price-per-million``."""

from __future__ import annotations

import re

from finetune.validation._catalog import PRICE_OPTION

__all__ = ["in_cli_terms"]

# options={'full_finetune': True}, never fit(options=...), whose sentence says its flag itself
_OPTION = re.compile(r"(?<!fit\()options=\{'(\w+)': (True|False|-?[\d.]+|'[^']*'|\.\.\.)\}")
_EXTRA = re.compile(r"(?<!\()extra=\{'(\w+)': (N|\.\.\.|-?[\d.]+)\}")


def in_cli_terms(text: str) -> str:
    """``text`` with its Python advice written as the command's flags and config keys."""
    text = text.replace(PRICE_OPTION, "--price-per-million")
    text = _OPTION.sub(_option_flag, text)
    return _EXTRA.sub(r"\1 = \2 under [hyperparameters.extra] in a --config file", text)


def _option_flag(found: re.Match[str]) -> str:
    key, value = found.groups()
    value = {"True": "true", "False": "false"}.get(value, value.strip("'"))
    return f"--option {key}={value}"

"""The fields whose names say they hold a credential, and a provider's JSON without their
values: what ``Job.raw`` keeps and an error message shows."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["SECRET_NAME", "names_a_credential", "without_credentials"]

SECRET_NAME = r"api[_-]?(?:key|token)|(?:access|auth|hub|hf)[_-]?token|secret|password"
_SECRET_KEY = re.compile(SECRET_NAME, re.IGNORECASE)


def names_a_credential(key: str) -> bool:
    """Whether a field's name says it holds a credential, in any case or spelling
    (``api_key``, ``apiKey``, ``WANDB_API_KEY``, ``hub_token``, ``client_secret``)."""
    return bool(_SECRET_KEY.search(key))


def without_credentials(value: Any) -> Any:
    """``value`` (a provider's JSON) with the text of every field named as a credential
    (``apiKey``, ``wandb_api_key``, ``hf_api_token``, ``client_secret``, ``password``) as
    ``***``: a provider may echo the W&B key a job was created with (Fireworks'
    ``wandbConfig.apiKey``)."""
    if isinstance(value, dict):
        return {key: _masked(key, item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_credentials(item) for item in value]
    return value


def _masked(key: Any, value: Any) -> Any:
    if isinstance(key, str) and _SECRET_KEY.search(key) and _holds_text(value):
        return "***"
    return without_credentials(value)


def _holds_text(value: Any) -> bool:
    """Whether a value holds text: a credential's, alone or in a list or set (a dict's own
    fields are masked by their names)."""
    if isinstance(value, str | bytes):
        return bool(value)
    return isinstance(value, list | tuple | set | frozenset) and any(map(_holds_text, value))

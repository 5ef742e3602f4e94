"""Log lines with their secrets masked: anything key-like (``"api_key": "***"``) and the
signatures of signed URLs, in the lines of the ``finetune`` command and of the libraries a
hosted backend calls through (httpx names each URL at INFO, an SDK its request bodies at
DEBUG), wherever the application sends them."""

from __future__ import annotations

import logging

from finetune.backends._files import mask_signed_values
from finetune.backends.http import redact

__all__ = ["HTTP_LOGGERS", "mask_secrets_in_logs", "without_secrets"]

HTTP_LOGGERS = ("httpx", "httpx2")  # each URL asked, at INFO: signed upload URLs too


def without_secrets(record: logging.LogRecord) -> bool:
    """The line with anything key-like and a signed URL's signature masked (a logging filter
    that keeps every line)."""
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a library's own formatting mistake: left for logging
        return True
    record.msg, record.args = _masked(message), ()
    if record.exc_info and not record.exc_text:  # the text a formatter would show, masked
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = _masked(record.exc_text)
    return True


def mask_secrets_in_logs(*logger_names: str) -> None:
    """Mask the secrets in every line these loggers write from now on (each filtered once):
    a logger's filter sees the lines made through that logger itself, so name each one (an
    SDK's ``together._base_client``, not ``together``)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if without_secrets not in logger.filters:
            logger.addFilter(without_secrets)


def _masked(text: str) -> str:
    return mask_signed_values(redact(text))

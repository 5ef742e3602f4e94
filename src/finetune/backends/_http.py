"""Helpers shared by hosted backends: secret redaction, retry policy, fingerprinted file names."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune._errors import BackendError

if TYPE_CHECKING:
    from finetune.dataset import Dataset, OutputFormat

__all__ = [
    "as_dict",
    "file_name",
    "is_retryable",
    "provider_file",
    "redact",
    "retry_after_seconds",
    "unix_time",
]

_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_-]{4})[A-Za-z0-9_*-]{8,}|\b(Bearer\s+)\S+")


def redact(text: str, *secrets: str | None) -> str:
    """Remove every known secret and anything key-like from a message."""
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "***")
    return _KEYLIKE.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


def is_retryable(error: BaseException) -> bool:
    """True for errors that a later attempt may not meet (rate limits, 5xx, connections)."""
    return isinstance(error, BackendError) and error.retryable


def file_name(dataset: Dataset, purpose: str) -> str:
    """The upload name: the dataset fingerprint makes identical content reusable by name."""
    return f"finetune-{dataset.fingerprint()[:24]}-{purpose}.jsonl"


@contextmanager
def provider_file(dataset: Dataset, fmt: OutputFormat) -> Iterator[Path]:
    """The dataset written in a provider's format to a temporary file, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="finetune-") as folder:
        path = Path(folder) / "data.jsonl"
        dataset.to_jsonl(path, format=fmt)
        yield path


def unix_time(value: Any) -> datetime | None:
    """A provider's UNIX timestamp (seconds) as an aware UTC datetime; ``None`` stays ``None``."""
    if value is None:
        return None
    return datetime.fromtimestamp(int(value), tz=timezone.utc)


def as_dict(payload: Any) -> dict[str, Any]:
    """An SDK model (pydantic) or a mapping as a plain JSON-ready dict."""
    if hasattr(payload, "model_dump"):
        dumped: dict[str, Any] = payload.model_dump(mode="json")
        return dumped
    return dict(payload)


def retry_after_seconds(headers: Any) -> float | None:
    """The wait a 429 asks for, from ``retry-after-ms`` or ``retry-after`` (seconds)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name) if headers is not None else None
        if value is not None:
            try:
                return float(value) * scale
            except ValueError:
                continue
    return None

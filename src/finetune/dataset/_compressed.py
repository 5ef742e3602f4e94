"""Files compressed with gzip, bzip2 or xz (``train.jsonl.gz``, as some Hub datasets ship
them), told by their first bytes and read through their decompressor, a chunk at a time."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = [
    "BROKEN_STREAM",
    "broken_stream",
    "decompressor_of",
    "first_bytes",
    "open_data",
    "without_compression_suffix",
]

_OPENERS: dict[bytes, Callable[..., Any]] = {
    b"\x1f\x8b": gzip.open,
    b"BZh": bz2.open,
    b"\xfd7zXZ\x00": lzma.open,
}
_SUFFIXES = (".gz", ".bz2", ".xz")
BROKEN_STREAM = (OSError, EOFError, lzma.LZMAError)  # what a cut or corrupt stream raises


def broken_stream(error: BaseException) -> str:
    """What a ``truncated_line`` problem says of a compressed stream cut short or corrupt."""
    return f"the compressed file is cut short or corrupt ({error}): it looks truncated"


def first_bytes(path: str | Path, count: int) -> bytes:
    """The file's first ``count`` bytes, as stored (``b""`` for one that cannot be read):
    what tells its kind."""
    try:
        with open(path, "rb") as handle:
            return handle.read(count)
    except OSError:
        return b""


def decompressor_of(path: str | Path) -> Callable[..., Any] | None:
    """The opener that decompresses the file at ``path`` (``None``: it is not compressed)."""
    head = first_bytes(path, 6)
    return next((opener for magic, opener in _OPENERS.items() if head.startswith(magic)), None)


def open_data(path: str | Path) -> IO[bytes]:
    """The file's bytes, decompressed when it is compressed."""
    opener: Any = decompressor_of(path) or open
    handle: IO[bytes] = opener(path, "rb")
    return handle


def without_compression_suffix(path: str | os.PathLike[str]) -> Path:
    """``train.csv`` for ``train.csv.gz``; any other path as it is."""
    found = Path(path)
    return found.with_suffix("") if found.suffix.lower() in _SUFFIXES else found

"""Files compressed with gzip, bzip2, xz or zstd (``train.jsonl.gz``, ``.zst``, as some Hub
datasets ship them), told by their first bytes and read through their decompressor, a chunk
at a time."""

from __future__ import annotations

import bz2
import gzip
import importlib
import io
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


def _zstd_open(path: str | Path, mode: str = "rb") -> IO[bytes]:
    """A zstd file, read as gzip's are: Python 3.14's ``compression.zstd``, else the
    ``backports.zstd`` package (the ``zstd`` extra); a corrupt frame reads as a cut stream."""
    try:
        zstd = importlib.import_module("compression.zstd")
    except ImportError:
        try:
            zstd = importlib.import_module("backports.zstd")
        except ImportError:
            from finetune._errors import MissingDependency

            purpose = f"to read {path}, compressed with zstd (Python reads zstd from 3.14 on)"
            raise MissingDependency("backports.zstd", "zstd", purpose=purpose) from None
    return io.BufferedReader(_ZstdStream(zstd.open(path, mode), zstd.ZstdError))


class _ZstdStream(io.RawIOBase):
    """A zstd file's bytes, its ``ZstdError`` (a corrupt frame) raised as ``EOFError``, as
    the other decompressors say a broken stream."""

    def __init__(self, file: Any, error: type[Exception]) -> None:
        self._file, self._error = file, error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            return int(self._file.readinto(buffer))
        except self._error as exc:
            raise EOFError(f"corrupt zstd data: {exc}") from None

    def close(self) -> None:
        self._file.close()
        super().close()


_OPENERS: dict[bytes, Callable[..., Any]] = {
    b"\x1f\x8b": gzip.open,
    b"BZh": bz2.open,
    b"\xfd7zXZ\x00": lzma.open,
    b"(\xb5/\xfd": _zstd_open,
}
_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")
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

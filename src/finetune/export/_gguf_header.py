"""String fields of a GGUF file's metadata, read from its header alone.

``gguf.GGUFReader`` maps every tensor and parses every vocabulary entry before it answers: 3 s
for SmolLM2's file here. This scan reads the key/value section only, skipping arrays by their
length, and stops at the tensors: 50 ms, and no ``gguf`` package needed
(``benchmarks/gguf_header.py``).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

__all__ = ["GGUFHeaderError", "string_fields"]

_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9
_LONGEST_STRING = 1 << 26  # 64 MiB: a longer length is a corrupt file, not a chat template


class GGUFHeaderError(ValueError):
    """The file is not a GGUF file of version 2 or later, or its header is cut short."""


def string_fields(path: str | Path, *keys: str) -> dict[str, str | None]:
    """The string values of ``keys`` in the metadata of the GGUF file at ``path``
    (``None`` for a key it does not hold, or holds as another type).

    Raises ``OSError`` where the file cannot be read, ``GGUFHeaderError`` where it is no
    GGUF file or its header is cut short."""
    found: dict[str, str | None] = dict.fromkeys(keys)
    with open(path, "rb") as handle:
        if handle.read(4) != b"GGUF":
            raise GGUFHeaderError(f"{path} does not start with GGUF's magic bytes")
        version, _tensors, count = struct.unpack("<IQQ", _exactly(handle, 20))
        if not 2 <= version < 1 << 16:
            raise GGUFHeaderError(f"{path}: GGUF version {version} (2 or later is read)")
        for _ in range(count):
            key = _string(handle).decode("utf-8", "replace")
            (kind,) = struct.unpack("<I", _exactly(handle, 4))
            if key in found and kind == _STRING:
                found[key] = _string(handle).decode("utf-8", "replace")
            else:
                _skip(handle, kind)
    return found


def _exactly(handle: BinaryIO, size: int) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise GGUFHeaderError(f"{handle.name}: its header is cut short")
    return data


def _string(handle: BinaryIO) -> bytes:
    (size,) = struct.unpack("<Q", _exactly(handle, 8))
    if size > _LONGEST_STRING:
        raise GGUFHeaderError(f"{handle.name}: a string of {size} bytes in its header")
    return _exactly(handle, size)


def _skip(handle: BinaryIO, kind: int) -> None:
    """Pass over one value of type ``kind``: a string, an array (of scalars by its size, of
    strings or arrays item by item) or a scalar."""
    if kind == _STRING:
        _string(handle)
    elif kind == _ARRAY:
        item, count = struct.unpack("<IQ", _exactly(handle, 12))
        if item in _SCALAR_SIZES:
            handle.seek(_SCALAR_SIZES[item] * count, 1)
        else:
            for _ in range(count):
                _skip(handle, item)
    elif kind in _SCALAR_SIZES:
        _exactly(handle, _SCALAR_SIZES[kind])
    else:
        raise GGUFHeaderError(f"{handle.name}: value type {kind} in its header")

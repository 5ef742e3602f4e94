"""Streaming JSONL reader: one record or one problem per line, never the whole file in memory
(a gzip, bzip2, xz or zstd file decompressed as it is read)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from finetune._words import json_kind
from finetune.dataset._compressed import BROKEN_STREAM, broken_stream, decompressor_of

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "RawRecord",
    "ReadProblem",
    "iter_jsonl",
    "packed",
    "unwritable",
]

DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024

try:  # orjson parses about three times faster and reads UTF-8 bytes itself
    import orjson

    _loads: Callable[[str], Any] = orjson.loads
    _loads_bytes: Callable[[bytes], Any] | None = orjson.loads
    _DecodeError: type[Exception] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover
    _loads = json.loads
    _loads_bytes = None  # json.loads guesses UTF-16/32 from bytes: decode as UTF-8 first
    _DecodeError = json.JSONDecodeError
_BOM = b"\xef\xbb\xbf"
# orjson's reason for nesting over 1,024 levels: its words since 3.12, and from 3.9.15 to 3.11
_TOO_DEEP = ("depth limit exceeded", "array and object recursion depth exceeded")
_SKIP_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A decoded JSON object with where it came from (1-based line, byte offset; ``file``:
    the part it is a line of, in a concatenation of datasets, else ``None``)."""

    line: int
    offset: int
    data: dict[str, Any]
    file: str | None = None


@dataclass(frozen=True, slots=True)
class ReadProblem:
    """A line that could not be read as a JSON object, with a stable code (``file`` as a
    ``RawRecord``'s)."""

    line: int
    offset: int
    code: str
    message: str
    severity: str = "error"
    file: str | None = None


def iter_jsonl(
    path: str | Path,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    start: int = 0,
    end: int | None = None,
) -> Iterator[RawRecord | ReadProblem]:
    """Yield one ``RawRecord`` or ``ReadProblem`` per line of ``path``.

    Blank lines yield a warning problem; nothing stops the scan. ``start``/``end`` read only
    the lines beginning in that byte range (``start`` must be a line start); line numbers then
    count from 1 at ``start``.
    """
    decompressor = decompressor_of(path) if start == 0 and end is None else None
    if decompressor is not None:
        yield from _iter_compressed(decompressor, path, max_line_bytes)
        return
    with open(path, "rb") as handle:
        handle.seek(start)
        yield from _iter_handle(handle, max_line_bytes, start, end)


def _iter_compressed(
    decompressor: Callable[..., Any], path: str | Path, max_line_bytes: int
) -> Iterator[RawRecord | ReadProblem]:
    """The lines of a compressed file (offsets in its decompressed bytes); a stream cut
    short or corrupt ends with a problem at the line it was reading."""
    line = 0
    try:
        with decompressor(path, "rb") as handle:
            for item in _iter_handle(handle, max_line_bytes):
                line = item.line
                yield item
    except BROKEN_STREAM as exc:
        yield ReadProblem(line + 1, -1, "truncated_line", broken_stream(exc))


def _iter_handle(
    handle: BinaryIO, max_line_bytes: int, offset: int = 0, end: int | None = None
) -> Iterator[RawRecord | ReadProblem]:
    number = 0
    readline, limit, loads = handle.readline, max_line_bytes + 1, _loads_bytes
    stop = end if end is not None else float("inf")
    while offset < stop:
        raw = readline(limit)
        size = len(raw)
        if not size:
            return
        number += 1
        start = offset
        offset += size
        if size == limit and not raw.endswith(b"\n"):
            found = packed(raw) if start == 0 else None
            if found is not None:
                yield ReadProblem(number, start, "not_jsonl", found)
                return
            offset += _skip_rest_of_line(handle)
            yield ReadProblem(
                number,
                start,
                "line_too_long",
                f"line is longer than {max_line_bytes} bytes; split the example or raise "
                "max_line_bytes",
            )
            continue
        if loads is not None:
            # the usual line: one object in strict UTF-8 (a BOM, a blank or broken line fails)
            try:
                data = loads(raw)
            except _DecodeError:
                pass
            else:
                if data.__class__ is dict:
                    yield RawRecord(number, start, data)
                    continue
        found = packed(raw) if start == 0 else None
        if found is not None:  # not JSONL at all: one problem, not one per line of noise
            yield ReadProblem(number, start, "not_jsonl", found)
            return
        yield _decode(raw, number, start)


_PACKED = {
    b"PK\x03\x04": (
        "a zip archive (or an Excel workbook)",
        "extract the JSONL file; a sheet: save it as CSV UTF-8, which Dataset.from_csv and "
        "finetune's commands read",
    ),
    b"PAR1": ("a Parquet file", "read it with Dataset.from_parquet (finetune's commands do)"),
    b"\xff\xfe": ("UTF-16 text", "save it as UTF-8"),
    b"\xfe\xff": ("UTF-16 text", "save it as UTF-8"),
}


def packed(head: bytes) -> str | None:
    """What a file whose first line is ``head`` is when it is not JSONL at all (compressed,
    binary, one JSON document), and what to do about it (``None`` for anything else)."""
    for magic, (what, advice) in _PACKED.items():
        if head.startswith(magic):
            return f"the file is {what}, not JSONL: {advice}"
    first = head.removeprefix(_BOM).strip()
    if first.startswith(b"["):
        return (
            "the file is a JSON array, not JSONL (one JSON object per line): read it with "
            "Dataset.from_json (finetune's commands do), or write each element on a line of "
            "its own (jq -c '.[]' data.json > data.jsonl)"
        )
    if _CSV_HEADER.fullmatch(first):
        return (
            f"the file looks like CSV (its first line names columns: {first.decode()!r}), not "
            "JSONL: read it with Dataset.from_csv (finetune's commands read a .csv or .tsv "
            "file as CSV)"
        )
    if _OBJECTS_APART_BY_CR.search(first):  # no JSON document has "}", CR, "{" outside text
        return (
            "the file is JSONL whose lines end in a carriage return (CR, as classic Mac OS wrote "
            "them), not a newline: convert them (tr '\\r' '\\n' < old.jsonl > data.jsonl)"
        )
    if first == b"{":
        return (
            "the file is JSON written over several lines (pretty-printed), not JSONL (one JSON "
            "object per line): read it with Dataset.from_json (finetune's commands do), which "
            "reads one example, or an object holding a list of them"
        )
    return None


_OBJECTS_APART_BY_CR = re.compile(rb"\}[ \t]*\r[ \t]*\{")
_CSV_HEADER = re.compile(rb'"?[A-Za-z_][\w ]*"?(?:[,\t;]"?[A-Za-z_][\w ]*"?)+')  # prompt,completion


def _skip_rest_of_line(handle: BinaryIO) -> int:
    skipped = 0
    while True:
        chunk = handle.readline(_SKIP_CHUNK)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


def _decode(raw: bytes, number: int, offset: int) -> RawRecord | ReadProblem:
    complete = raw.endswith(b"\n")
    if raw.startswith(_BOM):  # the file's, or a later one's where files were concatenated
        raw = raw[len(_BOM) :]
    body = raw.strip()
    if not body:
        return ReadProblem(number, offset, "blank_line", "blank line (ignored)", "warning")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ReadProblem(
            number,
            offset,
            "invalid_utf8",
            f"invalid UTF-8 at byte {exc.start} of the line; save the file as UTF-8",
        )
    try:
        data = _loads(text)
    except json.JSONDecodeError as exc:
        if not complete and _reason(exc) not in _TOO_DEEP:
            return ReadProblem(
                number,
                offset,
                "truncated_line",
                f"last line is not complete JSON ({_reason(exc)}); the file looks truncated",
            )
        why = f"not valid JSON: {_reason(exc)} at column {exc.colno}{_json_hint(text, exc.pos)}"
        if _reason(exc) in _TOO_DEEP:
            where = f"at column {exc.colno}"
            why = f"JSON nested over 1,024 levels deep ({where}), more than the reader takes"
        return ReadProblem(number, offset, "invalid_json", why)
    if not isinstance(data, dict):
        return ReadProblem(
            number,
            offset,
            "not_an_object",
            f"each line must be a JSON object, got {json_kind(data)}",
        )
    problem = unwritable(data)
    if problem is not None:
        return ReadProblem(number, offset, *problem)
    return RawRecord(number, offset, data)


def unwritable(data: Any) -> tuple[str, str] | None:
    """(code, message) when a record cannot be written back as UTF-8 JSON (a lone surrogate
    from a ``\\ud800`` escape, a value that is not JSON), else ``None``. Such a record would
    pass a tokenizer and then fail the upload, so it is refused while reading."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end]
        return (
            "invalid_text",
            f"text holds a lone surrogate ({bad!a}) that cannot be written as UTF-8; "
            "fix the escape or remove the character",
        )
    except (TypeError, ValueError) as exc:
        return "invalid_json", f"the record holds a value that is not JSON ({exc})"
    return None


def _reason(error: json.JSONDecodeError) -> str:
    return str(error.msg).split(":")[0]


# what Python writes where JSON wants something else, and the way to JSON
_PYTHON_SPELLINGS = (
    (
        ("NaN", "Infinity", "-Infinity"),
        "NaN and Infinity are not JSON (Python's json.dumps writes them for such floats): "
        "write null, or leave the key out",
    ),
    (
        ("True", "False", "None"),
        "True, False and None are Python's: JSON spells them true, false and null "
        "(json.dumps writes a dict so)",
    ),
    (
        ("'",),
        'JSON quotes with " only: this looks like a Python dict printed with print() or '
        "str(); write each row with json.dumps",
    ),
)


def _json_hint(text: str, at: int) -> str:
    """The way to a JSONL line, where parsing stopped ``at`` what Python writes (NaN, True,
    a dict's repr) or at something after the object (a comma, a second object)."""
    rest = text[at:]
    if text[at - 1 : at] == "-":
        rest = "-" + rest
    for starts, hint in _PYTHON_SPELLINGS:
        if rest.startswith(starts):
            return f"; {hint}"
    if rest == ",":
        return "; a comma after the object: a JSONL line holds one object, nothing between lines"
    if rest.startswith("{"):
        return "; a second object on the line: JSONL takes one object per line"
    return ""

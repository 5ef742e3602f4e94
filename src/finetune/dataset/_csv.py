"""A CSV or TSV file of examples, a column per key (a spreadsheet's export): streamed a row at
a time, each named by the line it starts on."""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import threading
from collections.abc import Iterator
from pathlib import Path

from finetune.dataset._compressed import (
    BROKEN_STREAM,
    broken_stream,
    open_data,
    without_compression_suffix,
)
from finetune.dataset._reader import RawRecord, ReadProblem
from finetune.dataset._sources import FileSource

__all__ = ["CsvSource", "checked_encoding", "delimiter_for", "delimiter_of"]

_FIELD_LIMIT = 16 * 1024 * 1024  # a cell may hold a long answer (csv's own limit is 128 KiB)
_DELIMITERS = (",", "\t", ";", "|")
_HEADER_LIMIT = 64 * 1024  # characters of the first line read to find its delimiter


def delimiter_for(path: str | Path) -> str:
    """A tab for a ``.tsv`` or ``.tab`` file (``.tsv.gz`` too), else a comma."""
    suffix = without_compression_suffix(path).suffix.lower()
    return "\t" if suffix in (".tsv", ".tab") else ","


def delimiter_of(file: Path, encoding: str = "utf-8") -> str:
    """The delimiter that splits the header row into the most columns: ``;`` in a file that
    Excel saved where a comma is the decimal mark, a tab in a TSV named ``.csv``; the
    suffix's (``delimiter_for``) on a tie, or when the first line cannot be read (the read
    then says why, at its line)."""
    default = delimiter_for(file)
    try:
        with _text(file, encoding) as handle:
            first = handle.readline(_HEADER_LIMIT)
    except (UnicodeDecodeError, *BROKEN_STREAM):
        return default
    columns = {mark: len(next(csv.reader([first], delimiter=mark), [])) for mark in _DELIMITERS}
    return max((default, *_DELIMITERS), key=columns.__getitem__)  # the first of the most


def checked_encoding(encoding: str) -> str:
    """``encoding`` when Python knows it, else a ``ValueError`` naming it."""
    if not isinstance(encoding, str):
        raise TypeError(f"encoding is a name, as 'cp1252', not {encoding!r}")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}: utf-8, cp1252, latin-1, ...") from None
    return encoding


def _text(file: str | Path, encoding: str) -> io.TextIOWrapper:
    """The file's text, decompressed; UTF-8's byte order mark left out."""
    utf8 = codecs.lookup(encoding).name == "utf-8"
    return io.TextIOWrapper(open_data(file), encoding="utf-8-sig" if utf8 else encoding, newline="")


def _not_decoded(error: UnicodeDecodeError, encoding: str) -> str:
    if codecs.lookup(encoding).name != "utf-8":
        return f"not {encoding} ({error.reason})"
    return (
        f"not UTF-8 ({error.reason}): save the file as CSV UTF-8, or name its encoding: "
        "Dataset.from_csv(path, encoding='cp1252'), or --encoding cp1252 on the command line "
        "(Excel's 'CSV (Comma delimited)' on Windows)"
    )


class CsvSource(FileSource):
    """A CSV file: its first row names the keys, each other row is a record of its non-empty
    cells (an empty cell is an absent key, as ``from_pandas`` reads the NaN pandas gives it)."""

    maker = "Dataset.from_csv"

    def __init__(self, file: Path, delimiter: str, encoding: str = "utf-8") -> None:
        super().__init__(file)
        self.delimiter = delimiter
        self.encoding = encoding

    def _rows(self) -> Iterator[RawRecord | ReadProblem]:
        with _long_cells():
            yield from self._read()

    def _read(self) -> Iterator[RawRecord | ReadProblem]:
        with _text(self.file, self.encoding) as handle:
            rows = csv.reader(handle, delimiter=self.delimiter, strict=True)
            start, header = 1, None
            try:
                for cells in rows:
                    line, start = start, rows.line_num + 1
                    if not cells:
                        continue  # a blank line
                    if header is None:
                        named = _header(cells, line)
                        if isinstance(named, ReadProblem):
                            yield named
                            return
                        header = named
                        continue
                    yield _record(header, cells, line)
            except UnicodeDecodeError as exc:
                yield ReadProblem(start, -1, "invalid_utf8", _not_decoded(exc, self.encoding))
            except csv.Error as exc:  # a JSON array's first row, say: '"' then ':'
                first = _first_character(self.file, self.encoding) if header is None else ""
                why = _looks_like_json(first) if first in ("{", "[") else f"not valid CSV: {exc}"
                yield ReadProblem(start, -1, "invalid_csv", why)
            except BROKEN_STREAM as exc:
                yield ReadProblem(start, -1, "truncated_line", broken_stream(exc))


_passes = 0  # CSV passes under way, each perhaps paused between rows, in any thread
_passes_lock = threading.Lock()
_own_limit = 0  # the process's csv field limit before the first of them


@contextlib.contextmanager
def _long_cells() -> Iterator[None]:
    """csv's field limit raised to ``_FIELD_LIMIT`` while any pass reads, and the process's
    own given back when the last one ends (csv has one limit a process, no reader's own)."""
    global _passes, _own_limit
    with _passes_lock:
        if _passes == 0:
            _own_limit = csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
        _passes += 1
    try:
        yield
    finally:
        with _passes_lock:
            _passes -= 1
            if _passes == 0:
                csv.field_size_limit(_own_limit)


def _header(cells: list[str], line: int) -> list[str] | ReadProblem:
    names = [cell.strip() for cell in cells]
    if names[0].startswith(("{", "[")):  # no column is named so: a JSON file read as CSV
        return ReadProblem(line, -1, "invalid_csv", _looks_like_json(names[0][0]))
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice or not all(names):
        said = f"column {twice[0]!r} twice" if twice else "an empty column name"
        why = f"the header row has {said}: each column is named once, as its key"
        return ReadProblem(line, -1, "invalid_csv", why)
    return names


def _looks_like_json(first: str) -> str:
    return (
        f"the file looks like JSON (its first line starts with {first!r}), not CSV: read it "
        "with Dataset.from_jsonl, or Dataset.from_json for one JSON document (finetune's "
        "commands read a .jsonl or .json file so)"
    )


def _first_character(file: str | Path, encoding: str) -> str:
    """The first character of the file's text that is not white space ("" for none near)."""
    with contextlib.suppress(UnicodeDecodeError, *BROKEN_STREAM), _text(file, encoding) as text:
        return text.read(4096).lstrip()[:1]
    return ""


def _record(header: list[str], cells: list[str], line: int) -> RawRecord | ReadProblem:
    if len(cells) > len(header):
        why = (
            f"{len(cells)} cells where the header names {len(header)} columns: a cell holding "
            "the delimiter is written in double quotes"
        )
        return ReadProblem(line, -1, "invalid_csv", why)
    kept = {key: cell for key, cell in zip(header, cells, strict=False) if cell != ""}
    return RawRecord(line, -1, kept)  # a short row's missing cells are empty ones

"""Where a dataset's rows come from: a file, records in memory, a view of either."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from finetune._errors import DatasetError, add_note, closest_name
from finetune.dataset._compressed import without_compression_suffix
from finetune.dataset._reader import RawRecord, ReadProblem, iter_jsonl, unwritable

T = TypeVar("T")

__all__ = [
    "ColumnsSource",
    "ConcatSource",
    "FileSource",
    "JsonlSource",
    "RecordsSource",
    "Source",
    "SubsetSource",
    "answers_of",
    "column_pairs",
    "counted_items",
    "file_stamp",
    "is_data_name",
    "reader_call",
    "reader_for",
    "refuse_if_changed",
    "regular_file",
]


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")  # https://, hf://, s3://


class Source(Protocol):
    """Where a dataset's rows come from: a file (JSONL, JSON, CSV, Parquet), records in
    memory, or several."""

    name: str
    path: str | None

    def items(self) -> Iterator[RawRecord | ReadProblem]:
        """Each row, or the problem that kept it from being read, in order."""
        ...


class JsonlSource:
    def __init__(self, path: Path, max_line_bytes: int) -> None:
        self.path: str | None = str(path)
        self.name = path.name
        self.max_line_bytes = max_line_bytes
        self._stamp = file_stamp(str(path))

    def items(self) -> Iterator[RawRecord | ReadProblem]:
        self.check_unchanged()
        return iter_jsonl(str(self.path), max_line_bytes=self.max_line_bytes)

    def check_unchanged(self) -> None:
        """Every pass reads the file as it was when the dataset was made: a ``split``,
        ``sample`` or ``excluding`` view picks rows by their place in it, and a count once
        made is kept, so a file changed since would silently give other rows."""
        refuse_if_changed(str(self.path), self._stamp, "Dataset.from_jsonl")


class FileSource:
    """A file other than JSONL (JSON, CSV, Parquet), read again on every pass as it was when
    the dataset was made (``maker``: what makes one again); ``_rows`` reads it."""

    path: str | None = None  # not JSONL's bytes: an upload writes the rows out
    maker = "Dataset.from_jsonl"

    def __init__(self, file: Path) -> None:
        self.file = str(file)
        self.name = file.name
        self._stamp = file_stamp(self.file)

    def items(self) -> Iterator[RawRecord | ReadProblem]:
        refuse_if_changed(self.file, self._stamp, self.maker)
        return self._rows()

    def _rows(self) -> Iterator[RawRecord | ReadProblem]:
        raise NotImplementedError


def refuse_if_changed(path: str, stamp: tuple[int, int, int] | None, maker: str) -> None:
    """A ``DatasetError`` when the file at ``path`` is no longer as ``stamp`` saw it (one
    unreadable now is left for the reader to report)."""
    now = file_stamp(path)
    if now is not None and now != stamp:
        raise DatasetError(
            "the file changed since this dataset was made from it (its views pick rows by "
            f"their place, and its count is kept): make it again with {maker}",
            file=path,
        )


def file_stamp(path: str) -> tuple[int, int, int] | None:
    """What tells a changed file: size, modification time and inode (``None``: unreadable,
    left for the reader to report)."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_size, status.st_mtime_ns, status.st_ino


def regular_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` (``~`` as the home folder), made absolute, when it names a regular file,
    which can be read on every pass; else a ``DatasetError`` saying what it is instead (a
    ``TypeError`` for what is not a path: an open file, bytes in memory)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(_not_a_path(path, what))
    if not str(path).strip():
        raise DatasetError(f"no file named: give the path of {what}")
    if str(path).startswith("file://"):
        from urllib.parse import urlsplit
        from urllib.request import url2pathname  # 20 ms to import: only for such a URL

        path = url2pathname(urlsplit(str(path)).path)
    elif _URL.match(str(path)):
        raise DatasetError(
            "is a URL, and a dataset is read from a file on this machine: download it first; "
            "a Hugging Face Hub dataset: ft.Dataset.from_hf(datasets.load_dataset('org/name', "
            "split='train'))",
            file=str(path),
        )
    file = Path(path).expanduser()
    if file.is_dir():
        raise DatasetError(f"is a folder, not {what}; name the file", file=str(file))
    if not file.is_file():
        if file.exists():  # /dev/stdin on a pipe, a FIFO: they can be read only once
            raise DatasetError(
                "is not a regular file (a pipe or a device), and a dataset is read more "
                "than once: save it to a file and name that",
                file=str(file),
            )
        if str(path) == "-":  # the shell's name for standard input, a pipe as above
            raise DatasetError(
                "standard input is read once, and a dataset is read more than once: "
                "save it to a file and name that",
                file=str(file),
            )
        trimmed = Path(str(path).strip()).expanduser()
        if trimmed.is_file():
            raise DatasetError(
                f"no such file: the name has blanks around it; {str(trimmed)!r} is one",
                file=str(file),
            )
        raise DatasetError("no such file; check the path", file=str(file))
    return Path(os.path.abspath(file))  # the same file after a change of working directory


def _not_a_path(given: object, what: str) -> str:
    """Why ``given`` names no file: a stream is read once, and a dataset more than once."""
    name = getattr(given, "name", None)
    if hasattr(given, "read") and isinstance(name, str) and Path(name).is_file():
        return (
            f"{what} is read by its path, again on every pass, not from an open file: "
            f"pass its path, {name!r}"
        )
    if hasattr(given, "read") or isinstance(given, (bytes, bytearray, memoryview)):
        kind = "an open stream" if hasattr(given, "read") else type(given).__name__
        return (
            f"{what} is read by its path, again on every pass, not from {kind} (an upload, "
            "bytes in memory): save what it holds to a file and pass that path, or give the "
            "parsed rows to Dataset.from_records(rows)"
        )
    return f"{what} is named by its path (a str or pathlib.Path), not {type(given).__name__}"


def reader_for(path: str | os.PathLike[str]) -> str:
    """The ``Dataset`` reader of the file at ``path``, by its name (``from_parquet`` for
    ``train.parquet``, ``from_csv`` for ``support.csv.gz``; ``from_jsonl`` else)."""
    suffix = without_compression_suffix(path).suffix.lower()
    return _READERS.get(suffix, "from_jsonl")


def reader_call(path: str | os.PathLike[str]) -> str:
    """The call that reads the file at ``path``: ``ft.Dataset.from_jsonl('train.jsonl')``."""
    return f"ft.Dataset.{reader_for(path)}({os.fspath(path)!r})"


def is_data_name(name: str | os.PathLike[str]) -> bool:
    """Whether a file's name is a data file's (``train-00000-of-00001.parquet``,
    ``train.jsonl.gz``)."""
    return without_compression_suffix(name).suffix.lower() in (".jsonl", *_READERS)


_READERS = {
    ".parquet": "from_parquet",
    ".json": "from_json",
    ".csv": "from_csv",
    ".tsv": "from_csv",
    ".tab": "from_csv",
}


class RecordsSource:
    path: str | None = None

    def __init__(self, records: list[Any], name: str) -> None:
        self._records = records
        self.name = name
        self._problems: dict[int, tuple[str, str]] = {}  # checked once, not on every pass
        for index, data in enumerate(records):
            problem = (
                unwritable(data)
                if isinstance(data, Mapping)
                else ("not_an_object", f"record is a {type(data).__name__}, not a mapping")
            )
            if problem is not None:
                self._problems[index] = problem

    def items(self) -> Iterator[RawRecord | ReadProblem]:
        problems = self._problems
        for index, data in enumerate(self._records):
            if index in problems:
                yield ReadProblem(index + 1, -1, *problems[index])
            else:
                yield RawRecord(index + 1, -1, dict(data))


class SubsetSource:
    def __init__(self, parent: Source, positions: frozenset[int], keep: bool, name: str) -> None:
        self._parent = parent
        self._positions = positions
        self._keep = keep
        self.name = name
        self.path = parent.path

    def items(self) -> Iterator[RawRecord | ReadProblem]:
        for position, item in counted_items(self._parent.items()):
            if (position in self._positions) == self._keep:
                yield item


def answers_of(
    function: Callable[[Any], T], examples: Iterable[tuple[int, Any]], whose: str
) -> Iterator[tuple[int, T]]:
    """``function(example)`` for each example and its position; an error it raises carries a
    note naming the example, as ``dataset[i]`` shows it (``whose``: whose function it is)."""
    for position, example in examples:
        try:
            answer = function(example)
        except Exception as error:
            add_note(
                error, f"raised by {whose} on the example at position {position} (ds[{position}])"
            )
            raise
        yield position, answer


def counted_items(
    items: Iterable[RawRecord | ReadProblem],
) -> Iterator[tuple[int, RawRecord | ReadProblem]]:
    """The items a dataset counts (records and unreadable rows, not warnings such as a blank
    line), numbered: the positions ``split``, ``sample`` and ``excluding`` choose by."""
    position = 0
    for item in items:
        if not (isinstance(item, ReadProblem) and item.severity == "warning"):
            yield position, item
            position += 1


class ColumnsSource:
    """A source's rows with only some of their top-level keys (a table's extra columns, such
    as ``id`` or ``source``, left out), perhaps renamed, on every pass; its rows keep their
    lines."""

    def __init__(self, parent: Source, pairs: tuple[tuple[str, str], ...], name: str) -> None:
        self._parent = parent
        self.pairs = pairs
        """Each kept key, and its name in the view."""
        self.name = name
        self.path: str | None = None  # not the file's bytes: an upload writes its rows out

    def items(self) -> Iterator[RawRecord | ReadProblem]:
        pairs = self.pairs
        for item in self._parent.items():
            if isinstance(item, RawRecord):
                data = item.data
                kept = {new: data[old] for old, new in pairs if old in data}
                item = RawRecord(item.line, item.offset, kept, item.file)
                if len(kept) < len(pairs):  # a column misspelt: told, not dropped unsaid
                    why = _misspelt_column([old for old, _ in pairs], data)
                    if why is not None:
                        line, offset, file = item.line, item.offset, item.file
                        item = ReadProblem(line, offset, "unknown_format", why, file=file)
            yield item


def _misspelt_column(columns: list[str], data: dict[str, Any]) -> str | None:
    """Why a row is refused for a column selection it does not match: a selected name it
    lacks that another of its keys is most likely meant by (``questoin``: ``question``), or
    none of the selected names at all; ``None`` for a column some rows just do not have."""
    keys = [str(key) for key in data]
    others = [key for key in keys if key not in columns]
    for column in (c for c in columns if c not in data):
        meant = closest_name(column, others)
        if meant is not None:
            return f"the column kept {column!r} is not in this row (did you mean {meant!r}?)"
    if not data or any(column in data for column in columns):
        return None
    more = f" and {len(keys) - 8} more" if len(keys) > 8 else ""
    return (
        f"the row holds none of the columns kept, {', '.join(map(repr, columns))}: its "
        f"columns are {', '.join(keys[:8])}{more}"
    )


def column_pairs(columns: Any) -> tuple[tuple[str, str], ...]:
    """``select_columns``' argument as (key, name in the view) pairs: a name, a list of
    names (each kept as it is), or a mapping of names to new names."""
    if isinstance(columns, Mapping):
        pairs = tuple(columns.items())
    elif isinstance(columns, str):
        pairs = ((columns, columns),)
    elif isinstance(columns, Iterable):
        pairs = tuple((name, name) for name in dict.fromkeys(columns))
    else:
        raise TypeError(
            f"select_columns takes a list of key names, or a mapping of them to new names, "
            f"not {columns!r}"
        )
    named = [name for pair in pairs for name in pair]
    if not pairs or not all(isinstance(name, str) and name for name in named):
        raise ValueError(
            f'select_columns takes the names of the keys to keep, as ["messages"] or '
            f'{{"question": "prompt"}}, not {columns!r}'
        )
    renamed = [new for _, new in pairs]
    twice = sorted({new for new in renamed if renamed.count(new) > 1})
    if twice:
        raise ValueError(f"select_columns names two keys {twice[0]!r}: {columns!r}")
    return pairs


class ConcatSource:
    """Sources read one after another; each row names its part (``file``), whose lines it
    keeps: an error says ``b.jsonl:3``, not the row's place in the whole."""

    path: str | None = None

    def __init__(self, parts: list[tuple[str, Source]], name: str) -> None:
        self.parts = parts
        """Each part's label (what its rows name as their file) and source, in order."""
        self.name = name

    @classmethod
    def joining(cls, sources: list[Source], name: str | None = None) -> ConcatSource:
        """``sources`` one after another, a concatenation among them read as its parts, so
        that each is named apart (``records``, ``records#2``); ``name``: the whole's (default:
        the parts' joined by ``+``)."""
        leaves = [leaf for source in sources for leaf in _parts_of(source)]  # a + b + c
        seen: dict[str, int] = {}
        labels = []
        for leaf in leaves:
            seen[leaf.name] = seen.get(leaf.name, 0) + 1
            labels.append(leaf.name if seen[leaf.name] == 1 else f"{leaf.name}#{seen[leaf.name]}")
        return cls(list(zip(labels, leaves, strict=True)), name or "+".join(labels))

    def items(self) -> Iterator[RawRecord | ReadProblem]:
        for label, source in self.parts:
            for item in source.items():
                yield item if item.file is not None else dataclasses.replace(item, file=label)


def _parts_of(source: Source) -> list[Source]:
    """The sources a dataset reads: a concatenation's parts, else the source itself."""
    return [part for _, part in source.parts] if isinstance(source, ConcatSource) else [source]

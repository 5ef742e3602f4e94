"""The Dataset: typed examples, streamed from their source on every pass."""

from __future__ import annotations

import hashlib
import itertools
import json
import numbers
import os
import random
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, overload

from finetune._errors import DatasetError, MissingDependency
from finetune._numbers import is_real, is_whole
from finetune._other_names import DATASET_NAMES, OtherNames
from finetune._paths import writes_to
from finetune._words import counted
from finetune.dataset._atomic import atomic_write
from finetune.dataset._compressed import decompressor_of
from finetune.dataset._csv import CsvSource, checked_encoding, delimiter_of
from finetune.dataset._formats import (
    OutputFormat,
    detect_kind,
    formatter,
    parse_example,
    repeats,
    split_turns,
)
from finetune.dataset._json_array import JsonArraySource, is_json_document
from finetune.dataset._parquet import ParquetSource
from finetune.dataset._reader import DEFAULT_MAX_LINE_BYTES, RawRecord, ReadProblem
from finetune.dataset._shape_hints import not_records
from finetune.dataset._sources import (
    ColumnsSource,
    ConcatSource,
    FileSource,
    JsonlSource,
    RecordsSource,
    Source,
    SubsetSource,
    answers_of,
    column_pairs,
    counted_items,
    reader_call,
    regular_file,
)
from finetune.dataset._strata import empty_side, stratified_sample
from finetune.dataset._tables import empty_cell, plain_cell, rows_of_one_split
from finetune.dataset._tool_rows import without_table_nulls
from finetune.types import EXAMPLE_KINDS, Example, ExampleKind

__all__ = ["Dataset", "canonical_json", "require_dataset", "write_jsonl"]


_PREVIEW_ROWS = 3
_SOURCES = (JsonlSource, FileSource, RecordsSource, SubsetSource, ColumnsSource, ConcatSource)


class Dataset(OtherNames):
    """Typed training examples, streamed from a file (JSONL, JSON, CSV, Parquet) or held as
    records.

    Made by ``Dataset.from_jsonl``, ``from_json``, ``from_csv``, ``from_parquet``,
    ``from_records``, ``from_pandas`` or ``from_hf``, and joined by ``Dataset.concat``
    (``a + b``). A Dataset is re-iterable and immutable: ``split`` and ``sample`` return
    views that read the same source again, so a file never has to fit in memory.
    """

    other_names: ClassVar[dict[str, tuple[str, str]]] = DATASET_NAMES

    def __init__(self, source: Source, kind: ExampleKind | None = None) -> None:
        if not isinstance(source, _SOURCES):
            raise TypeError(
                "a Dataset is made by Dataset.from_jsonl(path), from_json(path), "
                "from_csv(path), from_parquet(path), from_records(rows), from_pandas(frame) or "
                f"from_hf(dataset), not Dataset({type(source).__name__})"
            )
        if kind is not None and kind not in EXAMPLE_KINDS:
            raise ValueError(
                f"kind is one of {list(EXAMPLE_KINDS)} (or None to detect), not {kind!r}"
            )
        self._source = source
        self._kind = kind
        self._declared = kind
        self._length: int | None = None

    @classmethod
    def from_jsonl(
        cls,
        path: str | os.PathLike[str],
        *,
        kind: ExampleKind | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> Dataset:
        """A dataset streamed from a JSONL file in our, OpenAI's, Mistral's or TRL's shape
        (``~`` in ``path`` is the home folder)."""
        if not is_whole(max_line_bytes):
            raise TypeError(f"max_line_bytes is a whole number of bytes, not {max_line_bytes!r}")
        if max_line_bytes < 1:  # every line would be an error, on every read
            raise ValueError(f"max_line_bytes is 1 or more, not {max_line_bytes}")
        max_line_bytes = int(max_line_bytes)
        file = regular_file(path, "a JSONL file")
        return cls(JsonlSource(file, max_line_bytes), kind)

    @classmethod
    def from_json(
        cls,
        path: str | os.PathLike[str],
        *,
        kind: ExampleKind | None = None,
        field: str | None = None,
    ) -> Dataset:
        """A dataset from a JSON file of one array of examples (Alpaca's and LLaMA-Factory's
        ``.json`` files), or of an object whose one list of objects holds them
        (``{"version": "1.0", "data": [...]}``; ``field="train"`` names the key where it
        holds several, as ``datasets.load_dataset("json", field=...)`` does), or of one
        example over several lines: read whole on each pass, an element at a time; an
        error's ``line`` is the line its element starts on. A JSONL file is read as
        ``from_jsonl`` reads it."""
        file = regular_file(path, "a JSON file")
        if field is None and not is_json_document(file):
            return cls.from_jsonl(file, kind=kind)
        return cls(JsonArraySource(file, field), kind)

    @classmethod
    def from_csv(
        cls,
        path: str | os.PathLike[str],
        *,
        kind: ExampleKind | None = None,
        delimiter: str | None = None,
        encoding: str = "utf-8",
    ) -> Dataset:
        """A dataset streamed from a CSV file whose header names each column's key
        (``prompt,completion``; ``system,user,assistant``, read as a conversation), as a
        spreadsheet exports it; an empty cell is an absent key, an error's ``line`` the one
        its row starts on. ``delimiter``: the one of ``,``, tab, ``;`` and ``|`` that splits the
        header row into the most columns (Excel's ``;``), the file's suffix's on a tie (a tab
        for ``.tsv`` and ``.tab`` files, else a comma). ``encoding``: ``"cp1252"`` for what
        Excel saves as "CSV (Comma delimited)" on Windows."""
        file, encoding = regular_file(path, "a CSV file"), checked_encoding(encoding)
        return cls(CsvSource(file, delimiter or delimiter_of(file, encoding), encoding), kind)

    @classmethod
    def from_parquet(
        cls, path: str | os.PathLike[str], *, kind: ExampleKind | None = None
    ) -> Dataset:
        """A dataset streamed from a Parquet file (what the Hugging Face Hub serves), a
        batch of rows at a time, read as ``from_hf`` reads the same table; an error's
        ``line`` is the row's position from 1. Needs ``pyarrow`` (the ``parquet`` extra)."""
        source = ParquetSource(regular_file(path, "a Parquet file"))
        dataset = cls(source, kind)
        dataset._length = source.rows
        return dataset

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any] | Example],
        *,
        kind: ExampleKind | None = None,
        name: str = "records",
    ) -> Dataset:
        """A dataset from dicts (any supported shape) or example models, held in memory; a
        pandas DataFrame's rows are read as ``from_pandas`` reads them."""
        if _pandas_frame(records):  # iterating one gives its column names
            return cls.from_pandas(records, kind=kind)
        why = not_records(records)
        if why is not None:  # named for what it was given as (the data to evaluate ...)
            subject = (
                "from_records takes" if name == "records" else f"{name} must be a ft.Dataset or"
            )
            raise TypeError(
                f"{subject} a list of records (dicts or examples), not "
                f"{type(records).__name__}{why}"
            )
        rows = [_as_record(r) for r in records]
        dataset = cls(RecordsSource(rows, name), kind)
        dataset._length = len(rows)
        return dataset

    @classmethod
    def from_pandas(cls, frame: Any, *, kind: ExampleKind | None = None) -> Dataset:
        """A dataset from a pandas DataFrame whose columns are the record's keys; an empty
        cell (None, NaN, NA, NaT: what ``pd.concat`` leaves where a frame had no such column)
        is an absent key. A row's ``line`` in errors is its position from 1, whatever the
        frame's index: ``frame.iloc[line - 1]``."""
        if not callable(getattr(frame, "to_dict", None)) or not hasattr(frame, "columns"):
            raise TypeError(
                f"from_pandas takes a pandas DataFrame, not {type(frame).__name__}; "
                "Dataset.from_records takes a list of dicts"
            )
        rows = [
            without_table_nulls(
                {key: plain_cell(value) for key, value in row.items() if not empty_cell(value)}
            )
            for row in frame.to_dict(orient="records")
        ]
        return cls.from_records(rows, kind=kind, name="dataframe")

    @classmethod
    def from_hf(cls, hf_dataset: Any, *, kind: ExampleKind | None = None) -> Dataset:
        """A dataset from a Hugging Face ``datasets.Dataset`` (rows in a supported shape; in
        any format, ``with_format("numpy")`` included)."""
        rows = map(without_table_nulls, rows_of_one_split(hf_dataset))  # as Python gives them
        return cls.from_records(rows, kind=kind, name="hf-dataset")

    @classmethod
    def concat(cls, datasets: Iterable[Dataset], *, name: str | None = None) -> Dataset:
        """The rows of ``datasets``, one after another (``a + b`` for two). Each part is
        read again on every pass, so files are still streamed; a row keeps its part's name
        and line, in errors and validation findings (``b.jsonl:3``; two parts of one name
        are told apart as ``records``, ``records#2``). ``name``: the whole's (default: the
        parts' joined by ``+``). Parts declared of different kinds are refused here; rows of
        another kind than the first's are ``mixed_kinds`` to validation."""
        if isinstance(datasets, Dataset) or not isinstance(datasets, Iterable):
            raise TypeError("Dataset.concat takes a list of Datasets: Dataset.concat([a, b])")
        parts = list(datasets)
        if not all(isinstance(part, Dataset) for part in parts):
            raise TypeError("Dataset.concat takes a list of Datasets: Dataset.concat([a, b])")
        if not parts:
            raise ValueError("Dataset.concat needs at least one dataset")
        declared = {part._declared for part in parts} - {None}
        if len(declared) > 1:
            kinds = " and ".join(sorted(str(kind) for kind in declared))
            raise ValueError(f"Dataset.concat: the parts are declared of {kinds} examples")
        joined = ConcatSource.joining([part._source for part in parts], name)
        whole = cls(joined, declared.pop() if declared else None)
        if all(part._length is not None for part in parts):
            whole._length = sum(part._length or 0 for part in parts)
        return whole

    def __add__(self, other: object) -> Dataset:
        """``a + b``: ``Dataset.concat([a, b])``."""
        if not isinstance(other, Dataset):
            return NotImplemented
        return Dataset.concat([self, other])

    @property
    def name(self) -> str:
        """The source's name (file name, or 'records')."""
        return self._source.name

    @property
    def path(self) -> str | None:
        """The JSONL file this dataset streams from, if any."""
        return self._source.path

    def whole_file(self) -> tuple[str, int] | None:
        """(path, line size cap) when this dataset is a whole, uncompressed JSONL file, not a
        view."""
        source = self._source
        if isinstance(source, JsonlSource) and source.path is not None:
            source.check_unchanged()
            if decompressor_of(source.path) is None:  # its bytes are lines: split by bytes
                return source.path, source.max_line_bytes
        return None

    def _whole_parquet(self) -> ParquetSource | None:
        """The Parquet file this dataset reads whole, not a view of it (for a parallel scan)."""
        return self._source if isinstance(self._source, ParquetSource) else None

    @property
    def declared_kind(self) -> ExampleKind | None:
        """The kind given when the dataset was made (``None``: detected); validation reports
        every row of another kind."""
        return self._declared

    @property
    def kind(self) -> ExampleKind:
        """The example kind: given, or detected from the first record."""
        if self._kind is None:
            first = next(self.records(), None)
            if first is None:
                raise DatasetError(
                    "the dataset is empty: it has no example to tell its kind from",
                    file=self._source.name,
                )
            file = first.file or self.name  # a row of no kind: parsing it says why
            self._kind = (
                detect_kind(first.data)
                or parse_example(first.data, file=file, line=first.line).kind
            )
        return self._kind

    def items(self) -> Iterator[RawRecord | ReadProblem]:
        """Every line as a raw record or a read problem, for validators that never stop."""
        return self._source.items()

    def records(self) -> Iterator[RawRecord]:
        """Raw records with line numbers; raises ``DatasetError`` on an unreadable line."""
        for item in self._source.items():
            if isinstance(item, ReadProblem):
                if item.severity == "warning":
                    continue
                raise DatasetError(item.message, file=item.file or self.name, line=item.line)
            yield item

    def __iter__(self) -> Iterator[Example]:
        kind = self._kind
        for record in self.records():
            example = parse_example(
                record.data, kind=kind, file=record.file or self.name, line=record.line
            )
            kind = kind or example.kind
            yield example

    def __len__(self) -> int:
        if self._length is None:
            self._length = sum(1 for _ in counted_items(self._source.items()))
        return self._length

    def __repr__(self) -> str:
        kind = f" kind={self._kind}" if self._kind else ""  # unknown until a row is read
        size = f", {counted(self._length, 'example')}" if self._length is not None else ""
        return f"<Dataset {self._source.name!r}{kind}{size}>"

    def _repr_html_(self) -> str:
        from finetune._html import dataset_html

        first = list(itertools.islice(self.items(), _PREVIEW_ROWS))  # a file is not read whole
        size = os.path.getsize(self.path) if self.path and os.path.isfile(self.path) else None
        readable = [item.data for item in first if isinstance(item, RawRecord)]
        kind = self._kind or (detect_kind(readable[0]) if readable else None)
        return dataset_html(self.name, kind, self._length, self.path, size, first)

    def split(
        self,
        test_size: float | int = 0.1,
        *,
        seed: int = 0,
        stratify: Callable[[Example], Hashable] | None = None,
    ) -> tuple[Dataset, Dataset]:
        """Deterministically split into (train, test); ``test_size`` is a fraction or a count.

        ``stratify`` gives an example's label (``lambda e: e.messages[-1].content``): each
        label then has the same share of both sides, as near as whole examples allow; rows
        that are no example count as one label of their own."""
        if not is_real(test_size):
            raise TypeError(f"test_size is a fraction or a count, not {test_size!r}")
        total = len(self)
        if isinstance(test_size, numbers.Integral):  # numpy's integers too
            count = int(test_size)
        else:  # a fraction outside (0, 1), NaN included, leaves a side empty
            count = round(total * test_size) if 0 < test_size < 1 else 0
        if not 0 < count < total:
            raise ValueError(empty_side(test_size, total))
        draw = _drawing(seed)
        if stratify is None:
            chosen = frozenset(draw.sample(range(total), count))
        else:
            chosen = frozenset(stratified_sample(self._labels(stratify, total), count, draw))
        return self._subset(chosen, keep=False, tag="train"), self._subset(
            chosen, keep=True, tag="test"
        )

    def _labels(self, label: Callable[[Example], Hashable], total: int) -> list[Hashable]:
        """Each row's label, by position (rows that are no example share one of their own)."""
        if not callable(label):
            raise TypeError(f"stratify is a function from an example to its label, not {label!r}")
        labels: list[Hashable] = [_NO_EXAMPLE] * total  # not None: a label may be None
        readable = self._examples_by_position(self._kind, settle_kind=True)
        for position, answer in answers_of(label, readable, "the stratify function"):
            labels[position] = _hashable(answer)
        return labels

    def sample(self, n: int, *, seed: int = 0) -> Dataset:
        """``n`` examples drawn deterministically (all of them when ``n`` >= the size)."""
        if not is_whole(n):
            raise TypeError(f"n is how many examples to draw, a whole number, not {n!r}")
        if n < 0:
            raise ValueError(f"n is how many examples to draw (0 or more), not {n!r}")
        total = len(self)
        chosen = frozenset(_drawing(seed).sample(range(total), min(int(n), total)))
        return self._subset(chosen, keep=True, tag=f"sample{len(chosen)}")

    def excluding(self, other: Iterable[Example]) -> Dataset:
        """This dataset without its examples that are also in ``other``: the same
        conversation and answer (``split_turns``), as ``ft.evaluate`` compares them when it
        notes a model scored on its own training rows. ``holdout.excluding(train)`` is a
        holdout with nothing the model trained on (a dataset's duplicates land on both sides
        of a ``split``). Unreadable rows are kept, for validation to report."""
        seen = {split_turns(example) for example in other}
        readable = self._examples_by_position(self._declared, settle_kind=False)
        dropped = frozenset(at for at, example in readable if split_turns(example) in seen)
        return self._subset(dropped, keep=False, tag="excluding")

    def deduplicated(self) -> Dataset:
        """A view without the repeats of an earlier example (alike in every field: turns,
        weights, tools, images), the first of each kept in its place: what validation warns
        of as ``duplicate_example``. Unreadable rows are kept, for validation to report."""
        readable = self._examples_by_position(self._declared, settle_kind=False)
        return self._subset(frozenset(repeats(readable)), keep=False, tag="deduplicated")

    def filter(self, keep: Callable[[Example], object]) -> Dataset:
        """A view of the examples for which ``keep(example)`` is true, in the source's order
        (an error still names its row's line in the file); ``keep`` runs once per example,
        here. Rows that are no example (unreadable, or a field wrong) are kept, for
        validation to report."""
        if not callable(keep):
            raise TypeError(f"filter takes a function from an example to a truth, not {keep!r}")
        readable = self._examples_by_position(self._kind, settle_kind=True)
        answers = answers_of(keep, readable, "the filter function")
        dropped = frozenset(at for at, kept in answers if not kept)
        return self._subset(dropped, keep=False, tag="filter")

    def select_columns(self, columns: str | Iterable[str] | Mapping[str, str]) -> Dataset:
        """A view whose rows keep only these top-level keys: a table's extra columns (``id``,
        ``source``, a ``prompt`` that repeats the first user turn) left out, where validation
        refuses each as ``unexpected_field``; a mapping renames them too. Read again on every
        pass; an error still names its row's line, and a row that lacks a key named while
        another of its keys is close to it, or has none of them, is refused so.
        ``ds.select_columns(["messages", "tools"])``, ``ds.select_columns({"q": "prompt"})``."""
        pairs = column_pairs(columns)
        told = ", ".join(old if old == new else f"{old} as {new}" for old, new in pairs)
        name = f"{self._source.name}[{told}]"
        view = Dataset(ColumnsSource(self._source, pairs, name), self._declared)
        view._length = self._length
        return view

    def _examples_by_position(
        self, kind: ExampleKind | None, *, settle_kind: bool
    ) -> Iterator[tuple[int, Example]]:
        """Each example that parses, with its position (what a view chooses by); the rows
        that are no example are passed over, and so stay in a view, for validation to
        report. ``settle_kind``: a kind not given is the first example's, as iteration
        reads them."""
        for position, item in counted_items(self._source.items()):
            if isinstance(item, ReadProblem):
                continue
            try:
                example = parse_example(item.data, kind=kind)
            except DatasetError:
                continue
            if settle_kind:
                kind = kind or example.kind
            yield position, example

    @overload
    def __getitem__(self, index: int) -> Example: ...

    @overload
    def __getitem__(self, index: slice) -> Dataset: ...

    def __getitem__(self, index: int | slice) -> Example | Dataset:
        """``dataset[i]``: the example at position ``i`` (from 0; negative counts from the
        end, which counts the rows first), read up to that row; ``dataset[a:b]``: a view of
        those rows, in the source's order."""
        if isinstance(index, slice):
            rows = range(len(self))[index]
            if rows.step < 0:
                raise ValueError("a view keeps the source's order: slice with a positive step")
            tag = f"{rows.start}:{rows.stop}" + (f":{rows.step}" if rows.step != 1 else "")
            return self._subset(frozenset(rows), keep=True, tag=tag)
        if not is_whole(index) or isinstance(index, bool):
            column = f"; a column: ds.to_pandas()[{index!r}]" if isinstance(index, str) else ""
            raise TypeError(
                f"a Dataset is indexed by a whole number or a slice, not {index!r}{column}"
            )
        position = int(index) + (len(self) if index < 0 else 0)
        if position >= 0:
            kind, passed = self._kind, 0  # kind: given, or the first row's
            for at, item in counted_items(self._source.items()):
                kind = kind or (detect_kind(item.data) if isinstance(item, RawRecord) else None)
                if at == position:
                    file = item.file or self.name
                    if isinstance(item, ReadProblem):
                        raise DatasetError(item.message, file=file, line=item.line)
                    return parse_example(item.data, kind=kind, file=file, line=item.line)
                passed = at + 1
            self._length = passed  # read to the end: its count, for the error and len()
        raise IndexError(f"index {index} is out of range for {counted(len(self), 'example')}")

    def _subset(self, positions: frozenset[int], *, keep: bool, tag: str) -> Dataset:
        name = f"{self._source.name}[{tag}]"
        view = Dataset(SubsetSource(self._source, positions, keep, name), self._declared)
        view._length = len(positions) if keep else len(self) - len(positions)
        return view

    def fingerprint(self) -> str:
        """sha256 of the canonical examples: stable across runs, key order and source shape."""
        digest = hashlib.sha256()
        native = formatter("native")
        for example in self:
            digest.update(canonical_json(native(example)).encode())
            digest.update(b"\n")
        return digest.hexdigest()

    def to_pandas(self, *, format: OutputFormat = "native") -> Any:
        """The examples as a pandas DataFrame, a row each, whose columns are the keys of
        ``format``'s records (``native``: ours, with ``kind``); ``Dataset.from_pandas(
        data.to_pandas())`` holds the same examples. Needs pandas (the ``eval`` extra)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise MissingDependency("pandas", "eval", purpose="for to_pandas()") from exc
        convert = formatter(format)
        return pd.DataFrame([convert(example) for example in self])

    def to_jsonl(
        self,
        path: str | os.PathLike[str],
        *,
        format: OutputFormat | Callable[[Example], dict[str, Any]] = "native",
    ) -> Path:
        """Write every example to ``path`` atomically (temp file + rename), in ``format``: a
        provider's format name, or a function from an example to its JSON line (a plugin's).
        A write that fails (a full disk, a read-only folder) is a ``StorageError`` naming the
        path, and leaves the file as it was."""
        target = Path(path).expanduser()
        with writes_to(target):
            write_jsonl(self, target, format)
        return target


def write_jsonl(
    dataset: Dataset,
    target: Path,
    format: OutputFormat | Callable[[Example], dict[str, Any]],
) -> None:
    """``Dataset.to_jsonl``'s writing, its ``OSError`` left for the caller to explain (an
    upload's temporary copy says where to find room; a user's file, which path to choose). A
    new file is no more readable than the file the dataset came from, as ``cp`` makes it."""
    convert = format if callable(format) else formatter(format)
    with atomic_write(target, like=dataset.path) as handle:
        for example in dataset:
            handle.write(canonical_json(convert(example), sort=False).encode())
            handle.write(b"\n")


def require_dataset(value: Any, what: str) -> Dataset:
    """``value`` when it is a ``Dataset``; anything else (a file's path, a list of rows) is a
    ``TypeError`` naming ``what`` and how to make a dataset of it."""
    if isinstance(value, Dataset):
        return value
    if isinstance(value, str | os.PathLike):
        fix = reader_call(value)
    elif isinstance(value, list | tuple):
        fix = "ft.Dataset.from_records(rows)"
    elif what == "validation" and is_real(value):  # a fraction, as other tools take it
        fix = f"to hold some out, train, valid = data.split(test_size={value!r}, seed=0)"
    else:
        fix = "ft.Dataset.from_jsonl(path), .from_records(rows), .from_pandas or .from_hf"
    raise TypeError(f"{what} is a ft.Dataset, not {type(value).__name__}: {fix}")


def _as_record(row: Any) -> Any:
    """A mapping as it is, an example model as its dict; anything else is kept, and reported
    as ``not_an_object`` on its line."""
    if isinstance(row, Mapping) or not hasattr(row, "model_dump"):
        return row
    dumped: dict[str, Any] = row.model_dump(mode="json", exclude_none=True)
    return dumped


def canonical_json(value: Any, *, sort: bool = True) -> str:
    """Compact JSON with sorted keys and no ASCII escaping: one stable text per value."""
    return json.dumps(value, sort_keys=sort, separators=(",", ":"), ensure_ascii=False)


_NO_EXAMPLE = object()


def _hashable(label: Any) -> Hashable:
    """A label that can name a group (a dict key): a list or a dict is refused."""
    try:
        hash(label)
    except TypeError:
        raise TypeError(
            f"stratify returned a {type(label).__name__}, which cannot label a group: return "
            "text, a number or a tuple"
        ) from None
    return label  # type: ignore[no-any-return]


def _drawing(seed: int) -> random.Random:
    """The random draws of ``seed``, a whole number (NumPy's too: ``random`` takes no
    ``np.int64``)."""
    if not is_whole(seed):
        raise TypeError(f"seed is a whole number, not {seed!r}")
    return random.Random(int(seed))


def _pandas_frame(value: Any) -> bool:
    return type(value).__module__.partition(".")[0] == "pandas" and hasattr(value, "columns")

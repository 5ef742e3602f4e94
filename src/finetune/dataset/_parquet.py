"""A Parquet file's rows, streamed a batch at a time (the Hugging Face Hub's own format)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from finetune._errors import DatasetError, MissingDependency
from finetune.dataset._compressed import first_bytes
from finetune.dataset._reader import RawRecord, ReadProblem, unwritable
from finetune.dataset._sources import FileSource, refuse_if_changed
from finetune.dataset._tool_rows import without_table_nulls

__all__ = ["PARQUET_MAGIC", "ParquetSource", "is_parquet"]

PARQUET_MAGIC = b"PAR1"
_BATCH_ROWS = 1024  # rows decoded at once: a file is never held whole
_JSON_LEAVES = (
    "is_string",
    "is_large_string",
    "is_integer",
    "is_floating",
    "is_boolean",
    "is_null",
)


def is_parquet(path: str | Path) -> bool:
    """Whether ``path`` is a Parquet file, by its first bytes (whatever its name)."""
    return first_bytes(path, len(PARQUET_MAGIC)) == PARQUET_MAGIC


class ParquetSource(FileSource):
    """A Parquet file, a row at a time, as ``Dataset.from_hf`` reads the same table
    (``line``: the row's position from 1)."""

    maker = "Dataset.from_parquet"

    def __init__(self, file: Path) -> None:
        super().__init__(file)
        self.rows = _opened(self.file).metadata.num_rows

    def parts(self, count: int) -> list[Callable[[], Iterator[RawRecord | ReadProblem]]]:
        """Readers of the file in up to ``count`` runs of whole row groups, of about as many
        rows each, in order; each numbers its rows from 1 (a worker's share of a scan)."""
        refuse_if_changed(self.file, self._stamp, self.maker)
        metadata = _opened(self.file).metadata
        sizes = [metadata.row_group(group).num_rows for group in range(metadata.num_row_groups)]
        runs: list[list[int]] = [[]]
        share, taken = max(1, sum(sizes) // max(1, count)), 0
        for group, size in enumerate(sizes):
            if runs[-1] and taken >= share * len(runs) and len(runs) < count:
                runs.append([])
            runs[-1].append(group)
            taken += size
        return [functools.partial(self._rows, run) for run in runs if run]

    def _rows(self, row_groups: list[int] | None = None) -> Iterator[RawRecord | ReadProblem]:
        opened = _opened(self.file)
        checked = not _holds_only_json(opened.schema_arrow)
        number = 0
        for batch in _batches(self.file, opened, row_groups):
            for row in batch:
                number += 1
                problem = unwritable(row) if checked else None
                if problem is None:
                    yield RawRecord(number, -1, without_table_nulls(row))
                else:
                    yield ReadProblem(number, -1, *problem)


def _holds_only_json(schema: Any) -> bool:
    """Whether every value of a table of this schema is JSON's (text, numbers, booleans,
    lists, objects): then no row needs to be checked for one that is not (a timestamp)."""
    import pyarrow.types as kinds

    return all(_json_type(field.type, kinds) for field in schema)


def _json_type(kind: Any, kinds: Any) -> bool:
    if kinds.is_struct(kind):
        return all(_json_type(kind.field(i).type, kinds) for i in range(kind.num_fields))
    if kinds.is_list(kind) or kinds.is_large_list(kind) or kinds.is_fixed_size_list(kind):
        return _json_type(kind.value_type, kinds)
    return any(getattr(kinds, test)(kind) for test in _JSON_LEAVES)


def _batches(
    file: str, opened: Any, row_groups: list[int] | None
) -> Iterator[list[dict[str, Any]]]:
    """The file's rows as Python values, a batch at a time; a corrupt page is a
    ``DatasetError`` naming the file, wherever it is found."""
    import pyarrow

    try:
        for batch in opened.iter_batches(batch_size=_BATCH_ROWS, row_groups=row_groups):
            yield batch.to_pylist()
    except (pyarrow.ArrowException, OSError) as exc:
        raise DatasetError(f"cannot read it as Parquet: {exc}", file=file) from exc


def _opened(file: str) -> Any:
    """The file's ``pyarrow.parquet.ParquetFile`` (its footer read, its rows not yet)."""
    try:
        import pyarrow
        import pyarrow.parquet as parquet
    except ImportError as exc:
        raise MissingDependency("pyarrow", "parquet", purpose="to read Parquet files") from exc
    try:
        return parquet.ParquetFile(file)
    except (pyarrow.ArrowException, OSError) as exc:
        raise DatasetError(f"cannot read it as Parquet: {exc}", file=file) from exc

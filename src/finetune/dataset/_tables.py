"""Rows of tables (a pandas DataFrame, a Hugging Face dataset) as JSON records hold them:
pandas' marks of a missing cell, numpy's arrays and scalars; what ``from_hf`` says of a
table that is not one split."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["empty_cell", "plain_cell", "refuse_what_is_not_one_split", "rows_of_one_split"]


def empty_cell(value: Any) -> bool:
    """pandas' marks of a missing value; a list, a dict or a string is a value."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NAType", "NaTType")


def plain_cell(value: Any) -> Any:
    """A cell as JSON holds it: numpy's arrays (how pandas reads a list column from Parquet)
    as lists and numpy's scalars as Python's, at any depth."""
    if isinstance(value, Mapping):
        return {key: plain_cell(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_cell(item) for item in value]
    if type(value).__module__ == "numpy" and callable(getattr(value, "tolist", None)):
        return plain_cell(value.tolist())
    return value


def refuse_what_is_not_one_split(value: Any) -> None:
    """``from_hf`` reads one split of a ``datasets`` dataset: a hub name, a dict of columns or
    of splits, or something that is no collection at all is a ``TypeError`` saying what to do."""
    if isinstance(value, (str, os.PathLike)):
        raise TypeError(f"from_hf takes a datasets.Dataset, not {_name_or_path(value)}")
    columns = isinstance(value, Mapping) and not type(value).__name__.endswith("Dict")
    if columns or not isinstance(value, Iterable):
        hint = ": a dict of columns is Dataset.from_pandas(pandas.DataFrame(it))" if columns else ""
        raise TypeError(f"from_hf takes a datasets.Dataset, not {type(value).__name__}{hint}")
    if isinstance(value, Mapping):  # a DatasetDict: its iteration gives split names
        raise TypeError(f"from_hf takes one split, not a DatasetDict{one_split(value)}")


def one_split(splits: Mapping[Any, Any]) -> str:
    """`` of splits (train, test): Dataset.from_hf(dataset['train'])``: a ``DatasetDict``'s
    splits, and the call that reads the first."""
    names = ", ".join(map(str, splits)) or "none"
    first = next(iter(splits), "train")
    return f" of splits ({names}): Dataset.from_hf(dataset[{first!r}])"


def _name_or_path(value: str | os.PathLike[str]) -> str:
    """A hub name or a path given for a dataset, and the call that loads it: a folder that
    ``save_to_disk`` wrote is loaded from disk, a name (or a data file) by ``load_dataset``."""
    folder, shown = Path(value), str(value)
    if (folder / "dataset_dict.json").is_file():  # a DatasetDict's splits
        return (
            f"the folder {shown!r}: load one split of it first, "
            f"datasets.load_from_disk({shown!r})[{_first_split(folder)!r}]"
        )
    if (folder / "state.json").is_file() and (folder / "dataset_info.json").is_file():
        return f"the folder {shown!r}: load it first, datasets.load_from_disk({shown!r})"
    return (
        f"the name {shown!r}: load one split first, datasets.load_dataset({shown!r}, split='train')"
    )


def _first_split(folder: Path) -> str:
    """The first split a ``DatasetDict.save_to_disk`` folder lists (``train`` if unread)."""
    try:
        splits = json.loads((folder / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
        return str(splits[0])
    except (OSError, ValueError, LookupError, TypeError):
        return "train"


def rows_of_one_split(hf_dataset: Any) -> Any:
    """One split of a ``datasets`` dataset (anything else refused, as
    ``refuse_what_is_not_one_split`` says), its rows as Python's dicts and lists: one set to
    another format (``with_format("pandas")`` gives each row as a frame, ``"numpy"`` as
    arrays) is read in Python's, keeping the columns that format kept."""
    refuse_what_is_not_one_split(hf_dataset)
    shown = getattr(hf_dataset, "format", None)
    if not isinstance(shown, Mapping):  # an IterableDataset, which keeps no such record
        as_python = getattr(hf_dataset, "with_format", None)
        return as_python(None) if callable(as_python) else hf_dataset
    if shown.get("type") is None:
        return hf_dataset
    columns, every = shown.get("columns"), shown.get("output_all_columns", False)
    return hf_dataset.with_format(None, columns=columns, output_all_columns=every)

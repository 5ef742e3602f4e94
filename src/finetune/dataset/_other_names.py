"""Hugging Face ``datasets``' and pandas' names for what a Dataset does, for the
``AttributeError`` that meets one of them (``ds.train_test_split``, ``ds.shuffle``,
``ds.head``)."""

from __future__ import annotations

__all__ = ["missing_attribute"]

_COLUMNS = "ds[0] shows an example and ds.kind its kind; ds.to_pandas().columns are the columns"
_RENAMES = "ds.select_columns({'old': 'new', 'kept': 'kept'}) keeps columns under new names"
# each name, and what does it here
_DATASETS_NAMES = {
    "train_test_split": "ds.split(test_size=0.1, seed=0) gives (train, test), a tuple",
    "shuffle": (
        "a Dataset keeps its file's order, so that an error names its line; training "
        "shuffles the examples, and ds.sample(n, seed=0) draws n of them"
    ),
    "select": "ds[100:200] is a view of those rows, ds[i] one example",
    "map": (
        "ft.Dataset.from_records([change(e) for e in ds]) makes one of the changed "
        "examples (or dicts)"
    ),
    "remove_columns": "ds.select_columns([...]) keeps only the columns it names",
    "rename_column": _RENAMES,
    "rename_columns": _RENAMES,
    "column_names": _COLUMNS,
    "features": _COLUMNS,
    "num_rows": "len(ds)",
    "to_list": "list(ds) gives the typed examples, ds.to_pandas() a table",
    "to_json": "ds.to_jsonl(path) writes it",
    "save_to_disk": "ds.to_jsonl(path) writes it",
}
_PANDAS_NAMES = {
    "head": "ds[:5] is a view of the first rows, ds[0] one example",
    "tail": "ds[-5:] is a view of the last rows",
    "iloc": "ds[i] is one example, ds[100:200] a view of those rows",
    "to_dict": "[e.model_dump(exclude_none=True) for e in ds] gives the examples as dicts",
    "to_csv": "ds.to_jsonl(path) writes it (ds.to_pandas() gives a DataFrame)",
    "drop_duplicates": (
        "a Dataset keeps every row; tuner.validate(ds) names each duplicate by its line "
        "(duplicate_example)"
    ),
}


def missing_attribute(owner: object, name: str) -> AttributeError:
    """Python's error for ``owner.name``, told what does it here where ``name`` is one of
    ``datasets``' (Python still suggests the attribute a misspelt name meant)."""
    meant, library = _DATASETS_NAMES.get(name), "Hugging Face datasets'"
    if meant is None:
        meant, library = _PANDAS_NAMES.get(name), "pandas'"
    told = f": that is {library} name; here, {meant}" if meant else ""
    said = f"{type(owner).__name__!r} object has no attribute {name!r}{told}"
    return AttributeError(said, name=name, obj=owner)

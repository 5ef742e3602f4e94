"""Other libraries' names for what our objects do (Hugging Face ``datasets``' and pandas' for
a Dataset, the providers' SDKs' and TRL's for a Tuner and a job), for the ``AttributeError``
that meets one of them (``ds.train_test_split``, ``tuner.train``, ``job.fine_tuned_model``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

__all__ = ["DATASET_NAMES", "JOB_NAMES", "TUNER_NAMES", "OtherNames", "missing_attribute"]

_COLUMNS = "ds[0] shows an example and ds.kind its kind; ds.to_pandas().columns are the columns"
_RENAMES = "ds.select_columns({'old': 'new', 'kept': 'kept'}) keeps columns under new names"
# each name, and what does it here
_DATASETS = {
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
_PANDAS = {
    "head": "ds[:5] is a view of the first rows, ds[0] one example",
    "tail": "ds[-5:] is a view of the last rows",
    "iloc": "ds[i] is one example, ds[100:200] a view of those rows",
    "to_dict": "[e.model_dump(exclude_none=True) for e in ds] gives the examples as dicts",
    "to_csv": "ds.to_jsonl(path) writes it (ds.to_pandas() gives a DataFrame)",
    "drop_duplicates": "ds.deduplicated() is a view without the repeats of an earlier example",
}
DATASET_NAMES = {
    **{name: ("Hugging Face datasets'", meant) for name, meant in _DATASETS.items()},
    **{name: ("pandas'", meant) for name, meant in _PANDAS.items()},
}


def _told(meanings: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, str]]:
    """Each name of ``meanings``' values, with the text that says what does it here."""
    return {name: ("", meant) for meant, names in meanings.items() for name in names}


# the providers' SDKs' names (OpenAI's, Together's, Mistral's) and TRL's, as users type them
TUNER_NAMES = _told(
    {
        "tuner.fit(train, validation=...) validates, uploads and starts a job": (
            "train",
            "finetune",
            "fine_tune",
            "create",
            "create_job",
            "start",
            "submit",
        ),
        "tuner.job(job_id) re-attaches to a job, from any process": (
            "retrieve",
            "get",
            "get_job",
        ),
        "tuner.jobs() lists this machine's jobs, tuner.remote_jobs() the provider's": (
            "list",
            "list_jobs",
        ),
        "tuner.job(job_id).cancel() cancels a job": ("cancel",),
        "ft.evaluate(dataset, {'tuned': job.model, 'base': tuner.base_model}, metrics=[...]) "
        "compares the models": ("evaluate",),
    }
)
JOB_NAMES = _told(
    {
        "job.wait() waits for it to end, then job.model is the tuned model (a ModelRef)": (
            "result",
            "fine_tuned_model",
            "output_model",
        ),
        "job.refresh() fetches its state; job.status is the status as last seen": (
            "retrieve",
            "get",
            "state",
        ),
        "job.events() is its log": ("logs", "list_events"),
        "job.cancel() cancels it": ("stop", "kill", "abort"),
        "job.checkpoints() lists the checkpoints it saved": ("list_checkpoints",),
    }
)


def missing_attribute(
    owner: object, name: str, names: dict[str, tuple[str, str]]
) -> AttributeError:
    """Python's error for ``owner.name``, told what does it here where ``name`` is one of
    another library's ``names`` (Python still suggests the attribute a misspelt name meant)."""
    whose, meant = names.get(name, ("", ""))
    told = f": that is {whose} name; here, {meant}" if whose else f": here, {meant}"
    said = f"{type(owner).__name__!r} object has no attribute {name!r}{told if meant else ''}"
    return AttributeError(said, name=name, obj=owner)


class OtherNames:
    """A class whose missing attributes are told what does it here when another library
    names them so (``other_names``)."""

    other_names: ClassVar[dict[str, tuple[str, str]]] = {}
    """Another library's names for what this class does: each with whose name it is (or
    ``""``) and what does it here."""

    if not TYPE_CHECKING:  # to a type checker, an object has only the attributes it defines

        def __getattr__(self, name: str) -> Any:
            raise missing_attribute(self, name, self.other_names)

"""Datasets: typed examples streamed from JSONL, records, pandas or Hugging Face datasets."""

from finetune._namespace import PublicNames, public_names
from finetune.dataset._atomic import atomic_folder, atomic_write
from finetune.dataset._dataset import (
    Dataset,
    canonical_json,
    require_dataset,
    write_jsonl,
)
from finetune.dataset._formats import (
    IGNORED_KEYS,
    KNOWN_KEYS,
    MESSAGE_KEYS,
    OutputFormat,
    detect_kind,
    is_empty,
    parse_example,
    to_format,
)
from finetune.dataset._reader import RawRecord, ReadProblem, iter_jsonl

__all__ = [
    "IGNORED_KEYS",
    "KNOWN_KEYS",
    "MESSAGE_KEYS",
    "Dataset",
    "OutputFormat",
    "RawRecord",
    "ReadProblem",
    "atomic_folder",
    "atomic_write",
    "canonical_json",
    "detect_kind",
    "is_empty",
    "iter_jsonl",
    "parse_example",
    "require_dataset",
    "to_format",
    "write_jsonl",
]
__dir__: PublicNames = public_names(__name__)

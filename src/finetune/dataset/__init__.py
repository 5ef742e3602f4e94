"""Datasets: typed examples streamed from JSONL, records, pandas or Hugging Face datasets."""

from finetune.dataset._dataset import Dataset, atomic_write, canonical_json
from finetune.dataset._formats import OutputFormat, detect_kind, parse_example, to_format
from finetune.dataset._reader import RawRecord, ReadProblem, iter_jsonl

__all__ = [
    "Dataset",
    "OutputFormat",
    "RawRecord",
    "ReadProblem",
    "atomic_write",
    "canonical_json",
    "detect_kind",
    "iter_jsonl",
    "parse_example",
    "to_format",
]

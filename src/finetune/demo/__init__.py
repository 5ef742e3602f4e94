"""The offline demo: a tiny base model built on the spot and a bundled sample dataset."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from finetune._namespace import PublicNames, public_names
from finetune.demo._tiny import CHAT_TEMPLATE, build_tiny_base, generic_text, train_tokenizer

__all__ = [
    "CHAT_TEMPLATE",
    "build_tiny_base",
    "generic_text",
    "sample_dataset_path",
    "train_tokenizer",
]
__dir__: PublicNames = public_names(__name__)


def sample_dataset_path() -> Path:
    """The bundled customer-service dataset (400 chat examples, JSONL)."""
    return Path(str(files("finetune.demo") / "data" / "support.jsonl"))

"""The one folder for what finetune caches (prediction cache, fit locks, prepared encodings)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_DIR_ENV", "cache_dir"]

CACHE_DIR_ENV = "FINETUNE_CACHE_DIR"


def cache_dir() -> Path:
    """``$FINETUNE_CACHE_DIR``, else the platform's user cache folder for finetune."""
    chosen = os.environ.get(CACHE_DIR_ENV)
    if chosen:
        return Path(chosen).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("finetune"))

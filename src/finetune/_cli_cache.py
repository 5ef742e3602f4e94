"""``finetune cache``: where the prediction cache is, what it holds, and pruning it."""

from __future__ import annotations

import argparse
from pathlib import Path

from finetune._errors import StorageError
from finetune._paths import file_in_the_way, folder_given
from finetune._words import counted, size
from finetune.evaluation import PredictionCache
from finetune.evaluation._cache import default_cache_path

__all__ = ["cmd_cache"]


def cmd_cache(args: argparse.Namespace) -> int:
    """Print the cache's file, predictions and size; ``--prune-days N`` removes those stored
    more than N days ago, ``--clear`` every one. A cache not made yet is not made here."""
    path = Path(args.path).expanduser() if args.path else default_cache_path()
    if why := folder_given(path, "the prediction cache", "predictions.sqlite3", "--path FILE"):
        raise StorageError(why)
    if blocking := file_in_the_way(path):
        raise StorageError(
            f"no prediction cache can be at {path}: {blocking} is a file, not a folder"
        )
    if not path.is_file():
        print(f"no prediction cache at {path} yet (ft.evaluate makes it)")
        return 0
    cache = PredictionCache(path)
    try:
        if args.clear or args.prune_days is not None:
            removed = cache.prune(older_than_days=None if args.clear else args.prune_days)
            since = "" if args.clear else f" stored more than {args.prune_days:g} days ago"
            print(f"removed {counted(removed, 'prediction')}{since}")
        print(f"{path}: {counted(len(cache), 'prediction')}, {size(_bytes(path))}")
    finally:
        cache.close()
    return 0


def _bytes(path: Path) -> int:
    """The cache's size on disk, its write-ahead log included."""
    files = (path, path.with_name(path.name + "-wal"))
    return sum(file.stat().st_size for file in files if file.is_file())

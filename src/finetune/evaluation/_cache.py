"""A prediction cache on disk (SQLite), keyed by (predictor, prompt, parameters).

Each prediction is written as soon as it arrives, so an interrupted run keeps what it got and
a re-run asks the model only for what is missing. Writes do not wait for the disk (WAL,
``synchronous=NORMAL``): a killed process loses none; a power cut may lose the last few,
which a re-run asks again (a cache, not a record). An answer cut at its length limit is kept
with that limit (in a table of its own, which older versions sharing the file ignore).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from finetune._errors import StorageError
from finetune._numbers import is_real
from finetune._paths import cache_dir, folder_given, unusable_database
from finetune.evaluation._predictors import TruncatedReply
from finetune.evaluation._prompts import Messages

__all__ = ["PredictionCache", "default_cache_path", "open_cache"]

_HOW = "cache='file.sqlite3', or a folder as FINETUNE_CACHE_DIR"
OTHER_CACHE = " (or pass cache='other.sqlite3'), or pass cache=False"  # Python's ways alone

log = logging.getLogger("finetune")


def default_cache_path() -> Path:
    """``predictions.sqlite3`` in ``$FINETUNE_CACHE_DIR``, else in the user cache dir."""
    return cache_dir() / "predictions.sqlite3"


class PredictionCache:
    """Thread-safe get/put of predictions; a file it cannot use is a ``StorageError`` naming
    it."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path: Path = Path(path).expanduser() if path is not None else default_cache_path()
        self._lock = threading.Lock()
        self._unusable = False  # a write or read of a run failed: it uses the file no more
        if why := folder_given(self.path, "the prediction cache", "predictions.sqlite3", _HOW):
            raise StorageError(why)
        with self._failing():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # each write: no wait for the disk
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS predictions "
                "(key TEXT PRIMARY KEY, prediction TEXT NOT NULL, created REAL NOT NULL)"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS truncated (key TEXT PRIMARY KEY, cut_at TEXT NOT NULL)"
            )
            self._db.commit()

    def __repr__(self) -> str:
        return f"PredictionCache({str(self.path)!r})"

    @contextmanager
    def _failing(self) -> Iterator[None]:
        try:
            yield
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(
                f"the prediction cache {self.path} cannot be used "
                f"{unusable_database(exc, self.path)}; or set FINETUNE_CACHE_DIR to use "
                f"another{OTHER_CACHE}"
            ) from None

    @staticmethod
    def key(predictor: str, messages: Messages, tools: list[Any] | None = None) -> str:
        """The cache key of one request (and of the tools it offers, where it offers some)."""
        request = [predictor, messages, tools] if tools else [predictor, messages]
        payload = json.dumps(request, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()

    def get(self, key: str) -> str | None:
        """The cached prediction, if any (a ``TruncatedReply`` where it was cut)."""
        with self._lock, self._failing():
            return self._read(key)

    def _read(self, key: str) -> str | None:
        """``get``'s work; the caller holds the lock."""
        row = self._db.execute(
            "SELECT prediction, cut_at FROM predictions LEFT JOIN truncated USING (key) "
            "WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        return str(row[0]) if row[1] is None else TruncatedReply(row[0], row[1])

    def put(self, key: str, prediction: str) -> None:
        """Store a prediction, and whether it was cut (committed at once)."""
        with self._lock, self._failing():
            self._write(key, prediction)

    def _write(self, key: str, prediction: str) -> None:
        """``put``'s work; the caller holds the lock."""
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?)",
                (key, str(prediction), time.time()),
            )
            if isinstance(prediction, TruncatedReply):
                self._db.execute(
                    "INSERT OR REPLACE INTO truncated VALUES (?, ?)", (key, prediction.limit)
                )
            else:
                self._db.execute("DELETE FROM truncated WHERE key = ?", (key,))

    def keep(self, key: str, prediction: str) -> None:
        """``put``, for a run that goes on whatever befalls the file: the first write (or
        ``recall``) that fails (a full disk, a lock held past the timeout, the file written
        over) is a warning, and the cache is not used again; the run keeps its answers, and a
        re-run asks again for those not kept."""
        if self._unusable:
            return
        try:
            with self._lock:
                self._write(key, prediction)
        except (OSError, sqlite3.Error) as error:
            self._give_up("keep an answer", error)

    def recall(self, key: str) -> str | None:
        """``get``, for a run that goes on: once the file fails (here or in ``keep``), every
        answer is a miss, asked of the model."""
        if self._unusable:
            return None
        try:
            with self._lock:
                return self._read(key)
        except (OSError, sqlite3.Error) as error:
            self._give_up("read an answer", error)
            return None

    def _give_up(self, doing: str, error: BaseException) -> None:
        self._unusable = True
        log.warning(
            "the prediction cache %s could not %s (%s: %s); this run goes on without it, and "
            "a re-run asks again for the answers it did not keep",
            self.path,
            doing,
            type(error).__name__,
            error,
        )

    def __len__(self) -> int:
        with self._lock, self._failing():
            (count,) = self._db.execute("SELECT count(*) FROM predictions").fetchone()
        return int(count)

    def prune(self, *, older_than_days: float | None = None) -> int:
        """Remove the predictions stored more than ``older_than_days`` days ago (every one
        when ``None``), and give the file's freed space back to the disk; how many went."""
        if older_than_days is not None and not (is_real(older_than_days) and older_than_days >= 0):
            raise ValueError(f"older_than_days is 0 or more days, not {older_than_days!r}")
        cutoff = time.time() - older_than_days * 86400 if older_than_days is not None else None
        with self._lock, self._failing():
            with self._db:
                removed = self._db.execute(
                    "DELETE FROM predictions WHERE ? IS NULL OR created < ?", (cutoff, cutoff)
                ).rowcount
                self._db.execute(
                    "DELETE FROM truncated WHERE key NOT IN (SELECT key FROM predictions)"
                )
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the log gives its pages back
        return int(removed)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


def open_cache(cache: bool | str | os.PathLike[str] | PredictionCache) -> PredictionCache | None:
    """The cache ``evaluate(cache=...)`` names: the default file (``True``), none
    (``False``), the file at a path, or the ``PredictionCache`` given."""
    if cache is False:
        return None
    if isinstance(cache, PredictionCache):
        return cache
    if cache is True:
        return PredictionCache()
    if not isinstance(cache, str | os.PathLike):
        raise TypeError(
            f"cache is True, False, a file's path or a PredictionCache, not {cache!r:.60}"
        )
    return PredictionCache(cache)

"""SQLite job registry: which data, settings and idempotency key made which job and model.

Rows are kept per backend *and* endpoint identity (base URL, organisation, a digest of the
key; never the key), so a hint remembered for one account or server is never tried on another.
The file opens on first use, and every problem with it is a ``RegistryError`` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from finetune._errors import JobNotFound, RegistryError
from finetune._lock import FileLock
from finetune._namespace import PublicNames, public_names
from finetune._numbers import is_whole
from finetune._paths import CACHE_DIR_ENV, cache_dir, folder_given, unusable_database
from finetune._secret_fields import without_credentials
from finetune.types import Job

__all__ = ["JobRecord", "JobRegistry", "check_limit", "default_registry_path", "key_lock"]
__dir__: PublicNames = public_names(__name__)

ENV_PATH = "FINETUNE_REGISTRY"
_HOW = f"registry=, or {ENV_PATH}"
NO_REGISTRY = ", or pass registry=False to the Tuner"  # Python's way alone
_COLUMNS = (
    "backend, job_id, base_model, status, fine_tuned_model, idempotency_key, train_fingerprint, "
    "validation_fingerprint, hyperparameters, created_at, updated_at, endpoint, method"
)
# the columns after ``backend`` (and ``endpoint``, since the third migration)
_JOB_FIELDS = """job_id TEXT NOT NULL,
        base_model TEXT NOT NULL,
        status TEXT NOT NULL,
        fine_tuned_model TEXT,
        idempotency_key TEXT,
        train_fingerprint TEXT,
        validation_fingerprint TEXT,
        hyperparameters TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL"""
_MIGRATIONS = [
    f"""
    CREATE TABLE jobs (backend TEXT NOT NULL, {_JOB_FIELDS}, PRIMARY KEY (backend, job_id));
    CREATE INDEX jobs_key ON jobs (backend, idempotency_key);
    CREATE INDEX jobs_model ON jobs (fine_tuned_model);
    """,
    """
    CREATE TABLE pending (
        backend TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        base_model TEXT NOT NULL,
        training_file TEXT,
        created_at TEXT NOT NULL,
        PRIMARY KEY (backend, idempotency_key)
    );
    """,
    f"""
    CREATE TABLE jobs_v3 (
        backend TEXT NOT NULL,
        endpoint TEXT NOT NULL DEFAULT '',
        {_JOB_FIELDS},
        PRIMARY KEY (backend, endpoint, job_id)
    );
    INSERT INTO jobs_v3 (backend, endpoint, job_id, base_model, status, fine_tuned_model,
        idempotency_key, train_fingerprint, validation_fingerprint, hyperparameters,
        created_at, updated_at)
        SELECT backend, '', job_id, base_model, status, fine_tuned_model, idempotency_key,
        train_fingerprint, validation_fingerprint, hyperparameters, created_at, updated_at
        FROM jobs;
    DROP TABLE jobs;
    ALTER TABLE jobs_v3 RENAME TO jobs;
    CREATE INDEX jobs_key ON jobs (backend, endpoint, idempotency_key);
    CREATE INDEX jobs_model ON jobs (fine_tuned_model);
    DROP TABLE pending;
    CREATE TABLE pending (
        backend TEXT NOT NULL,
        endpoint TEXT NOT NULL DEFAULT '',
        idempotency_key TEXT NOT NULL,
        base_model TEXT NOT NULL,
        training_file TEXT,
        created_at TEXT NOT NULL,
        PRIMARY KEY (backend, endpoint, idempotency_key)
    );
    """,
    """
    CREATE TABLE training_rows (train_fingerprint TEXT PRIMARY KEY, digests BLOB NOT NULL);
    """,
    """
    ALTER TABLE training_rows ADD COLUMN kind TEXT;
    """,
    """
    ALTER TABLE jobs ADD COLUMN method TEXT;
    """,
]


def default_registry_path() -> Path:
    """``$FINETUNE_REGISTRY``, else ``jobs.sqlite3`` in the platform's user data folder."""
    override = os.environ.get(ENV_PATH)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("finetune", appauthor=False)) / "jobs.sqlite3"


def key_lock(registry: JobRegistry | None, backend: str, endpoint: str, key: str) -> FileLock:
    """The cross-process lock that lets one process at a time create the job of ``key``:
    beside the registry, or in the cache folder when there is none."""
    digest = hashlib.sha256(f"{backend}\0{endpoint}\0{key}".encode()).hexdigest()[:32]
    if registry is not None:
        folder, elsewhere = registry.locks_dir, f"point {ENV_PATH} at a file in another folder"
    else:
        folder, elsewhere = cache_dir() / "locks", f"point {CACHE_DIR_ENV} at a writable folder"
    return FileLock(folder / f"{digest}.lock", elsewhere=elsewhere)


def seen_elsewhere(
    error: JobNotFound, registry: JobRegistry | None, endpoint: str, job_id: str
) -> JobNotFound:
    """``error``, saying where the registry saw the job when that was another endpoint (an
    account, a server, a jobs folder) than ``endpoint``, the one that does not know it."""
    try:
        seen = registry.endpoints_of(error.backend or "", job_id) if registry else []
    except RegistryError:
        return error  # the job's absence is the news, not the registry's state
    others = [other for other in seen if other != endpoint and not _gone(error.backend, other)]
    if not others:
        return error
    from finetune.backends.hf._jobdir import jobs_folder_of, reattaching_tuner

    folder = jobs_folder_of(others[0])
    how = "re-attach through a Tuner made for that one"
    if folder is not None:  # a local job: the Tuner to make is known
        how = f"re-attach with {reattaching_tuner(folder)}.job({job_id!r})"
    return error.with_note(
        f"; this machine's job registry has it from {_in_words(others[0])} (another endpoint, "
        f"account or jobs folder): {how}"
    )


def _gone(backend: str | None, endpoint: str) -> bool:
    """Whether ``endpoint`` is a fake store of another process (or one reset): no Tuner
    reaches its jobs, so naming it as where to re-attach would mislead."""
    if backend != "fake":
        return False
    from finetune.testing import _store_is_gone

    return _store_is_gone(endpoint)


def _in_words(endpoint: str) -> str:
    """An endpoint as a reader knows it: a jobs folder, or a URL and whose key (by digest)."""
    from finetune.backends.hf._jobdir import jobs_folder_of

    folder = jobs_folder_of(endpoint)  # the default one (endpoint "hf") too
    if folder is not None:
        return f"the jobs folder {folder}"
    parts = endpoint.split("|")
    if len(parts) > 1 and re.fullmatch(r"[0-9a-f]{12}", parts[-1]):  # account_identity's
        where = ", ".join(part for part in parts[:-1] if part) or "its default endpoint"
        return f"{where}, with the key whose digest is {parts[-1]}"
    return repr(endpoint)


@dataclass(frozen=True)
class JobRecord:
    """One row of the registry: a job and its lineage."""

    backend: str
    job_id: str
    base_model: str
    status: str
    fine_tuned_model: str | None
    idempotency_key: str | None
    train_fingerprint: str | None
    validation_fingerprint: str | None
    hyperparameters: dict[str, Any]
    created_at: str
    updated_at: str
    endpoint: str = ""
    method: str | None = None
    """``sft`` or ``dpo``; ``None`` for a job recorded before the registry kept it."""


def check_limit(limit: int) -> int:
    """How many jobs a listing returns, as a Python ``int`` (a NumPy one binds in no SQLite
    query and no JSON body): a whole number of 1 or more, or an error naming it."""
    if not is_whole(limit):
        raise TypeError(f"limit is how many jobs to list, a whole number, not {limit!r}")
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    return int(limit)


class JobRegistry:
    """A small SQLite database, safe for concurrent writers (WAL, busy timeout).

    Nothing is opened until the first call, so building a Tuner costs no I/O.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        chosen = Path(path).expanduser() if path is not None else default_registry_path()
        self.path: Path = chosen.absolute()  # the same file after a change of directory
        self._lock = threading.Lock()
        self._ready = False

    def __repr__(self) -> str:
        return f"JobRegistry({str(self.path)!r})"

    @property
    def locks_dir(self) -> Path:
        """Where the per-key lock files live (beside the database)."""
        self._refuse_a_folder()
        return self.path.with_name(self.path.name + ".locks")

    def _refuse_a_folder(self) -> None:
        """A folder given as the registry (``registry="."``) named as one, before anything is
        made beside it: SQLite said "unable to open database file", with advice about space."""
        if self._ready:
            return
        if why := folder_given(self.path, "the job registry", "jobs.sqlite3", _HOW):
            raise RegistryError(why)

    def _fail(self, error: Exception) -> RegistryError:
        return RegistryError(
            f"the job registry {self.path} cannot be used {unusable_database(error, self.path)}"
            f"; or set {ENV_PATH} to another path{NO_REGISTRY}"
        )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self._refuse_a_folder()
        try:
            if not self._ready:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise self._fail(exc) from None
        try:
            db.execute("PRAGMA busy_timeout = 30000")
            if not self._ready:
                _when_unlocked(lambda: self._prepare(db))
                self._ready = True
            yield db
        except (OSError, sqlite3.Error) as exc:
            raise self._fail(exc) from None
        finally:
            db.close()

    def _prepare(self, db: sqlite3.Connection) -> None:
        """WAL mode and the current schema, each changed only when it is not so already."""
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode = WAL")
        if db.execute("PRAGMA user_version").fetchone()[0] < len(_MIGRATIONS):
            self._migrate(db)

    def _migrate(self, db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # SQLite rolls back itself on a full disk; a second
                db.execute("ROLLBACK")  # ROLLBACK would hide that reason behind its own
            raise

    def record(
        self,
        job: Job,
        *,
        endpoint: str = "",
        idempotency_key: str | None = None,
        train_fingerprint: str | None = None,
        validation_fingerprint: str | None = None,
    ) -> None:
        """Insert or update a job; lineage fields given once are kept on later updates, and
        the hyperparameters are the provider's latest report (``"auto"`` at creation becomes
        the values it chose once the job runs)."""
        now = _now()
        params = without_credentials(job.hyperparameters.model_dump(mode="json", exclude_none=True))
        if not params.get("extra"):
            params.pop("extra", None)
        with self._lock, self._connect() as db:
            db.execute(
                f"""
                INSERT INTO jobs ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
                ON CONFLICT (backend, endpoint, job_id) DO UPDATE SET
                    status = excluded.status,
                    fine_tuned_model = COALESCE(excluded.fine_tuned_model, fine_tuned_model),
                    idempotency_key = COALESCE(excluded.idempotency_key, idempotency_key),
                    train_fingerprint = COALESCE(excluded.train_fingerprint, train_fingerprint),
                    validation_fingerprint =
                        COALESCE(excluded.validation_fingerprint, validation_fingerprint),
                    hyperparameters = CASE excluded.hyperparameters
                        WHEN '{{}}' THEN hyperparameters ELSE excluded.hyperparameters END,
                    updated_at = excluded.updated_at,
                    method = COALESCE(method, excluded.method)
                """,
                (
                    job.backend,
                    job.id,
                    job.base_model,
                    job.status.value,
                    job.fine_tuned_model,
                    idempotency_key,
                    train_fingerprint,
                    validation_fingerprint,
                    json.dumps(params, sort_keys=True),
                    (job.created_at.isoformat() if job.created_at else now),
                    now,
                    endpoint,
                    job.method,
                ),
            )
            if idempotency_key:
                db.execute(
                    "DELETE FROM pending WHERE backend = ? AND endpoint = ? "
                    "AND idempotency_key = ?",
                    (job.backend, endpoint, idempotency_key),
                )

    def find_by_key(
        self, backend: str, idempotency_key: str, endpoint: str = ""
    ) -> JobRecord | None:
        """The job created under this idempotency key on this endpoint, if recorded."""
        return self._one(
            f"SELECT {_COLUMNS} FROM jobs WHERE backend = ? AND endpoint = ? "
            "AND idempotency_key = ? ORDER BY updated_at DESC",
            (backend, endpoint, idempotency_key),
        )

    def forget(self, backend: str, job_id: str, endpoint: str = "") -> None:
        """Drop a record the provider no longer knows (a stale hint)."""
        with self._lock, self._connect() as db:
            db.execute(
                "DELETE FROM jobs WHERE backend = ? AND endpoint = ? AND job_id = ?",
                (backend, endpoint, job_id),
            )

    def get(self, backend: str, job_id: str, endpoint: str | None = None) -> JobRecord | None:
        """The record of one job (on any endpoint unless one is given)."""
        if endpoint is None:
            return self._one(
                f"SELECT {_COLUMNS} FROM jobs WHERE backend = ? AND job_id = ? "
                "ORDER BY updated_at DESC",
                (backend, job_id),
            )
        return self._one(
            f"SELECT {_COLUMNS} FROM jobs WHERE backend = ? AND endpoint = ? AND job_id = ?",
            (backend, endpoint, job_id),
        )

    def has_training_rows(self, train_fingerprint: str) -> bool:
        """Whether the digests of this training set's rows, and their kind, are kept."""
        with self._connect() as db:
            row = db.execute(
                "SELECT 1 FROM training_rows WHERE train_fingerprint = ? AND kind IS NOT NULL",
                (train_fingerprint,),
            ).fetchone()
        return row is not None

    def record_training_rows(
        self, train_fingerprint: str, digests: bytes, kind: str | None = None
    ) -> None:
        """Keep a digest of each row of a training set (``turns_digest``: 8 bytes a row, never
        the text), so evaluating a model trained on it can say which evaluated rows it saw,
        and the rows' ``kind`` (``chat``, ``completion``, ``preference``), so it is asked as
        it was trained (a set kept before kinds were is given its kind)."""
        with self._lock, self._connect() as db:
            db.execute(
                "INSERT INTO training_rows (train_fingerprint, digests, kind) VALUES (?, ?, ?) "
                "ON CONFLICT (train_fingerprint) DO UPDATE "
                "SET kind = COALESCE(training_rows.kind, excluded.kind)",
                (train_fingerprint, digests, kind),
            )

    def training_rows(self, backend: str, job_id: str) -> bytes | None:
        """The row digests of the training set job ``job_id`` was created with, if kept."""
        kept = self._of_training_set("digests", backend, job_id)
        return None if kept is None else bytes(kept)

    def training_kind(self, backend: str, job_id: str) -> str | None:
        """The kind of the rows job ``job_id`` was trained on, if kept."""
        kind = self._of_training_set("kind", backend, job_id)
        return None if kind is None else str(kind)

    def _of_training_set(
        self, column: Literal["digests", "kind"], backend: str, job_id: str
    ) -> Any:
        """A ``training_rows`` column of the set job ``job_id`` was created with, if kept."""
        with self._connect() as db:
            row = db.execute(
                f"SELECT {column} FROM jobs JOIN training_rows USING (train_fingerprint) "
                "WHERE backend = ? AND job_id = ? ORDER BY updated_at DESC",
                (backend, job_id),
            ).fetchone()
        return None if row is None else row[0]

    def backends_of(self, job_id: str) -> list[str]:
        """The backends that recorded a job with this id (one, unless ids collide)."""
        return self._texts(
            "SELECT DISTINCT backend FROM jobs WHERE job_id = ? ORDER BY backend", (job_id,)
        )

    def endpoints_of(self, backend: str, job_id: str) -> list[str]:
        """The endpoints (accounts; for ``hf``, jobs folders) a job is recorded from, the
        latest first."""
        return self._texts(
            "SELECT endpoint FROM jobs WHERE backend = ? AND job_id = ? ORDER BY updated_at DESC",
            (backend, job_id),
        )

    def _texts(self, query: str, args: tuple[Any, ...]) -> list[str]:
        """The first column of every row ``query`` selects, as text."""
        with self._connect() as db:
            return [str(row[0]) for row in db.execute(query, args).fetchall()]

    def lineage(self, fine_tuned_model: str) -> JobRecord | None:
        """Which job (and so which dataset fingerprints) produced this model; a local model
        is found by its folder however the path is written (relative, ``~``, a final ``/``),
        and a model exported from a local job (a GGUF file, a merged folder) by the job its
        export names."""
        query = f"SELECT {_COLUMNS} FROM jobs WHERE fine_tuned_model = ? ORDER BY updated_at DESC"
        found = self._one(query, (fine_tuned_model,))
        model = Path(fine_tuned_model).expanduser()
        if found is not None or not model.exists():
            return found
        spelled = {str(model.absolute()), str(model.resolve())} - {fine_tuned_model}
        found = next(filter(None, (self._one(query, (path,)) for path in sorted(spelled))), None)
        if found is not None:
            return found
        from finetune.export._gguf import job_behind  # the export package only when asked

        exported = job_behind(model)
        return self.get("hf", exported) if exported else None

    def list(self, *, backend: str | None = None, limit: int = 50) -> list[JobRecord]:
        """Recorded jobs, newest first, optionally for one backend."""
        limit = check_limit(limit)
        query = f"SELECT {_COLUMNS} FROM jobs"
        args: tuple[Any, ...] = ()
        if backend:
            query += " WHERE backend = ?"
            args = (backend,)
        query += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        with self._connect() as db:
            return [_row(r) for r in db.execute(query, (*args, limit)).fetchall()]

    def mark_pending(
        self, backend: str, idempotency_key: str, base_model: str, file: str, endpoint: str = ""
    ) -> None:
        """Note a create about to be sent, so a crash before the answer is visible later."""
        with self._lock, self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO pending "
                "(backend, endpoint, idempotency_key, base_model, training_file, created_at) "
                "VALUES (?,?,?,?,?,?)",
                (backend, endpoint, idempotency_key, base_model, file, _now()),
            )

    def pending(
        self, backend: str, idempotency_key: str, endpoint: str = ""
    ) -> dict[str, str] | None:
        """A create sent under this key whose job was never recorded (a crash in between)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT base_model, training_file, created_at FROM pending "
                "WHERE backend = ? AND endpoint = ? AND idempotency_key = ?",
                (backend, endpoint, idempotency_key),
            ).fetchone()
        if row is None:
            return None
        return {"base_model": row[0], "training_file": row[1], "created_at": row[2]}

    def _one(self, query: str, args: tuple[Any, ...]) -> JobRecord | None:
        with self._connect() as db:
            row = db.execute(query, args).fetchone()
        return _row(row) if row else None


def _when_unlocked(action: Callable[[], None], patience: float = 30.0) -> None:
    """Run ``action``, again while SQLite says the database is locked. Switching to WAL mode
    and the first look at a new file's schema can be refused at once, without waiting on the
    busy timeout, when several connections open a new registry together."""
    deadline = time.monotonic() + patience
    pause = 0.01
    while True:
        try:
            action()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


def _row(row: tuple[Any, ...]) -> JobRecord:
    values = list(row)
    values[8] = json.loads(values[8] or "{}")
    return JobRecord(*values)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()

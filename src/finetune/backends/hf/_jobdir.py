"""A local job is a directory: resolved config, status (written atomically), events, metrics.

The worker process writes it and the backend reads it, so any process can watch a job by id.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune._errors import InvalidRequestError, StorageError
from finetune._paths import folder_bytes, no_room, why_not_written
from finetune.backends.hf._config import TrainingConfig, resolved_hyperparameters
from finetune.backends.hf._models import MODELS_DIR_ENV
from finetune.dataset import atomic_write, write_jsonl
from finetune.types import Job, JobError, JobStatus

if TYPE_CHECKING:
    from finetune.dataset import Dataset

__all__ = [
    "ENVIRONMENT",
    "JOBS_DIR_ENV",
    "JobDir",
    "default_jobs_dir",
    "how_to_resume",
    "job_config_of",
    "job_id_behind",
    "job_view",
    "jobs_dir_identity",
    "jobs_dir_named_by",
    "jobs_dir_of",
    "jobs_folder_of",
    "local_job_at",
    "log_tail",
    "named_jobs_dir",
    "naming_flags",
    "new_job_id",
    "now_iso",
    "parse_iso",
    "process_tree",
    "reattaching_tuner",
    "refuse_unless_ended",
    "running_workers",
    "storage_errors",
    "trained_on_completions",
    "training_file",
    "trusted_by_its_job",
    "why_not_a_job",
]

JOBS_DIR_ENV = "FINETUNE_HF_JOBS_DIR"
_IN_USE_SECONDS = 3600  # a data copy used this recently may be starting a fit
# the settings of the backend read from the environment when not given
ENVIRONMENT = {"jobs_dir": JOBS_DIR_ENV, "models_dir": MODELS_DIR_ENV}


def default_jobs_dir() -> Path:
    """Where local jobs live: ``$FINETUNE_HF_JOBS_DIR``, else the user data dir."""
    chosen = os.environ.get(JOBS_DIR_ENV)
    return Path(chosen).expanduser() if chosen else _user_jobs_dir()


def _user_jobs_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("finetune")) / "hf-jobs"


def jobs_dir_identity(jobs_dir: Path) -> str:
    """The job registry's endpoint for the jobs in ``jobs_dir``: ``hf`` for the user data
    dir, else ``hf|FOLDER`` (each folder keeps its own idempotency hints, and the registry
    says where a job it lists lives)."""
    return "hf" if jobs_dir == _user_jobs_dir().resolve() else f"hf|{jobs_dir}"


def jobs_folder_of(identity: str) -> Path | None:
    """The jobs folder of a registry endpoint (``hf``: the user data dir's), or ``None``."""
    return _user_jobs_dir() if identity == "hf" else jobs_dir_of(identity)


def jobs_dir_of(identity: str) -> Path | None:
    """The jobs folder a registry endpoint written by ``jobs_dir_identity`` names; ``None``
    for the user data dir's (``hf``) and for any other endpoint."""
    prefix, bar, folder = identity.partition("|")
    return Path(folder) if prefix == "hf" and bar and folder else None


def named_jobs_dir(jobs_dir: Path) -> Path | None:
    """``jobs_dir`` where a job there is found only by naming it (``jobs_dir=``, ``--jobs-dir``),
    ``None`` where it is the folder a Tuner or a command reads by default."""
    default = default_jobs_dir().expanduser().resolve()
    return None if jobs_dir.expanduser().resolve() == default else jobs_dir


def jobs_dir_named_by(identity: str) -> Path | None:
    """The jobs folder of a registry endpoint where it must be named to be found (a
    ``jobs_dir=`` of one's own); ``None`` for the default folder and any other endpoint."""
    folder = jobs_folder_of(identity)
    return None if folder is None else named_jobs_dir(folder)


def reattaching_tuner(jobs_dir: Path) -> str:
    """The call that makes a Tuner reaching the local jobs in ``jobs_dir``."""
    return f"Tuner('hf', jobs_dir={str(jobs_dir)!r})"


def naming_flags(job_dir: Path) -> str:
    """How a command names the local job in ``job_dir``: ``--backend hf``, and ``--jobs-dir``
    where its jobs folder is not the default one."""
    folder = named_jobs_dir(job_dir.parent)
    return "--backend hf" + (f" --jobs-dir {shlex.quote(str(folder))}" if folder else "")


def how_to_resume(job: JobDir) -> str:
    """What resumes a job whose worker was lost: its last checkpoint, or the start."""
    again = f"resume() (finetune resume {job.path.name} {naming_flags(job.path)})"
    checkpoints = job.checkpoints()
    if checkpoints:
        return f"{again} continues from the checkpoint at step {checkpoints[-1][0]}"
    return f"{again} starts it again (no checkpoint was saved)"


@contextlib.contextmanager
def storage_errors(path: Path, action: str) -> Iterator[None]:
    """OSError (read-only folder, full disk) as a ``StorageError`` naming the path."""
    try:
        yield
    except OSError as exc:
        fix = "free disk space there, or pass" if no_room(exc) else "pass"
        raise StorageError(
            f"cannot {action} under {path} ({why_not_written(exc, path)}); {fix} jobs_dir= "
            f"a writable folder with room (or set {JOBS_DIR_ENV})"
        ) from None


def refuse_unless_ended(job: Job, job_dir: Path) -> None:
    """An ``InvalidRequestError`` for a job whose files are still written (running, queued,
    or paused, which resumes from its checkpoints): it is cancelled first."""
    if not job.status.is_terminal:
        paused = job.status is JobStatus.PAUSED
        why = "it resumes from its checkpoints" if paused else "its worker still writes there"
        flags = naming_flags(job_dir)
        raise InvalidRequestError(
            f"job {job.id} is {job.status}: {why}; cancel it first "
            f"(finetune cancel {job.id} {flags}), then delete it",
            backend="hf",
        )


def training_file(jobs_dir: Path, dataset: Dataset, purpose: str) -> Path:
    """The data a job trains on, in TRL's conversational shape under ``jobs_dir/files``,
    named by its fingerprint so a second fit of the same data writes nothing; no more
    readable than the file it came from (a private dataset's copy stays private)."""
    path = jobs_dir / "files" / f"{dataset.fingerprint()[:16]}-{purpose}.jsonl"
    if not path.exists():
        with storage_errors(path.parent, "write the training data"):
            write_jsonl(dataset, path, "hf")
    with contextlib.suppress(OSError):  # its time of last use: a delete leaves it alone a while
        os.utime(path)
    return path


def _remove_unused_data(files: list[Path], jobs_dir: Path) -> int:
    """Remove the training data copies under ``jobs_dir/files`` among ``files`` (a deleted
    job's) that no job of ``jobs_dir`` trains on and no fit used in the last hour (one may be
    starting with it); the bytes freed."""
    jobs_dir = jobs_dir.resolve()
    used = {path for job in jobs_dir.glob("hfjob-*") for path in _data_files(JobDir(job))}
    freed = 0
    for path in files:
        if path.parent != jobs_dir / "files" or path in used or not path.is_file():
            continue
        seen = path.stat()
        if time.time() - seen.st_mtime < _IN_USE_SECONDS:
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            freed += seen.st_size
    return freed


def _data_files(job: JobDir) -> list[Path]:
    """The data files a job's config names (none for a config that cannot be read)."""
    config = job.config_or_none() or {}
    named = (config.get("training_file"), config.get("validation_file"))
    return [Path(name).resolve() for name in named if isinstance(name, str)]


def now_iso() -> str:
    """The current UTC time as ISO 8601."""
    return datetime.now(timezone.utc).isoformat()


def parse_iso(value: str | None) -> datetime | None:
    """A time ``now_iso`` wrote (``None`` where none was)."""
    return datetime.fromisoformat(value) if value else None


def _write_atomically(path: Path, text: str) -> None:
    with atomic_write(path) as handle:
        handle.write(text.encode("utf-8"))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The file's rows. A line still being written (no newline yet) waits for the next read;
    one cut by a crash (a kill or a full disk mid-write) is skipped: it costs that row, not
    the job's whole log."""
    if not path.exists():
        return []
    rows = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.endswith("\n"):
                continue
            with contextlib.suppress(ValueError):
                row = json.loads(line)
                if isinstance(row, dict):
                    rows.append(row)
    return rows


def running_workers(module: str) -> list[Path]:
    """The job folders of the processes running ``python -m module FOLDER`` on this machine,
    whichever jobs folder they are in, whose status this user can read (Linux ``/proc``;
    none elsewhere)."""
    found: set[Path] = set()
    for entry in Path("/proc").glob("[0-9]*/cmdline") if Path("/proc").is_dir() else []:
        try:
            arguments = [os.fsdecode(a) for a in entry.read_bytes().split(b"\0")]
        except OSError:  # a process that ended while we looked, or one /proc hides
            continue
        if module in arguments[:-1]:
            folder = Path(arguments[arguments.index(module) + 1])
            if os.access(folder / "status.json", os.R_OK):  # not another user's job
                found.add(folder)
    return sorted(found)


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (Linux ``/proc``; elsewhere ``pid`` alone). A
    launcher such as torchrun starts its workers in sessions of their own, so signalling the
    launcher's process group does not reach them."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat") if Path("/proc").is_dir() else []:
        try:
            stat = entry.read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry.parent.name))
    found, waiting = [], [pid]
    while waiting:
        current = waiting.pop()
        found.append(current)
        waiting.extend(children.get(current, []))
    return found


class JobDir:
    """The files of one local job."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.config_path = self.path / "config.json"
        self.status_path = self.path / "status.json"
        self.events_path = self.path / "events.jsonl"
        self.metrics_path = self.path / "metrics.jsonl"
        self.log_path = self.path / "worker.log"
        self.worker_path = self.path / "worker.json"  # the running worker's pid and start
        self.control_path = self.path / "control.json"
        self.checkpoints_dir = self.path / "checkpoints"
        self.model_dir = self.path / "model"
        self.merged_dir = self.path / "merged"
        self.unsaved_status: dict[str, Any] = {}  # a status that could not be written

    @property
    def id(self) -> str:
        """The job id: the directory's name."""
        return self.path.name

    def exists(self) -> bool:
        """Whether this directory holds a job."""
        return self.config_path.exists()

    def write_config(self, config: dict[str, Any]) -> None:
        """Write the resolved config (once, at creation)."""
        self.path.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.config_path, json.dumps(config, indent=2, sort_keys=True))

    def read_config(self) -> dict[str, Any]:
        """The resolved config."""
        data: dict[str, Any] = json.loads(self.config_path.read_text(encoding="utf-8"))
        return data

    def config_or_none(self) -> dict[str, Any] | None:
        """The config, or ``None`` where there is none to read (no file, not JSON, not an
        object): a folder that only looks like a job's."""
        try:
            config = self.read_config()
        except (OSError, ValueError):
            return None
        return config if isinstance(config, dict) else None

    def write_worker(self, worker: dict[str, Any]) -> None:
        """Record the running worker (its pid, start time and command) atomically: a status
        read from another process while a resume rewrites it never sees half of it."""
        _write_atomically(self.worker_path, json.dumps(worker))

    def read_worker(self) -> dict[str, Any] | None:
        """The worker record (``None`` before the first launch)."""
        try:
            data: dict[str, Any] = json.loads(self.worker_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return data

    def read_status(self) -> dict[str, Any]:
        """The status record (empty before the first write)."""
        try:
            data: dict[str, Any] = json.loads(self.status_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return data

    def update_status(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into the status record and rewrite it atomically."""
        status = {**self.read_status(), **fields, "updated_at": now_iso()}
        _write_atomically(self.status_path, json.dumps(status, indent=2, sort_keys=True))
        return status

    def append_event(
        self, message: str, *, level: str = "info", data: dict[str, Any] | None = None, **more: Any
    ) -> None:
        """Add a line to the job's log (``data`` and keyword arguments become its data)."""
        data = {**(data or {}), **more}
        row: dict[str, Any] = {"created_at": now_iso(), "level": level, "message": message}
        if data:
            row["data"] = data
        self._append(self.events_path, row)

    def append_metric(self, point: dict[str, Any]) -> None:
        """Add a metric point."""
        self._append(self.metrics_path, point)

    def events(self) -> list[dict[str, Any]]:
        """Every event, oldest first."""
        return _read_jsonl(self.events_path)

    def metrics(self) -> list[dict[str, Any]]:
        """Every metric point, in the order logged."""
        return _read_jsonl(self.metrics_path)

    def checkpoints(self) -> list[tuple[int, Path]]:
        """(step, path) of every complete checkpoint, in step order."""
        return [(step, path) for step, path in self._checkpoint_folders() if _complete(path)]

    def discard_incomplete_checkpoints(self) -> list[int]:
        """Remove the checkpoints a stopped worker left half saved (before a resume, when
        nothing writes them), so none of their files is taken for a saved one; their steps."""
        cut = [(step, path) for step, path in self._checkpoint_folders() if not _complete(path)]
        for _, path in cut:
            shutil.rmtree(path, ignore_errors=True)
        return [step for step, _ in cut]

    def _checkpoint_folders(self) -> list[tuple[int, Path]]:
        """(step, path) of every ``checkpoint-<step>`` folder, complete or not, in step order."""
        found = []
        if self.checkpoints_dir.is_dir():
            for child in self.checkpoints_dir.iterdir():
                prefix, _, step = child.name.partition("-")
                if prefix == "checkpoint" and step.isdigit() and child.is_dir():
                    found.append((int(step), child))
        return sorted(found)

    def delete(self, *, checkpoints_only: bool = False) -> int:
        """Remove the job's checkpoints, or its whole folder (renamed out of sight first, so
        that no reader finds it half removed) and the copy of its data no other job trains
        on; the bytes freed."""
        doomed = self.checkpoints_dir if checkpoints_only else self.path
        if not doomed.exists():
            return 0
        data = [] if checkpoints_only else _data_files(self)
        freed = folder_bytes(doomed)
        hidden = doomed.with_name(f".{doomed.name}.deleting-{os.getpid()}")
        try:
            doomed.rename(hidden)
        except OSError as exc:
            raise StorageError(f"cannot delete {doomed} ({why_not_written(exc, doomed)})") from None
        shutil.rmtree(hidden, ignore_errors=True)
        if hidden.exists():
            raise StorageError(f"{doomed} is gone, but not all of {hidden} could be removed")
        return freed + _remove_unused_data(data, self.path.parent)

    def mark_failed(self, code: str, message: str) -> None:
        """Record the job as failed with this reason (status and log)."""
        self.update_status(
            status="failed", finished_at=now_iso(), error={"code": code, "message": message}
        )
        self.append_event(f"Job failed: {message}", level="error")

    def request_stop(self, action: str) -> None:
        """Tell the worker why it is being stopped (``cancel`` or ``pause``)."""
        _write_atomically(self.control_path, json.dumps({"action": action, "at": time.time()}))

    def stop_reason(self) -> str | None:
        """The action asked by ``request_stop``, if any."""
        with contextlib.suppress(FileNotFoundError, ValueError):
            reason: str = json.loads(self.control_path.read_text())["action"]
            return reason
        return None

    def clear_stop(self) -> None:
        """Forget a stop request (before a resume)."""
        self.control_path.unlink(missing_ok=True)

    @staticmethod
    def _append(path: Path, row: dict[str, Any]) -> None:
        line = (json.dumps(row, sort_keys=True) + "\n").encode("utf-8")
        with path.open("a+b") as handle:
            if handle.tell() > 0:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":  # a line cut by a crash: end it, keep this one
                    line = b"\n" + line
            handle.write(line)


def _complete(checkpoint: Path) -> bool:
    """Whether the Trainer finished saving it: ``trainer_state.json``, which it writes last
    and in place, parses (a worker killed while saving leaves it empty or cut short)."""
    try:
        json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def log_tail(job: JobDir, lines: int = 3) -> str:
    """The last lines of the worker's log, joined on one line for an error message."""
    try:
        text = job.log_path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def new_job_id(idempotency_key: str, *, shared: bool = False) -> str:
    """A new job's id; on several machines every machine derives the same one from the key."""
    if shared:
        return f"hfjob-{hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]}"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    digest = hashlib.sha256(f"{idempotency_key}:{time.time_ns()}".encode()).hexdigest()[:8]
    return f"hfjob-{stamp}-{digest}"


def job_config_of(model: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The config of the local job whose model, merged model or checkpoint folder ``model``
    is; ``None`` for any other folder, a Hub id, or a job whose config cannot be read."""
    folder = Path(model)
    if not folder.is_dir():  # "org/name" is a Hub id here: its parents are the cwd's folders
        return None
    for job in (JobDir(folder.parent), JobDir(folder.parent.parent)):  # model/, checkpoints/N
        if job.exists() and job.status_path.exists():
            return job.config_or_none()
    return None


def local_job_at(path: str | os.PathLike[str]) -> Job | None:
    """The local job whose folder ``path`` is, as its files hold it now; ``None`` for any
    other path (a model's folder, a file, a Hub id)."""
    files = JobDir(Path(path).expanduser())
    if not (files.exists() and files.status_path.is_file() and files.events_path.is_file()):
        return None
    from finetune.backends.hf._backend import HFBackend  # which imports this module

    return HFBackend(jobs_dir=files.path.parent).get_job(str(files.path))


def trusted_by_its_job(model: str | os.PathLike[str]) -> bool:
    """Whether the local job that made ``model`` ran its base's own code: its user allowed
    that (``trust_remote_code``) for this model when training it."""
    options = (job_config_of(model) or {}).get("options") or {}
    return options.get("trust_remote_code") is True


def trained_on_completions(model: str | os.PathLike[str]) -> bool:
    """Whether the local job that made ``model`` (or the model a merged export was made
    from, or the GGUF export a converted folder was made from) trained on prompt/completion
    data, whose prompts it wrote as their plain text (no chat template): how it is asked."""
    from finetune.backends.hf._models import SOURCE_MARKER as CONVERTED

    if _marked(Path(model), CONVERTED, "prompt_format") == "plain":
        return True
    return (job_config_behind(model) or {}).get("example_kind") == "completion"


def job_id_behind(model: str | os.PathLike[str]) -> str | None:
    """The id of the local job that made ``model``: its job's config (or that of the model a
    merged export was made from), else the GGUF export a converted folder was made from
    (its metadata named the job): so a GGUF exported again keeps naming it."""
    from finetune.backends.hf._models import SOURCE_MARKER as CONVERTED

    job = (job_config_behind(model) or {}).get("job_id")
    return job if isinstance(job, str) and job else _marked(Path(model), CONVERTED, "job")


def job_config_behind(model: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``job_config_of`` the model, or of the model a merged export of it was made from (its
    marker names it): what the job that made its weights trained on, and how."""
    from finetune.export import MARKER as EXPORTED

    config = job_config_of(model)
    if config is None and (source := _marked(Path(model), EXPORTED, "from")) is not None:
        config = job_config_of(source)
    return config


def _marked(folder: Path, marker: str, key: str) -> str | None:
    """What the JSON marker file ``marker`` in ``folder`` says under ``key``: the model a
    merged export was made from, the prompt format of the GGUF file a folder was converted
    from."""
    try:
        said = json.loads((folder / marker).read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return said if isinstance(said, str) and said else None


def job_view(job: JobDir, backend: str) -> Job:
    """The job as our ``Job``: its config and its status, as its files hold them now."""
    config = job.read_config()
    status = {**job.read_status(), **job.unsaved_status}
    error = status.get("error")
    return Job(
        id=job.id,
        backend=backend,
        base_model=config.get("model_source") or config["base_model"],
        status=JobStatus(status.get("status", "queued")),
        created_at=parse_iso(status.get("created_at")),
        started_at=parse_iso(status.get("started_at")),
        finished_at=parse_iso(status.get("finished_at")),
        fine_tuned_model=status.get("fine_tuned_model"),
        trained_tokens=status.get("trained_tokens"),
        error=JobError(**error) if error else None,
        method=config["method"],
        hyperparameters=resolved_hyperparameters(TrainingConfig.model_validate(config)),
        training_file=config["training_file"],
        validation_file=config.get("validation_file"),
        suffix=config.get("suffix"),
        metadata=config.get("metadata") or {},
        raw={
            **status,
            "job_dir": str(job.path),
            "model_path": config["base_model"],
            "idempotency_key": config.get("idempotency_key"),
        },
    )


def why_not_a_job(job: JobDir, job_id: str, jobs_dir: Path) -> str | None:
    """Why ``job_id`` names no local job (``None`` when it names one): a folder given that
    holds none, a folder whose ``config.json`` is not a job's (a model's), or an id that no
    folder under ``jobs_dir`` has."""
    if job.exists():
        return None if _holds_job_config(job) else _not_a_job(job_id)
    if os.sep in job_id:
        return f"no local job folder {job_id} (a job's folder holds its config.json)"
    return (
        f"no local job {job_id!r} under {jobs_dir}; for a job created under another folder, "
        f"give the job's folder as its id, or that folder as jobs_dir= (the finetune command: "
        f"--jobs-dir or ${JOBS_DIR_ENV})"
    )


def _holds_job_config(job: JobDir) -> bool:
    return {"base_model", "method", "training_file"} <= set(job.config_or_none() or {})


def _not_a_job(job_id: str) -> str:
    return (
        f"{job_id} is not a local job's folder: its config.json is not one a fit wrote (a "
        f"model's folder has one too: ask that model with finetune ask hf:{job_id}, evaluate "
        f'it as ModelRef(backend="hf", name={job_id!r}), or export it with finetune export '
        f"{job_id})"
    )

"""The ``finetune`` commands about a job that exists: status, wait, pause, resume, cancel,
events, metrics and checkpoints. Each finds the job's backend in the registry unless
``--backend`` names it."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import finetune as ft
from finetune._arguments import name_flag, positive_float
from finetune._cli_log import print_json
from finetune._words import size

if TYPE_CHECKING:
    from finetune.backends.hf import HFBackend

__all__ = [
    "Interrupted",
    "add_job_commands",
    "ended",
    "job_named",
    "jobs_dir_refused",
    "local_backend",
    "waited",
]


class Interrupted(Exception):
    """Ctrl-C while waiting: a message, exit code 130, no traceback."""


def add_job_commands(
    command: Callable[[str, Callable[[argparse.Namespace], int], str], Any],
) -> None:
    """Add each command that takes a job id, through the CLI's ``command`` maker."""
    for name, handler, text in (
        ("status", _cmd_status, "a job's current state"),
        ("wait", _cmd_wait, "wait for a job to end, with a progress bar"),
        ("pause", _cmd_pause, "pause a running job (backends with pause and resume)"),
        ("resume", _cmd_resume, "resume a paused job, or a failed or cancelled local one"),
        ("cancel", _cmd_cancel, "cancel a job"),
        ("events", _cmd_events, "a job's log"),
        ("metrics", _cmd_metrics, "a job's training metrics, a CSV row per step"),
        ("checkpoints", _cmd_checkpoints, "the intermediate models a job saved"),
        ("delete", _cmd_delete, "remove an ended local job's folder, or its checkpoints"),
    ):
        sub = command(name, handler, text)
        sub.add_argument("job", help="job id, or backend:id as progress lines print it")
        name_flag(sub, "--backend", "backend the job runs on (default: the registry's record)")
        sub.add_argument(
            "--jobs-dir", help="hf: the folder the job is in (default: the registry's record)"
        )
        if name == "wait":
            sub.add_argument(
                "--timeout", type=positive_float, help="seconds before giving up waiting"
            )
        if name == "delete":
            sub.add_argument(
                "--checkpoints-only",
                action="store_true",
                help="remove its checkpoints alone: the model stays; it can no longer resume",
            )
        if name in ("metrics", "checkpoints"):
            sub.add_argument("--json", action="store_true", help="print JSON")


def _job_handle(args: argparse.Namespace) -> ft.JobHandle:
    """The job named on the command line, on ``--backend`` or on the one the registry knows."""
    named, job_id = job_named(args.job, args.backend)
    backend = named or _recorded_backend(job_id, args.jobs_dir)
    if backend == "hf":
        return ft.Tuner(local_backend(job_id, args.jobs_dir)).job(job_id)
    if args.jobs_dir:
        raise jobs_dir_refused(backend)
    return ft.Tuner(backend).job(args.job)  # as given first: a plugin's id may hold a colon


def jobs_dir_refused(backend: str) -> ft.FinetuneError:
    """``--jobs-dir`` given for a backend whose jobs live elsewhere (not in a folder here)."""
    return ft.FinetuneError(f"--jobs-dir is where hf jobs live, not {backend} jobs")


def job_named(job: str, backend: str | None) -> tuple[str | None, str]:
    """The backend and id a command's job argument names: ``hf:hfjob-...``, as progress
    lines print a job, is the id ``hfjob-...`` on ``hf`` (a job id holds no backend's name
    before a colon); else the id as given, on ``--backend``'s backend."""
    from finetune.backends import available_backends

    prefix, colon, job_id = job.partition(":")
    if not colon or not job_id or prefix not in available_backends() or Path(job).exists():
        return backend, job
    if backend and backend != prefix:
        raise ft.FinetuneError(f"job {job!r} is on {prefix}, not on --backend {backend}")
    return prefix, job_id


def local_backend(job_id: str, jobs_dir: str | None) -> HFBackend:
    """An ``HFBackend`` on ``jobs_dir``, else on the jobs folder the registry saw the job in
    (a demo's, a ``Tuner("hf", jobs_dir=...)``'s), else on the default one."""
    from finetune.backends.hf import HFBackend
    from finetune.backends.hf._jobdir import jobs_dir_of

    if jobs_dir is None:
        try:
            endpoints = ft.JobRegistry().endpoints_of("hf", job_id)
        except ft.RegistryError:  # a registry that cannot be read only knows no folder
            endpoints = []
        seen = (jobs_dir_of(endpoint) for endpoint in endpoints)
        found = [folder for folder in seen if folder and (folder / job_id).is_dir()]
        jobs_dir = str(found[0]) if found else None
    return HFBackend(jobs_dir=jobs_dir)


def _recorded_backend(job_id: str, jobs_dir: str | None) -> str:
    named = Path(job_id)
    if jobs_dir or named.is_dir() or (len(named.parts) > 1 and named.name.startswith("hfjob-")):
        return "hf"  # a local job, or the folder of one (gone, if it is not there)
    registry = ft.JobRegistry()
    found = registry.backends_of(job_id)
    if len(found) == 1:
        return _installed(found[0], job_id)
    prefix, colon, rest = job_id.partition(":")
    if not found and colon and prefix in registry.backends_of(rest):
        return _installed(prefix, rest)  # backend:id, the backend's plugin gone
    if not found:
        raise ft.FinetuneError(
            f"job {job_id!r} is not in this machine's job registry ({registry.path}): "
            "started elsewhere, or deleted; name its backend with --backend"
        )
    raise ft.FinetuneError(f"job {job_id!r} is on {' and '.join(found)}; choose with --backend")


def _installed(backend: str, job_id: str) -> str:
    """The backend the registry says ``job_id`` runs on, when it is installed here: a plugin's
    name that is not was told only that no backend has that name."""
    from finetune.backends import available_backends

    installed = available_backends()
    if backend in installed:
        return backend
    raise ft.FinetuneError(
        f"job {job_id!r} runs on {backend!r} (this machine's registry says), a backend not "
        f"installed here: install the package that provides it, its plugin (installed: "
        f"{', '.join(installed)})"
    )


def _cmd_status(args: argparse.Namespace) -> int:
    job = _job_handle(args).job
    print_json(job.model_dump_json(indent=2, exclude={"raw"}))
    return 0


def _cmd_wait(args: argparse.Namespace) -> int:
    return ended(waited(_job_handle(args), args.timeout))


def ended(job: ft.Job) -> int:
    """The job's last line; 0 when it made a model, 1 when it was cancelled or is paused
    (a failed job raised ``JobFailed`` already: 2)."""
    print(f"{job.id} {job.status.value} {job.fine_tuned_model or ''}".rstrip())
    if job.status is ft.JobStatus.SUCCEEDED:
        return 0
    why = "it was cancelled" if job.status is ft.JobStatus.CANCELLED else "it is paused"
    hint = f" (`finetune resume {job.id} --backend {job.backend}`)" if "paused" in why else ""
    print(f"job {job.id} made no model: {why}{hint}", file=sys.stderr)
    return 1


def waited(handle: ft.JobHandle, timeout: float | None = None) -> ft.Job:
    """``wait(progress=True)``; Ctrl-C stops waiting, not the job, and says so once, in the
    command's words, not also in the library's (``Tuner(...).job(...)``)."""
    library = logging.getLogger("finetune")
    library.addFilter(_not_stopped_waiting)
    try:
        return handle.wait(timeout=timeout, progress=True)
    except KeyboardInterrupt:
        flags = handle._reattach_words()[1]
        raise Interrupted(
            f"stopped waiting; job {handle.id} keeps running on {handle.job.backend}. Watch it "
            f"with `finetune wait {handle.id} {flags}`, cancel it with "
            f"`finetune cancel {handle.id} {flags}`"
        ) from None
    finally:
        library.removeFilter(_not_stopped_waiting)


def _not_stopped_waiting(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("stopped waiting")


def _cmd_pause(args: argparse.Namespace) -> int:
    return _stop(args, "pause")


def _cmd_resume(args: argparse.Namespace) -> int:
    job = _job_handle(args).resume()
    print(f"{job.id} {job.status.value}")
    return 0


def _cmd_cancel(args: argparse.Namespace) -> int:
    return _stop(args, "cancel")


def _stop(args: argparse.Namespace, action: str) -> int:
    """Cancel or pause the job; one that had already ended is left as it was, and said so."""
    handle = _job_handle(args)
    ended_as = handle.job.status if handle.job.status.is_terminal else None
    job = handle.cancel() if action == "cancel" else handle.pause()
    print(f"{job.id} {job.status.value}")
    if ended_as is not None:
        print(
            f"job {job.id} had already ended ({ended_as.value}): nothing to {action}",
            file=sys.stderr,
        )
    return 0


def _cmd_delete(args: argparse.Namespace) -> int:
    handle = _job_handle(args)
    freed = handle.delete(checkpoints_only=args.checkpoints_only)
    what = "checkpoints deleted" if args.checkpoints_only else "deleted"
    print(f"{handle.id} {what}: {size(freed)} freed")
    return 0


def _cmd_events(args: argparse.Namespace) -> int:
    for event in _job_handle(args).events():
        print(event)
    return 0


def _cmd_metrics(args: argparse.Namespace) -> int:
    """A CSV row per step, a column per metric some step reported (the standard ones first,
    then the provider's own); an empty cell where a step did not report it."""
    handle = _job_handle(args)
    series = handle.metrics()
    if args.json:
        print(json.dumps(series.to_records(), indent=2))
    else:
        _write_csv(series)
    if not len(series):
        print(
            f"job {handle.id} has reported no metrics yet ({handle.job.status.value})",
            file=sys.stderr,
        )
    return 0


def _write_csv(series: ft.MetricSeries) -> None:
    every = {name: series.column(name) for name in series.names}
    reported = {
        name: values for name, values in every.items() if any(v is not None for v in values)
    }
    columns = [_as_counts(values) for values in reported.values()]
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["step", *reported])
    for point, *values in zip(series, *columns, strict=True):
        writer.writerow([point.step, *("" if value is None else value for value in values)])


def _as_counts(values: list[float | None]) -> list[float | int | None]:
    """A column of whole numbers (TRL's ``num_tokens``, reported as floats) as integers,
    ``434500`` rather than ``434500.0``; any other column as it is."""
    if all(value is None or float(value).is_integer() for value in values):
        return [None if value is None else int(value) for value in values]
    return list(values)


def _cmd_checkpoints(args: argparse.Namespace) -> int:
    handle = _job_handle(args)
    saved = handle.checkpoints()
    if args.json:
        print(json.dumps([c.model_dump(mode="json") for c in saved], indent=2))
    else:
        for checkpoint in saved:
            print(_checkpoint_line(checkpoint))
    if not saved:
        print(
            f"job {handle.id} has saved no checkpoint ({handle.job.status.value})", file=sys.stderr
        )
    return 0


def _checkpoint_line(checkpoint: ft.Checkpoint) -> str:
    """Its step, the model name to evaluate or deploy, and the metrics saved with it."""
    metrics = sorted(checkpoint.metrics.items())
    figures = " ".join(f"{name}={value:g}" for name, value in metrics)
    return f"{checkpoint.step:>8} {checkpoint.model} {figures}".rstrip()

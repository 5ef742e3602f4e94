"""``finetune jobs``: the jobs this machine started, from the registry, as they are now where
that costs no network call (a local job's folder), and as last seen otherwise."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from datetime import datetime
from pathlib import Path

import finetune as ft
from finetune._cli_watch import job_named
from finetune._errors import did_you_mean
from finetune._job_records import ENDED, seen_now
from finetune._words import counted

__all__ = ["jobs_command"]


def jobs_command(args: argparse.Namespace) -> int:
    """List the registry's jobs, newest first; with ``--model``, the lineage of a model."""
    registry = ft.JobRegistry()
    if args.model:
        found = registry.lineage(args.model) or _job_of_id(registry, args.model)
        if found is None:
            raise ft.FinetuneError(f"no job in the registry made {args.model!r}")
        print(json.dumps(dataclasses.asdict(found), indent=2))
        return 0
    listed = _as_now(registry.list(backend=args.backend, limit=args.limit), hosted=args.refresh)
    records = [record for record, _ in listed]
    if args.json:
        print(json.dumps([dataclasses.asdict(record) for record in records], indent=2))
    else:
        for record in records:
            print(
                f"{record.backend:8} {record.job_id:32} {record.status:10} "
                f"{_local_minute(record.created_at)}  "
                f"{record.base_model} -> {record.fine_tuned_model or '-'}{_gone(record)}"
                f"{' (dpo)' if record.method == 'dpo' else ''}"
            )
    _say_which_are_as_last_seen(listed, asked=args.refresh)
    if not records:
        scope = f" on {args.backend}" if args.backend else ""
        print(f"no jobs{scope} in {registry.path} (FINETUNE_REGISTRY moves it)", file=sys.stderr)
        known = ft.available_backends()
        if args.backend and args.backend not in known:
            guess = did_you_mean(args.backend, known) or f"; backends: {', '.join(known)}"
            print(f"{args.backend!r} is not a backend here{guess}", file=sys.stderr)
    return 0


def _as_now(records: list[ft.JobRecord], *, hosted: bool) -> list[tuple[ft.JobRecord, bool]]:
    """Each record, and whether it is the job as it is now: one ended, or one not ended
    read again (a local one from its folder; with ``hosted``, one on a provider asked there;
    the registry keeps what each says). A job that cannot be read or asked stays as it was
    last seen, told in a line a backend."""
    tuners: dict[str, tuple[ft.Tuner | None, str]] = {}
    unread: dict[str, list[str]] = {}  # backend: why each of its jobs was not read again
    listed = []
    try:
        for record in records:
            if record.status in ENDED or not (hosted or record.backend == "hf"):
                listed.append((record, record.status in ENDED))
                continue
            if record.endpoint not in tuners:
                tuners[record.endpoint] = _tuner_for(record)
            now, why = _read_again(record, *tuners[record.endpoint])
            listed.append((now or record, now is not None))
            if why:
                unread.setdefault(record.backend, []).append(why)
    finally:
        for tuner, _ in tuners.values():
            if tuner is not None:
                tuner.close()
    for backend, whys in unread.items():
        jobs = counted(len(whys), f"{backend} job")
        print(f"warning: {jobs} not read again: {whys[0]}", file=sys.stderr)
    return listed


def _tuner_for(record: ft.JobRecord) -> tuple[ft.Tuner | None, str]:
    """A Tuner on the endpoint a record was seen on (a local job's folder; a provider's API
    root and account as the environment gives them), or why there is none."""
    from finetune.backends.hf._jobdir import jobs_folder_of

    if record.backend == "hf":
        folder = jobs_folder_of(record.endpoint)
        if folder is None or not folder.is_dir():
            return None, f"its jobs folder {folder} is no longer here"
        return ft.Tuner("hf", jobs_dir=folder), ""
    try:
        tuner = ft.Tuner(record.backend)
    except ft.FinetuneError as error:
        return None, str(error)
    if tuner.backend.identity != record.endpoint:
        tuner.close()
        if record.backend == "fake":
            return None, "a fake job lives in the process that made it"
        return None, (
            "started on another API root or account than the environment gives "
            "(finetune status JOB, with that environment, asks about one)"
        )
    return tuner, ""


def _read_again(
    record: ft.JobRecord, tuner: ft.Tuner | None, why_none: str
) -> tuple[ft.JobRecord | None, str | None]:
    """The record with the job's status and model as its backend tells them now; or why
    it could not be read again."""
    if tuner is None:
        return None, why_none
    try:
        job = tuner.job(record.job_id).job
    except ft.FinetuneError as error:
        return None, str(error)
    return seen_now(record, job), None


def _say_which_are_as_last_seen(listed: list[tuple[ft.JobRecord, bool]], *, asked: bool) -> None:
    """A line on stderr when jobs not ended are listed as last seen, with how to ask."""
    stale = [record for record, current in listed if not current]
    if not stale:
        return
    latest = max(_local_minute(record.updated_at) for record in stale)
    hosted = any(record.backend != "hf" for record in stale)  # a local one was read again
    ask = "; finetune jobs --refresh asks their providers" if hosted and not asked else ""
    print(
        f"{counted(len(stale), 'job')} not ended shown as last seen ({latest} at the latest)"
        f"{ask}; finetune status JOB asks about one",
        file=sys.stderr,
    )


def _job_of_id(registry: ft.JobRegistry, job: str) -> ft.JobRecord | None:
    """The record of the one job ``job`` names (``hfjob-...``, ``hf:hfjob-...``, or a local
    job's folder), for a lineage asked by the job rather than its model's name."""
    backend, job_id = job_named(job, None)
    if Path(job_id).expanduser().is_dir():  # a local job's folder: its name is the job's id
        backend, job_id = "hf", Path(job_id).expanduser().resolve().name
    backends = [backend] if backend else registry.backends_of(job_id)
    return registry.get(backends[0], job_id) if len(backends) == 1 else None


def _local_minute(stamp: str) -> str:
    """When a job was created, to the minute, in this machine's time zone (the registry keeps
    UTC): ``2026-12-04 09:20``; a stamp that does not parse, as it is."""
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp


def _gone(record: ft.JobRecord) -> str:
    """`` (no longer here)`` after a local model whose folder this machine no longer has (a
    deleted job folder, a temporary one): the registry still lists its job."""
    model = record.fine_tuned_model
    return (
        " (no longer here)" if record.backend == "hf" and model and not Path(model).exists() else ""
    )

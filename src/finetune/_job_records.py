"""The jobs a Tuner lists from the registry, each as its backend tells it now where that
costs no network call (a local backend's job folder) or where asked to (``refresh``: one
request a hosted job not ended), else as last seen."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

from finetune._errors import FinetuneError, JobNotFound
from finetune._loop import gather_or_cancel
from finetune.registry import JobRecord, check_limit
from finetune.types import JobStatus

if TYPE_CHECKING:
    from finetune.tuner import AsyncTuner
    from finetune.types import Job

__all__ = ["ENDED", "recorded_jobs", "seen_now"]

ENDED = frozenset(status.value for status in JobStatus if status.is_terminal)


async def recorded_jobs(tuner: AsyncTuner, limit: int, *, refresh: bool) -> list[JobRecord]:
    """``AsyncTuner.jobs``: the registry's jobs on the Tuner's backend, newest first. A job
    of the Tuner's endpoint that had not ended is read again (the registry keeps what it is
    now): on a local backend always, from its folder; on a hosted one with ``refresh``, a
    request each, a few at a time. One that cannot be read (a folder deleted by hand, a job
    the provider no longer knows) stays as last seen; any other error of a provider is
    raised."""
    registry = tuner._registry
    if registry is None:
        check_limit(limit)
        return []
    records = await asyncio.to_thread(registry.list, backend=tuner.backend_name, limit=limit)
    if not tuner.capabilities.hosted:
        return [await _read_again(tuner, record, FinetuneError) for record in records]
    if not refresh:
        return records
    turns = asyncio.Semaphore(_ASKED_AT_ONCE)

    async def asked(record: JobRecord) -> JobRecord:
        async with turns:
            return await _read_again(tuner, record, JobNotFound)

    return await gather_or_cancel(asked(record) for record in records)


_ASKED_AT_ONCE = 8


async def _read_again(
    tuner: AsyncTuner, record: JobRecord, unreadable: type[FinetuneError]
) -> JobRecord:
    if record.status in ENDED or record.endpoint != tuner._endpoint:
        return record
    try:
        handle = await tuner.job(record.job_id)
    except unreadable:
        return record
    return seen_now(record, handle.job)


def seen_now(record: JobRecord, job: Job) -> JobRecord:
    """``record`` with the status and model its job has now."""
    model = job.fine_tuned_model or record.fine_tuned_model
    return dataclasses.replace(record, status=job.status.value, fine_tuned_model=model)

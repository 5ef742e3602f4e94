"""The jobs a Tuner lists from the registry, each as its backend tells it now where that
costs no network call (a local backend's job folder), else as last seen."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

from finetune._errors import FinetuneError
from finetune.registry import JobRecord, check_limit
from finetune.types import JobStatus

if TYPE_CHECKING:
    from finetune.tuner import AsyncTuner
    from finetune.types import Job

__all__ = ["ENDED", "recorded_jobs", "seen_now"]

ENDED = frozenset(status.value for status in JobStatus if status.is_terminal)


async def recorded_jobs(tuner: AsyncTuner, limit: int) -> list[JobRecord]:
    """``AsyncTuner.jobs``: the registry's jobs on the Tuner's backend, newest first; on a
    local backend, a job of its endpoint that had not ended is read again (the registry
    keeps what it is now), one that cannot be read stays as last seen."""
    registry = tuner._registry
    if registry is None:
        check_limit(limit)
        return []
    records = await asyncio.to_thread(registry.list, backend=tuner.backend_name, limit=limit)
    if tuner.capabilities.hosted:
        return records
    return [await _read_again(tuner, record) for record in records]


async def _read_again(tuner: AsyncTuner, record: JobRecord) -> JobRecord:
    if record.status in ENDED or record.endpoint != tuner._endpoint:
        return record
    try:
        handle = await tuner.job(record.job_id)
    except FinetuneError:  # a folder deleted by hand, say: listed as it was last seen
        return record
    return seen_now(record, handle.job)


def seen_now(record: JobRecord, job: Job) -> JobRecord:
    """``record`` with the status and model its job has now."""
    model = job.fine_tuned_model or record.fine_tuned_model
    return dataclasses.replace(record, status=job.status.value, fine_tuned_model=model)

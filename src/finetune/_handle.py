"""JobView and AsyncJobHandle: one job, seen and driven (``JobHandle`` delegates here)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, NoReturn

from finetune._errors import FinetuneError, JobFailed, WaitTimeout
from finetune._other_names import JOB_NAMES, OtherNames
from finetune._progress import JobProgress
from finetune._series import MetricSeries
from finetune._tuner_inputs import check_seconds
from finetune.backends.http import Backoff
from finetune.types import Checkpoint, Job, JobEvent, JobStatus, ModelRef

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from finetune.tuner import AsyncTuner

__all__ = ["AsyncJobHandle", "JobView", "Waiting", "why_no_model"]


@dataclass
class Waiting:
    """How ``wait`` polls: first interval, cap, overall timeout."""

    first: float
    cap: float
    timeout: float | None

    def __post_init__(self) -> None:
        if not self.first > 0:  # 0 would poll the provider in a tight loop
            raise ValueError(f"poll_interval must be more than 0 seconds, not {self.first}")
        if self.timeout is not None and not self.timeout >= 0:
            raise ValueError(f"timeout must be 0 seconds or more, not {self.timeout}")

    @classmethod
    def of(
        cls,
        hosted: bool,
        poll_interval: float | None,
        max_interval: float | None,
        timeout: float | None,
    ) -> Waiting:
        """The polling ``wait`` was asked for: hosted jobs from 10 s up to 60 s, local ones
        from 0.5 s up to 1 s (a status file costs nothing to read) unless given."""
        check_seconds(poll_interval=poll_interval, max_interval=max_interval, timeout=timeout)
        first = poll_interval if poll_interval is not None else (10.0 if hosted else 0.5)
        if max_interval is not None and not max_interval > 0:
            raise ValueError(f"max_interval must be more than 0 seconds, not {max_interval}")
        cap = max_interval if max_interval is not None else (60.0 if hosted else 1.0)
        return cls(first, max(first, cap), timeout)


def why_no_model(job: Job) -> str:
    """Why ``job`` has no fine-tuned model, and what to do, as the end of a sentence that
    names the job: a job that ended without one is never told to wait for it."""
    status = job.status
    if status is JobStatus.PAUSED:
        return "is paused and has no fine-tuned model yet: resume() it, then wait() for it"
    if not status.is_terminal:
        return f"is {status} and has no fine-tuned model yet: wait() for it first"
    if status is JobStatus.SUCCEEDED:
        return "succeeded, but its provider named no fine-tuned model: refresh() reads it again"
    ended = "failed" if status is JobStatus.FAILED else "was cancelled"
    return (
        f"{ended} and made no fine-tuned model; a checkpoint it saved may be evaluated "
        "(job.checkpoint_model(c) for c in job.checkpoints())"
    )


class JobView(OtherNames):
    """What every job handle shows without a call: the job as last seen, its id, status and
    fine-tuned model (``AsyncJobHandle`` and ``JobHandle`` share it)."""

    other_names: ClassVar[dict[str, tuple[str, str]]] = JOB_NAMES

    @property
    def job(self) -> Job:
        """The job as last seen."""
        raise NotImplementedError

    @property
    def id(self) -> str:
        """The provider's job id."""
        return self.job.id

    @property
    def status(self) -> JobStatus:
        """Status as last seen (``refresh`` for the current one)."""
        return self.job.status

    _reattached: bool = False

    @property
    def reattached(self) -> bool:
        """Whether ``fit`` found this job, started earlier by the same fit (same data, model,
        method, settings and suffix), rather than starting one: nothing was trained anew (an
        ``idempotency_key`` of your own, or another seed, trains again)."""
        return self._reattached

    @property
    def model(self) -> ModelRef:
        """The fine-tuned model; raises if the job has not succeeded."""
        model = self.job.model
        if model is None:
            raise FinetuneError(f"job {self.job.id} {why_no_model(self.job)}")
        return model

    def checkpoint_model(self, checkpoint: Checkpoint) -> ModelRef:
        """One of this job's ``checkpoints()`` as a model to evaluate, asked as the job's own
        model is (its Tuner's key and API root): ``ft.evaluate(holdout, {f"step {c.step}":
        job.checkpoint_model(c) for c in job.checkpoints()})``."""
        if not isinstance(checkpoint, Checkpoint):
            raise TypeError(
                "checkpoint is one of job.checkpoints(), a Checkpoint, not "
                f"{type(checkpoint).__name__}"
            )
        return self.job._made(checkpoint.model)

    def __repr__(self) -> str:
        job = self.job
        again = " (re-attached)" if self.reattached else ""
        return f"<{type(self).__name__} {job.backend}:{job.id} {job.status.value}{again}>"

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            f"{type(self).__name__} objects hold their Tuner's connections: not pickled or "
            f"copied; send the job's id ({self.job.id!r}) and re-attach with Tuner(...).job(id)"
        )

    def _repr_html_(self) -> str:
        """The job view of ``wait(progress=True)`` in a notebook, with the loss curve."""
        from finetune._html import job_html

        return job_html(self.job, self._metrics_for_view(), reattached=self.reattached)

    def _metrics_for_view(self) -> MetricSeries | None:
        """The metrics a notebook view draws (none by default)."""
        return None


def _still_moving(job: Job) -> bool:
    """A paused job does not move until someone resumes it, so waiting on it returns."""
    return not job.status.is_terminal and job.status is not JobStatus.PAUSED


class AsyncJobHandle(JobView):
    """A live view of one job: refresh, wait, cancel, read its events, metrics and model."""

    def __init__(
        self, tuner: AsyncTuner, job: Job, *, recorded: bool = True, reattached: bool = False
    ) -> None:
        self._tuner = tuner
        self._reattached = reattached
        self._backend = tuner.backend
        self._job = self._seen(job)
        self._metrics_seen: MetricSeries | None = None
        self._recorded = recorded  # False: reached by a location the Tuner does not own

    def _seen(self, job: Job) -> Job:
        """``job``, its model to be asked as this backend reaches its provider, and its
        record (the rows it trained on) found in this Tuner's registry, or in none."""
        return job._reached_through(self._backend.connection_options(), self._tuner._registry_file)

    async def _record(self) -> None:
        if self._recorded:
            await self._tuner._remember(self.job)

    def _metrics_for_view(self) -> MetricSeries | None:
        return self._metrics_seen

    async def _metrics_or_none(self) -> MetricSeries | None:
        """The metrics for a live view; a backend without them, or a failed read, shows none."""
        if not self._backend.supports("get_metrics"):
            return None
        try:
            return await self.metrics()
        except FinetuneError:
            return self._metrics_seen

    @property
    def job(self) -> Job:
        """The job as last seen."""
        return self._job

    async def refresh(self) -> Job:
        """Fetch the job's current state."""
        self._job = self._seen(await self._backend.get_job(self.job.id))
        await self._record()
        return self.job

    async def wait(
        self,
        poll_interval: float | None = None,
        timeout: float | None = None,
        progress: bool = False,
        *,
        max_interval: float | None = None,
    ) -> Job:
        """Poll with backoff until the job ends or is paused (a paused job waits for
        ``resume()``); raises ``JobFailed`` or ``WaitTimeout``.

        Polls start at ``poll_interval`` (10 s hosted, 0.5 s local) and grow 1.5x up to
        ``max_interval`` (60 s hosted, 1 s local: reading a status file costs nothing). A
        provider's Retry-After is honoured; other transient errors are polled through. When
        the time is up, one last look decides between the job and ``WaitTimeout``.
        """
        hosted = self._backend.capabilities.hosted
        waiting = Waiting.of(hosted, poll_interval, max_interval, timeout)
        view = JobProgress(progress, self.job)
        try:
            await self._poll(waiting, view)
        finally:
            view.close()
        if self.job.status is JobStatus.FAILED:
            raise JobFailed(self.job)
        return self.job

    async def _poll(self, waiting: Waiting, view: JobProgress) -> None:
        from tenacity import (
            AsyncRetrying,
            RetryError,
            retry_if_exception,
            retry_if_result,
            stop_before_delay,
            stop_never,
        )

        from finetune.backends.http import is_retryable

        policy = AsyncRetrying(
            retry=retry_if_result(_still_moving) | retry_if_exception(is_retryable),
            wait=Backoff(waiting.first, waiting.cap, factor=1.5),
            stop=stop_never if waiting.timeout is None else stop_before_delay(waiting.timeout),
        )
        try:
            async for attempt in policy:
                with attempt:
                    job = await self.refresh()
                    if view.wants_metrics:
                        self._metrics_seen = await self._metrics_or_none()
                    view.update(job, self._metrics_seen)
                if not attempt.retry_state.outcome.failed:  # type: ignore[union-attr]
                    attempt.retry_state.set_result(job)
        except RetryError as stopped:
            await self._look_at_deadline(view, waiting, stopped.last_attempt.exception())

    async def _look_at_deadline(
        self, view: JobProgress, waiting: Waiting, outage: BaseException | None
    ) -> None:
        """One more look when the time is up: a stall (a slow answer, a busy machine) can leave
        the last status seen older than the deadline, and a job that ended in time is no timeout.
        A job still moving raises ``WaitTimeout`` caused by the latest transient error, if any."""
        from finetune.backends.http import is_retryable

        try:
            job = await self.refresh()
        except Exception as error:
            if not is_retryable(error):
                raise
            outage = error
        else:
            view.update(job, self._metrics_seen)
            if not _still_moving(job):
                return
        tuner = self._reattach_words()[0]
        raise WaitTimeout(self.job, waiting.timeout or 0.0, tuner=tuner) from outage

    def _reattach_words(self) -> tuple[str, str]:
        """How another process reaches this job: the Tuner to make, and the command's flags;
        a local job outside the default jobs folder (``jobs_dir=``) is found only there."""
        from finetune.backends.hf._jobdir import jobs_dir_named_by, naming_flags, reattaching_tuner

        backend, folder = self.job.backend, jobs_dir_named_by(self._tuner._endpoint)
        if folder is None:
            return f"Tuner({backend!r})", f"--backend {backend}"
        return reattaching_tuner(folder), naming_flags(folder / self.id)

    async def cancel(self) -> Job:
        """Cancel the job (a no-op on a job that already ended)."""
        return await self._act("cancel_job", self._backend.cancel_job, unless_ended=True)

    async def pause(self) -> Job:
        """Pause a running job (backends with pause/resume; a no-op on a job that already
        ended)."""
        return await self._act("pause_job", self._backend.pause_job, unless_ended=True)

    async def resume(self) -> Job:
        """Resume a paused job (or, on the local backend, a killed one from its checkpoint)."""
        return await self._act("resume_job", self._backend.resume_job)

    async def _act(
        self, capability: str, call: Callable[[str], Awaitable[Job]], *, unless_ended: bool = False
    ) -> Job:
        """Ask the backend to act on the job and keep what it answers; ``unless_ended``: a job
        that already ended is left as it is, and the provider asked nothing."""
        self._tuner._require(capability)
        if not (unless_ended and self.job.status.is_terminal):
            self._job = self._seen(await call(self.job.id))
            await self._record()
        return self.job

    async def events(self) -> list[JobEvent]:
        """The job's log, oldest first."""
        self._tuner._require("list_events")
        return await self._backend.list_events(self.job.id)

    async def metrics(self) -> MetricSeries:
        """Training metrics per step."""
        self._tuner._require("get_metrics")
        return MetricSeries(await self._backend.get_metrics(self.job.id))

    async def checkpoints(self) -> list[Checkpoint]:
        """Intermediate checkpoints, in step order."""
        self._tuner._require("list_checkpoints")
        return await self._backend.list_checkpoints(self.job.id)

    async def delete(self, *, checkpoints_only: bool = False) -> int:
        """Remove a job that has ended from this machine (the local backend's): its folder,
        its record in the registry and the copy of its data no other job trains on, or with
        ``checkpoints_only`` its checkpoints alone (it can no longer be resumed, its model
        stays); the bytes freed. A job not ended is refused."""
        self._tuner._require("delete_job")
        job_id = self.job.id
        freed = await self._backend.delete_job(job_id, checkpoints_only=checkpoints_only)
        registry = self._tuner._registry
        if not checkpoints_only and registry is not None:
            where = (self._tuner.backend_name, job_id, self._tuner._endpoint)
            await asyncio.to_thread(registry.forget, *where)
        return int(freed)

"""Tuner and JobHandle: the blocking face, delegating every call to AsyncTuner/AsyncJobHandle.

Network calls run on an event loop in a background thread the Tuner owns (``LoopThread``),
so they work inside Jupyter, where a loop already runs. Local CPU work (validation, local
estimates, the checks of a fit) runs in the calling thread, where validation may fork workers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import weakref
from collections.abc import Awaitable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from finetune._fit import as_hyperparameters, keywords_explained
from finetune._handle import AsyncJobHandle, JobView
from finetune._loop import LoopThread, exiting, watch_for_exit
from finetune._tuner_inputs import RegistryChoice
from finetune.tuner import AsyncTuner, TunerView
from finetune.types import Hyperparameters, ModelRef

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from finetune._fit import FitOptions
    from finetune._series import MetricSeries
    from finetune.dataset import Dataset
    from finetune.registry import JobRecord
    from finetune.types import Checkpoint, CostEstimate, Job, JobEvent

__all__ = ["JobHandle", "Tuner"]

log = logging.getLogger("finetune")
T = TypeVar("T")


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


def _close_quietly(loop: LoopThread, tuner: AsyncTuner) -> None:
    """A dropped Tuner's connections closed on its loop. At any time but exit this runs in
    the garbage collector, in whatever thread it interrupted, perhaps holding a lock the loop
    needs: it must not wait. At exit nothing else runs, and it waits for them to close."""
    if loop.started:
        with contextlib.suppress(Exception):  # nobody is there to hear of it
            loop.close(tuner.aclose(), wait=exiting())


class Tuner(TunerView):
    """Fine-tune on any backend with the same calls.

    ``Tuner("openai", model="gpt-4.1-mini-2025-04-14", api_key=...)``: options after the model
    go to the backend. ``registry=False`` keeps no local record of jobs, and a path keeps it
    in that file. Building a Tuner
    makes no network call and imports no provider SDK, so ``validate`` and ``estimate`` work
    offline and without a key.
    """

    def __init__(
        self,
        backend: str | Any,
        model: str | os.PathLike[str] | ModelRef | None = None,
        *,
        registry: RegistryChoice = None,
        **options: Any,
    ) -> None:
        self._async = self._core = AsyncTuner(backend, model, registry=registry, **options)
        self._loop = LoopThread(f"finetune-{self._async.backend_name}")
        # a Tuner dropped without close() (or used again after it) closes its connections on
        # its own loop; after close() with nothing reopened, this finds nothing to do
        self._closer = weakref.finalize(self, _close_quietly, self._loop, self._async)
        watch_for_exit()

    def __enter__(self) -> Tuner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run one of the backend's own coroutines on this Tuner's loop, e.g.
        ``tuner.run(tuner.backend.archive_model("ft:..."))``."""
        coroutine: Coroutine[Any, Any, T] = _awaited(awaitable)
        return self._loop.run(coroutine)

    def close(self) -> None:
        """Close the backend's connections and stop this Tuner's loop thread (on that thread
        even when nothing else ran there: ``asyncio.run`` fails inside a notebook's loop).

        A call another thread is making meanwhile (a ``wait``) is cancelled, and raises a
        ``RuntimeError`` there; a job it started goes on. A call after ``close`` opens the
        connections again; dropping the Tuner then closes them."""
        if self._loop.started:
            self._loop.close(self._async.aclose())
        else:
            self._loop.run(self._async.aclose())
            self._loop.close()

    @keywords_explained
    def estimate(
        self,
        dataset: Dataset,
        hyperparameters: Hyperparameters | Mapping[str, Any] | None = None,
        *,
        model: str | ModelRef | None = None,
        price_per_million: float | None = None,
        validation: Dataset | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> CostEstimate:
        """Exact tokens, epochs, billed tokens and price, before any money is spent (with the
        provider's own quote beside ours where it offers one); ``price_per_million`` (USD per
        million billed tokens) replaces our table's price; the ``validation`` set a fit would
        pass counts where the provider bills it (Together); ``options`` are the fit's, for the
        job it would start (Together: ``{"full_finetune": True}`` is quoted as a full
        fine-tune)."""
        local, report = self._estimate_parts(
            dataset,
            hyperparameters,
            model=model,
            price_per_million=price_per_million,
            validation=validation,
            options=options,
        )
        if report is None:
            return local
        params = as_hyperparameters(hyperparameters)
        return self._loop.run(
            self._async.refine_estimate(dataset, local, params, report, validation, options)
        )

    def fit(
        self, train: Dataset, validation: Dataset | None = None, **fit: Unpack[FitOptions]
    ) -> JobHandle:
        """Validate, upload and start a job; a re-run of the same fit re-attaches to its job.

        Keyword arguments: see ``FitOptions`` (``hyperparameters``, ``method``, ``suffix``,
        ``metadata``, ``integrations``, ``idempotency_key``, ``skip_validation``,
        ``options``, ``max_cost``).
        """
        plan = self._async.plan_fit(train, validation, **fit)
        return JobHandle(self, self._loop.run(self._async.start(plan)))

    def job(self, job_id: str) -> JobHandle:
        """Re-attach to an existing job by id, from any process, or by the name progress
        lines print (``hf:hfjob-...``)."""
        return JobHandle(self, self._loop.run(self._async.job(job_id)))

    def remote_jobs(self, *, limit: int = 20) -> list[Job]:
        """The provider's own list of recent jobs (all of them, not only this machine's)."""
        return self._loop.run(self._async.remote_jobs(limit=limit))

    def jobs(self, *, limit: int = 50, refresh: bool = False) -> list[JobRecord]:
        """Jobs this machine started on this backend, from the registry (newest first);
        ``refresh`` asks a hosted provider about each job not ended."""
        return self._loop.run(self._async.jobs(limit=limit, refresh=refresh))


class JobHandle(JobView):
    """A live view of one job: refresh, wait, cancel, read its events, metrics and model."""

    def __init__(self, tuner: Tuner, handle: AsyncJobHandle) -> None:
        self._tuner = tuner
        self._handle = handle
        self._reattached = handle.reattached

    @property
    def job(self) -> Job:
        """The job as last seen."""
        return self._handle.job

    def _metrics_for_view(self) -> MetricSeries | None:
        """A notebook shows the loss curve: the metrics as they are now, when readable."""
        fresh = self._tuner._loop.run(self._handle._metrics_or_none())
        return fresh if fresh is not None else self._handle._metrics_for_view()

    def refresh(self) -> Job:
        """Fetch the job's current state."""
        return self._tuner._loop.run(self._handle.refresh())

    def wait(
        self,
        poll_interval: float | None = None,
        timeout: float | None = None,
        progress: bool = False,
        *,
        max_interval: float | None = None,
    ) -> Job:
        """Poll with backoff until the job ends or is paused; raises ``JobFailed`` or
        ``WaitTimeout`` (see ``AsyncJobHandle.wait``). Ctrl-C stops waiting, not the job."""
        waiting = self._handle.wait(poll_interval, timeout, progress, max_interval=max_interval)
        try:
            return self._tuner._loop.run(waiting)
        except KeyboardInterrupt:
            tuner, flags = self._reattach_words()
            log.warning(
                "stopped waiting; job %s keeps running on %s. Re-attach with %s.job(%r), or "
                "cancel it with .cancel() (finetune cancel %s %s)",
                self.id,
                self.job.backend,
                tuner,
                self.id,
                self.id,
                flags,
            )
            raise

    def _reattach_words(self) -> tuple[str, str]:
        return self._handle._reattach_words()

    def cancel(self) -> Job:
        """Cancel the job (a no-op on a job that already ended)."""
        return self._tuner._loop.run(self._handle.cancel())

    def delete(self, *, checkpoints_only: bool = False) -> int:
        """Remove an ended job's files and record (see ``AsyncJobHandle.delete``)."""
        return self._tuner._loop.run(self._handle.delete(checkpoints_only=checkpoints_only))

    def pause(self) -> Job:
        """Pause a running job (backends with pause/resume; a no-op on a job that already
        ended)."""
        return self._tuner._loop.run(self._handle.pause())

    def resume(self) -> Job:
        """Resume a paused job (or, on the local backend, a killed one from its checkpoint)."""
        return self._tuner._loop.run(self._handle.resume())

    def events(self) -> list[JobEvent]:
        """The job's log, oldest first."""
        return self._tuner._loop.run(self._handle.events())

    def metrics(self) -> MetricSeries:
        """Training metrics per step."""
        return self._tuner._loop.run(self._handle.metrics())

    def checkpoints(self) -> list[Checkpoint]:
        """Intermediate checkpoints, in step order."""
        return self._tuner._loop.run(self._handle.checkpoints())

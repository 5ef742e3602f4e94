"""Tuner, AsyncTuner and JobHandle: the one face over every backend."""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_before_delay,
    stop_never,
)

from finetune._errors import (
    BackendError,
    FinetuneError,
    InvalidRequestError,
    JobFailed,
    RateLimitError,
    UnsupportedFeature,
    WaitTimeout,
)
from finetune._series import MetricSeries
from finetune.backends.base import (
    AsyncBackend,
    Backend,
    Capabilities,
    JobRequest,
    load_async_backend,
    load_backend,
)
from finetune.registry import JobRecord, JobRegistry
from finetune.types import (
    Checkpoint,
    CostEstimate,
    Hyperparameters,
    Job,
    JobEvent,
    JobStatus,
    ModelRef,
)

if TYPE_CHECKING:
    from finetune.dataset import Dataset
    from finetune.validation import ValidationReport

__all__ = ["AsyncJobHandle", "AsyncTuner", "JobHandle", "Tuner"]

log = logging.getLogger("finetune")
METADATA_KEY = "finetune_key"
_MAX_REATTEMPTS = 100


def derive_idempotency_key(
    backend: str,
    model: str,
    method: str,
    train_fingerprint: str,
    validation_fingerprint: str | None,
    hyperparameters: Hyperparameters,
    suffix: str | None,
    options: dict[str, Any] | None = None,
) -> str:
    """A key that is the same for the same fit, so a re-run finds the job a crash left.

    Backend ``options`` change what is trained (packing, max_length ...), so they are part of
    the key; a fit without options keeps the key it always had.
    """
    parts: list[Any] = [
        backend,
        model,
        method,
        train_fingerprint,
        validation_fingerprint,
        hyperparameters.model_dump(mode="json"),
        suffix,
    ]
    if options:
        parts.append(options)
    payload = json.dumps(parts, sort_keys=True, default=str)
    return "ft-" + hashlib.sha256(payload.encode()).hexdigest()[:32]


def _attempt_key(key: str, attempt: int) -> str:
    return key if attempt == 0 else f"{key}.{attempt}"


def _reusable(job: Job | None) -> bool:
    return job is not None and job.status not in (JobStatus.FAILED, JobStatus.CANCELLED)


def _check_request(
    caps: Capabilities,
    backend: str,
    train: Dataset,
    validation: Dataset | None,
    method: str,
    suffix: str | None,
) -> None:
    if method not in caps.methods:
        raise UnsupportedFeature(
            f"backend {backend!r} does not train with method={method!r}; "
            f"it supports {sorted(caps.methods)}"
        )
    if train.kind not in caps.example_kinds:
        raise UnsupportedFeature(
            f"backend {backend!r} cannot train on {train.kind} examples; "
            f"it takes {sorted(caps.example_kinds)}"
        )
    if method == "dpo" and train.kind != "preference":
        raise UnsupportedFeature("method='dpo' needs preference examples (chosen/rejected)")
    if method == "sft" and train.kind == "preference":
        raise UnsupportedFeature(
            "preference examples (chosen/rejected) train with method='dpo', not 'sft'"
        )
    if validation is not None and not caps.validation_file:
        raise UnsupportedFeature(f"backend {backend!r} takes no validation file")
    limit = caps.max_suffix_length
    if suffix is not None and limit is not None and len(suffix) > limit:
        raise InvalidRequestError(
            f"suffix {suffix!r} is {len(suffix)} characters; {backend} allows at most {limit}",
            backend=backend,
            param="suffix",
        )


class _PollWait:
    """Backoff between polls: grows by 1.5x to a cap, with jitter, never below Retry-After."""

    def __init__(self, first: float, cap: float) -> None:
        self.first = first
        self.cap = cap

    def __call__(self, state: RetryCallState) -> float:
        base = min(self.cap, self.first * 1.5 ** (state.attempt_number - 1))
        delay = base * random.uniform(0.9, 1.1)
        outcome = state.outcome
        if outcome is not None and outcome.failed:
            error = outcome.exception()
            if isinstance(error, RateLimitError) and error.retry_after:
                delay = max(delay, error.retry_after)
        return delay


def _still_moving(job: Job) -> bool:
    """A paused job does not move until someone resumes it, so waiting on it returns."""
    return not job.status.is_terminal and job.status is not JobStatus.PAUSED


def _is_transient(error: BaseException) -> bool:
    return isinstance(error, BackendError) and error.retryable


def _poll_settings(
    caps: Capabilities,
    poll_interval: float | None,
    max_interval: float | None,
    timeout: float | None,
) -> dict[str, Any]:
    first = poll_interval if poll_interval is not None else (10.0 if caps.hosted else 0.5)
    if max_interval is None:
        max_interval = 60.0 if caps.hosted else 1.0
    return {
        "retry": retry_if_result(_still_moving) | retry_if_exception(_is_transient),
        "wait": _PollWait(first, max(first, max_interval)),
        "stop": stop_never if timeout is None else stop_before_delay(timeout),
        "reraise": True,
    }


class _Progress:
    """A tqdm.auto bar, only when asked: training steps where the backend reports them (local
    jobs), else the number of polls, with the status beside it."""

    def __init__(self, enabled: bool, job: Job) -> None:
        self._bar: Any = None
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=None, desc=f"{job.backend}:{job.id}", unit="poll")

    def update(self, job: Job) -> None:
        if self._bar is None:
            return
        raw = job.raw or {}
        step, total = raw.get("step"), raw.get("max_steps")
        if isinstance(step, int) and isinstance(total, int) and total > 0:
            if self._bar.total != total:
                self._bar.total, self._bar.unit = total, "step"
            self._bar.n = step
        else:
            self._bar.n += 1
        self._bar.set_postfix_str(job.status.value, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _finish(job: Job) -> Job:
    if job.status is JobStatus.FAILED:
        raise JobFailed(job)
    return job


def _model_of(job: Job) -> ModelRef:
    model = job.model
    if model is None:
        raise FinetuneError(
            f"job {job.id} is {job.status.value} and has no fine-tuned model yet; "
            "call wait() first (a failed or cancelled job never has one)"
        )
    return model


def _resolve_registry(registry: JobRegistry | bool | None) -> JobRegistry | None:
    if registry is False:
        return None
    if registry is None or registry is True:
        return JobRegistry()
    return registry


class _TunerBase:
    backend_name: str
    model: str | None
    _caps: Capabilities
    _registry: JobRegistry | None
    _counter_of: Callable[[str], Any]
    _limit_of: Callable[[str], int | None] | None

    @property
    def base_model(self) -> ModelRef:
        """The untuned base model, as a ModelRef for evaluation."""
        return ModelRef(backend=self.backend_name, name=self._require_model())

    @property
    def capabilities(self) -> Capabilities:
        """What this backend can do."""
        return self._caps

    def _require_model(self, model: str | None = None) -> str:
        chosen = model or self.model
        if not chosen:
            raise ValueError(f'no model given: Tuner("{self.backend_name}", model="...")')
        return chosen

    def validate(
        self, dataset: Dataset, validation: Dataset | None = None, *, model: str | None = None
    ) -> ValidationReport:
        """Check every row against this backend's rules and the model's context limit."""
        from finetune.validation import validate

        chosen = self._require_model(model)
        return validate(
            dataset,
            target=self._caps.validation_target,
            model=chosen,
            validation=validation,
            token_counter=self._counter_of(chosen),
            context_limit=self._context_limit(chosen),
        )

    def _dry_run_blocked(
        self, dataset: Dataset, local: CostEstimate, model: str | None
    ) -> CostEstimate | None:
        """``None`` when the data may go to the provider's dry run, else ``local`` saying why not:
        data with validation errors is never uploaded, not even to be priced."""
        report = self.validate(dataset, model=model)
        if report.ok:
            return None
        note = (
            f"the provider's dry run was skipped: {len(report.errors)} validation error(s) "
            "(tuner.validate lists them); the figures above are our own"
        )
        return local.model_copy(update={"notes": [*local.notes, note]})

    def _context_limit(self, model: str) -> int | None:
        """The backend's own limit (a local model's ``max_length``), else the catalog's."""
        return self._limit_of(model) if self._limit_of is not None else None

    def _estimate_locally(
        self, dataset: Dataset, hyperparameters: Hyperparameters | None, model: str | None
    ) -> CostEstimate:
        from finetune.validation import estimate

        chosen = self._require_model(model)
        return estimate(
            dataset,
            target=self._caps.validation_target,
            backend=self.backend_name,
            model=chosen,
            hyperparameters=hyperparameters or Hyperparameters(),
            token_counter=self._counter_of(chosen),
        )

    def _prepare(
        self,
        train: Dataset,
        validation: Dataset | None,
        method: str,
        suffix: str | None,
        hyperparameters: Hyperparameters,
        idempotency_key: str | None,
        skip_validation: bool,
        options: dict[str, Any] | None = None,
    ) -> tuple[str, str, str | None]:
        _check_request(self._caps, self.backend_name, train, validation, method, suffix)
        if not skip_validation:
            self.validate(train, validation).raise_for_errors()
        train_fp = train.fingerprint()
        valid_fp = validation.fingerprint() if validation is not None else None
        key = idempotency_key or derive_idempotency_key(
            self.backend_name,
            self._require_model(),
            method,
            train_fp,
            valid_fp,
            hyperparameters,
            suffix,
            options,
        )
        return key, train_fp, valid_fp

    def _registry_job_id(self, key: str) -> str | None:
        if self._registry is None:
            return None
        found = self._registry.find_by_key(self.backend_name, key)
        return found.job_id if found else None

    def _remember(self, job: Job, **lineage: str | None) -> None:
        if self._registry is not None:
            self._registry.record(job, **lineage)

    def _mark_pending(self, key: str, training_file: str) -> None:
        if self._registry is not None:
            self._registry.mark_pending(
                self.backend_name, key, self._require_model(), training_file
            )

    def jobs(self, *, limit: int = 50) -> list[JobRecord]:
        """Jobs this machine started on this backend, from the registry (newest first)."""
        if self._registry is None:
            return []
        return self._registry.list(backend=self.backend_name, limit=limit)


def _build_request(
    tuner: _TunerBase,
    key: str,
    training_file: Any,
    validation_file: Any,
    method: Literal["sft", "dpo"],
    hyperparameters: Hyperparameters,
    suffix: str | None,
    metadata: dict[str, str] | None,
    integrations: list[dict[str, Any]] | None,
    options: dict[str, Any] | None,
) -> JobRequest:
    return JobRequest(
        base_model=tuner._require_model(),
        training_file=training_file,
        validation_file=validation_file,
        method=method,
        hyperparameters=hyperparameters,
        suffix=suffix,
        idempotency_key=key,
        metadata={**(metadata or {}), METADATA_KEY: key},
        integrations=integrations or [],
        options=options or {},
    )


class Tuner(_TunerBase):
    """Fine-tune on any backend with the same calls.

    ``Tuner("openai", model="gpt-4.1-mini-2025-04-14", api_key=...)``: options after the model
    go to the backend. ``registry=False`` keeps no local record of jobs.
    """

    def __init__(
        self,
        backend: str | Backend,
        model: str | None = None,
        *,
        registry: JobRegistry | bool | None = None,
        **options: Any,
    ) -> None:
        self._backend = load_backend(backend, **options) if isinstance(backend, str) else backend
        self.backend_name = self._backend.name
        self.model = model
        self._caps = self._backend.capabilities
        self._registry = _resolve_registry(registry)
        self._counter_of = self._backend.token_counter
        self._limit_of = getattr(self._backend, "context_limit", None)

    def __repr__(self) -> str:
        return f"Tuner({self.backend_name!r}, model={self.model!r})"

    def __enter__(self) -> Tuner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the backend's connections."""
        self._backend.close()

    @property
    def backend(self) -> Backend:
        """The backend instance (for what the common API does not cover)."""
        return self._backend

    def estimate(
        self,
        dataset: Dataset,
        hyperparameters: Hyperparameters | None = None,
        *,
        model: str | None = None,
    ) -> CostEstimate:
        """Exact tokens, epochs, billed tokens and price, before any money is spent."""
        local = self._estimate_locally(dataset, hyperparameters, model)
        refine = getattr(self._backend, "refine_estimate", None)
        if refine is None:
            return local
        blocked = self._dry_run_blocked(dataset, local, model)
        return blocked or refine(dataset, local, hyperparameters or Hyperparameters())

    def fit(
        self,
        train: Dataset,
        validation: Dataset | None = None,
        *,
        hyperparameters: Hyperparameters | None = None,
        method: Literal["sft", "dpo"] = "sft",
        suffix: str | None = None,
        metadata: dict[str, str] | None = None,
        integrations: list[dict[str, Any]] | None = None,
        idempotency_key: str | None = None,
        skip_validation: bool = False,
        options: dict[str, Any] | None = None,
    ) -> JobHandle:
        """Validate, upload and start a job; a re-run of the same fit re-attaches to its job."""
        params = hyperparameters or Hyperparameters()
        key, train_fp, valid_fp = self._prepare(
            train, validation, method, suffix, params, idempotency_key, skip_validation, options
        )
        key, existing = self._find_existing(key)
        if existing is not None:
            log.info("re-attached to job %s created earlier by the same fit", existing.id)
            self._remember(existing, idempotency_key=key, train_fingerprint=train_fp)
            return JobHandle(self, existing)
        train_ref = self._backend.upload(train, purpose="train")
        valid_ref = self._backend.upload(validation, purpose="validation") if validation else None
        request = _build_request(
            self, key, train_ref, valid_ref, method, params, suffix, metadata, integrations, options
        )
        self._mark_pending(key, train_ref.id)
        job = self._backend.create_job(request)
        log.info("created job %s on %s", job.id, self.backend_name)
        self._remember(
            job, idempotency_key=key, train_fingerprint=train_fp, validation_fingerprint=valid_fp
        )
        return JobHandle(self, job)

    def _find_existing(self, key: str) -> tuple[str, Job | None]:
        for attempt in range(_MAX_REATTEMPTS):
            candidate = _attempt_key(key, attempt)
            job_id = self._registry_job_id(candidate)
            job = self._backend.get_job(job_id) if job_id else None
            job = job or self._backend.find_job(candidate)
            if job is None or _reusable(job):
                return candidate, job
        raise FinetuneError(f"{_MAX_REATTEMPTS} failed attempts under one key; pass a new key")

    def job(self, job_id: str) -> JobHandle:
        """Re-attach to an existing job by id, from any process."""
        job = self._backend.get_job(job_id)
        self._remember(job)
        return JobHandle(self, job)

    def remote_jobs(self, *, limit: int = 20) -> list[Job]:
        """The provider's own list of recent jobs (all of them, not only this machine's)."""
        return self._backend.list_jobs(limit=limit)


class JobHandle:
    """A live view of one job: refresh, wait, cancel, read its events, metrics and model."""

    def __init__(self, tuner: Tuner, job: Job) -> None:
        self._tuner = tuner
        self._backend = tuner.backend
        self.job = job

    def __repr__(self) -> str:
        return f"<JobHandle {self.job.backend}:{self.job.id} {self.job.status.value}>"

    def _repr_html_(self) -> str:
        return self.job._repr_html_()

    @property
    def id(self) -> str:
        """The provider's job id."""
        return self.job.id

    @property
    def status(self) -> JobStatus:
        """Status as last seen (call ``refresh`` for the current one)."""
        return self.job.status

    @property
    def model(self) -> ModelRef:
        """The fine-tuned model; raises if the job has not succeeded."""
        return _model_of(self.job)

    def refresh(self) -> Job:
        """Fetch the job's current state."""
        self.job = self._backend.get_job(self.job.id)
        self._tuner._remember(self.job)
        return self.job

    def wait(
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
        ``max_interval`` (60 s hosted, 1 s local: reading a status file costs nothing).
        """
        bar = _Progress(progress, self.job)
        settings = _poll_settings(self._tuner.capabilities, poll_interval, max_interval, timeout)
        try:
            for attempt in Retrying(**settings):
                with attempt:
                    job = self.refresh()
                    bar.update(job)
                if not attempt.retry_state.outcome.failed:  # type: ignore[union-attr]
                    attempt.retry_state.set_result(job)
        except RetryError:
            raise WaitTimeout(self.job, timeout or 0.0) from None
        finally:
            bar.close()
        return _finish(self.job)

    def cancel(self) -> Job:
        """Cancel the job (a no-op on a job that already ended)."""
        if not self.job.status.is_terminal:
            self.job = self._backend.cancel_job(self.job.id)
            self._tuner._remember(self.job)
        return self.job

    def pause(self) -> Job:
        """Pause a running job (backends with pause/resume)."""
        self.job = self._backend.pause_job(self.job.id)
        return self.job

    def resume(self) -> Job:
        """Resume a paused job (or, on the local backend, a killed one from its checkpoint)."""
        self.job = self._backend.resume_job(self.job.id)
        return self.job

    def events(self) -> list[JobEvent]:
        """The job's log, oldest first."""
        return self._backend.list_events(self.job.id)

    def metrics(self) -> MetricSeries:
        """Training metrics per step."""
        return MetricSeries(self._backend.get_metrics(self.job.id))

    def checkpoints(self) -> list[Checkpoint]:
        """Intermediate checkpoints, in step order."""
        return self._backend.list_checkpoints(self.job.id)


class AsyncTuner(_TunerBase):
    """The asyncio twin of ``Tuner``: ``async with AsyncTuner("mistral", model=...) as t``."""

    def __init__(
        self,
        backend: str | AsyncBackend,
        model: str | None = None,
        *,
        registry: JobRegistry | bool | None = None,
        **options: Any,
    ) -> None:
        self._backend = (
            load_async_backend(backend, **options) if isinstance(backend, str) else backend
        )
        self.backend_name = self._backend.name
        self.model = model
        self._caps = self._backend.capabilities
        self._registry = _resolve_registry(registry)
        self._counter_of = self._backend.token_counter
        self._limit_of = getattr(self._backend, "context_limit", None)

    def __repr__(self) -> str:
        return f"AsyncTuner({self.backend_name!r}, model={self.model!r})"

    async def __aenter__(self) -> AsyncTuner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the backend's connections."""
        await self._backend.aclose()

    @property
    def backend(self) -> AsyncBackend:
        """The async backend instance."""
        return self._backend

    async def estimate(
        self,
        dataset: Dataset,
        hyperparameters: Hyperparameters | None = None,
        *,
        model: str | None = None,
    ) -> CostEstimate:
        """Exact tokens, epochs, billed tokens and price, before any money is spent."""
        local = self._estimate_locally(dataset, hyperparameters, model)
        refine = getattr(self._backend, "refine_estimate", None)
        if refine is None:
            return local
        blocked = self._dry_run_blocked(dataset, local, model)
        return blocked or await refine(dataset, local, hyperparameters or Hyperparameters())

    async def fit(
        self,
        train: Dataset,
        validation: Dataset | None = None,
        *,
        hyperparameters: Hyperparameters | None = None,
        method: Literal["sft", "dpo"] = "sft",
        suffix: str | None = None,
        metadata: dict[str, str] | None = None,
        integrations: list[dict[str, Any]] | None = None,
        idempotency_key: str | None = None,
        skip_validation: bool = False,
        options: dict[str, Any] | None = None,
    ) -> AsyncJobHandle:
        """Validate, upload and start a job; a re-run of the same fit re-attaches to its job."""
        params = hyperparameters or Hyperparameters()
        key, train_fp, valid_fp = self._prepare(
            train, validation, method, suffix, params, idempotency_key, skip_validation, options
        )
        key, existing = await self._find_existing(key)
        if existing is not None:
            log.info("re-attached to job %s created earlier by the same fit", existing.id)
            self._remember(existing, idempotency_key=key, train_fingerprint=train_fp)
            return AsyncJobHandle(self, existing)
        train_ref = await self._backend.upload(train, purpose="train")
        valid_ref = (
            await self._backend.upload(validation, purpose="validation") if validation else None
        )
        request = _build_request(
            self, key, train_ref, valid_ref, method, params, suffix, metadata, integrations, options
        )
        self._mark_pending(key, train_ref.id)
        job = await self._backend.create_job(request)
        log.info("created job %s on %s", job.id, self.backend_name)
        self._remember(
            job, idempotency_key=key, train_fingerprint=train_fp, validation_fingerprint=valid_fp
        )
        return AsyncJobHandle(self, job)

    async def _find_existing(self, key: str) -> tuple[str, Job | None]:
        for attempt in range(_MAX_REATTEMPTS):
            candidate = _attempt_key(key, attempt)
            job_id = self._registry_job_id(candidate)
            job = await self._backend.get_job(job_id) if job_id else None
            job = job or await self._backend.find_job(candidate)
            if job is None or _reusable(job):
                return candidate, job
        raise FinetuneError(f"{_MAX_REATTEMPTS} failed attempts under one key; pass a new key")

    async def job(self, job_id: str) -> AsyncJobHandle:
        """Re-attach to an existing job by id, from any process."""
        job = await self._backend.get_job(job_id)
        self._remember(job)
        return AsyncJobHandle(self, job)

    async def remote_jobs(self, *, limit: int = 20) -> list[Job]:
        """The provider's own list of recent jobs."""
        return await self._backend.list_jobs(limit=limit)


class AsyncJobHandle:
    """The asyncio twin of ``JobHandle``."""

    def __init__(self, tuner: AsyncTuner, job: Job) -> None:
        self._tuner = tuner
        self._backend = tuner.backend
        self.job = job

    def __repr__(self) -> str:
        return f"<AsyncJobHandle {self.job.backend}:{self.job.id} {self.job.status.value}>"

    @property
    def id(self) -> str:
        """The provider's job id."""
        return self.job.id

    @property
    def status(self) -> JobStatus:
        """Status as last seen (await ``refresh`` for the current one)."""
        return self.job.status

    @property
    def model(self) -> ModelRef:
        """The fine-tuned model; raises if the job has not succeeded."""
        return _model_of(self.job)

    async def refresh(self) -> Job:
        """Fetch the job's current state."""
        self.job = await self._backend.get_job(self.job.id)
        self._tuner._remember(self.job)
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
        ``max_interval`` (60 s hosted, 1 s local: reading a status file costs nothing).
        """
        bar = _Progress(progress, self.job)
        settings = _poll_settings(self._tuner.capabilities, poll_interval, max_interval, timeout)
        try:
            async for attempt in AsyncRetrying(**settings):
                with attempt:
                    job = await self.refresh()
                    bar.update(job)
                if not attempt.retry_state.outcome.failed:  # type: ignore[union-attr]
                    attempt.retry_state.set_result(job)
        except RetryError:
            raise WaitTimeout(self.job, timeout or 0.0) from None
        finally:
            bar.close()
        return _finish(self.job)

    async def cancel(self) -> Job:
        """Cancel the job (a no-op on a job that already ended)."""
        if not self.job.status.is_terminal:
            self.job = await self._backend.cancel_job(self.job.id)
            self._tuner._remember(self.job)
        return self.job

    async def pause(self) -> Job:
        """Pause a running job (backends with pause/resume)."""
        self.job = await self._backend.pause_job(self.job.id)
        return self.job

    async def resume(self) -> Job:
        """Resume a paused job."""
        self.job = await self._backend.resume_job(self.job.id)
        return self.job

    async def events(self) -> list[JobEvent]:
        """The job's log, oldest first."""
        return await self._backend.list_events(self.job.id)

    async def metrics(self) -> MetricSeries:
        """Training metrics per step."""
        return MetricSeries(await self._backend.get_metrics(self.job.id))

    async def checkpoints(self) -> list[Checkpoint]:
        """Intermediate checkpoints, in step order."""
        return await self._backend.list_checkpoints(self.job.id)

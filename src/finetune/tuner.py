"""AsyncTuner: the one implementation behind every face (jobs: ``finetune._handle``).

``Tuner`` and ``JobHandle`` (``finetune._sync``) run these coroutines on a loop thread of
their own; nothing here is written twice.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from finetune._errors import BackendError, FinetuneError, JobNotFound, RateLimitError, ServerError
from finetune._fit import (
    FitOptions,
    FitPlan,
    as_hyperparameters,
    attempt_key,
    check_budget,
    check_estimated_job,
    check_fit,
    check_fit_options,
    check_quote,
    check_reported_context,
    check_validated_job,
    derive_idempotency_key,
    json_options,
    keep_training_rows,
    keywords_explained,
    refuse_other_data,
    reusable,
    warnings_note,
    with_reported_context,
)
from finetune._handle import AsyncJobHandle, JobView
from finetune._job_records import recorded_jobs
from finetune._namespace import PublicNames, public_names
from finetune._other_names import TUNER_NAMES, OtherNames
from finetune._tuner_inputs import (
    RegistryChoice,
    check_backend_object,
    check_datasets,
    check_seconds,
    model_name,
    registry_for,
)
from finetune._words import counted
from finetune.backends import BaseBackend, Capabilities, JobRequest, as_async
from finetune.backends._hooks import quote_for, with_estimate_notes
from finetune.backends._plugins import load_backend
from finetune.backends.http import Backoff
from finetune.registry import JobRecord, JobRegistry, check_limit, key_lock, seen_elsewhere
from finetune.types import CostEstimate, Hyperparameters, Job, ModelRef

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from finetune.dataset import Dataset
    from finetune.validation import ValidationReport

__all__ = ["AsyncJobHandle", "AsyncTuner", "JobView", "TunerView", "derive_idempotency_key"]
__dir__: PublicNames = public_names(__name__)

log: logging.Logger = logging.getLogger("finetune")
_MAX_REATTEMPTS = 100
DEFAULT_CREATE_GRACE = 10.0
DEFAULT_RETRY_AFTER_CAP = 120.0


class TunerView(OtherNames):
    """What every tuner says and checks without the network: its backend, the base model,
    the registry, ``validate`` and the local estimate (``AsyncTuner`` and ``Tuner`` share
    it; ``_core`` is the AsyncTuner holding the state)."""

    other_names: ClassVar[dict[str, tuple[str, str]]] = TUNER_NAMES

    _core: AsyncTuner

    def __repr__(self) -> str:
        from finetune.backends.hf._jobdir import jobs_dir_named_by

        folder = jobs_dir_named_by(self._core._endpoint)  # a local one, not the default
        where = f", jobs_dir={str(folder)!r}" if folder else ""
        return f"{type(self).__name__}({self.backend_name!r}, model={self.model!r}{where})"

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            f"{type(self).__name__} objects hold connections: not pickled or copied; make one in "
            "each worker process, and send it the Dataset (which pickles) or a job's id (.job)"
        )

    @property
    def backend_name(self) -> str:
        """The backend's name."""
        return self._core._backend.name

    @property
    def model(self) -> str | None:
        """The base model fits start from."""
        return self._core._model

    @model.setter
    def model(self, value: str | None) -> None:
        self._core._model = model_name(value, self.backend)

    @property
    def backend(self) -> BaseBackend:
        """The backend instance, for what the common API does not cover (from a sync
        ``Tuner``, run its coroutines with ``tuner.run``)."""
        return self._core._backend

    @property
    def capabilities(self) -> Capabilities:
        """What this backend can do."""
        return self._core._backend.capabilities

    @property
    def registry(self) -> JobRegistry | None:
        """The job registry (``None`` when turned off)."""
        return self._core._registry

    @property
    def base_model(self) -> ModelRef:
        """The untuned base model, as a ModelRef for evaluation, asked as this backend was
        built (with its key and API root; ``Tuner("hf", chat_template=...)``: that template)."""
        backend = self.backend
        model = ModelRef(backend=self.backend_name, name=self._require_model())
        return model._asked_as(backend.connection_options(), backend.predictor_options())

    # -- before any money is spent: local work, the same from either face --

    def _require_model(self, model: str | ModelRef | None = None) -> str:
        chosen = model_name(model, self.backend) or self.model
        if not chosen:
            from finetune.validation._catalog import models_hint  # the table only when asked

            hint = models_hint(self.backend_name)
            raise ValueError(f'no model given: Tuner("{self.backend_name}", model="..."){hint}')
        return chosen

    @keywords_explained
    def validate(
        self,
        dataset: Dataset,
        validation: Dataset | None = None,
        *,
        model: str | ModelRef | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> ValidationReport:
        """Check every row against this backend's rules and the model's context limit; with
        the fit's ``options``, the checks fit would make (``hf``: ``max_length``), and a job
        fit would refuse (an option, a validation set its method takes none of) is refused.
        Local CPU work, no network, no SDK import: it runs in the calling thread (``await
        asyncio.to_thread(tuner.validate, data)`` from a coroutine; ``fit`` and ``estimate``
        validate off the loop themselves)."""
        from finetune.backends._hooks import context_for, counter_for_fit, rules_for
        from finetune.validation import validate

        check_datasets(dataset, validation)
        chosen = self._require_model(model)
        check_validated_job(self.backend, chosen, (dataset, validation), options)
        report = validate(
            dataset,
            target=rules_for(self.backend, chosen, options),
            model=chosen,
            validation=validation,
            token_counter=counter_for_fit(self.backend, chosen, options),
            context_limit=context_for(self.backend, chosen, options),
        )
        report.backend = self.backend_name
        return report

    @keywords_explained
    def estimate_locally(
        self,
        dataset: Dataset,
        hyperparameters: Hyperparameters | Mapping[str, Any] | None = None,
        *,
        model: str | ModelRef | None = None,
        price_per_million: float | None = None,
        validation: Dataset | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> CostEstimate:
        """Exact tokens, epochs, billed tokens and price from our own tables (no network), or
        at ``price_per_million``, with the ``validation`` set's tokens where the provider
        bills them, against the context the fit's ``options`` leave; a provider that is
        closing, or creates no more jobs, says so in ``notes``."""
        from finetune.backends._hooks import context_for, counter_for_fit
        from finetune.validation import estimate

        check_datasets(dataset, validation)
        chosen, params = self._require_model(model), as_hyperparameters(hyperparameters)
        request = check_estimated_job(self, chosen, dataset, params, (validation, options))
        figures = estimate(
            dataset,
            target=self.backend.validation_rules(),
            backend=self.backend_name,
            model=chosen,
            hyperparameters=params,
            token_counter=counter_for_fit(self.backend, chosen, options),
            context_limit=context_for(self.backend, chosen, options),
            price_per_million=price_per_million,
            hosted=self.backend.capabilities.hosted,
            validation=validation,
        )
        return with_estimate_notes(self.backend, request, figures)

    def _estimate_parts(
        self,
        dataset: Dataset,
        hyperparameters: Hyperparameters | Mapping[str, Any] | None = None,
        *,
        model: str | ModelRef | None = None,
        price_per_million: float | None = None,
        validation: Dataset | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> tuple[CostEstimate, ValidationReport | None]:
        """The local half of ``estimate``: our figures, and the validation report the
        provider's quote depends on (``None`` when the backend offers no quote)."""
        local = self.estimate_locally(
            dataset,
            hyperparameters,
            model=model,
            price_per_million=price_per_million,
            validation=validation,
            options=options,
        )
        if not self.backend.supports("refine_estimate"):
            return local, None
        return local, self.validate(dataset, validation, model=model, options=options)


class AsyncTuner(TunerView):
    """Fine-tune on any backend with the same calls, from asyncio code.

    ``async with AsyncTuner("openai", model="gpt-4.1-mini-2025-04-14") as tuner``: keyword
    options after the model go to the backend (``api_key``, ``base_url``, ...);
    ``registry=False`` keeps no local record of jobs (a path keeps it in that file);
    ``create_grace`` is how long an unclear create (a 5xx or a dropped connection after
    sending) is looked for before trying again.
    """

    def __init__(
        self,
        backend: str | Any,
        model: str | os.PathLike[str] | ModelRef | None = None,
        *,
        registry: RegistryChoice = None,
        create_grace: float = DEFAULT_CREATE_GRACE,
        **options: Any,
    ) -> None:
        self._registry = registry_for(registry)  # a wrong one refused before any client
        if isinstance(backend, str):
            self._backend = load_backend(backend, **options)
        elif options:
            raise TypeError(
                f"options {sorted(options)} go to the backend's constructor; pass them there "
                "or give the backend by name"
            )
        else:
            check_backend_object(backend)
            self._backend = as_async(backend)
        self._core = self
        self._model = model_name(model, self._backend)
        check_seconds(create_grace=create_grace)
        if create_grace < 0:
            raise ValueError(f"create_grace is 0 seconds or more, not {create_grace}")
        self._create_grace = create_grace

    async def __aenter__(self) -> AsyncTuner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the backend's connections."""
        await self._backend.aclose()

    @keywords_explained
    async def estimate(
        self,
        dataset: Dataset,
        hyperparameters: Hyperparameters | Mapping[str, Any] | None = None,
        *,
        model: str | ModelRef | None = None,
        price_per_million: float | None = None,
        validation: Dataset | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> CostEstimate:
        """Our estimate, with the provider's own quote beside it where it offers one;
        ``price_per_million`` (USD per million billed tokens) replaces our table's price; the
        ``validation`` set a fit would pass counts where the provider bills it (Together);
        ``options`` are the fit's, for the job it would start (Together:
        ``{"full_finetune": True}`` is quoted as a full fine-tune)."""
        local, report = await asyncio.to_thread(  # CPU work: never on the caller's loop
            functools.partial(
                self._estimate_parts,
                dataset,
                hyperparameters,
                model=model,
                price_per_million=price_per_million,
                validation=validation,
                options=options,
            )
        )
        if report is None:
            return local
        params = as_hyperparameters(hyperparameters)
        return await self.refine_estimate(dataset, local, params, report, validation, options)

    async def refine_estimate(
        self,
        dataset: Dataset,
        local: CostEstimate,
        hyperparameters: Hyperparameters,
        report: ValidationReport,
        validation: Dataset | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> CostEstimate:
        """``local`` with the provider's quote beside it, only for data with no validation
        errors (in the training set or the ``validation`` set): nothing invalid is ever
        sent, not even to be priced."""
        if not report.ok:
            note = (
                "the provider's quote was skipped: "
                f"{counted(len(report.errors), 'validation error')} "
                "(tuner.validate, or finetune validate, lists them); the figures above are our "
                "own"
            )
            return local.with_notes(note)
        quoted = await quote_for(
            self._backend, dataset, local, hyperparameters, validation, options or {}
        )
        if local.context_limit is not None:
            return quoted
        checked = functools.partial(with_reported_context, self, quoted, dataset, validation)
        return await asyncio.to_thread(checked, options)

    # -- fit: exactly one job per fit --

    def plan_fit(
        self, train: Dataset, validation: Dataset | None = None, **fit: Unpack[FitOptions]
    ) -> FitPlan:
        """The local half of ``fit``: checks, validation and the idempotency key (no network)."""
        check_fit_options(fit)
        check_datasets(train, validation, "train")
        params = as_hyperparameters(fit.get("hyperparameters"))
        method = fit.get("method", "sft")
        suffix, options = fit.get("suffix"), json_options(fit.get("options"))
        model = self._require_model()
        check_fit(self._backend, train, validation, method, suffix, params)
        context_checked = True  # skip_validation: nothing is checked, nor checked again
        if not fit.get("skip_validation", False):
            report = self.validate(train, validation, options=options).raise_for_errors()
            if note := warnings_note(report):
                log.warning("%s", note)
            context_checked = report.stats.get("context_limit") is not None
        check_budget(self, fit.get("max_cost"), (train, validation, params, options))
        train_fp = train.fingerprint()
        valid_fp = validation.fingerprint() if validation is not None else None
        trained_with = self._backend.job_options(options)
        key = fit.get("idempotency_key") or derive_idempotency_key(
            self.backend_name, model, method, train_fp, valid_fp, params, suffix, trained_with
        )
        return FitPlan(
            train=train,
            validation=validation,
            model=model,
            method=method,
            hyperparameters=params,
            suffix=suffix,
            metadata=dict(fit.get("metadata") or {}),
            integrations=list(fit.get("integrations") or []),
            options=dict(options or {}),
            key=key,
            train_fingerprint=train_fp,
            validation_fingerprint=valid_fp,
            context_checked=context_checked,
            max_cost=fit.get("max_cost"),
        )

    async def fit(
        self, train: Dataset, validation: Dataset | None = None, **fit: Unpack[FitOptions]
    ) -> AsyncJobHandle:
        """Validate, upload and start a job; a re-run of the same fit re-attaches to its job.

        Keyword arguments: see ``FitOptions`` (``hyperparameters``, ``method``, ``suffix``,
        ``metadata``, ``integrations``, ``idempotency_key``, ``skip_validation``,
        ``options``, ``max_cost``). Two processes running the same fit at once make one job:
        the second waits for the first and re-attaches to what it made.
        """
        # validation is CPU work, seconds to minutes: never on the caller's event loop
        plan = await asyncio.to_thread(functools.partial(self.plan_fit, train, validation, **fit))
        return await self.start(plan)

    async def start(self, plan: FitPlan) -> AsyncJobHandle:
        """The network half of ``fit``: under a cross-process lock on the fit's key, re-attach
        to its job if one exists, else upload and create exactly one."""
        await self._backend.preflight(plan.request(self.backend_name, plan.key))
        if not plan.context_checked:  # no limit known at validation: the provider's, if any
            await asyncio.to_thread(check_reported_context, self, plan)
        lock = key_lock(self._registry, self.backend_name, self._endpoint, plan.key)
        async with lock:
            job, key = await self._remembered_job(plan)
            reattached = job is not None
            if job is None:
                job, key, reattached = await self._upload_and_create(plan)
            else:
                log.info("re-attached to job %s created earlier by the same fit", job.id)
            await self._remember(
                job,
                idempotency_key=key,
                train_fingerprint=plan.train_fingerprint,
                validation_fingerprint=plan.validation_fingerprint,
            )
        await self._remember_training_rows(plan)
        return AsyncJobHandle(self, job, reattached=reattached)

    async def _remember_training_rows(self, plan: FitPlan) -> None:
        """The digests of the training rows, for ``ft.evaluate``; the job exists by now, so a
        failure here is logged, never raised."""
        if self._registry is None:
            return
        try:
            await asyncio.to_thread(keep_training_rows, self._registry, plan)
        except (FinetuneError, OSError, TypeError, ValueError) as exc:  # the file moved, ...
            log.warning("the registry keeps no digests of this fit's training rows: %s", exc)

    @property
    def _endpoint(self) -> str:
        return self._backend.identity

    @property
    def _registry_file(self) -> str | None:
        """Where this Tuner records its jobs: ``ft.evaluate`` reads their models' rows there
        (``None``: it keeps none, and the default registry is read, as for a ref by hand)."""
        return str(self._registry.path) if self._registry else None

    async def _remembered_job(self, plan: FitPlan) -> tuple[Job | None, str]:
        """A job the registry remembers for this fit's key (or a later attempt of it),
        verified."""
        key = plan.key
        if self._registry is None:
            return None, key
        for attempt in range(_MAX_REATTEMPTS):
            candidate = attempt_key(key, attempt)
            job = await self._hint(candidate, plan)
            if job is None:
                return None, key
            if reusable(job):
                return job, candidate
        return None, key

    async def _hint(self, key: str, plan: FitPlan) -> Job | None:
        registry = self._registry
        assert registry is not None
        found = await asyncio.to_thread(
            registry.find_by_key, self.backend_name, key, self._endpoint
        )
        if found is None:
            return None
        refuse_other_data(found, plan)
        try:
            job = await self._backend.get_job(found.job_id)
        except JobNotFound:
            why = f"{self.backend_name} does not know it; dropping the stale record"
            await self._forget(found.job_id, why)
            return None
        if not self._backend.owns(job, key):
            await self._forget(found.job_id, "it was not created by this fit")
            return None
        return job

    async def _forget(self, job_id: str, why: str) -> None:
        """Drop a remembered id that is no longer this fit's job (logged, never fatal)."""
        log.warning("the registry remembers job %s for this fit, but %s", job_id, why)
        assert self._registry is not None
        await asyncio.to_thread(self._registry.forget, self.backend_name, job_id, self._endpoint)

    async def _upload_and_create(self, plan: FitPlan) -> tuple[Job, str, bool]:
        await check_quote(self, plan)
        train_ref = await self._backend.upload(plan.train, purpose="train")
        valid_ref = None
        if plan.validation is not None:
            valid_ref = await self._backend.upload(plan.validation, purpose="validation")
        for attempt in range(_MAX_REATTEMPTS):
            key = attempt_key(plan.key, attempt)
            request = plan.request(self.backend_name, key, train_ref, valid_ref)
            existing = await self._backend.find_job(request)
            if existing is None:
                return await self._create(request), key, False
            if reusable(existing):
                log.info("re-attached to job %s created earlier by the same fit", existing.id)
                return existing, key, True
        raise FinetuneError(f"{_MAX_REATTEMPTS} failed attempts under one key; pass a new key")

    async def _create(self, request: JobRequest) -> Job:
        """Send the create; after an unclear failure, look for the job before sending again."""
        if self._registry is not None:
            await asyncio.to_thread(
                self._registry.mark_pending,
                self.backend_name,
                request.idempotency_key,
                request.base_model,
                request.training_file.id,
                self._endpoint,
            )
        backoff = Backoff(first=1.0, cap=30.0)
        attempts = self._backend.attempts
        for attempt in range(1, attempts + 1):
            try:
                job = await self._backend.create_job(request)
            except BackendError as error:
                if not error.retryable or attempt == attempts:
                    raise
                if (error.retry_after or 0) > DEFAULT_RETRY_AFTER_CAP:
                    raise
                if not isinstance(error, RateLimitError):
                    found = await self._settle(request, error)
                    if found is not None:
                        return found
                await asyncio.sleep(backoff.delay(attempt, error))
            else:
                log.info("created job %s on %s", job.id, self.backend_name)
                return job
        raise AssertionError("unreachable")  # pragma: no cover

    async def _settle(self, request: JobRequest, error: BackendError) -> Job | None:
        """After a create whose outcome is unknown, look for the job for ``create_grace``."""
        if not self._backend.supports("find_job"):
            raise ServerError(
                f"the create request failed in a way that may still have created the job "
                f"({error}); {self.backend_name} cannot look a job up by what it trains, so it "
                "is not sent again. Check tuner.remote_jobs() before fitting again",
                backend=self.backend_name,
            ) from error
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._create_grace
        delay = 0.25
        while True:
            try:
                found = await self._backend.find_job(request)
            except BackendError as lookup:
                if not lookup.retryable:
                    raise
                found = None
            if found is not None:
                log.info("the unclear create did make job %s; using it", found.id)
                return found
            if loop.time() + delay > deadline:
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 4.0)

    async def _remember(self, job: Job, **lineage: str | None) -> None:
        if self._registry is not None:
            await asyncio.to_thread(self._registry.record, job, endpoint=self._endpoint, **lineage)

    # -- jobs --

    async def job(self, job_id: str) -> AsyncJobHandle:
        """Re-attach to a job by id or as progress lines name it (``hf:hfjob-...``); one
        reached by its location (a local job's folder) is left to that location's registry."""
        if not isinstance(job_id, str) or job_id.strip() in ("", ".", ".."):
            wrong = TypeError if not isinstance(job_id, str) else ValueError
            raise wrong(f"a job id is text such as job.id gave, not {job_id!r}")
        try:
            job = await self._backend.get_job(job_id)
        except JobNotFound as error:
            backend, colon, named = job_id.partition(":")
            if colon and named and backend == self.backend_name:
                return await self.job(named)
            where = (error, self._registry, self._endpoint, job_id)
            raise await asyncio.to_thread(seen_elsewhere, *where) from None
        by_its_id = job.id == job_id  # not by a location, such as a local job's folder
        if by_its_id:
            await self._remember(job)
        return AsyncJobHandle(self, job, recorded=by_its_id)

    async def remote_jobs(self, *, limit: int = 20) -> list[Job]:
        """The provider's own list of recent jobs (all of them, not only this machine's)."""
        limit = check_limit(limit)  # as the registry's: never sent as 0 or -1, or as NumPy's
        self._require("list_jobs")
        reached = self._backend.connection_options()
        jobs = await self._backend.list_jobs(limit=limit)
        return [job._reached_through(reached, self._registry_file) for job in jobs]

    async def jobs(self, *, limit: int = 50, refresh: bool = False) -> list[JobRecord]:
        """Jobs this machine started on this backend, from the registry (newest first), a
        local job not ended read again from its folder; ``refresh`` asks a hosted provider
        about each job not ended (a request each), else it is as last seen."""
        return await recorded_jobs(self, limit, refresh=refresh)

    def _require(self, operation: str) -> None:
        if not self._backend.supports(operation):
            raise self._backend.unsupported(operation)

"""FakeBackend: a deterministic in-process backend for your own tests and for demos.

Jobs move through validating -> queued -> running -> succeeded (or failed) as time passes,
with the durations you choose. State lives in a namespace shared by every FakeBackend of the
same ``namespace`` in the process, so a second Tuner can re-attach to a job by id. Its models
answer through ``FakePredictor``, so ``ft.evaluate`` runs end to end in tests too.

The backend is synchronous: the Tuner runs it in worker threads (``BackendAdapter``), as it
would a plugin written without ``async``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from finetune._errors import DatasetError, InvalidRequestError, JobNotFound
from finetune._namespace import PublicNames, public_names
from finetune.backends.base import EVERY_KIND, SFT_AND_DPO, Capabilities, JobRequest
from finetune.types import (
    Checkpoint,
    FileRef,
    Job,
    JobError,
    JobEvent,
    JobStatus,
    MetricPoint,
)

if TYPE_CHECKING:
    from finetune.dataset import Dataset
    from finetune.evaluation._prompts import Messages
    from finetune.types import Example
    from finetune.validation import TokenCounter

__all__ = ["FakeBackend", "FakeFailure", "FakePredictor"]
__dir__: PublicNames = public_names(__name__)

Lesson = tuple[str, str]  # a training example's last user message, and its reply


@dataclass(frozen=True)
class FakeFailure:
    """Make fake jobs fail: with this error code and message, after ``after`` seconds running."""

    code: str = "invalid_training_file"
    message: str = "The job failed (simulated)."
    after: float = 0.0


@dataclass
class _FakeJob:
    request: JobRequest
    id: str
    created: float
    created_at: datetime
    failure: FakeFailure | None
    phases: tuple[float, float, float]  # validating, queued, running: fixed when created
    steps: int
    cancelled_at: float | None = None
    paused_at: float | None = None
    paused_total: float = 0.0


@dataclass
class _Store:
    files: dict[str, FileRef] = field(default_factory=dict)
    examples: dict[str, tuple[Example, ...]] = field(default_factory=dict)  # by file id
    jobs: dict[str, _FakeJob] = field(default_factory=dict)
    uploads: int = 0
    creates: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Job ids restart with each store: the token tells this store's jobs from another's.
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


_stores: dict[str, _Store] = {}


def _store_is_gone(identity: str) -> bool:
    """Whether ``identity`` (a ``FakeBackend.identity``) names a store this process no
    longer holds: another process's, or a namespace's before a ``reset``. Its jobs went with
    it, and no Tuner can re-attach to them."""
    namespace, _, token = identity.removeprefix("fake:").rpartition(":")
    store = _stores.get(namespace)
    return store is None or store.token != token


class FakeBackend:
    """A deterministic backend with no network: configurable durations, failures and metrics.

    A job keeps the durations and step count of the backend that created it, as a provider's
    job has one timeline: another ``FakeBackend`` of the same namespace (the CLI's, say) sees
    the same status.

    Args:
        namespace: the jobs and files this backend shares with the others of its name.
        validating: seconds a job is validating.
        queued: seconds a job is queued, after validating.
        running: seconds a job runs, its steps spread over them.
        steps: how many training steps (and metric points) a job reports.
        fail: make every job fail as this ``FakeFailure`` says.
        clock: the time source the durations are measured with (a test's own clock).
        validation_target: the rule set ``validate`` applies (``openai``, ``mistral``, ``hf``).
        context_limit: the context limit validation checks examples against.
    """

    name = "fake"
    capabilities: Capabilities = Capabilities(
        methods=SFT_AND_DPO,
        example_kinds=EVERY_KIND,
        tools=True,
        pause_resume=True,
        hosted=False,
        max_suffix_length=64,
    )

    def __init__(
        self,
        *,
        namespace: str = "default",
        validating: float = 0.02,
        queued: float = 0.02,
        running: float = 0.1,
        steps: int = 10,
        fail: FakeFailure | None = None,
        clock: Callable[[], float] = time.monotonic,
        validation_target: str = "openai",
        context_limit: int | None = None,
    ) -> None:
        self._namespace = namespace
        self._context_limit = context_limit
        self._store = _stores.setdefault(namespace, _Store())
        self._phases = (validating, queued, running)
        self._steps = steps
        self._fail = fail
        self._clock = clock
        self.capabilities = dataclasses.replace(
            FakeBackend.capabilities, validation_target=validation_target
        )

    def __repr__(self) -> str:
        return f"FakeBackend(jobs={len(self._store.jobs)})"

    @property
    def identity(self) -> str:
        """The namespace and its store: jobs of one namespace are one account until
        ``reset``, and live as long as the process. Job ids restart with each store, so the
        job registry keeps another store's ``ftjob-fake-0001`` apart from this one's."""
        return f"fake:{self._namespace}:{self._store.token}"

    @staticmethod
    def reset(namespace: str = "default") -> None:
        """Forget every file and job of a namespace."""
        _stores.pop(namespace, None)

    @property
    def upload_count(self) -> int:
        """How many files were really uploaded (reused ones are not counted)."""
        return self._store.uploads

    @property
    def create_count(self) -> int:
        """How many jobs were created."""
        return self._store.creates

    def token_counter(self, model: str) -> TokenCounter:
        """The counter of the rule set this fake validates as (``validation_target``)."""
        from finetune.validation import counter_for

        return counter_for(self.capabilities.validation_target, model)

    def context_limit(self, model: str) -> int | None:
        """The tokens an example of any model may hold, as this fake was built with
        (``context_limit``); ``None``: unknown, so validation checks none against it (and warns
        ``unchecked_context``), unless the model is in the table of ``validation_target``."""
        return self._context_limit

    def upload(self, dataset: Dataset, *, purpose: str = "train") -> FileRef:
        """Keep the examples in memory, once per fingerprint, as a provider keeps a file."""
        name = f"{dataset.fingerprint()[:16]}-{purpose}.jsonl"
        size, examples = _read_examples(dataset)
        with self._store.lock:
            for ref in self._store.files.values():
                if ref.filename == name and ref.bytes == size:
                    return ref
            file_id = f"file-{hashlib.sha256(name.encode()).hexdigest()[:12]}"
            ref = FileRef(backend=self.name, id=file_id, filename=name, bytes=size)
            self._store.files[file_id] = ref
            self._store.examples[file_id] = examples
            self._store.uploads += 1
        return ref

    def create_job(self, request: JobRequest) -> Job:
        """A job that moves through its phases on the clock (or fails as ``fail`` says)."""
        if request.training_file.id not in self._store.files:
            raise InvalidRequestError(
                f"unknown training file {request.training_file.id}",
                backend=self.name,
                status_code=400,
                param="training_file",
            )
        with self._store.lock:
            self._store.creates += 1
            job_id = f"ftjob-fake-{self._store.creates:04d}"
            self._store.jobs[job_id] = _FakeJob(
                request=request,
                id=job_id,
                created=self._clock(),
                created_at=datetime.now(timezone.utc),
                failure=self._fail,
                phases=self._phases,
                steps=self._steps,
            )
        return self.get_job(job_id)

    def find_job(self, request: JobRequest) -> Job | None:
        """The job created under ``request.idempotency_key``, if any."""
        for fake in list(self._store.jobs.values()):
            if fake.request.idempotency_key == request.idempotency_key:
                return self._view(fake)
        return None

    def get_job(self, job_id: str) -> Job:
        """The job as the clock puts it now."""
        return self._view(self._fake(job_id))

    def list_jobs(self, *, limit: int = 20) -> list[Job]:
        """The newest ``limit`` jobs of this namespace."""
        fakes = sorted(self._store.jobs.values(), key=lambda f: f.created, reverse=True)
        return [self._view(f) for f in fakes[:limit]]

    def cancel_job(self, job_id: str) -> Job:
        """Cancel a job that has not ended; an ended one stays as it is."""
        fake = self._fake(job_id)
        if not self._status(fake)[0].is_terminal:
            fake.cancelled_at = self._clock()
        return self._view(fake)

    def pause_job(self, job_id: str) -> Job:
        """Pause a running job: its clock stops until ``resume_job``."""
        fake = self._fake(job_id)
        if self._status(fake)[0] is JobStatus.RUNNING:
            fake.paused_at = self._clock()
        return self._view(fake)

    def resume_job(self, job_id: str) -> Job:
        """Resume a paused job: its clock runs again from where it stopped."""
        fake = self._fake(job_id)
        if fake.paused_at is not None:
            fake.paused_total += self._clock() - fake.paused_at
            fake.paused_at = None
        return self._view(fake)

    def list_events(self, job_id: str) -> list[JobEvent]:
        """The events of the phases the job has passed, oldest first."""
        fake = self._fake(job_id)
        status, elapsed = self._status(fake)
        validating, queued, _ = fake.phases
        events = [(0.0, "info", "Created fine-tuning job")]
        events.append((0.0, "info", "Validating training file"))
        if elapsed >= validating:
            events.append((validating, "info", "Files validated, job queued"))
        if elapsed >= validating + queued:
            events.append((validating + queued, "info", "Fine-tuning job started"))
        for point in self._points(fake, elapsed):
            events.append((elapsed, "info", f"Step {point.step}: loss={point.train_loss:.4f}"))
        events.append((elapsed, *_final_event(status, fake)))
        return [
            JobEvent(created_at=fake.created_at + timedelta(seconds=at), level=level, message=msg)
            for at, level, msg in events
            if msg
        ]

    def get_metrics(self, job_id: str) -> list[MetricPoint]:
        """A falling loss for each step trained so far."""
        fake = self._fake(job_id)
        return self._points(fake, self._status(fake)[1])

    def list_checkpoints(self, job_id: str) -> list[Checkpoint]:
        """A checkpoint for each step with metrics."""
        fake = self._fake(job_id)
        points = self._points(fake, self._status(fake)[1])
        return [
            Checkpoint(id=f"ckpt-{fake.id}-{p.step}", step=p.step, model=f"{fake.id}:ckpt-{p.step}")
            for p in points
            if p.step % max(1, fake.steps // 3) == 0
        ]

    def close(self) -> None:
        """Nothing to close: the jobs live in this process until it ends."""

    @classmethod
    def trained_on(cls, model: str, *, namespace: str = "default") -> tuple[Example, ...] | None:
        """The examples the fake job named in ``model`` was trained on (``None`` for a base
        model): ``ft.evaluate`` notes a candidate scored on them."""
        fake = _job_of(model, namespace)
        if fake is None:
            return None
        return _stores[namespace].examples.get(fake.request.training_file.id, ())

    def connection_options(self) -> dict[str, Any]:
        """A namespace other than the default: this Tuner's models are asked in it."""
        return {} if self._namespace == "default" else {"namespace": self._namespace}

    @classmethod
    def predictor(cls, model: str, *, namespace: str = "default") -> FakePredictor:
        """A fake model's answers for ``ft.evaluate`` (see ``FakePredictor``); a job of
        another ``namespace`` is named in ``predictor_options={name: {"namespace": ...}}``."""
        return FakePredictor(model, namespace=namespace)

    def _fake(self, job_id: str) -> _FakeJob:
        try:
            return self._store.jobs[job_id]
        except KeyError:
            raise JobNotFound(
                f"no job {job_id!r} in namespace {self._namespace!r} (fake jobs live in the "
                "process that made them)",
                backend=self.name,
                status_code=404,
            ) from None

    def _elapsed(self, fake: _FakeJob) -> float:
        now = fake.paused_at if fake.paused_at is not None else self._clock()
        if fake.cancelled_at is not None:
            now = min(now, fake.cancelled_at)
        return now - fake.created - fake.paused_total

    def _status(self, fake: _FakeJob) -> tuple[JobStatus, float]:
        validating, queued, running = fake.phases
        elapsed = self._elapsed(fake)
        failure = fake.failure
        if failure is not None and elapsed >= validating + queued + failure.after:
            return JobStatus.FAILED, validating + queued + failure.after
        if fake.cancelled_at is not None:
            return JobStatus.CANCELLED, elapsed
        if elapsed >= validating + queued + running:
            return JobStatus.SUCCEEDED, validating + queued + running
        if fake.paused_at is not None:
            return JobStatus.PAUSED, elapsed
        if elapsed >= validating + queued:
            return JobStatus.RUNNING, elapsed
        if elapsed >= validating:
            return JobStatus.QUEUED, elapsed
        return JobStatus.VALIDATING, elapsed

    def _points(self, fake: _FakeJob, elapsed: float) -> list[MetricPoint]:
        validating, queued, running = fake.phases
        done = (elapsed - validating - queued) / running if running else 1.0
        reached = min(fake.steps, max(0, math.floor(done * fake.steps + 1e-9)))
        return [
            MetricPoint(
                step=step,
                epoch=step / fake.steps,
                train_loss=round(2.0 * math.exp(-step / fake.steps * 2), 6),
                valid_loss=round(2.1 * math.exp(-step / fake.steps * 1.8), 6),
            )
            for step in range(1, reached + 1)
        ]

    def _view(self, fake: _FakeJob) -> Job:
        status, _ = self._status(fake)
        request = fake.request
        succeeded = status is JobStatus.SUCCEEDED
        suffix = f":{request.suffix}" if request.suffix else ""
        error = None
        if status is JobStatus.FAILED and fake.failure is not None:
            error = JobError(code=fake.failure.code, message=fake.failure.message)
        return Job(
            id=fake.id,
            backend=self.name,
            base_model=request.base_model,
            status=status,
            created_at=fake.created_at,
            fine_tuned_model=f"ft:{request.base_model}{suffix}:{fake.id}" if succeeded else None,
            error=error,
            method=request.method,
            hyperparameters=request.hyperparameters,
            training_file=request.training_file.id,
            validation_file=request.validation_file.id if request.validation_file else None,
            suffix=request.suffix,
            metadata=request.metadata,
            raw={"id": fake.id, "status": status.value},
        )


class FakePredictor:
    """How fake models answer, deterministically, with no model behind them.

    A base model repeats the last user message. A model a fake job tuned (its
    ``fine_tuned_model``, or one of its checkpoints) answers with the reply of the training
    example whose last user message is the same, else shares the most words with the
    question (ties: the earlier example); a question sharing no word with any is repeated, as
    the base model would. So a tuned fake beats its base on questions like the ones it was
    trained on, and ``ft.evaluate`` runs end to end in tests. ``name`` holds a digest of what
    the model learned: a prediction cache never serves one fake job's answers for another's.
    """

    def __init__(self, model: str, *, namespace: str = "default") -> None:
        self.model = model
        learned = FakeBackend.trained_on(model, namespace=namespace) or ()
        self._lessons = tuple(_lesson(example) for example in learned)
        digest = hashlib.sha256(repr(self._lessons).encode()).hexdigest()[:12]
        self.name: str = f"fake:{model}:{digest if self._lessons else 'base'}"
        self._words = [set(_words(question)) for question, _ in self._lessons]

    def __repr__(self) -> str:
        return f"FakePredictor({self.model!r}, lessons={len(self._lessons)})"

    def predict(self, messages: Messages) -> str:
        """The reply to ``messages`` (see the class)."""
        question = _last_user_message(messages)
        for asked, reply in self._lessons:
            if asked == question:
                return reply
        words = set(_words(question))
        best, reply = 0.0, question
        for known, (_, answer) in zip(self._words, self._lessons, strict=True):
            overlap = len(words & known) / len(words | known) if words | known else 0.0
            if overlap > best:
                best, reply = overlap, answer
        return reply

    async def apredict(self, messages: Messages) -> str:
        """As ``predict``."""
        return self.predict(messages)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _read_examples(dataset: Dataset) -> tuple[int, tuple[Example, ...]]:
    """How many records the dataset holds, and the examples among them (what a fake job
    learns; a row that is no example teaches nothing)."""
    from finetune.dataset import parse_example

    count, examples = 0, []
    for record in dataset.records():
        count += 1
        try:
            examples.append(parse_example(record.data, kind=dataset.declared_kind))
        except (DatasetError, ValueError, TypeError):
            continue
    return count, tuple(examples)


def _lesson(example: Example) -> Lesson:
    """An example's last user message and its reply."""
    from finetune.evaluation._prompts import split_example

    prompt, reply = split_example(example)
    return _last_user_message(prompt), reply


def _last_user_message(messages: Messages) -> str:
    return next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")


_FAKE_JOB_ID = re.compile(r"ftjob-fake-\d+")


def _job_of(model: str, namespace: str) -> _FakeJob | None:
    """The fake job named in ``model``; ``None`` for a base model."""
    found = _FAKE_JOB_ID.search(model)
    if found is None:
        return None
    fake = _stores.get(namespace, _Store()).jobs.get(found.group())
    if fake is None:
        raise JobNotFound(
            f"no fake job {found.group()!r} in namespace {namespace!r} to answer as {model!r} "
            "(fake jobs live in the process that made them)",
            backend=FakeBackend.name,
        )
    return fake


def _final_event(status: JobStatus, fake: _FakeJob) -> tuple[str, str]:
    if status is JobStatus.SUCCEEDED:
        return "info", "The job has successfully completed"
    if status is JobStatus.FAILED and fake.failure is not None:
        return "error", f"Job failed: {fake.failure.message}"
    if status is JobStatus.CANCELLED:
        return "info", "Job cancelled"
    return "info", ""

"""OpenAI backend: files, uploads and fine-tuning jobs through the official ``openai`` SDK.

Payloads are converted at this edge into finetune's models. Sync and async share every mapping
function; only the I/O differs.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tenacity import (
    AsyncRetrying,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from finetune._errors import (
    AuthenticationError,
    FinetuneError,
    InvalidRequestError,
    JobNotFound,
    MissingDependency,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnsupportedFeature,
)
from finetune.backends._http import (
    as_dict,
    file_name,
    is_retryable,
    provider_file,
    redact,
    retry_after_seconds,
    unix_time,
)
from finetune.backends.base import Capabilities, JobRequest
from finetune.types import (
    Checkpoint,
    FileRef,
    Hyperparameters,
    Job,
    JobError,
    JobEvent,
    JobStatus,
    MetricPoint,
)

if TYPE_CHECKING:
    from finetune.dataset import Dataset
    from finetune.validation import TokenCounter

__all__ = ["STATUS_MAP", "AsyncOpenAIBackend", "OpenAIBackend"]

log = logging.getLogger("finetune")
NAME = "openai"
METADATA_KEY = "finetune_key"
MB = 1024 * 1024

STATUS_MAP: dict[str, JobStatus] = {
    "validating_files": JobStatus.VALIDATING,
    "queued": JobStatus.QUEUED,
    "running": JobStatus.RUNNING,
    "paused": JobStatus.PAUSED,
    "pausing": JobStatus.RUNNING,
    "resuming": JobStatus.RUNNING,
    "succeeded": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
}

CAPABILITIES = Capabilities(
    methods=frozenset({"sft", "dpo"}),
    example_kinds=frozenset({"chat", "completion", "preference"}),
    tools=True,
    validation_file=True,
    pause_resume=True,
    hosted=True,
    validation_target="openai",
    max_suffix_length=64,
)


def _sdk() -> Any:
    try:
        import openai
    except ImportError as exc:  # pragma: no cover - openai is a core dependency
        raise MissingDependency("openai", purpose="for the OpenAI backend") from exc
    return openai


# ---- mapping: provider payloads <-> our models ------------------------------------------------


def job_from_payload(payload: Any) -> Job:
    """An OpenAI ``fine_tuning.job`` (SDK object or dict) as our ``Job``."""
    data = as_dict(payload)
    status_text = str(data.get("status"))
    status = STATUS_MAP.get(status_text)
    if status is None:
        log.warning("unknown OpenAI job status %r; treating it as running", status_text)
        status = JobStatus.RUNNING
    error = data.get("error") or None
    method = data.get("method") or {}
    kind = method.get("type") if isinstance(method, dict) else None
    hyper = _hyperparameters_from(data, method, kind)
    return Job(
        id=data["id"],
        backend=NAME,
        base_model=data.get("model") or "",
        status=status,
        created_at=unix_time(data.get("created_at")),
        started_at=None,
        finished_at=unix_time(data.get("finished_at")),
        fine_tuned_model=data.get("fine_tuned_model"),
        trained_tokens=data.get("trained_tokens"),
        error=JobError(**_error_fields(error)) if error and error.get("message") else None,
        method="dpo" if kind == "dpo" else "sft",
        hyperparameters=hyper,
        training_file=data.get("training_file"),
        validation_file=data.get("validation_file"),
        suffix=_suffix_of(data.get("fine_tuned_model")),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
        raw=data,
    )


def _error_fields(error: dict[str, Any]) -> dict[str, Any]:
    return {"code": error.get("code"), "message": error["message"], "param": error.get("param")}


def _hyperparameters_from(data: dict[str, Any], method: Any, kind: str | None) -> Hyperparameters:
    source = data.get("hyperparameters") or {}
    if isinstance(method, dict) and kind in ("supervised", "dpo"):
        source = (method.get(kind) or {}).get("hyperparameters") or source
    return Hyperparameters(
        epochs=source.get("n_epochs"),
        batch_size=source.get("batch_size"),
        learning_rate_multiplier=source.get("learning_rate_multiplier"),
        beta=source.get("beta"),
        seed=data.get("seed"),
    )


def _suffix_of(model: str | None) -> str | None:
    parts = (model or "").split(":")
    return parts[3] if len(parts) >= 5 and parts[3] else None


def create_params(request: JobRequest) -> dict[str, Any]:
    """Our JobRequest as ``fine_tuning.jobs.create`` keyword arguments."""
    params = request.hyperparameters
    if params.learning_rate is not None or params.warmup is not None:
        raise UnsupportedFeature(
            "OpenAI takes learning_rate_multiplier, not learning_rate or warmup; "
            "set Hyperparameters(learning_rate_multiplier=...)"
        )
    hyper: dict[str, Any] = {}
    for ours, theirs in (
        ("epochs", "n_epochs"),
        ("batch_size", "batch_size"),
        ("learning_rate_multiplier", "learning_rate_multiplier"),
    ):
        value = getattr(params, ours)
        if value is not None:
            hyper[theirs] = value
    if request.method == "dpo" and params.beta is not None:
        hyper["beta"] = params.beta
    hyper.update(params.extra)
    kind = "dpo" if request.method == "dpo" else "supervised"
    body: dict[str, Any] = {
        "model": request.base_model,
        "training_file": request.training_file.id,
        "method": {"type": kind, kind: {"hyperparameters": hyper}},
        "metadata": dict(request.metadata),
    }
    optional = {
        "validation_file": request.validation_file.id if request.validation_file else None,
        "suffix": request.suffix,
        "seed": params.seed,
        "integrations": request.integrations or None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    body.update(request.options)
    return body


def event_from_payload(payload: Any) -> JobEvent:
    """An OpenAI ``fine_tuning.job.event`` as our ``JobEvent``."""
    data = as_dict(payload)
    level = data.get("level") if data.get("level") in ("info", "warning", "error") else "info"
    return JobEvent(
        id=data.get("id"),
        created_at=unix_time(data.get("created_at")) or datetime.now(timezone.utc),
        level=level,
        message=data.get("message") or "",
        data=data.get("data") if isinstance(data.get("data"), dict) else None,
    )


def checkpoint_from_payload(payload: Any) -> Checkpoint:
    """An OpenAI ``fine_tuning.job.checkpoint`` as our ``Checkpoint``."""
    data = as_dict(payload)
    metrics = {k: float(v) for k, v in (data.get("metrics") or {}).items() if v is not None}
    return Checkpoint(
        id=data["id"],
        step=int(data.get("step_number") or 0),
        model=data.get("fine_tuned_model_checkpoint") or "",
        created_at=unix_time(data.get("created_at")),
        metrics=metrics,
    )


_CSV_COLUMNS = {
    "train_loss": "train_loss",
    "train_accuracy": "train_accuracy",
    "train_mean_token_accuracy": "train_accuracy",
    "valid_loss": "valid_loss",
    "valid_accuracy": "valid_accuracy",
    "valid_mean_token_accuracy": "valid_accuracy",
}


def metrics_from_csv(text: str) -> list[MetricPoint]:
    """The result file's metrics CSV (step, train_loss, ...) as ``MetricPoint``s."""
    points = []
    for row in csv.DictReader(io.StringIO(text)):
        if not row.get("step"):
            continue
        values: dict[str, Any] = {"step": int(float(row["step"]))}
        extra: dict[str, float] = {}
        for column, raw in row.items():
            number = _number(raw)
            if column == "step" or number is None:
                continue
            if column in _CSV_COLUMNS:
                values[_CSV_COLUMNS[column]] = number
            else:
                extra[column] = number
        points.append(MetricPoint(**values, extra=extra))
    return points


def metrics_from_events(events: list[JobEvent]) -> list[MetricPoint]:
    """Metric events (type ``metrics``) as points, while the result file does not exist yet."""
    points: dict[int, MetricPoint] = {}
    for event in events:
        data = event.data or {}
        if "step" not in data:
            continue
        fields = {v: _number(data.get(k)) for k, v in _CSV_COLUMNS.items() if k in data}
        points[int(data["step"])] = MetricPoint(step=int(data["step"]), **fields)
    return [points[s] for s in sorted(points)]


def _oldest_first(newest_first: list[JobEvent]) -> list[JobEvent]:
    """The API pages newest first; events of the same second keep their relative order."""
    oldest = newest_first[::-1]
    return sorted(oldest, key=lambda e: e.created_at)


def _number(raw: Any) -> float | None:
    try:
        return float(raw) if raw not in (None, "") else None
    except (TypeError, ValueError):
        return None


def file_ref(payload: Any) -> FileRef:
    """An OpenAI file object as our ``FileRef``."""
    data = as_dict(payload)
    return FileRef(
        backend=NAME,
        id=data["id"],
        filename=data.get("filename"),
        bytes=data.get("bytes"),
        status=data.get("status"),
    )


def map_error(error: Exception, secret: str | None = None, *, job_call: bool = False) -> Exception:
    """An ``openai`` SDK exception as the matching error of our tree (secrets redacted)."""
    openai = _sdk()
    if isinstance(error, FinetuneError) or not isinstance(error, openai.OpenAIError):
        return error
    body = getattr(error, "body", None)
    detail = body if isinstance(body, dict) else {}
    message = redact(str(detail.get("message") or getattr(error, "message", error)), secret)
    status = getattr(error, "status_code", None)
    common: dict[str, Any] = {"backend": NAME, "status_code": status, "code": detail.get("code")}
    if isinstance(error, openai.AuthenticationError):
        return AuthenticationError(
            f"{message}. Set OPENAI_API_KEY or pass api_key=... to the Tuner", **common
        )
    if isinstance(error, openai.PermissionDeniedError):
        return PermissionDeniedError(message, **common)
    if isinstance(error, openai.NotFoundError) and job_call:
        return JobNotFound(message, **common)
    if isinstance(error, openai.RateLimitError):
        return RateLimitError(message, retry_after=_retry_after(error), **common)
    if isinstance(error, openai.APIStatusError) and (status or 0) >= 500:
        return ServerError(message, **common)
    if isinstance(error, openai.APIStatusError):
        return InvalidRequestError(message, param=detail.get("param"), **common)
    return ServerError(f"connection problem: {message}", backend=NAME)


def _retry_after(error: Any) -> float | None:
    return retry_after_seconds(getattr(getattr(error, "response", None), "headers", None))


def _is_processed(payload: Any) -> bool:
    return str(as_dict(payload).get("status")) == "processed"


def _file_failed(payload: Any) -> str | None:
    data = as_dict(payload)
    if data.get("status") == "error":
        return str(data.get("status_details") or "the file was rejected")
    return None


def _read_parts(path: Path, part_size: int) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as handle:
        index = 0
        while chunk := handle.read(part_size):
            yield index, chunk
            index += 1


_RETRY = retry_if_exception(is_retryable)
MAX_LISTED = 10_000


def _pages(page: Any, limit: int = MAX_LISTED) -> Iterator[Any]:
    """Items across pages, at most ``limit``, stopping if a cursor stops advancing."""
    seen: set[str] = set()
    for item in page:
        if item.id in seen or len(seen) >= limit:
            return
        seen.add(item.id)
        yield item


async def _apages(page: Any, limit: int = MAX_LISTED) -> AsyncIterator[Any]:
    """The async twin of ``_pages``."""
    seen: set[str] = set()
    async for item in page:
        if item.id in seen or len(seen) >= limit:
            return
        seen.add(item.id)
        yield item


class _Settings:
    def __init__(
        self,
        upload_threshold: int,
        part_size: int,
        upload_concurrency: int,
        file_timeout: float,
        poll: float,
        attempts: int,
    ) -> None:
        self.upload_threshold = upload_threshold
        self.part_size = part_size
        self.upload_concurrency = upload_concurrency
        self.file_timeout = file_timeout
        self.poll = poll
        self.attempts = attempts


def _settings(**options: Any) -> _Settings:
    return _Settings(
        upload_threshold=int(options.get("upload_threshold", 512 * MB)),
        part_size=int(options.get("part_size", 8 * MB)),
        upload_concurrency=int(options.get("upload_concurrency", 4)),
        file_timeout=float(options.get("file_timeout", 600.0)),
        poll=float(options.get("file_poll_interval", 1.0)),
        attempts=int(options.get("attempts", 6)),
    )


def _client_kwargs(
    api_key: str | None,
    base_url: str | None,
    organization: str | None,
    project: str | None,
    max_retries: int,
    timeout: float | None,
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"max_retries": max_retries}
    for key, value in (
        ("api_key", api_key),
        ("base_url", base_url),
        ("organization", organization),
        ("project", project),
        ("timeout", timeout),
    ):
        if value is not None:
            kwargs[key] = value
    return kwargs


def _build_client(kind: str, kwargs: dict[str, Any]) -> Any:
    openai = _sdk()
    try:
        return getattr(openai, kind)(**kwargs)
    except openai.OpenAIError as exc:
        raise AuthenticationError(
            "no OpenAI API key: set OPENAI_API_KEY or pass api_key=... to the Tuner",
            backend=NAME,
        ) from exc


class _Base:
    name = NAME
    capabilities = CAPABILITIES
    _sdk_class = "OpenAI"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        client: Any = None,
        max_retries: int = 2,
        timeout: float | None = None,
        **options: Any,
    ) -> None:
        kwargs = _client_kwargs(api_key, base_url, organization, project, max_retries, timeout)
        self._client = client or _build_client(self._sdk_class, kwargs)
        self._secret = api_key or getattr(self._client, "api_key", None)
        self._base_url = str(self._client.base_url)
        self._settings = _settings(**options)

    def token_counter(self, model: str) -> TokenCounter:
        """tiktoken for the model's encoding (approximate, and said so, when offline)."""
        from finetune.validation import counter_for

        return counter_for("openai", model)

    def _error(self, error: Exception, *, job_call: bool = False) -> Exception:
        return map_error(error, self._secret, job_call=job_call)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._base_url!r})"


class OpenAIBackend(_Base):
    """OpenAI fine-tuning through the ``openai`` SDK.

    Args:
        api_key, base_url, organization, project: as for ``openai.OpenAI`` (environment
            variables ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``... when omitted).
        client: an ``openai.OpenAI`` to use instead of building one.
        max_retries: the SDK's own retries per call.
        upload_threshold: files at least this large go through the Uploads API in parts.
        part_size, upload_concurrency: part size in bytes and parts in flight at once.
    """

    def close(self) -> None:
        """Close the SDK client's connections."""
        self._client.close()

    def _call(self, fn: Any, *args: Any, job_call: bool = False, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise self._error(exc, job_call=job_call) from None

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=_RETRY,
            stop=stop_after_attempt(self._settings.attempts),
            wait=wait_exponential(multiplier=0.2, max=10) + wait_random(0, 0.2),
            reraise=True,
        )

    # -- files --

    def upload(self, dataset: Dataset, *, purpose: str = "train") -> FileRef:
        """Upload in OpenAI's format, reusing a processed file of the same name and size."""
        with provider_file(dataset, "openai") as path:
            return self.upload_file(path, filename=file_name(dataset, purpose))

    def upload_file(self, path: str | os.PathLike[str], *, filename: str | None = None) -> FileRef:
        """Upload a JSONL file already in OpenAI's format (streamed; parts above the threshold).

        A processed file with the same name and size is reused instead of uploading again.
        """
        source = Path(path)
        name = filename or source.name
        size = source.stat().st_size
        existing = self._find_file(name, size)
        if existing is None:
            existing = self._upload_once(source, name, size)
        return self._wait_processed(existing)

    def _find_file(self, name: str, size: int) -> Any:
        for attempt in self._retrying():
            with attempt:
                page = self._call(self._client.files.list, purpose="fine-tune", limit=10000)
                for item in _pages(page):
                    if item.filename == name and item.bytes == size and not _file_failed(item):
                        return item
        return None

    def _upload_once(self, path: Path, name: str, size: int) -> Any:
        for attempt in self._retrying():
            with attempt:
                found = (
                    self._find_file(name, size) if attempt.retry_state.attempt_number > 1 else None
                )
                if found is not None:
                    return found
                if size >= self._settings.upload_threshold:
                    return self._upload_in_parts(path, name, size)
                files = self._client.with_options(max_retries=0).files
                with path.open("rb") as handle:
                    return self._call(files.create, file=(name, handle), purpose="fine-tune")
        raise AssertionError("unreachable")  # pragma: no cover

    def _upload_in_parts(self, path: Path, name: str, size: int) -> Any:
        uploads = self._client.uploads
        upload = self._call(
            uploads.create,
            bytes=size,
            filename=name,
            mime_type="application/jsonl",
            purpose="fine-tune",
        )
        try:
            part_ids = self._send_parts(upload.id, path)
            done = self._call(uploads.complete, upload.id, part_ids=part_ids)
        except BaseException:
            self._cancel_upload(upload.id)
            raise
        return done.file

    def _send_parts(self, upload_id: str, path: Path) -> list[str]:
        ids: dict[int, str] = {}
        limit = self._settings.upload_concurrency
        lock = threading.Lock()

        def send(index: int, chunk: bytes) -> None:
            part = self._call(self._client.uploads.parts.create, upload_id, data=chunk)
            with lock:
                ids[index] = part.id

        with ThreadPoolExecutor(max_workers=limit) as pool:
            pending: set[Future[None]] = set()
            for index, chunk in _read_parts(path, self._settings.part_size):
                if len(pending) >= limit:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        future.result()
                pending.add(pool.submit(send, index, chunk))
                del chunk
            for future in pending:
                future.result()
        return [ids[i] for i in sorted(ids)]

    def _cancel_upload(self, upload_id: str) -> None:
        try:
            self._client.uploads.cancel(upload_id)
        except Exception as exc:  # the original error matters more
            log.warning("could not cancel upload %s: %s", upload_id, self._error(exc))

    def _wait_processed(self, payload: Any) -> FileRef:
        deadline = time.monotonic() + self._settings.file_timeout
        while not _is_processed(payload):
            failure = _file_failed(payload)
            if failure:
                raise InvalidRequestError(
                    f"OpenAI rejected file {payload.id}: {failure}", backend=NAME, param="file"
                )
            if time.monotonic() > deadline:
                raise ServerError(f"file {payload.id} still not processed", backend=NAME)
            time.sleep(self._settings.poll)
            for attempt in self._retrying():
                with attempt:
                    payload = self._call(self._client.files.retrieve, payload.id)
        return file_ref(payload)

    # -- jobs --

    def create_job(self, request: JobRequest) -> Job:
        """Create the job; after a failed attempt, look the key up before trying again."""
        body = create_params(request)
        jobs = self._client.with_options(max_retries=0).fine_tuning.jobs
        for attempt in self._retrying():
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    found = self.find_job(request.idempotency_key)
                    if found is not None:
                        return found
                return job_from_payload(self._call(jobs.create, **body))
        raise AssertionError("unreachable")  # pragma: no cover

    def find_job(self, idempotency_key: str) -> Job | None:
        """The job whose metadata carries this key (the list endpoint filters by metadata)."""
        for attempt in self._retrying():
            with attempt:
                page = self._call(
                    self._client.fine_tuning.jobs.list,
                    metadata={METADATA_KEY: idempotency_key},
                    limit=10,
                )
                for item in page.data:
                    if (item.metadata or {}).get(METADATA_KEY) == idempotency_key:
                        return job_from_payload(item)
        return None

    def get_job(self, job_id: str) -> Job:
        payload = self._call(self._client.fine_tuning.jobs.retrieve, job_id, job_call=True)
        return job_from_payload(payload)

    def list_jobs(self, *, limit: int = 20) -> list[Job]:
        page = self._call(self._client.fine_tuning.jobs.list, limit=min(limit, 100))
        jobs: list[Job] = []
        for item in _pages(page, limit):
            jobs.append(job_from_payload(item))
            if len(jobs) >= limit:
                break
        return jobs

    def cancel_job(self, job_id: str) -> Job:
        return job_from_payload(
            self._call(self._client.fine_tuning.jobs.cancel, job_id, job_call=True)
        )

    def pause_job(self, job_id: str) -> Job:
        return job_from_payload(
            self._call(self._client.fine_tuning.jobs.pause, job_id, job_call=True)
        )

    def resume_job(self, job_id: str) -> Job:
        return job_from_payload(
            self._call(self._client.fine_tuning.jobs.resume, job_id, job_call=True)
        )

    def list_events(self, job_id: str) -> list[JobEvent]:
        """Every event, oldest first (the API pages newest first)."""
        page = self._call(
            self._client.fine_tuning.jobs.list_events, job_id, limit=100, job_call=True
        )
        events = [event_from_payload(e) for e in _pages(page)]
        return _oldest_first(events)

    def get_metrics(self, job_id: str) -> list[MetricPoint]:
        """The result file's metrics CSV once it exists, else the metric events so far."""
        job = self.get_job(job_id)
        result_files = (job.raw or {}).get("result_files") or []
        if result_files:
            content = self._call(self._client.files.content, result_files[0])
            return metrics_from_csv(content.text)
        return metrics_from_events(self.list_events(job_id))

    def list_checkpoints(self, job_id: str) -> list[Checkpoint]:
        page = self._call(
            self._client.fine_tuning.jobs.checkpoints.list, job_id, limit=100, job_call=True
        )
        return sorted((checkpoint_from_payload(c) for c in _pages(page)), key=lambda c: c.step)


class AsyncOpenAIBackend(_Base):
    """The asyncio twin of ``OpenAIBackend`` over ``openai.AsyncOpenAI``."""

    _sdk_class = "AsyncOpenAI"

    async def aclose(self) -> None:
        """Close the SDK client's connections."""
        await self._client.close()

    async def _call(self, fn: Any, *args: Any, job_call: bool = False, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            raise self._error(exc, job_call=job_call) from None

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            retry=_RETRY,
            stop=stop_after_attempt(self._settings.attempts),
            wait=wait_exponential(multiplier=0.2, max=10) + wait_random(0, 0.2),
            reraise=True,
        )

    async def upload(self, dataset: Dataset, *, purpose: str = "train") -> FileRef:
        """Upload in OpenAI's format, reusing a processed file of the same name and size."""
        with provider_file(dataset, "openai") as path:
            return await self.upload_file(path, filename=file_name(dataset, purpose))

    async def upload_file(
        self, path: str | os.PathLike[str], *, filename: str | None = None
    ) -> FileRef:
        """Upload a JSONL file already in OpenAI's format (see ``OpenAIBackend.upload_file``)."""
        source = Path(path)
        name = filename or source.name
        size = source.stat().st_size
        existing = await self._find_file(name, size)
        if existing is None:
            existing = await self._upload_once(source, name, size)
        return await self._wait_processed(existing)

    async def _find_file(self, name: str, size: int) -> Any:
        async for attempt in self._retrying():
            with attempt:
                page = await self._call(self._client.files.list, purpose="fine-tune", limit=10000)
                async for item in _apages(page):
                    if item.filename == name and item.bytes == size and not _file_failed(item):
                        return item
        return None

    async def _upload_once(self, path: Path, name: str, size: int) -> Any:
        async for attempt in self._retrying():
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    found = await self._find_file(name, size)
                    if found is not None:
                        return found
                if size >= self._settings.upload_threshold:
                    return await self._upload_in_parts(path, name, size)
                files = self._client.with_options(max_retries=0).files
                with path.open("rb") as handle:
                    return await self._call(files.create, file=(name, handle), purpose="fine-tune")
        raise AssertionError("unreachable")  # pragma: no cover

    async def _upload_in_parts(self, path: Path, name: str, size: int) -> Any:
        uploads = self._client.uploads
        upload = await self._call(
            uploads.create,
            bytes=size,
            filename=name,
            mime_type="application/jsonl",
            purpose="fine-tune",
        )
        try:
            part_ids = await self._send_parts(upload.id, path)
            done = await self._call(uploads.complete, upload.id, part_ids=part_ids)
        except BaseException:
            try:
                await self._client.uploads.cancel(upload.id)
            except Exception as exc:
                log.warning("could not cancel upload %s: %s", upload.id, self._error(exc))
            raise
        return done.file

    async def _send_parts(self, upload_id: str, path: Path) -> list[str]:
        gate = asyncio.Semaphore(self._settings.upload_concurrency)
        ids: dict[int, str] = {}

        async def send(index: int, chunk: bytes) -> None:
            try:
                part = await self._call(self._client.uploads.parts.create, upload_id, data=chunk)
                ids[index] = part.id
            finally:
                gate.release()

        tasks = []
        for index, chunk in _read_parts(path, self._settings.part_size):
            await gate.acquire()
            tasks.append(asyncio.create_task(send(index, chunk)))
        await asyncio.gather(*tasks)
        return [ids[i] for i in sorted(ids)]

    async def _wait_processed(self, payload: Any) -> FileRef:
        deadline = time.monotonic() + self._settings.file_timeout
        while not _is_processed(payload):
            failure = _file_failed(payload)
            if failure:
                raise InvalidRequestError(
                    f"OpenAI rejected file {payload.id}: {failure}", backend=NAME, param="file"
                )
            if time.monotonic() > deadline:
                raise ServerError(f"file {payload.id} still not processed", backend=NAME)
            await asyncio.sleep(self._settings.poll)
            async for attempt in self._retrying():
                with attempt:
                    payload = await self._call(self._client.files.retrieve, payload.id)
        return file_ref(payload)

    async def create_job(self, request: JobRequest) -> Job:
        """Create the job; after a failed attempt, look the key up before trying again."""
        body = create_params(request)
        jobs = self._client.with_options(max_retries=0).fine_tuning.jobs
        async for attempt in self._retrying():
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    found = await self.find_job(request.idempotency_key)
                    if found is not None:
                        return found
                return job_from_payload(await self._call(jobs.create, **body))
        raise AssertionError("unreachable")  # pragma: no cover

    async def find_job(self, idempotency_key: str) -> Job | None:
        """The job whose metadata carries this key."""
        async for attempt in self._retrying():
            with attempt:
                page = await self._call(
                    self._client.fine_tuning.jobs.list,
                    metadata={METADATA_KEY: idempotency_key},
                    limit=10,
                )
                for item in page.data:
                    if (item.metadata or {}).get(METADATA_KEY) == idempotency_key:
                        return job_from_payload(item)
        return None

    async def get_job(self, job_id: str) -> Job:
        payload = await self._call(self._client.fine_tuning.jobs.retrieve, job_id, job_call=True)
        return job_from_payload(payload)

    async def list_jobs(self, *, limit: int = 20) -> list[Job]:
        page = await self._call(self._client.fine_tuning.jobs.list, limit=min(limit, 100))
        jobs: list[Job] = []
        async for item in _apages(page, limit):
            jobs.append(job_from_payload(item))
            if len(jobs) >= limit:
                break
        return jobs

    async def cancel_job(self, job_id: str) -> Job:
        jobs = self._client.fine_tuning.jobs
        return job_from_payload(await self._call(jobs.cancel, job_id, job_call=True))

    async def pause_job(self, job_id: str) -> Job:
        jobs = self._client.fine_tuning.jobs
        return job_from_payload(await self._call(jobs.pause, job_id, job_call=True))

    async def resume_job(self, job_id: str) -> Job:
        jobs = self._client.fine_tuning.jobs
        return job_from_payload(await self._call(jobs.resume, job_id, job_call=True))

    async def list_events(self, job_id: str) -> list[JobEvent]:
        """Every event, oldest first."""
        page = await self._call(
            self._client.fine_tuning.jobs.list_events, job_id, limit=100, job_call=True
        )
        events = [event_from_payload(e) async for e in _apages(page)]
        return _oldest_first(events)

    async def get_metrics(self, job_id: str) -> list[MetricPoint]:
        """The result file's metrics CSV once it exists, else the metric events so far."""
        job = await self.get_job(job_id)
        result_files = (job.raw or {}).get("result_files") or []
        if result_files:
            content = await self._call(self._client.files.content, result_files[0])
            return metrics_from_csv(content.text)
        return metrics_from_events(await self.list_events(job_id))

    async def list_checkpoints(self, job_id: str) -> list[Checkpoint]:
        page = await self._call(
            self._client.fine_tuning.jobs.checkpoints.list, job_id, limit=100, job_call=True
        )
        checkpoints = [checkpoint_from_payload(c) async for c in _apages(page)]
        return sorted(checkpoints, key=lambda c: c.step)


OpenAIBackend.async_variant = AsyncOpenAIBackend  # type: ignore[attr-defined]

"""OpenAIBackend: files, uploads and fine-tuning jobs through the official ``openai`` SDK.

The SDK client is built on the first network call (validation and estimates need no key and
no SDK). Its own retries are off: every call goes through ``finetune.backends.http``'s one
policy, which honours Retry-After up to a cap. Answers are read as JSON ourselves (the SDK's
raw responses), so an odd answer is a ``ServerError`` with an excerpt, never a foreign error.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import io
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from finetune._errors import (
    AuthenticationError,
    BackendError,
    FinetuneError,
    InvalidRequestError,
    MissingDependency,
    ProviderUnavailable,
    ServerError,
)
from finetune._loop import cancelled_on_failure
from finetune.backends.base import METADATA_KEY, JobRequest
from finetune.backends.hosted import Connection, HostedBackend
from finetune.backends.http import (
    json_answer,
    path_segment,
    sdk_error,
    status_body,
)
from finetune.backends.openai._mapping import (
    CAPABILITIES,
    NAME,
    checkpoint_from_payload,
    create_params,
    event_from_payload,
    file_failure,
    file_ref,
    job_from_payload,
    metrics_from_csv,
    metrics_from_events,
    oldest_first,
)
from finetune.lifecycle import alternatives_for, closed_on, closing_text, lifecycle
from finetune.types import Checkpoint, FileRef, Job, JobEvent, JobStatus, MetricPoint

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from finetune.evaluation import OpenAIPredictor


__all__ = ["OpenAIBackend", "map_error"]

log = logging.getLogger("finetune")
MB = 1024 * 1024
MAX_PART = 64 * MB  # the Uploads API's largest part
DEFAULT_BASE_URL = "https://api.openai.com/v1"
MAX_LISTED = 10_000
KEY_HINT = "Set OPENAI_API_KEY or pass api_key=... to the Tuner"


def _sdk() -> Any:
    try:
        import openai
    except ImportError as exc:
        raise MissingDependency("openai", "openai", purpose="for the OpenAI backend") from exc
    return openai


@functools.cache
def _sdk_quotes_ids() -> bool:
    """Whether the SDK percent-encodes the ids it puts in a URL's path (openai 2.30 and
    later); before it, a job id ``../files/file-1`` asked for another resource."""
    major, minor = (int(part) for part in _sdk().__version__.split(".")[:2])
    return (major, minor) >= (2, 30)


def map_error(
    error: BaseException,
    secret: str | None,
    *,
    job_call: bool = False,
    key_hint: str = KEY_HINT,
    provider: str = NAME,
    url: str | None = None,
) -> Exception:
    """An exception from the ``openai`` SDK (or below it) as the matching error of our tree,
    naming ``provider`` (another one's OpenAI-compatible API: ``together``) and, for a server
    that cannot be reached, its ``url``; ``key_hint`` says how to give the key (to the Tuner,
    by default)."""
    return sdk_error(
        provider, _sdk, error, secret, body=_body, job_call=job_call, key_hint=key_hint, url=url
    )


def _body(error: Any) -> Any:
    """The SDK keeps the parsed ``error`` object on the exception; a page that is not JSON
    leaves it ``None``, and then the response's text is the detail."""
    return error.body if error.body is not None else status_body(error.response)


PROBE_FILE = "file-finetune-preflight-probe"
_REFUSAL_WORDS = ("not available", "not enabled", "no longer", "not allowed to fine-tune")
_warned: set[str] = set()


def _refusal(error: BackendError, model: str) -> ProviderUnavailable | None:
    """A 403 (or 410) saying fine-tuning is closed to this organisation, as
    ``ProviderUnavailable`` with OpenAI's own words and what to use instead."""
    text = str(error).lower()
    refused = error.status_code == 410 or (
        error.status_code == 403 and any(word in text for word in _REFUSAL_WORDS)
    )
    if not refused:
        return None
    return ProviderUnavailable(
        f"OpenAI refuses to fine-tune for this organisation ({error}); nothing was uploaded",
        alternatives=alternatives_for(model),
        backend=NAME,
        status_code=error.status_code,
        code=error.code,
    )


def _warn_closing_once() -> None:
    row = lifecycle(NAME)
    if row is not None and row.state == "closing" and NAME not in _warned:
        _warned.add(NAME)
        moving = "; ".join(alternatives_for(None))
        log.warning("%s; plan the move: %s", closing_text(NAME), moving)


def _processed(payload: dict[str, Any]) -> FileRef | None:
    """The file once OpenAI processed it, ``None`` while it is processing; a rejected file
    raises ``InvalidRequestError`` with OpenAI's reason."""
    failure = file_failure(payload)
    if failure:
        message = f"OpenAI rejected file {payload.get('id')}: {failure}"
        raise InvalidRequestError(message, backend=NAME, param="file")
    return file_ref(payload) if payload.get("status") == "processed" else None


class OpenAIBackend(HostedBackend):
    """OpenAI fine-tuning through the ``openai`` SDK (``pip install "finetune[openai]"``).

    It takes the settings of every hosted backend (``Connection``: ``api_key``, else
    ``OPENAI_API_KEY``; ``base_url``, else ``OPENAI_BASE_URL``; ``client``, an
    ``openai.AsyncOpenAI`` to use instead of building one; ``attempts``, ``timeout``,
    ``retry_after_cap``, ``first_wait``) and these.

    Args:
        organization: the organisation the calls are made as (else ``OPENAI_ORG_ID``).
        project: the project the calls are made as (else ``OPENAI_PROJECT_ID``).
        max_retries: the SDK's name for retries, taken as ``attempts = max_retries + 1``.
        upload_threshold: files at least this large go through the Uploads API in parts.
        part_size: the size of each part, in bytes (64 MB at most, OpenAI's limit).
        upload_concurrency: parts in flight at once.
        file_timeout: seconds to wait for an uploaded file to be processed.
        file_poll_interval: seconds between the checks of an uploaded file.
        allow_closed_provider: try to create jobs even after OpenAI's closing date.
        check_organisation: before uploading, check (one request that can create nothing)
            that OpenAI fine-tunes for this organisation.
    """

    name = NAME
    capabilities = CAPABILITIES
    title = "OpenAI"
    logged_through: ClassVar[tuple[str, ...]] = ("openai._base_client",)
    key_variable = "OPENAI_API_KEY"
    url_variable = "OPENAI_BASE_URL"
    default_url = DEFAULT_BASE_URL
    environment: ClassVar[Mapping[str, str]] = {
        "organization": "OPENAI_ORG_ID",
        "project": "OPENAI_PROJECT_ID",
    }

    def __init__(
        self,
        *,
        organization: str | None = None,
        project: str | None = None,
        max_retries: int | None = None,
        upload_threshold: int = 512 * MB,
        part_size: int = 8 * MB,
        upload_concurrency: int = 4,
        file_timeout: float = 600.0,
        file_poll_interval: float = 1.0,
        allow_closed_provider: bool = False,
        check_organisation: bool = True,
        **connection: Unpack[Connection],
    ) -> None:
        if max_retries is not None:
            connection["attempts"] = max_retries + 1
        if not 0 < part_size <= MAX_PART:
            raise ValueError(f"part_size must be 1 byte to 64 MB (OpenAI's limit), not {part_size}")
        if upload_concurrency < 1:
            raise ValueError(f"upload_concurrency must be 1 or more, not {upload_concurrency}")
        super().__init__(**connection)
        self._probe = check_organisation
        self._open_for: set[str] = set()
        self._organization = organization or os.environ.get(self.environment["organization"])
        self._project = project or os.environ.get(self.environment["project"])
        self._upload_threshold = upload_threshold
        self._part_size = part_size
        self._upload_concurrency = upload_concurrency
        self._file_timeout = file_timeout
        self._file_poll = file_poll_interval
        self.allow_closed_provider = allow_closed_provider

    def _scope(self) -> dict[str, str | None]:
        return {"organization": self._organization, "project": self._project}

    def connection_options(self) -> dict[str, Any]:
        """The key, API root, organisation and project its models are asked with: a
        fine-tuned model answers only within the organisation that trained it."""
        scope = {name: value for name, value in self._scope().items() if value}
        return {**super().connection_options(), **scope}

    # -- the provider's lifecycle, before anything is uploaded --

    def check_request(self, request: JobRequest) -> None:
        """Settings OpenAI cannot take, refused with no request made."""
        create_params(request)

    async def preflight(self, request: JobRequest) -> None:
        """Refuse before uploading: settings OpenAI cannot take; OpenAI no longer creating jobs
        (after 2027-01-06, unless ``allow_closed_provider=True``); OpenAI refusing fine-tuning
        to this organisation. Warns once while it is closing. The organisation check is one
        create request naming a file that does not exist, which can make no job: refused
        organisations get a 403, others a 400."""
        self.check_request(request)
        model = request.base_model
        closed = closed_on(NAME)
        if closed is not None and not self.allow_closed_provider:
            raise ProviderUnavailable(
                f"{closed.summary} ({closed.source}); nothing was uploaded. Pass "
                "allow_closed_provider=True (finetune train --allow-closed-provider) if OpenAI "
                "still accepts your jobs",
                alternatives=alternatives_for(model),
                backend=NAME,
            )
        _warn_closing_once()
        if not self._probe or model in self._open_for:
            return
        body = {"model": model, "training_file": PROBE_FILE}
        try:
            await self._call((await self._raw("fine_tuning.jobs")).create, **body)
        except BackendError as error:
            refusal = _refusal(error, model)
            if refusal is not None:
                raise refusal from None
            if isinstance(error, AuthenticationError):
                raise
        self._open_for.add(model)

    # -- the SDK, one call at a time --

    def _new_client(self, key: str) -> Any:
        return _sdk().AsyncOpenAI(**self._sdk_options(key, **self._scope()))

    @classmethod
    def predictor(cls, model: str, **options: Any) -> OpenAIPredictor:
        """``model`` asked through OpenAI's chat API (``OpenAIPredictor``: greedy, seeded);
        no key for OpenAI's own API is an ``AuthenticationError`` before anything is asked."""
        from finetune.evaluation import OpenAIPredictor

        if options.get("client") is None and options.get("async_client") is None:
            cls._key_to_ask_with(options.get("api_key"), options.get("base_url"), own_server=True)
        return OpenAIPredictor(model, **options)

    def _map_error(self, error: BaseException, *, job_call: bool = False) -> Exception:
        return map_error(error, self._key, job_call=job_call, url=self._base_url)

    async def _call(self, call: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> Any:
        """One request through the SDK's raw-response API; its JSON (or text) answer."""
        job_call = kw.pop("job_call", False)
        text = kw.pop("text", False)
        if not _sdk_quotes_ids():  # the positional arguments are the ids in the path
            args = tuple(path_segment(NAME, arg, "resource id") for arg in args)
        try:
            raw = await call(*args, **kw)
        except Exception as exc:
            error = self._map_error(exc, job_call=job_call)
        else:
            return raw.text if text else json_answer(NAME, raw.status_code, raw.text)
        raise error

    async def _call_retried(
        self, call: Callable[..., Awaitable[Any]], *args: Any, **kw: Any
    ) -> Any:
        """``_call`` under the retry policy (for reads and other safe calls)."""
        return await self._retried(lambda: self._call(call, *args, **kw))

    async def _raw(self, path: str) -> Any:
        resource = await self._ready_client()
        for part in path.split("."):
            resource = getattr(resource, part)
        return resource.with_raw_response

    async def _listed(
        self,
        listing: Callable[..., Awaitable[Any]],
        *args: Any,
        limit: int = MAX_LISTED,
        page_size: int = 100,
        job_call: bool = False,
        **params: Any,
    ) -> list[dict[str, Any]]:
        """Items across cursor pages, at most ``limit``, stopping if a cursor stops advancing."""
        items: list[dict[str, Any]] = []
        seen: set[str] = set()
        cursor: dict[str, str] = {}
        while len(items) < limit:
            page = await self._call_retried(
                listing, *args, limit=min(page_size, limit), job_call=job_call, **params, **cursor
            )
            data = page.get("data") if isinstance(page, dict) else None
            if not isinstance(data, list):
                raise ServerError(
                    f"answered a list without 'data': {str(page)[:200]}", backend=NAME
                )
            fresh = [d for d in data if isinstance(d, dict) and str(d.get("id")) not in seen]
            seen.update(str(d.get("id")) for d in fresh)
            items.extend(fresh[: limit - len(items)])
            if not fresh or not page.get("has_more"):
                break
            cursor = {"after": str(fresh[-1].get("id"))}
        return items

    # -- files --

    async def upload_file(
        self, path: str | os.PathLike[str], *, filename: str | None = None
    ) -> FileRef:
        """Upload a JSONL file already in OpenAI's format (streamed; parts above the threshold).

        A processed file with the same name and size is reused instead of uploading again;
        after a failed attempt the file list is checked first, so no file is uploaded twice.
        """
        source = Path(path)
        name = filename or source.name
        size = source.stat().st_size
        existing = await self._find_file(name, size)
        if existing is None:
            existing = await self._upload_once(source, name, size)
        return await self._wait_processed(existing)

    async def _find_file(self, name: str, size: int) -> dict[str, Any] | None:
        files = (await self._raw("files")).list
        for item in await self._listed(files, purpose="fine-tune", page_size=MAX_LISTED):
            same = item.get("filename") == name and item.get("bytes") == size
            if same and not file_failure(item):
                return dict(item)
        return None

    async def _upload_once(self, path: Path, name: str, size: int) -> dict[str, Any]:
        if size >= self._upload_threshold:
            return await self._upload_in_parts(path, name, size)
        create = (await self._raw("files")).create

        async def send() -> dict[str, Any]:
            with path.open("rb") as handle:
                answer: dict[str, Any] = await self._call(
                    create, file=(name, handle), purpose="fine-tune"
                )
            return answer

        return await self._retried(send, done=lambda: self._find_file(name, size))

    async def _upload_in_parts(self, path: Path, name: str, size: int) -> dict[str, Any]:
        """Create an Upload, send its parts, complete it: each step retried on its own, so a
        fault late in the flow never sends the file again (a failed one cancels the Upload)."""
        uploads = await self._raw("uploads")
        upload = await self._call_retried(
            uploads.create,
            bytes=size,
            filename=name,
            mime_type="application/jsonl",
            purpose="fine-tune",
        )
        upload_id = str(upload["id"])
        try:
            part_ids = await self._send_parts(upload_id, path)
            return await self._complete(upload_id, part_ids, name, size)
        except BaseException:
            await self._cancel_upload(upload_id)
            raise

    async def _complete(
        self, upload_id: str, part_ids: list[str], name: str, size: int
    ) -> dict[str, Any]:
        """Complete the Upload; a retry first looks for its file, in case only the answer of
        the last try was lost."""
        complete = (await self._raw("uploads")).complete

        async def send() -> dict[str, Any]:
            done = await self._call(complete, upload_id, part_ids=part_ids)
            return dict(done["file"])

        return await self._retried(send, done=lambda: self._find_file(name, size))

    async def _send_parts(self, upload_id: str, path: Path) -> list[str]:
        gate = asyncio.Semaphore(self._upload_concurrency)
        ids: dict[int, str] = {}
        parts = await self._raw("uploads.parts")

        async def send(index: int, chunk: bytes) -> None:
            # A file object, not bytes: the HTTP client then sends it in small pieces instead of
            # joining one more copy of the whole part (measured: peak growth 70 MB -> 33 MB).
            try:
                part = await self._retried(
                    lambda: self._call(parts.create, upload_id, data=io.BytesIO(chunk))
                )
                ids[index] = str(part["id"])
            finally:
                gate.release()

        tasks: list[asyncio.Task[None]] = []
        async with cancelled_on_failure(tasks):
            with path.open("rb") as handle:
                index = 0
                while True:
                    await gate.acquire()
                    chunk = await asyncio.to_thread(handle.read, self._part_size)
                    if not chunk:
                        gate.release()
                        break
                    tasks.append(asyncio.create_task(send(index, chunk)))
                    index += 1
            await asyncio.gather(*tasks)
        return [ids[i] for i in sorted(ids)]

    async def _cancel_upload(self, upload_id: str) -> None:
        try:
            await self._call((await self._raw("uploads")).cancel, upload_id)
        except FinetuneError as exc:  # the original error matters more
            log.warning("could not cancel upload %s: %s", upload_id, exc)

    async def _wait_processed(self, payload: dict[str, Any]) -> FileRef:
        processed = _processed(payload)
        if processed is not None:
            return processed
        file_id, files = str(payload["id"]), await self._raw("files")

        async def verdict() -> FileRef | None:
            return _processed(await self._call_retried(files.retrieve, file_id))

        what, timeout = f"file {file_id} is still not processed", self._file_timeout
        return await self._poll(verdict, timeout=timeout, every=self._file_poll, what=what)

    # -- jobs --

    async def create_job(self, request: JobRequest) -> Job:
        """Send one create (never retried here: the Tuner looks for the job first)."""
        body = create_params(request)
        create = (await self._raw("fine_tuning.jobs")).create
        try:
            answer = await self._call(create, **_sdk_arguments(create, body))
        except BackendError as error:
            refusal = _refusal(error, request.base_model)
            if refusal is None:
                raise
            failure: BackendError = refusal
        else:
            return job_from_payload(answer)
        raise failure

    async def find_job(self, request: JobRequest) -> Job | None:
        """The job whose metadata carries the request's key (the list filters by metadata)."""
        key = request.idempotency_key
        jobs = (await self._raw("fine_tuning.jobs")).list
        listed = await self._listed(jobs, metadata={METADATA_KEY: key}, limit=10)
        for item in listed:
            metadata = item.get("metadata")
            if isinstance(metadata, dict) and metadata.get(METADATA_KEY) == key:
                return job_from_payload(item)
        return None

    async def get_job(self, job_id: str) -> Job:
        """The job as it is now."""
        jobs = await self._raw("fine_tuning.jobs")
        return job_from_payload(await self._call_retried(jobs.retrieve, job_id, job_call=True))

    async def list_jobs(self, *, limit: int = 20) -> list[Job]:
        """The most recent jobs, newest first."""
        items = await self._listed((await self._raw("fine_tuning.jobs")).list, limit=limit)
        return [job_from_payload(item) for item in items]

    async def _transition(self, job_id: str, action: str, reached: set[JobStatus]) -> Job:
        call = getattr(await self._raw("fine_tuning.jobs"), action)

        async def send() -> Job:
            return job_from_payload(await self._call(call, job_id, job_call=True))

        async def reached_already() -> Job | None:
            current = await self.get_job(job_id)
            return current if current.status in reached else None

        return await self._retried(send, done=reached_already)

    async def cancel_job(self, job_id: str) -> Job:
        """Ask OpenAI to cancel the job."""
        return await self._transition(job_id, "cancel", {JobStatus.CANCELLED})

    async def pause_job(self, job_id: str) -> Job:
        """Pause a running job."""
        return await self._transition(job_id, "pause", {JobStatus.PAUSED})

    async def resume_job(self, job_id: str) -> Job:
        """Resume a paused job."""
        return await self._transition(job_id, "resume", {JobStatus.RUNNING})

    async def list_events(self, job_id: str) -> list[JobEvent]:
        """Every event, oldest first (the API pages newest first)."""
        events = (await self._raw("fine_tuning.jobs")).list_events
        items = await self._listed(events, job_id, job_call=True)
        return oldest_first([event_from_payload(e) for e in items])

    async def get_metrics(self, job_id: str) -> list[MetricPoint]:
        """The result file's metrics CSV once it exists, else the metric events so far."""
        job = await self.get_job(job_id)
        result_files = (job.raw or {}).get("result_files") or []
        if isinstance(result_files, list) and result_files:
            text = await self._call_retried(
                (await self._raw("files")).content, str(result_files[0]), text=True
            )
            return metrics_from_csv(text)
        return metrics_from_events(await self.list_events(job_id))

    async def list_checkpoints(self, job_id: str) -> list[Checkpoint]:
        """Intermediate checkpoints, in step order."""
        checkpoints = await self._raw("fine_tuning.jobs.checkpoints")
        page = await self._call_retried(checkpoints.list, job_id, limit=100, job_call=True)
        data = page.get("data") if isinstance(page, dict) else None
        items = [checkpoint_from_payload(c) for c in data or [] if isinstance(c, dict)]
        return sorted(items, key=lambda c: c.step)


def _sdk_arguments(call: Callable[..., Any], body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as keyword arguments of the SDK's ``call``; the fields it does not know (ones
    the API gained after this SDK, given as ``fit(options=...)``) ride in ``extra_body``,
    which the SDK sends in the JSON body as they are."""
    known = inspect.signature(call).parameters
    arguments = {key: value for key, value in body.items() if key in known}
    unknown = {key: value for key, value in body.items() if key not in known}
    return {**arguments, "extra_body": unknown} if unknown else arguments

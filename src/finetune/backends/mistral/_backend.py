"""MistralBackend: fine-tuning jobs over REST with httpx, files through the ``mistralai`` SDK.

mistralai 3.x no longer wraps ``/v1/fine_tuning/jobs`` while Mistral's API reference still
documents it, so the job endpoints are called with httpx (the one retry policy of
``finetune.backends.http``) and the SDK is used where it covers: files and models.

Mistral's job routes now answer 410 Gone: ``preflight`` finds that out with one cheap call
before anything is uploaded and raises ``ProviderUnavailable`` naming what to use instead.
Reading existing jobs, their events and metrics, and managing fine-tuned models still work.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune._errors import (
    BackendError,
    FinetuneError,
    MissingDependency,
    ProviderUnavailable,
)
from finetune._json_text import json_from_text
from finetune.backends._clients import OwnedClient
from finetune.backends.base import JobRequest, planned_job
from finetune.backends.hosted import Connection, HostedBackend, check_wait
from finetune.backends.http import (
    PageCollector,
    as_dict,
    connection_error,
    error_for_status,
    expect_object,
    foreign_error,
    is_connection_problem,
    json_answer,
    list_at,
    path_segment,
    unreadable,
)
from finetune.backends.mistral._mapping import (
    CAPABILITIES,
    NAME,
    checkpoints_from_payload,
    create_body,
    event_from_payload,
    file_ref,
    job_from_payload,
    matches_file,
    metrics_from_payload,
    same_fit,
    with_dry_run,
)
from finetune.lifecycle import alternatives_for, closed_on
from finetune.types import (
    Checkpoint,
    CostEstimate,
    FileRef,
    Hyperparameters,
    Job,
    JobEvent,
    JobStatus,
    MetricPoint,
)

if TYPE_CHECKING:
    import httpx
    from typing_extensions import Unpack

    from finetune.dataset import Dataset
    from finetune.evaluation import MistralPredictor

__all__ = ["MistralBackend", "map_error"]

DEFAULT_SERVER_URL = "https://api.mistral.ai"
JOBS = "/v1/fine_tuning/jobs"
PAGE_SIZE = 100
MAX_PAGES = 100
KEY_HINT = "Set MISTRAL_API_KEY or pass api_key=... to the Tuner"


def _sdk_class() -> Any:
    try:
        from mistralai.client import Mistral
    except ImportError:
        try:
            from mistralai import Mistral
        except ImportError as exc:
            raise MissingDependency(
                "mistralai", "mistral", purpose="for the Mistral backend"
            ) from exc
    return Mistral


def _body_of(text: str) -> Any:
    try:
        return json_from_text(text)
    except ValueError:
        return text


def map_error(
    error: BaseException,
    secrets: tuple[str | None, ...],
    *,
    job_call: bool = False,
    key_hint: str = KEY_HINT,
    url: str | None = None,
) -> Exception:
    """An httpx or mistralai SDK exception as our error (secrets redacted); ``key_hint`` says
    how to give the key (to the Tuner, by default), ``url`` names a server that cannot be
    reached."""
    if isinstance(error, FinetuneError):
        return error
    status = getattr(error, "status_code", None)
    if isinstance(status, int) and status >= 400:
        raw = getattr(error, "raw_response", None)
        body = _body_of(str(getattr(error, "body", "") or ""))
        headers = getattr(error, "headers", None) or getattr(raw, "headers", None)
        return error_for_status(
            NAME, status, body, headers, *secrets, job_call=job_call, key_hint=key_hint
        )
    if is_connection_problem(error):
        return connection_error(NAME, error, *secrets, url=url)
    return foreign_error(NAME, error, *secrets)


def _integration_keys(body: dict[str, Any]) -> tuple[str | None, ...]:
    return tuple(i.get("api_key") for i in body.get("integrations", []))


class MistralBackend(HostedBackend):
    """Mistral fine-tuning: jobs over REST (httpx), files through the ``mistralai`` SDK
    (``pip install "finetune[mistral]"``).

    It takes the settings of every hosted backend (``Connection``: ``api_key``, else
    ``MISTRAL_API_KEY``, needed by calls only, so ``validate`` and ``estimate`` work without
    one; ``base_url``, the same as ``server_url``; ``client``, the same as ``sdk``;
    ``attempts``; ``timeout``, 60 s here; ``retry_after_cap``; ``first_wait``, the same as
    ``retry_wait``) and these.

    Args:
        server_url: API root, ``https://api.mistral.ai`` by default (``MISTRAL_SERVER_URL``).
        sdk: a ``mistralai.Mistral`` to use for files instead of building one.
        http_client: an ``httpx.AsyncClient`` for the job endpoints (proxies, tests).
        retry_wait: the first backoff, in seconds (``first_wait`` wins where both are given).
        estimate_dry_run: let ``Tuner.estimate`` ask the API's dry run when a key is set.
        allow_closed_provider: try to create jobs even though the job API is retired.
    """

    name = NAME
    capabilities = CAPABILITIES
    title = "Mistral"
    key_variable = "MISTRAL_API_KEY"
    url_variable = "MISTRAL_SERVER_URL"
    default_url = DEFAULT_SERVER_URL
    url_option = "server_url"  # MistralPredictor's name for it

    def __init__(
        self,
        *,
        server_url: str | None = None,
        sdk: Any = None,
        http_client: Any = None,
        retry_wait: float = 0.5,
        estimate_dry_run: bool = True,
        allow_closed_provider: bool = False,
        **connection: Unpack[Connection],
    ) -> None:
        connection.setdefault("timeout", 60.0)
        if server_url:
            connection["base_url"] = server_url
        if sdk is not None:
            connection["client"] = sdk
        if "first_wait" not in connection:  # the common name wins, if given
            check_wait(retry_wait, name="retry_wait")
            connection["first_wait"] = retry_wait
        super().__init__(**connection)
        self._dry_run = estimate_dry_run
        self._http = OwnedClient(self._new_http_client, http_client)
        self.allow_closed_provider = allow_closed_provider

    def __repr__(self) -> str:
        return f"MistralBackend(server_url={self._base_url!r})"

    # -- transport --

    def _new_http_client(self) -> httpx.AsyncClient:
        import httpx

        return httpx.AsyncClient(base_url=self._base_url, timeout=self._timeout)

    def _new_client(self, key: str) -> Any:
        timeout_ms = int((self._timeout or 60.0) * 1000)
        return _sdk_class()(api_key=key, server_url=self._base_url, timeout_ms=timeout_ms)

    @classmethod
    def predictor(cls, model: str, **options: Any) -> MistralPredictor:
        """``model`` asked through Mistral's chat API (``MistralPredictor``: greedy, seeded);
        no key is an ``AuthenticationError`` before anything is asked."""
        from finetune.evaluation import MistralPredictor

        if options.get("client") is None:
            cls._key_to_ask_with(options.get("api_key"), options.get("server_url"))
        return MistralPredictor(model, **options)

    def _map_error(self, error: BaseException, *, job_call: bool = False) -> Exception:
        return map_error(error, (self._key,), job_call=job_call, url=self._base_url)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        job_call: bool = False,
        secrets: tuple[str | None, ...] = (),
    ) -> Any:
        """One request; the answer's JSON, or the matching error of our tree."""
        headers = {"Authorization": f"Bearer {self._require_key()}", "Accept": "application/json"}
        every_secret = (self._key, *secrets)
        client = await self._http.aget()  # made off the loop: importing httpx takes 0.16 s
        try:
            response = await client.request(
                method, self._base_url + path, params=params, json=body, headers=headers
            )
        except Exception as exc:
            error = map_error(exc, every_secret, url=self._base_url)
        else:
            if response.status_code >= 400:
                raise error_for_status(
                    NAME,
                    response.status_code,
                    _body_of(response.text),
                    response.headers,
                    *every_secret,
                    job_call=job_call,
                    key_hint=KEY_HINT,
                )
            return json_answer(NAME, response.status_code, response.text)
        raise error

    async def _request(self, method: str, path: str, *, job_call: bool = False, **kw: Any) -> Any:
        return await self._send(method.upper(), path, job_call=job_call, **kw)

    async def _job_payload(self, job_id: str) -> dict[str, Any]:
        payload = await self._get(f"{JOBS}/{path_segment(NAME, job_id)}", job_call=True)
        return expect_object(NAME, "fine-tuning job", payload)

    async def _sdk_call(self, fn: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any:
        try:
            return await fn(**kwargs)
        except Exception as exc:
            error = self._map_error(exc)
        raise error

    async def _sdk_retried(self, fn: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any:
        return await self._retried(lambda: self._sdk_call(fn, **kwargs))

    def _list_params(self, page: int, page_size: int, **filters: Any) -> dict[str, Any]:
        params: dict[str, Any] = {"page": page, "page_size": page_size}
        for key, value in filters.items():
            if value is not None:
                params[key] = str(value).lower() if isinstance(value, bool) else value
        return params

    # -- lifecycle --

    def check_request(self, request: JobRequest) -> None:
        """Settings Mistral cannot take, refused with no request made."""
        create_body(request)

    async def preflight(self, request: JobRequest) -> None:
        """Before anything is uploaded: settings Mistral cannot take are refused, and one cheap
        call (list one job, retried) finds out whether the job API is retired (410 Gone), which
        raises ``ProviderUnavailable`` naming what to use instead; so does a job API that
        cannot be reached, as our table says it is retired."""
        self.check_request(request)
        model = request.base_model
        if self.allow_closed_provider:
            return
        closed = closed_on(NAME)
        if closed is not None and not self._key:
            raise ProviderUnavailable(
                f"{closed.summary} ({closed.source}); nothing was sent. With no "
                f"{self.key_variable} this could not be checked live: set it and pass "
                "allow_closed_provider=True (finetune train --allow-closed-provider) to try "
                "anyway",
                alternatives=alternatives_for(model),
                backend=NAME,
            )
        try:
            await self._retried(lambda: self._send("GET", JOBS, params={"page": 0, "page_size": 1}))
        except BackendError as error:
            if error.status_code == 410:
                raise ProviderUnavailable(
                    f"Mistral no longer creates fine-tuning jobs ({error}); nothing was "
                    "uploaded. Existing jobs and fine-tuned models still work",
                    alternatives=alternatives_for(model),
                    backend=NAME,
                    status_code=410,
                ) from None
            if not error.retryable:
                raise
            if closed is not None:  # retired by our table, and not answering: send nothing
                raise ProviderUnavailable(
                    f"{closed.summary} ({closed.source}); the job API could not be reached to "
                    f"check it live ({error}), so nothing was sent: pass "
                    "allow_closed_provider=True (finetune train --allow-closed-provider) to "
                    "try anyway",
                    alternatives=alternatives_for(model),
                    backend=NAME,
                ) from None

    # -- files --

    async def upload_file(
        self, path: str | os.PathLike[str], *, filename: str | None = None
    ) -> FileRef:
        """Upload a JSONL file already in Mistral's format (``purpose="fine-tune"``), streamed.

        A file with the same name and size is reused; after a failed attempt the file list is
        checked before trying again, so a lost answer never leaves a duplicate.
        """
        source = Path(path)
        name = filename or source.name
        size = source.stat().st_size
        found = await self._find_file(name, size)
        if found is not None:
            return found

        async def send() -> FileRef:
            with source.open("rb") as handle:
                payload = await self._sdk_call(
                    (await self._ready_client()).files.upload_async,
                    file={"file_name": name, "content": handle},
                    purpose="fine-tune",
                )
            return file_ref(payload)

        return await self._retried(send, done=lambda: self._find_file(name, size))

    async def _find_file(self, name: str, size: int) -> FileRef | None:
        for page in range(MAX_PAGES):
            listed = await self._sdk_retried(
                (await self._ready_client()).files.list_async,
                page=page,
                page_size=PAGE_SIZE,
                purpose="fine-tune",
                search=name,
            )
            items = as_dict(listed).get("data") or []
            for item in items:
                if matches_file(item, name, size):
                    return file_ref(item)
            if len(items) < PAGE_SIZE:
                return None
        return None

    async def delete_file(self, file_id: str) -> bool:
        """Delete an uploaded file; returns ``deleted``."""
        client = await self._ready_client()
        file_id = path_segment(NAME, file_id, "file id")  # mistralai puts it in as given
        answer = await self._sdk_retried(client.files.delete_async, file_id=file_id)
        return bool(as_dict(answer).get("deleted", True))

    # -- jobs --

    async def create_job(self, request: JobRequest) -> Job:
        """Send one create (the Tuner first looks for a job training the same thing)."""
        body = create_body(request)
        answer = await self._send("POST", JOBS, body=body, secrets=_integration_keys(body))
        return job_from_payload(answer)

    async def find_job(self, request: JobRequest) -> Job | None:
        """Mistral stores no client key: a live job training the same files, suffix and
        hyperparameters is this fit's job."""
        body = create_body(request)
        filters = {"model": body["model"], "created_by_me": True, "suffix": body.get("suffix")}
        for item in await self._jobs(limit=PAGE_SIZE * 10, **filters):
            if same_fit(item, body):
                return job_from_payload(item)
        return None

    def owns(self, job: Job, request_key: str) -> bool:
        """Mistral keeps no key on a job: a remembered job is trusted by the endpoint alone."""
        return True

    async def _jobs(self, *, limit: int, **filters: Any) -> list[dict[str, Any]]:
        pager = PageCollector(limit, min(limit, PAGE_SIZE))
        for page in range(MAX_PAGES):
            params = self._list_params(page, pager.page_size, **filters)
            answer = expect_object(NAME, "job list", await self._get(JOBS, params=params))
            if not isinstance(answer.get("data"), list):
                raise unreadable(NAME, "job list", answer, KeyError("data"))
            if pager.add(answer["data"], answer.get("total")):
                break
        return pager.items

    async def get_job(self, job_id: str) -> Job:
        """The job as it is now (its events, checkpoints and metrics come with it)."""
        return job_from_payload(await self._job_payload(job_id))

    async def list_jobs(self, *, limit: int = 20) -> list[Job]:
        """The most recent jobs, newest first."""
        return [job_from_payload(item) for item in await self._jobs(limit=limit)]

    async def _transition(self, job_id: str, action: str, done: Callable[[Job], bool]) -> Job:
        path = f"{JOBS}/{path_segment(NAME, job_id)}/{action}"

        async def send() -> Job:
            return job_from_payload(await self._send("POST", path, job_call=True))

        async def seen_already() -> Job | None:
            current = await self.get_job(job_id)
            return current if done(current) else None

        return await self._retried(send, done=seen_already)

    async def cancel_job(self, job_id: str) -> Job:
        """Request cancellation (the job shows running until Mistral reports CANCELLED)."""
        return await self._transition(job_id, "cancel", _cancel_seen)

    async def resume_job(self, job_id: str) -> Job:
        """Start a job created with ``auto_start=False`` (Mistral's ``/start``)."""
        return await self.start_job(job_id)

    async def start_job(self, job_id: str) -> Job:
        """Start a validated job that was created with ``options={"auto_start": False}``."""
        return await self._transition(job_id, "start", _start_seen)

    async def list_events(self, job_id: str) -> list[JobEvent]:
        """The job's status changes, oldest first (from the job detail)."""
        payload = await self._job_payload(job_id)
        found = [event_from_payload(e) for e in list_at(payload, "events") if isinstance(e, dict)]
        return sorted(found, key=lambda e: e.created_at)

    async def get_metrics(self, job_id: str) -> list[MetricPoint]:
        """Metrics at each checkpoint: train_loss, valid_loss, valid_mean_token_accuracy."""
        return metrics_from_payload(await self._job_payload(job_id))

    async def list_checkpoints(self, job_id: str) -> list[Checkpoint]:
        """Checkpoints, in step order."""
        return checkpoints_from_payload(await self._job_payload(job_id))

    async def refine_estimate(
        self, dataset: Dataset, estimate: CostEstimate, hyperparameters: Hyperparameters
    ) -> CostEstimate:
        """Our estimate with Mistral's dry-run figures beside it (needs a key; uploads the data,
        which the later fit then reuses). While the job API is retired nothing is sent, unless
        ``allow_closed_provider=True``."""
        if self._dry_run and closed_on(NAME) and not self.allow_closed_provider:
            note = "the API's dry run was skipped: the job API is retired; nothing was uploaded"
            return estimate.with_notes(note)
        if not self._dry_run or not self._key:
            return _without_dry_run(estimate, self._dry_run)
        job = planned_job(NAME, estimate.model, dataset, hyperparameters)
        request = await self._with_data(job, dataset)
        body = create_body(request)
        dry_run = {"dry_run": "true"}
        figures = await self._retried(lambda: self._send("POST", JOBS, params=dry_run, body=body))
        return with_dry_run(estimate, figures if isinstance(figures, dict) else {})

    # -- fine-tuned models (through the SDK) --

    async def archive_model(self, model: str) -> bool:
        """Archive a fine-tuned model (it stops being listed and served); returns ``archived``."""
        client = await self._ready_client()
        answer = await self._sdk_retried(client.models.archive_async, model_id=_segment(model))
        return bool(as_dict(answer).get("archived", True))

    async def unarchive_model(self, model: str) -> bool:
        """Bring an archived fine-tuned model back; returns ``archived`` (``False``)."""
        client = await self._ready_client()
        answer = await self._sdk_retried(client.models.unarchive_async, model_id=_segment(model))
        return bool(as_dict(answer).get("archived", False))

    async def update_model(
        self, model: str, *, name: str | None = None, description: str | None = None
    ) -> dict[str, Any]:
        """Rename or describe a fine-tuned model; returns Mistral's model record."""
        fields = {k: v for k, v in (("name", name), ("description", description)) if v}
        answer = await self._sdk_retried(
            (await self._ready_client()).models.update_async, model_id=_segment(model), **fields
        )
        return as_dict(answer)

    async def aclose(self) -> None:
        """Close the connections this backend opened (its httpx client and the SDK's)."""
        await self._http.aclose()
        await super().aclose()

    async def _close_client(self, client: Any) -> None:
        await close_sdk(client)


async def close_sdk(sdk: Any) -> None:
    """Close a ``mistralai.Mistral``: it holds a blocking client and an async one."""
    sdk.__exit__(None, None, None)
    await sdk.__aexit__(None, None, None)


def _cancel_seen(job: Job) -> bool:
    return (job.raw or {}).get("status") in ("CANCELLATION_REQUESTED", "CANCELLED")


def _start_seen(job: Job) -> bool:
    return job.status is not JobStatus.PAUSED


def _without_dry_run(estimate: CostEstimate, wanted: bool) -> CostEstimate:
    if not wanted:
        return estimate
    note = "no Mistral API key: the API's dry run was skipped; the figures above are our own"
    return estimate.with_notes(note)


def _segment(model: str) -> str:
    """A model id as one segment of a URL path, its colons kept (``ft:open-mistral-7b:...``):
    mistralai puts the ids it is given in the path as they are."""
    return path_segment(NAME, model, "model", safe=":")

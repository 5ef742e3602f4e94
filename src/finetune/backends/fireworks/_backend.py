"""FireworksBackend: Fireworks AI supervised fine-tuning through the ``fireworks-ai`` SDK.

Routes are account-scoped (``/v1/accounts/{account}/...``). Datasets are named by their
content fingerprint and jobs (and their output models) by the fit's idempotency key, both
chosen by us: re-running a fit asks for the same ids, so nothing is ever made twice. Answers
are read as JSON by our own mapping through the SDK's client, with its retries off.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune._errors import (
    AuthenticationError,
    BackendError,
    InvalidRequestError,
    JobNotFound,
    MissingDependency,
    ServerError,
)
from finetune.backends.base import BaseBackend, JobRequest
from finetune.backends.fireworks._mapping import (
    CAPABILITIES,
    NAME,
    create_body,
    dataset_id,
    dataset_ref,
    job_from_payload,
    job_id_for,
    metrics_from_lines,
    with_quote,
)
from finetune.backends.http import (
    account_identity,
    call_with_retries,
    error_for_status,
    expect_object,
    list_at,
    put_file,
    sdk_error,
    sdk_request,
    written,
)
from finetune.types import CostEstimate, FileRef, Hyperparameters, Job, MetricPoint

if TYPE_CHECKING:
    from finetune.dataset import Dataset

__all__ = ["FireworksBackend", "map_error"]

log = logging.getLogger("finetune")
DEFAULT_BASE_URL = "https://api.fireworks.ai"
KEY_HINT = "Set FIREWORKS_API_KEY or pass api_key=... to the Tuner"
SINGLE_UPLOAD_LIMIT = 150 * 1024 * 1024
DEPLOYMENT_NOTE = (
    "Fireworks serves fine-tuned LoRA models on on-demand (dedicated) deployments, billed by "
    "GPU time while deployed; deploy it, then evaluate it with ModelRef.openai_compatible("
    "'https://api.fireworks.ai/inference/v1', model, api_key)"
)


def _sdk() -> Any:
    try:
        import fireworks
    except ImportError as exc:
        raise MissingDependency(
            "fireworks-ai", "fireworks", purpose="for the Fireworks backend"
        ) from exc
    return fireworks


def map_error(error: BaseException, secret: str | None, *, job_call: bool = False) -> Exception:
    """An exception from the ``fireworks`` SDK (or below it) as the matching error of ours."""
    return sdk_error(NAME, _sdk, error, secret, job_call=job_call, key_hint=KEY_HINT)


class FireworksBackend(BaseBackend):
    """Fireworks AI supervised fine-tuning (``pip install "finetune[fireworks]"``).

    Args:
        api_key: ``FIREWORKS_API_KEY`` when omitted. account_id: ``FIREWORKS_ACCOUNT_ID``.
        base_url: ``https://api.fireworks.ai`` (``FIREWORKS_BASE_URL``).
        client: a ``fireworks.AsyncFireworks`` to use instead of building one.
        attempts: tries per call for transient failures. timeout: seconds per request.
        dataset_timeout: seconds to wait for an uploaded dataset to be READY.
    """

    name = NAME
    capabilities = CAPABILITIES

    def __init__(
        self,
        *,
        api_key: str | None = None,
        account_id: str | None = None,
        base_url: str | None = None,
        client: Any = None,
        attempts: int = 6,
        timeout: float | None = None,
        retry_after_cap: float = 120.0,
        dataset_timeout: float = 600.0,
        dataset_poll_interval: float = 2.0,
        estimate_quote: bool = True,
    ) -> None:
        self._key = api_key or os.environ.get("FIREWORKS_API_KEY") or None
        self._account = account_id or os.environ.get("FIREWORKS_ACCOUNT_ID") or None
        url = base_url or os.environ.get("FIREWORKS_BASE_URL") or DEFAULT_BASE_URL
        self._base_url = url.rstrip("/")
        self._client = client
        self._attempts = attempts
        self._timeout = timeout
        self._retry_after_cap = retry_after_cap
        self._dataset_timeout = dataset_timeout
        self._dataset_poll = dataset_poll_interval
        self._quote = estimate_quote

    def __repr__(self) -> str:
        return f"FireworksBackend(base_url={self._base_url!r}, account={self._account!r})"

    @property
    def identity(self) -> str:
        """Base URL, account and a digest of the key (never the key)."""
        return account_identity(self._base_url, self._account, key=self._key)

    # -- transport --

    def _sdk_client(self) -> Any:
        if self._client is None:
            fireworks = _sdk()
            if not self._key:
                raise AuthenticationError(f"no Fireworks API key. {KEY_HINT}", backend=NAME)
            options: dict[str, Any] = {
                "api_key": self._key,
                "base_url": self._base_url,
                "account_id": self._require_account(),
                "max_retries": 0,
            }
            if self._timeout is not None:
                options["timeout"] = self._timeout
            self._client = fireworks.AsyncFireworks(**options)
        return self._client

    def _require_account(self) -> str:
        if not self._account:
            raise InvalidRequestError(
                "no Fireworks account id: set FIREWORKS_ACCOUNT_ID or pass account_id=...",
                backend=NAME,
                param="account_id",
            )
        return self._account

    def _path(self, *parts: str) -> str:
        return "/".join(["/v1/accounts", self._require_account(), *parts])

    async def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request through the SDK's client; its JSON answer, or our error."""
        job_call = kwargs.pop("job_call", False)
        return await sdk_request(
            self._sdk_client(),
            method,
            path,
            provider=NAME,
            on_error=lambda exc: map_error(exc, self._key, job_call=job_call),
            **kwargs,
        )

    async def _get(self, path: str, **kwargs: Any) -> Any:
        return await call_with_retries(
            lambda: self._send("get", path, **kwargs),
            self._attempts,
            retry_after_cap=self._retry_after_cap,
        )

    async def preflight(self, request: JobRequest) -> None:
        """Before anything is uploaded: the account is known and the request maps."""
        create_body(request, self._require_account())

    # -- datasets --

    async def upload(self, dataset: Dataset, *, purpose: str = "train") -> FileRef:
        """One dataset per content (named by its fingerprint): created, uploaded and waited
        for until READY, or reused when it is there already."""
        fingerprint = await asyncio.to_thread(dataset.fingerprint)
        identifier = dataset_id(fingerprint, purpose)
        examples = await asyncio.to_thread(len, dataset)
        async with written(dataset, self.format_example) as path:
            return await self.upload_file(path, identifier, examples)

    async def upload_file(
        self, path: str | os.PathLike[str], identifier: str, examples: int
    ) -> FileRef:
        """Upload a JSONL file (chat format) as dataset ``identifier``, reusing a READY one."""
        source = Path(path)
        current = await self._dataset(identifier)
        if current is None:
            current = await self._create_dataset(identifier, examples)
        if current.get("state") != "READY":
            await self._send_content(identifier, source)
            current = await self._until_ready(identifier)
        return dataset_ref(current)

    async def _dataset(self, identifier: str) -> dict[str, Any] | None:
        try:
            answer = await self._get(self._path("datasets", identifier), job_call=True)
        except JobNotFound:
            return None
        return expect_object(NAME, "dataset", answer)

    async def _create_dataset(self, identifier: str, examples: int) -> dict[str, Any]:
        """Create the dataset record; each retry first looks for it (a lost answer), and an
        ``ALREADY_EXISTS`` means another attempt or process made it."""
        body = {
            "datasetId": identifier,
            "dataset": {
                "displayName": identifier,
                "exampleCount": str(examples),
                "userUploaded": {},
            },
        }

        async def create() -> dict[str, Any]:
            try:
                answer = await self._send("post", self._path("datasets"), body=body)
            except BackendError as error:
                if error.status_code != 409:
                    raise
                made = await self._dataset(identifier)
                if made is None:
                    raise
                return made
            return expect_object(NAME, "dataset", answer)

        return await call_with_retries(
            create,
            self._attempts,
            retry_after_cap=self._retry_after_cap,
            done=lambda: self._dataset(identifier),
        )

    async def _send_content(self, identifier: str, source: Path) -> None:
        size = source.stat().st_size
        if size <= SINGLE_UPLOAD_LIMIT:
            data = await asyncio.to_thread(source.read_bytes)
            await self._upload_small(identifier, source.name, data)
        else:
            await self._upload_large(identifier, source, size)

    async def _upload_small(self, identifier: str, name: str, data: bytes) -> None:
        datasets = self._sdk_client().datasets.with_raw_response

        async def once() -> None:
            try:
                await datasets.upload(identifier, file=(name, data, "application/jsonl"))
            except Exception as exc:
                error = map_error(exc, self._key)
            else:
                return
            raise error

        await call_with_retries(once, self._attempts, retry_after_cap=self._retry_after_cap)

    async def _upload_large(self, identifier: str, source: Path, size: int) -> None:
        """Files over 150 MB: a signed URL, a PUT of the file (streamed), then a validation
        call; each step retried on its own, so a fault late in the flow never sends it again."""
        asked = {"filenameToSize": {source.name: str(size)}}
        endpoint = self._path(f"datasets/{identifier}:getUploadEndpoint")
        answer = await call_with_retries(
            lambda: self._send("post", endpoint, body=asked),
            self._attempts,
            retry_after_cap=self._retry_after_cap,
        )
        urls = expect_object(NAME, "upload endpoint", answer).get("filenameToSignedUrls") or {}
        url = urls.get(source.name)
        if not isinstance(url, str):
            raise ServerError(f"gave no upload URL for {source.name}: {answer}", backend=NAME)
        await put_file(
            NAME,
            url,
            source,
            secret=self._key,
            attempts=self._attempts,
            retry_after_cap=self._retry_after_cap,
            headers={"Content-Type": "application/octet-stream"},
            timeout=self._timeout,
        )
        await self._validate_upload(identifier)

    async def _validate_upload(self, identifier: str) -> None:
        """Ask Fireworks to take the PUT file; a retry first reads the dataset, in case only
        the answer of the last ask was lost."""
        validate = self._path(f"datasets/{identifier}:validateUpload")

        async def send() -> dict[str, Any]:
            return expect_object(NAME, "validation", await self._send("post", validate, body={}))

        await call_with_retries(
            send,
            self._attempts,
            retry_after_cap=self._retry_after_cap,
            done=lambda: self._ready_dataset(identifier),
        )

    async def _ready_dataset(self, identifier: str) -> dict[str, Any] | None:
        current = await self._dataset(identifier)
        return current if current is not None and current.get("state") == "READY" else None

    async def _until_ready(self, identifier: str) -> dict[str, Any]:
        deadline = time.monotonic() + self._dataset_timeout
        while True:
            current = await self._ready_dataset(identifier)
            if current is not None:
                return current
            if time.monotonic() > deadline:
                raise ServerError(f"dataset {identifier} is still not READY", backend=NAME)
            await asyncio.sleep(self._dataset_poll)

    # -- jobs --

    async def create_job(self, request: JobRequest) -> Job:
        """Create the job under the id derived from the key; an id already taken is this fit's
        job (made by an earlier attempt), so it is returned, never duplicated."""
        body = create_body(request, self._require_account())
        identifier = job_id_for(request.idempotency_key)
        params = {"supervisedFineTuningJobId": identifier}
        try:
            answer = await self._send(
                "post", self._path("supervisedFineTuningJobs"), body=body, params=params
            )
        except BackendError as error:
            if error.status_code != 409:
                raise
            return await self.get_job(identifier)
        return self._with_note(job_from_payload(answer))

    async def find_job(self, request: JobRequest) -> Job | None:
        """The job of this request's key: its id is derived from the key."""
        try:
            return await self.get_job(job_id_for(request.idempotency_key))
        except JobNotFound:
            return None

    async def get_job(self, job_id: str) -> Job:
        """The job as it is now."""
        answer = await self._get(self._path("supervisedFineTuningJobs", job_id), job_call=True)
        return self._with_note(job_from_payload(answer))

    def owns(self, job: Job, request_key: str) -> bool:
        """A job is this fit's when its id is the one the key derives."""
        return job.id == job_id_for(request_key)

    def _with_note(self, job: Job) -> Job:
        if job.fine_tuned_model is None:
            return job
        return job.model_copy(update={"raw": {**(job.raw or {}), "serving": DEPLOYMENT_NOTE}})

    async def list_jobs(self, *, limit: int = 20) -> list[Job]:
        """The most recent jobs."""
        jobs: list[Job] = []
        token: str | None = None
        while len(jobs) < limit:
            params = {"pageSize": min(limit, 200), **({"pageToken": token} if token else {})}
            page = expect_object(
                NAME,
                "job list",
                await self._get(self._path("supervisedFineTuningJobs"), params=params),
            )
            items = list_at(page, "supervisedFineTuningJobs")
            jobs.extend(job_from_payload(i) for i in items if isinstance(i, dict))
            token = page.get("nextPageToken") or None
            if not items or not token:
                break
        return jobs[:limit]

    async def cancel_job(self, job_id: str) -> Job:
        """Cancel the job."""
        path = self._path(f"supervisedFineTuningJobs/{job_id}:cancel")
        await call_with_retries(
            lambda: self._send("post", path, body={}, job_call=True), self._attempts
        )
        return await self.get_job(job_id)

    async def resume_job(self, job_id: str) -> Job:
        """Resume a paused (or failed) job from where it stopped."""
        path = self._path(f"supervisedFineTuningJobs/{job_id}:resume")
        await call_with_retries(
            lambda: self._send("post", path, body={}, job_call=True), self._attempts
        )
        return await self.get_job(job_id)

    async def get_metrics(self, job_id: str) -> list[MetricPoint]:
        """The job's metrics file (JSON lines with a step and numbers), once it has one."""
        import httpx

        job = await self.get_job(job_id)
        url = (job.raw or {}).get("metricsFileSignedUrl")
        if not isinstance(url, str) or not url:
            return []
        async with httpx.AsyncClient(timeout=60) as raw:
            response = await raw.get(url)
        if response.status_code >= 400:
            raise error_for_status(NAME, response.status_code, response.text, response.headers)
        rows = []
        for line in response.text.splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
        return metrics_from_lines(rows)

    async def refine_estimate(
        self, dataset: Dataset, estimate: CostEstimate, hyperparameters: Hyperparameters
    ) -> CostEstimate:
        """Our estimate with Fireworks' ``:estimateCost`` beside it (needs a key and an
        account; uploads the dataset, which the later fit reuses)."""
        if not self._quote or not self._key or not self._account:
            note = "no Fireworks key or account: its quote was skipped; the figures are our own"
            return estimate.model_copy(update={"notes": [*estimate.notes, note]})
        training = await self.upload(dataset, purpose="train")
        request = JobRequest(
            base_model=estimate.model,
            training_file=training,
            hyperparameters=hyperparameters,
            idempotency_key="quote",
        )
        body = create_body(request, self._require_account())
        path = self._path("supervisedFineTuningJobs:estimateCost")
        answer = await call_with_retries(
            lambda: self._send("post", path, body=body), self._attempts
        )
        return with_quote(estimate, expect_object(NAME, "cost estimate", answer))

    async def aclose(self) -> None:
        """Close the SDK client's connections."""
        if self._client is not None:
            await self._client.close()

"""FireworksBackend: Fireworks AI fine-tuning (supervised and DPO jobs) through the
``fireworks-ai`` SDK.

Routes are account-scoped (``/v1/accounts/{account}/...``). Datasets are named by their
content fingerprint and jobs (and their output models) by the fit's idempotency key, both
chosen by us: re-running a fit asks for the same ids, so nothing is ever made twice. Answers
are read as JSON by our own mapping through the SDK's client, with its retries off.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from finetune._errors import (
    BackendError,
    InvalidRequestError,
    JobNotFound,
    MissingDependency,
    ServerError,
)
from finetune.backends.base import JobRequest, planned_job
from finetune.backends.fireworks._mapping import (
    CAPABILITIES,
    DPO_JOBS,
    NAME,
    SFT_JOBS,
    base_model_refusal,
    create_body,
    dataset_id_for,
    dataset_ref,
    job_from_payload,
    job_id_for,
    metrics_from_lines,
    model_path,
    resource_of,
    with_quote,
)
from finetune.backends.hosted import Connection, HostedBackend
from finetune.backends.http import (
    error_for_status,
    expect_object,
    list_at,
    path_segment,
    sdk_error,
)
from finetune.types import CostEstimate, FileRef, Hyperparameters, Job, MetricPoint

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from finetune.dataset import Dataset

__all__ = ["FireworksBackend", "map_error"]

T = TypeVar("T")
DEFAULT_BASE_URL = "https://api.fireworks.ai"
KEY_HINT = "Set FIREWORKS_API_KEY or pass api_key=... to the Tuner"
SINGLE_UPLOAD_LIMIT = 150 * 1024 * 1024
DEPLOYMENT_NOTE = (
    "Fireworks serves fine-tuned LoRA models on on-demand (dedicated) deployments, billed by "
    "GPU time while deployed; deploy it, then evaluate the job's model as any candidate (asked "
    "through Fireworks' OpenAI-compatible API with FIREWORKS_API_KEY)"
)


def _sdk() -> Any:
    try:
        import fireworks
    except ImportError as exc:
        raise MissingDependency(
            "fireworks-ai", "fireworks", purpose="for the Fireworks backend"
        ) from exc
    return fireworks


def map_error(
    error: BaseException, secret: str | None, *, job_call: bool = False, url: str | None = None
) -> Exception:
    """An exception from the ``fireworks`` SDK (or below it) as the matching error of ours; a
    server that cannot be reached is named by its ``url``."""
    return sdk_error(NAME, _sdk, error, secret, job_call=job_call, key_hint=KEY_HINT, url=url)


class FireworksBackend(HostedBackend):
    """Fireworks AI supervised fine-tuning (``pip install "finetune[fireworks]"``).

    It takes the settings of every hosted backend (``Connection``: ``api_key``, else
    ``FIREWORKS_API_KEY``; ``base_url``, ``https://api.fireworks.ai``, else
    ``FIREWORKS_BASE_URL``; ``client``, a ``fireworks.AsyncFireworks`` to use instead of
    building one; ``attempts``, ``timeout``, ``retry_after_cap``, ``first_wait``) and these.

    Args:
        account_id: the Fireworks account the jobs run in (else ``FIREWORKS_ACCOUNT_ID``).
        dataset_timeout: seconds to wait for an uploaded dataset to be READY.
        dataset_poll_interval: seconds between the checks of an uploaded dataset.
        estimate_quote: let ``Tuner.estimate`` ask Fireworks' ``estimateCost`` (supervised jobs;
            uploads the dataset, which the fit then reuses).
    """

    name = NAME
    capabilities = CAPABILITIES
    title = "Fireworks"
    logged_through: ClassVar[tuple[str, ...]] = ("fireworks._base_client",)
    key_variable = "FIREWORKS_API_KEY"
    url_variable = "FIREWORKS_BASE_URL"
    default_url = DEFAULT_BASE_URL
    serving_note: ClassVar[str] = DEPLOYMENT_NOTE
    chat_api: ClassVar[str] = "/inference/v1"
    environment: ClassVar[Mapping[str, str]] = {"account_id": "FIREWORKS_ACCOUNT_ID"}

    def __init__(
        self,
        *,
        account_id: str | None = None,
        dataset_timeout: float = 600.0,
        dataset_poll_interval: float = 2.0,
        estimate_quote: bool = True,
        **connection: Unpack[Connection],
    ) -> None:
        super().__init__(**connection)
        self._account = account_id or os.environ.get(self.environment["account_id"]) or None
        self._dataset_timeout = dataset_timeout
        self._dataset_poll = dataset_poll_interval
        self._quote = estimate_quote
        self._tunable: set[str] = set()  # base models read once and found tunable

    def _scope(self) -> dict[str, str | None]:
        return {"account": self._account}

    # -- transport --

    def _new_client(self, key: str) -> Any:
        account = self._require_account()
        return _sdk().AsyncFireworks(**self._sdk_options(key, account_id=account))

    def _map_error(self, error: BaseException, *, job_call: bool = False) -> Exception:
        return map_error(error, self._key, job_call=job_call, url=self._base_url)

    def _require_account(self) -> str:
        if not self._account:
            key = "" if self._key else f"; no API key either: {KEY_HINT[0].lower()}{KEY_HINT[1:]}"
            raise InvalidRequestError(
                f"no Fireworks account id: set FIREWORKS_ACCOUNT_ID or pass account_id=...{key}",
                backend=NAME,
                param="account_id",
            )
        return self._account

    def _path(self, *parts: str) -> str:
        return "/".join(["/v1/accounts", self._require_account(), *parts])

    def check_request(self, request: JobRequest) -> None:
        """What cannot map to a Fireworks job, refused with no request made (an account not
        set yet is checked by ``preflight``: an estimate needs none)."""
        create_body(request, self._account or "account")

    async def preflight(self, request: JobRequest) -> None:
        """Before anything is uploaded: the account is known, the request maps, and the base
        model is one Fireworks fine-tunes (one GET of it: an unknown model, or one it serves
        but does not tune, is refused)."""
        self._require_account()
        self.check_request(request)
        model = request.base_model
        if model not in self._tunable:
            refusal = base_model_refusal(model, await self._model_resource(model))
            if refusal is not None:
                raise InvalidRequestError(refusal, backend=NAME, param="model")
            self._tunable.add(model)

    async def _model_resource(self, model: str) -> dict[str, Any] | None:
        named = model_path(model)
        if named is None:
            return None
        account, identifier = (path_segment(NAME, part, "model") for part in named)
        try:
            answer = await self._get(f"/v1/accounts/{account}/models/{identifier}")
            return expect_object(NAME, "model", answer)
        except InvalidRequestError as error:
            if error.status_code == 404:
                return None
            raise

    # -- datasets --

    async def upload_file(
        self, path: str | os.PathLike[str], *, filename: str | None = None
    ) -> FileRef:
        """Upload a JSONL file (chat format) as the dataset named by ``filename`` (the file's
        own name by default; ``upload`` names it by content), reusing a READY one: created,
        sent and waited for until READY otherwise."""
        source = Path(path)
        identifier = dataset_id_for(filename or source.name)
        current = await self._dataset(identifier)
        if current is None:
            examples = await asyncio.to_thread(_line_count, source)
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
                answer = await self._request("post", self._path("datasets"), body=body)
            except BackendError as error:
                if error.status_code != 409:
                    raise
                made = await self._dataset(identifier)
                if made is None:
                    raise
                return made
            return expect_object(NAME, "dataset", answer)

        return await self._retried(create, done=lambda: self._dataset(identifier))

    async def _send_content(self, identifier: str, source: Path) -> None:
        size = source.stat().st_size
        if size <= SINGLE_UPLOAD_LIMIT:
            data = await asyncio.to_thread(source.read_bytes)
            await self._upload_small(identifier, source.name, data)
        else:
            await self._upload_large(identifier, source, size)

    async def _upload_small(self, identifier: str, name: str, data: bytes) -> None:
        datasets = (await self._ready_client()).datasets.with_raw_response

        async def once() -> None:
            try:
                await datasets.upload(identifier, file=(name, data, "application/jsonl"))
            except Exception as exc:
                error = self._map_error(exc)
            else:
                return
            raise error

        await self._retried(once)

    async def _upload_large(self, identifier: str, source: Path, size: int) -> None:
        """Files over 150 MB: a signed URL, a PUT of the file (streamed), then a validation
        call; each step retried on its own, so a fault late in the flow never sends it again."""
        asked = {"filenameToSize": {source.name: str(size)}}
        endpoint = self._path(f"datasets/{identifier}:getUploadEndpoint")
        answer = await self._retried(lambda: self._request("post", endpoint, body=asked))
        urls = expect_object(NAME, "upload endpoint", answer).get("filenameToSignedUrls") or {}
        url = urls.get(source.name)
        if not isinstance(url, str):
            raise ServerError(f"gave no upload URL for {source.name}: {answer}", backend=NAME)
        await self._put(url, source, {"Content-Type": "application/octet-stream"})
        await self._validate_upload(identifier)

    async def _validate_upload(self, identifier: str) -> None:
        """Ask Fireworks to take the PUT file; a retry first reads the dataset, in case only
        the answer of the last ask was lost."""
        validate = self._path(f"datasets/{identifier}:validateUpload")

        async def send() -> dict[str, Any]:
            answer = await self._request("post", validate, body={})
            return expect_object(NAME, "validation", answer)

        await self._retried(send, done=lambda: self._ready_dataset(identifier))

    async def _ready_dataset(self, identifier: str) -> dict[str, Any] | None:
        current = await self._dataset(identifier)
        return current if current is not None and current.get("state") == "READY" else None

    async def _until_ready(self, identifier: str) -> dict[str, Any]:
        return await self._poll(
            lambda: self._ready_dataset(identifier),
            timeout=self._dataset_timeout,
            every=self._dataset_poll,
            what=f"dataset {identifier} is still not READY",
        )

    # -- jobs --

    async def create_job(self, request: JobRequest) -> Job:
        """Create the job under the id derived from the key; an id already taken is this fit's
        job (made by an earlier attempt), so it is returned, never duplicated."""
        body = create_body(request, self._require_account())
        identifier = job_id_for(request.idempotency_key, request.method)
        collection = resource_of(identifier)
        params = {"dpoJobId" if collection == DPO_JOBS else "supervisedFineTuningJobId": identifier}
        try:
            answer = await self._request("post", self._path(collection), body=body, params=params)
        except BackendError as error:
            if error.status_code != 409:
                raise
            return await self.get_job(identifier)
        return self._with_note(job_from_payload(answer))

    async def find_job(self, request: JobRequest) -> Job | None:
        """The job of this request's key: its id is derived from the key."""
        try:
            return await self.get_job(job_id_for(request.idempotency_key, request.method))
        except JobNotFound:
            return None

    async def get_job(self, job_id: str) -> Job:
        """The job as it is now: a supervised or a DPO job."""

        async def read(collection: str) -> Any:
            path = self._path(collection, _job_segment(job_id))
            return await self._get(path, job_call=True)

        return self._with_note(job_from_payload(await self._in_its_collection(job_id, read)))

    async def _in_its_collection(self, job_id: str, call: Callable[[str], Awaitable[T]]) -> T:
        """``call(collection)`` on the job's collection: ours say which by their id; a job
        made elsewhere is looked for in the other one when the first has no such job."""
        first = resource_of(job_id)
        try:
            return await call(first)
        except JobNotFound:
            return await call(SFT_JOBS if first == DPO_JOBS else DPO_JOBS)

    def owns(self, job: Job, request_key: str) -> bool:
        """A job is this fit's when its id is the one the key derives."""
        return job.id == job_id_for(request_key, job.method)

    async def list_jobs(self, *, limit: int = 20) -> list[Job]:
        """The most recent jobs, supervised and DPO, newest first."""
        supervised, preference = await asyncio.gather(
            self._list(SFT_JOBS, limit), self._list(DPO_JOBS, limit)
        )
        jobs = sorted(supervised + preference, key=_created, reverse=True)
        return jobs[:limit]

    async def _list(self, collection: str, limit: int) -> list[Job]:
        jobs: list[Job] = []
        token: str | None = None
        while len(jobs) < limit:
            params = {"pageSize": min(limit, 200), **({"pageToken": token} if token else {})}
            answer = await self._get(self._path(collection), params=params)
            page = expect_object(NAME, "job list", answer)
            items = list_at(page, collection)
            jobs.extend(job_from_payload(i) for i in items if isinstance(i, dict))
            token = page.get("nextPageToken") or None
            if not items or not token:
                break
        return jobs[:limit]

    async def cancel_job(self, job_id: str) -> Job:
        """Cancel the job."""
        return await self._job_action(job_id, "cancel")

    async def resume_job(self, job_id: str) -> Job:
        """Resume a paused (or failed) job from where it stopped."""
        return await self._job_action(job_id, "resume")

    async def _job_action(self, job_id: str, action: str) -> Job:
        async def act(collection: str) -> Any:
            path = self._path(collection, f"{_job_segment(job_id)}:{action}")
            return await self._retried(lambda: self._request("post", path, body={}, job_call=True))

        await self._in_its_collection(job_id, act)
        return await self.get_job(job_id)

    async def get_metrics(self, job_id: str) -> list[MetricPoint]:
        """The job's metrics file (JSON lines with a step and numbers), once it has one."""
        import httpx

        job = await self.get_job(job_id)
        url = (job.raw or {}).get("metricsFileSignedUrl")
        if job.method == "dpo":
            path = self._path(DPO_JOBS, f"{_job_segment(job_id)}:getMetricsFileEndpoint")
            answer = await self._get(path, job_call=True)
            url = expect_object(NAME, "metrics file endpoint", answer).get("signedUrl")
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
        if not self._quote:
            return estimate
        if dataset.kind == "preference":
            note = (
                "Fireworks quotes supervised jobs only (estimateCost); a DPO job's figures are ours"
            )
            return estimate.with_notes(note)
        if not self._key or not self._account:
            note = "no Fireworks key or account: its quote was skipped; the figures are our own"
            return estimate.with_notes(note)
        job = planned_job(NAME, estimate.model, dataset, hyperparameters)
        request = await self._with_data(job, dataset)
        body = create_body(request, self._require_account())
        path = self._path("supervisedFineTuningJobs:estimateCost")
        answer = await self._retried(lambda: self._request("post", path, body=body))
        return with_quote(estimate, expect_object(NAME, "cost estimate", answer))


def _created(job: Job) -> float:
    return job.created_at.timestamp() if job.created_at else 0.0


def _line_count(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _job_segment(job_id: str) -> str:
    """A job id as one segment of a path. The SDK sends through aiohttp, which turns ``%3A``
    back into ``:``, Fireworks' separator of actions (``{id}:cancel``): no id holds one."""
    if isinstance(job_id, str) and ":" in job_id:
        raise InvalidRequestError(f"{job_id!r} is not a job id", backend=NAME, param="job id")
    return path_segment(NAME, job_id)

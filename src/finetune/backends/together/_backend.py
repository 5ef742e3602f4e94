"""TogetherBackend: Together AI fine-tuning through the official ``together`` SDK.

Files go through the SDK's upload flow (a checksum, a 302 to a signed URL, a PUT, then
``/files/{id}/preprocess``; a 409 means the same content is there already and returns it),
with each of the three steps retried on its own.
Jobs are plain JSON requests through the SDK's client with its retries off, read by our own
mapping. Together keeps no client key on a job, so ``find_job`` recognises a job by what it
trains, and ``create_job`` is never retried blindly.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from finetune._errors import BackendError, InvalidRequestError, MissingDependency
from finetune.backends._files import sha256_of
from finetune.backends.base import JobRequest, planned_job
from finetune.backends.hosted import Connection, HostedBackend
from finetune.backends.http import expect_object, list_at, path_segment, sdk_error
from finetune.backends.together._mapping import (
    CAPABILITIES,
    NAME,
    checkpoint_from_payload,
    create_body,
    event_from_payload,
    file_problem,
    file_ref,
    job_from_payload,
    metrics_from_payload,
    same_fit,
    with_quote,
)
from finetune.dataset._formats import as_chat_record
from finetune.types import (
    Checkpoint,
    CostEstimate,
    FileRef,
    Hyperparameters,
    Job,
    JobEvent,
    MetricPoint,
)
from finetune.validation._catalog import model_meant

log = logging.getLogger("finetune")

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from finetune.dataset import Dataset

__all__ = ["TogetherBackend", "map_error"]

DEFAULT_BASE_URL = "https://api.together.ai"
KEY_HINT = "Set TOGETHER_API_KEY or pass api_key=... to the Tuner"
SERVERLESS_NOTE = (
    "Together serves LoRA fine-tunes serverless only for some base models; others need a "
    "dedicated endpoint, billed per minute while it runs (stop it when idle)"
)
# (full fine-tune, DPO) -> what costs more than the LoRA SFT rate of our table
_DEARER = {(False, True): "DPO", (True, False): "a full fine-tune", (True, True): "full DPO"}
_PRICE_NOTE = (
    "our price is Together's LoRA SFT rate: {} has higher rates of its own "
    "(https://www.together.ai/pricing), which Together's quote (with a key) applies"
)
# What estimate-price takes of a create body: the files, the model and what it bills.
_QUOTED = (
    "model",
    "training_file",
    "validation_file",
    "n_epochs",
    "n_evals",
    "training_method",
    "training_type",
)


def _sdk() -> Any:
    try:
        import together
    except ImportError as exc:
        raise MissingDependency("together", "together", purpose="for the Together backend") from exc
    return together


def _upload_tools() -> Any:
    """The SDK's upload manager module (its signed-URL step and its 409 error)."""
    _sdk()
    from together.lib.resources import files

    return files


def map_error(
    error: BaseException, secret: str | None, *, job_call: bool = False, url: str | None = None
) -> Exception:
    """An exception from the ``together`` SDK (or below it) as the matching error of ours; a
    server that cannot be reached is named by its ``url``."""
    return sdk_error(NAME, _sdk, error, secret, job_call=job_call, key_hint=KEY_HINT, url=url)


def _with_model_meant(error: InvalidRequestError, model: str) -> InvalidRequestError:
    """Together's refusal of an unknown model (a 404 of its limits), with the model of our
    table that its name may misspell (``Qwen/Qwen3-8b``: ``Qwen/Qwen3-8B``)."""
    meant = model_meant(NAME, model) if error.status_code == 404 else ""
    return error.with_note(meant, param="model") if meant else error


class TogetherBackend(HostedBackend):
    """Together AI fine-tuning (``pip install "finetune[together]"``).

    It takes the settings of every hosted backend (``Connection``: ``api_key``, else
    ``TOGETHER_API_KEY``, needed by calls only; ``base_url``, ``https://api.together.ai``, else
    ``TOGETHER_BASE_URL``; ``client``, a ``together.AsyncTogether`` to use instead of building
    one; ``attempts``, ``timeout``, ``retry_after_cap``, ``first_wait``) and these.

    Args:
        file_timeout: seconds to wait for an uploaded file to pass Together's validation.
        file_poll_interval: seconds between the checks of an uploaded file.
        estimate_quote: let ``Tuner.estimate`` ask Together's ``estimate-price`` (uploads the
            data, which the fit then reuses).
    """

    name = NAME
    capabilities = CAPABILITIES
    title = "Together"
    logged_through: ClassVar[tuple[str, ...]] = ("together._base_client",)
    key_variable = "TOGETHER_API_KEY"
    url_variable = "TOGETHER_BASE_URL"
    default_url = DEFAULT_BASE_URL
    serving_note: ClassVar[str] = SERVERLESS_NOTE
    chat_api: ClassVar[str] = "/v1"

    def __init__(
        self,
        *,
        file_timeout: float = 600.0,
        file_poll_interval: float = 2.0,
        estimate_quote: bool = True,
        **connection: Unpack[Connection],
    ) -> None:
        super().__init__(**connection)
        self._base_url = self._base_url.removesuffix("/v1")
        self._file_timeout = file_timeout
        self._file_poll = file_poll_interval
        self._quote = estimate_quote
        self._limits: dict[str, dict[str, Any]] = {}

    def context_limit(self, model: str) -> int | None:
        """The model's longest SFT sequence, once its limits were read (else the catalog's)."""
        limits = self._limits.get(model) or {}
        value = limits.get("max_seq_length_sft")
        return int(value) if isinstance(value, int) else None

    # -- transport --

    def _new_client(self, key: str) -> Any:
        return _sdk().AsyncTogether(**self._sdk_options(key))

    def _map_error(self, error: BaseException, *, job_call: bool = False) -> Exception:
        return map_error(error, self._key, job_call=job_call, url=self._base_url)

    # -- before anything is uploaded --

    def check_request(self, request: JobRequest) -> None:
        """What cannot map to Together's create body, refused with no request made."""
        create_body(request)

    async def preflight(self, request: JobRequest) -> None:
        """Before anything is uploaded: what cannot map is refused with no request made; then
        the model's limits are read (one GET; an unknown model is refused) and the request
        checked against them (LoRA rank, batch size)."""
        self.check_request(request)
        create_body(request, await self._model_limits(request.base_model))

    async def _model_limits(self, model: str) -> dict[str, Any]:
        if model not in self._limits:
            try:
                answer = await self._get(
                    "/v1/fine-tunes/models/limits", params={"model_name": model}
                )
            except InvalidRequestError as error:
                raise _with_model_meant(error, model) from None
            self._limits[model] = expect_object(NAME, "model limits", answer)
        return self._limits[model]

    # -- files --

    async def upload_file(
        self, path: str | os.PathLike[str], *, filename: str | None = None
    ) -> FileRef:
        """Upload a JSONL file already in Together's format, as ``filename`` (its own name by
        default), reusing a valid file of that name and size; then wait for Together's
        server-side validation and report its verdict in our terms."""
        source = Path(path)
        name = filename or source.name
        existing = await self._find_file(name, source.stat().st_size)
        if existing is None:
            existing = await self._upload_new(source, name)
        return await self._validated(existing)

    async def _find_file(self, name: str, size: int) -> dict[str, Any] | None:
        listed = expect_object(NAME, "file list", await self._get("/v1/files"))
        for item in list_at(listed, "data"):
            same = isinstance(item, dict) and item.get("filename") == name
            if same and item.get("bytes") in (None, size) and not file_problem(item):
                return dict(item)
        return None

    async def _upload_new(self, path: Path, name: str) -> dict[str, Any]:
        """The SDK's single-file flow as three steps, each retried on its own so that a lost
        answer or a 5xx never sends the file again: ask for a signed URL (a 409 means the same
        content is there already), PUT the file to it, then ask Together to preprocess it."""
        checksum = await asyncio.to_thread(sha256_of, path)
        target = await self._upload_target(name, checksum)
        if isinstance(target, dict):
            return target
        url, file_id = target
        await self._put(url, path)
        return await self._preprocess(file_id)

    async def _upload_target(self, name: str, checksum: str) -> tuple[str, str] | dict[str, Any]:
        """The signed URL and file id for a new upload, or the file already holding this
        content. A retried ask is harmless: nothing is a file until it is preprocessed."""
        client = await self._ready_client()
        tools = _upload_tools()
        manager = tools.AsyncUploadManager(client)

        async def ask() -> tuple[str, str] | dict[str, Any]:
            known: str | None = None
            try:
                # the SDK reads only the name of this path: the file goes by put_file
                url, file_id = await manager.get_upload_url(
                    "/v1/files", Path(name), checksum, "fine-tune", "jsonl"
                )
            except tools.FileAlreadyExistsError as exists:
                known = str(exists.file_id)
            except Exception as exc:
                failure = self._map_error(exc)
            else:
                return str(url), str(file_id)
            if known is None:
                raise failure
            # outside the except: the SDK's error (its request, its body) is not chained on
            return await self._file(known)

        return await self._retried(ask)

    async def _preprocess(self, file_id: str) -> dict[str, Any]:
        """Ask Together to take the uploaded content as a file; a retry first reads the file,
        in case the last ask was done and only its answer was lost."""
        path = _file_path(file_id, "preprocess")

        async def send() -> dict[str, Any]:
            return expect_object(NAME, "file", await self._request("post", path, body=None))

        return await self._retried(send, done=lambda: self._file_if_any(file_id))

    async def _file(self, file_id: str) -> dict[str, Any]:
        return expect_object(NAME, "file", await self._get(_file_path(file_id)))

    async def _file_if_any(self, file_id: str) -> dict[str, Any] | None:
        try:
            return await self._file(file_id)
        except BackendError as error:
            if error.status_code == 404:
                return None
            raise

    async def _validated(self, payload: dict[str, Any]) -> FileRef:
        if payload.get("processing_status") in (None, "COMPLETED"):
            return file_ref(payload)
        file_id = str(payload["id"])

        async def verdict() -> FileRef | None:
            # the SDK's upload answer leaves the validation report out: read the file itself
            current = await self._file(file_id)
            problem = file_problem(current)
            if problem:
                raise InvalidRequestError(
                    f"Together refused file {file_id}: {problem}",
                    backend=NAME,
                    param="training_file",
                )
            done = str(current.get("processing_status") or "COMPLETED") == "COMPLETED"
            return file_ref(current) if done else None

        what, timeout = f"file {file_id} is still not validated", self._file_timeout
        return await self._poll(verdict, timeout=timeout, every=self._file_poll, what=what)

    # -- jobs --

    async def create_job(self, request: JobRequest) -> Job:
        """Send one create (the Tuner looks for a job training the same thing first)."""
        body = create_body(request, await self._model_limits(request.base_model))
        answer = await self._request("post", "/v1/fine-tunes", body=body)
        return self._with_note(job_from_payload(answer))

    async def find_job(self, request: JobRequest) -> Job | None:
        """A live job that trains exactly what ``request`` asks for (Together stores no key)."""
        body = create_body(request, self._limits.get(request.base_model))
        listed = expect_object(NAME, "job list", await self._get("/v1/fine-tunes"))
        for item in list_at(listed, "data"):
            if isinstance(item, dict) and same_fit(item, body):
                if "random_seed" in body and "random_seed" not in item:
                    log.warning(
                        "job %s trains the same data with the same settings; Together does not "
                        "show a job's seed, so a fit that differs only in its seed cannot be "
                        "told apart: it is used. Give another suffix to start a new job",
                        item.get("id"),
                    )
                return self._with_note(job_from_payload(item))
        return None

    def owns(self, job: Job, request_key: str) -> bool:
        """Together keeps no key on a job: a remembered job is trusted by the endpoint alone."""
        return True

    async def get_job(self, job_id: str) -> Job:
        """The job as it is now."""
        answer = await self._get(_job_path(job_id), job_call=True)
        return self._with_note(job_from_payload(answer))

    async def list_jobs(self, *, limit: int = 20) -> list[Job]:
        """The most recent jobs, newest first."""
        listed = expect_object(NAME, "job list", await self._get("/v1/fine-tunes"))
        jobs = [job_from_payload(i) for i in list_at(listed, "data") if isinstance(i, dict)]
        jobs.sort(key=lambda j: j.created_at.timestamp() if j.created_at else 0, reverse=True)
        return jobs[:limit]

    async def cancel_job(self, job_id: str) -> Job:
        """Ask Together to cancel (the job shows running until it is cancelled)."""
        path = _job_path(job_id, "cancel")
        answer = await self._retried(lambda: self._request("post", path, job_call=True))
        return job_from_payload(answer)

    async def list_events(self, job_id: str) -> list[JobEvent]:
        """The job's events, oldest first."""
        answer = await self._get(_job_path(job_id, "events"), job_call=True)
        items = list_at(expect_object(NAME, "event list", answer), "data")
        events = [event_from_payload(e) for e in items if isinstance(e, dict)]
        return sorted(events, key=lambda e: e.created_at)

    async def get_metrics(self, job_id: str) -> list[MetricPoint]:
        """Training metrics per step."""
        answer = await self._get(_job_path(job_id, "metrics"), job_call=True)
        return metrics_from_payload(expect_object(NAME, "metrics list", answer))

    async def list_checkpoints(self, job_id: str) -> list[Checkpoint]:
        """Checkpoints, in step order."""
        answer = await self._get(_job_path(job_id, "checkpoints"), job_call=True)
        items = list_at(expect_object(NAME, "checkpoint list", answer), "data")
        found = [checkpoint_from_payload(c, job_id) for c in items if isinstance(c, dict)]
        return sorted(found, key=lambda c: c.step)

    async def refine_estimate(
        self,
        dataset: Dataset,
        estimate: CostEstimate,
        hyperparameters: Hyperparameters,
        *,
        validation: Dataset | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> CostEstimate:
        """Our estimate with Together's ``estimate-price`` quote beside it, the ``validation``
        set's evaluations included, for the job the fit's ``options`` would start (LoRA, or
        ``{"full_finetune": True}``: full). Needs a key; uploads the data, which the later
        fit reuses. Without a quote, what the fit would refuse is refused all the same."""
        job = planned_job(NAME, estimate.model, dataset, hyperparameters, validation, options)
        if not (self._quote and self._key):
            create_body(job)  # no model limits offline: the checks that need none
            return estimate.with_notes(*self._unquoted_notes(job))
        await self.preflight(job)  # the model's limits read: nothing is uploaded yet
        longest = await self._longest_over_limit(estimate, validation)
        if longest is not None:
            return estimate.with_notes(
                f"Together's quote was skipped: an example of {longest} tokens is over the "
                f"{self.context_limit(estimate.model)}-token limit Together reports for "
                f"{estimate.model}; nothing was uploaded, not even to be priced"
            )
        request = await self._with_data(job, dataset, validation)
        body = create_body(request, await self._model_limits(estimate.model))
        quote_body: dict[str, Any] = {k: body[k] for k in _QUOTED if k in body}
        path = "/v1/fine-tunes/estimate-price"
        answer = await self._retried(lambda: self._request("post", path, body=quote_body))
        quote = expect_object(NAME, "price estimate", answer)
        return with_quote(estimate, quote, unpacked=body.get("packing") is False)

    async def _longest_over_limit(
        self, estimate: CostEstimate, validation: Dataset | None
    ) -> int | None:
        """The token count of the longest example (of either set) when it is over the
        context limit Together reported for the model; ``None`` when none is, or no limit is
        known. The training set's is the estimate's ``tokens_max`` (counted with this
        backend's counter, as validation counts); only the validation set is counted here,
        in a worker thread."""
        limit = self.context_limit(estimate.model)
        if limit is None:
            return None
        longest = estimate.tokens_max
        if validation is not None:
            counter = self.token_counter(estimate.model)

            def held_out() -> int:
                rows = (as_chat_record(r.data) for r in validation.records())  # as validated
                return max((counter.count_example(row) for row in rows), default=0)

            longest = max(longest, await asyncio.to_thread(held_out))
        return longest if longest > limit else None

    def _unquoted_notes(self, job: JobRequest) -> list[str]:
        """What an estimate without Together's quote says of its figures."""
        notes = []
        if self._quote:
            notes.append(
                "no Together API key: its price quote was skipped; the figures are our own"
            )
        dearer = _DEARER.get((bool(job.options.get("full_finetune")), job.method == "dpo"))
        if dearer:
            notes.append(_PRICE_NOTE.format(dearer))
        return notes


def _job_path(job_id: str, *rest: str) -> str:
    return "/".join(["/v1/fine-tunes", path_segment(NAME, job_id), *rest])


def _file_path(file_id: str, *rest: str) -> str:
    return "/".join(["/v1/files", path_segment(NAME, file_id, "file id"), *rest])

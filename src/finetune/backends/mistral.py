"""Mistral backend: fine-tuning jobs over REST with httpx, files through the ``mistralai`` SDK.

mistralai 3.x no longer wraps ``/v1/fine_tuning/jobs`` while Mistral's API reference still
documents it, so the job endpoints are called with httpx (our own tenacity retries, Retry-After
honoured) and the SDK is used where it covers: file upload, list and retrieve. Sync and async
share every mapping function; only the I/O differs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import random
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
)

from finetune._errors import (
    AuthenticationError,
    BackendError,
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
    CostEstimate,
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

__all__ = ["STATUS_MAP", "AsyncMistralBackend", "MistralBackend"]

log = logging.getLogger("finetune")
NAME = "mistral"
DEFAULT_SERVER_URL = "https://api.mistral.ai"
JOBS = "/v1/fine_tuning/jobs"
MAX_SUFFIX = 18
PAGE_SIZE = 100
MAX_PAGES = 100

STATUS_MAP: dict[str, JobStatus] = {
    "QUEUED": JobStatus.QUEUED,
    "STARTED": JobStatus.QUEUED,
    "VALIDATING": JobStatus.VALIDATING,
    "VALIDATED": JobStatus.VALIDATING,
    "RUNNING": JobStatus.RUNNING,
    "FAILED_VALIDATION": JobStatus.FAILED,
    "FAILED": JobStatus.FAILED,
    "SUCCESS": JobStatus.SUCCEEDED,
    "CANCELLED": JobStatus.CANCELLED,
    "CANCELLATION_REQUESTED": JobStatus.RUNNING,
}
_DEAD = {"FAILED_VALIDATION", "FAILED", "CANCELLED", "CANCELLATION_REQUESTED"}

CAPABILITIES = Capabilities(
    methods=frozenset({"sft"}),
    example_kinds=frozenset({"chat", "completion"}),
    tools=True,
    validation_file=True,
    pause_resume=False,
    hosted=True,
    validation_target="mistral",
    max_suffix_length=MAX_SUFFIX,
    notes=(
        "a job created with options={'auto_start': False} stops at VALIDATED (shown as paused);"
        " job.resume() starts it",
    ),
)

_EXTRA_HYPERPARAMETERS = ("training_steps", "weight_decay", "seq_len", "fim_ratio")
_OPTIONS = ("auto_start", "invalid_sample_skip_percentage")


def _sdk_class() -> Any:
    try:
        from mistralai.client import Mistral
    except ImportError:
        try:
            from mistralai import Mistral
        except ImportError as exc:  # pragma: no cover - mistralai is a core dependency
            raise MissingDependency("mistralai", purpose="for the Mistral backend") from exc
    return Mistral


# ---- mapping: our models -> Mistral's request bodies -------------------------------------------


def hyperparameters_body(params: Hyperparameters) -> dict[str, Any]:
    """Our ``Hyperparameters`` as Mistral's ``CompletionTrainingParametersIn``.

    Mistral has no batch size, learning-rate multiplier, seed, DPO beta or LoRA settings: asking
    for one is refused before anything is sent, never silently dropped.
    """
    refused = [
        name
        for name in ("batch_size", "learning_rate_multiplier", "seed", "beta", "lora")
        if getattr(params, name) not in (None, "auto")
    ]
    if refused:
        raise UnsupportedFeature(
            f"Mistral fine-tuning takes no {', '.join(refused)}; it takes epochs, learning_rate, "
            "warmup and extra={'training_steps', 'weight_decay', 'seq_len', 'fim_ratio'}"
        )
    unknown = sorted(set(params.extra) - set(_EXTRA_HYPERPARAMETERS))
    if unknown:
        raise UnsupportedFeature(
            f"unknown Mistral hyperparameter(s) {unknown} in extra; "
            f"Mistral takes {list(_EXTRA_HYPERPARAMETERS)}"
        )
    body: dict[str, Any] = {}
    if isinstance(params.epochs, int):
        body["epochs"] = params.epochs
    if params.learning_rate is not None:
        body["learning_rate"] = params.learning_rate
    if params.warmup is not None:
        body["warmup_fraction"] = params.warmup
    body.update(params.extra)
    if "epochs" in body and "training_steps" in body:
        raise UnsupportedFeature("set epochs or training_steps for Mistral, not both")
    return body


def wandb_integrations(integrations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """W&B integrations in Mistral's flat shape; OpenAI's nested shape is accepted too, so one
    script runs on both. A missing ``api_key`` is taken from ``WANDB_API_KEY``."""
    out = []
    for item in integrations:
        if item.get("type", "wandb") != "wandb":
            raise UnsupportedFeature(f"Mistral supports only wandb integrations, not {item!r}")
        flat = {k: v for k, v in item.items() if k != "wandb"}
        flat.update(item.get("wandb") or {})
        flat["type"] = "wandb"
        flat.setdefault("api_key", os.environ.get("WANDB_API_KEY"))
        if not flat.get("api_key") or not flat.get("project"):
            raise InvalidRequestError(
                "a Mistral wandb integration needs a project and an api_key "
                "(or WANDB_API_KEY in the environment)",
                backend=NAME,
                param="integrations",
            )
        out.append(flat)
    return out


def create_body(request: JobRequest) -> dict[str, Any]:
    """Our JobRequest as the JSON body of ``POST /v1/fine_tuning/jobs``."""
    unknown = sorted(set(request.options) - set(_OPTIONS))
    if unknown:
        raise UnsupportedFeature(
            f"unknown Mistral option(s) {unknown}; Mistral takes {list(_OPTIONS)}"
        )
    body: dict[str, Any] = {
        "model": request.base_model,
        "training_files": [{"file_id": request.training_file.id, "weight": 1}],
        "hyperparameters": hyperparameters_body(request.hyperparameters),
        "auto_start": bool(request.options.get("auto_start", True)),
    }
    if request.validation_file is not None:
        body["validation_files"] = [request.validation_file.id]
    if request.suffix:
        body["suffix"] = request.suffix
    if request.integrations:
        body["integrations"] = wandb_integrations(request.integrations)
    if "invalid_sample_skip_percentage" in request.options:
        body["invalid_sample_skip_percentage"] = request.options["invalid_sample_skip_percentage"]
    return body


def same_fit(payload: dict[str, Any], body: dict[str, Any]) -> bool:
    """True when a listed job trains what ``body`` asks for and can still succeed.

    Mistral stores no client key, so a job is recognised by what it trains: base model,
    training and validation files, suffix, auto_start and every hyperparameter we sent.
    """
    if str(payload.get("status")) in _DEAD or payload.get("model") != body["model"]:
        return False
    files = [f["file_id"] for f in body["training_files"]]
    if list(payload.get("training_files") or []) != files:
        return False
    if list(payload.get("validation_files") or []) != body.get("validation_files", []):
        return False
    if (payload.get("suffix") or None) != body.get("suffix"):
        return False
    if "auto_start" in payload and bool(payload["auto_start"]) != body["auto_start"]:
        return False
    theirs = payload.get("hyperparameters") or {}
    return all(_same_number(theirs.get(k), v) for k, v in body["hyperparameters"].items())


def _same_number(theirs: Any, ours: Any) -> bool:
    if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)):
        return math.isclose(float(theirs), float(ours), rel_tol=1e-9)
    return bool(theirs == ours)


# ---- mapping: Mistral payloads -> our models ---------------------------------------------------


def status_of(payload: dict[str, Any]) -> JobStatus:
    """Mistral's status as ours; a validated job waiting for ``start`` is shown as paused."""
    text = str(payload.get("status"))
    if text == "VALIDATED" and payload.get("auto_start") is False:
        return JobStatus.PAUSED
    status = STATUS_MAP.get(text)
    if status is None:
        log.warning("unknown Mistral job status %r; treating it as running", text)
        return JobStatus.RUNNING
    return status


def event_from_payload(payload: dict[str, Any]) -> JobEvent:
    """A Mistral ``EventOut`` (name, data, created_at) as our ``JobEvent``."""
    data = payload.get("data") if isinstance(payload.get("data"), dict) else None
    name = str(payload.get("name") or "event")
    status = (data or {}).get("status")
    reason = _reason(data)
    message = name + (f": {status}" if status else "") + (f" ({reason})" if reason else "")
    failed = reason is not None or str(status) in ("FAILED", "FAILED_VALIDATION")
    return JobEvent(
        created_at=unix_time(payload.get("created_at")) or datetime.now(timezone.utc),
        level="error" if failed else "info",
        message=message,
        data=data,
    )


def _reason(data: dict[str, Any] | None) -> str | None:
    for key in ("error", "message", "detail", "reason"):
        value = (data or {}).get(key)
        if value:
            return value if isinstance(value, str) else str(value)
    return None


def _error_of(payload: dict[str, Any], events: list[JobEvent]) -> JobError | None:
    status = str(payload.get("status"))
    if status not in ("FAILED", "FAILED_VALIDATION"):
        return None
    reasons = [_reason(e.data) for e in events if _reason(e.data)]
    message = reasons[-1] if reasons else f"Mistral reported {status} without a message"
    return JobError(code=status.lower(), message=str(message))


def _hyperparameters_from(source: dict[str, Any]) -> Hyperparameters:
    epochs = source.get("epochs")
    whole = int(epochs) if isinstance(epochs, (int, float)) and float(epochs).is_integer() else None
    extra = {k: source[k] for k in _EXTRA_HYPERPARAMETERS if source.get(k) is not None}
    if epochs is not None and not whole:
        extra["epochs"] = epochs
    return Hyperparameters(
        epochs=whole if whole and whole > 0 else None,
        learning_rate=source.get("learning_rate") or None,
        warmup=source.get("warmup_fraction"),
        extra=extra,
    )


def job_from_payload(payload: dict[str, Any]) -> Job:
    """A Mistral job (``CompletionJobOut`` or ``CompletionDetailedJobOut``) as our ``Job``."""
    events = [event_from_payload(e) for e in payload.get("events") or []]
    status = status_of(payload)
    validation = payload.get("validation_files") or []
    return Job(
        id=str(payload["id"]),
        backend=NAME,
        base_model=str(payload.get("model") or ""),
        status=status,
        created_at=unix_time(payload.get("created_at")),
        finished_at=unix_time(payload.get("modified_at")) if status.is_terminal else None,
        fine_tuned_model=payload.get("fine_tuned_model"),
        trained_tokens=payload.get("trained_tokens"),
        error=_error_of(payload, events),
        hyperparameters=_hyperparameters_from(payload.get("hyperparameters") or {}),
        training_file=(payload.get("training_files") or [None])[0],
        validation_file=validation[0] if validation else None,
        suffix=payload.get("suffix"),
        raw=payload,
    )


def metrics_from_payload(payload: dict[str, Any]) -> list[MetricPoint]:
    """The metrics of each checkpoint (train_loss, valid_loss, valid_mean_token_accuracy)."""
    points = {}
    for item in payload.get("checkpoints") or []:
        metrics = item.get("metrics") or {}
        step = int(item.get("step_number") or 0)
        points[step] = MetricPoint(
            step=step,
            train_loss=metrics.get("train_loss"),
            valid_loss=metrics.get("valid_loss"),
            valid_accuracy=metrics.get("valid_mean_token_accuracy"),
        )
    return [points[s] for s in sorted(points)]


def checkpoints_from_payload(payload: dict[str, Any]) -> list[Checkpoint]:
    """Mistral's checkpoints (step, metrics, time) as ours, in step order."""
    checkpoints = []
    for item in payload.get("checkpoints") or []:
        step = int(item.get("step_number") or 0)
        metrics = {k: float(v) for k, v in (item.get("metrics") or {}).items() if v is not None}
        checkpoints.append(
            Checkpoint(
                id=f"{payload['id']}:step-{step}",
                step=step,
                model=payload.get("fine_tuned_model") or "",
                created_at=unix_time(item.get("created_at")),
                metrics=metrics,
            )
        )
    return sorted(checkpoints, key=lambda c: c.step)


_DRY_RUN_FIELDS = (
    "expected_duration_seconds",
    "cost",
    "cost_currency",
    "data_tokens",
    "train_tokens",
    "train_tokens_per_step",
    "epochs",
    "training_steps",
)


def with_dry_run(estimate: CostEstimate, figures: dict[str, Any]) -> CostEstimate:
    """Our estimate with the API's dry-run figures beside it."""
    kept = {k: figures[k] for k in _DRY_RUN_FIELDS if figures.get(k) is not None}
    notes = list(estimate.notes)
    if kept.get("data_tokens") is not None:
        notes.append(
            f"Mistral's dry run counts {kept['data_tokens']} data tokens "
            f"(ours: {estimate.tokens_total})"
        )
    if kept.get("cost") is not None:
        notes.append(
            f"Mistral's dry run prices the job at {kept['cost']} {kept.get('cost_currency', '')}"
        )
    return estimate.model_copy(update={"provider_figures": kept, "notes": notes})


def file_ref(payload: Any) -> FileRef:
    """A Mistral file object (SDK model or dict) as our ``FileRef``."""
    data = as_dict(payload)
    return FileRef(
        backend=NAME,
        id=str(data["id"]),
        filename=data.get("filename"),
        bytes=data.get("bytes") or data.get("size_bytes"),
        status="uploaded",
    )


def _matches_file(item: Any, name: str, size: int) -> bool:
    data = as_dict(item)
    size_seen = data.get("bytes") or data.get("size_bytes")
    return bool(data.get("filename") == name and (size_seen is None or size_seen == size))


# ---- errors ---------------------------------------------------------------------------------


def _detail(body: Any) -> tuple[str, str | None]:
    """The API's message and the field it names, from any of Mistral's error shapes."""
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, list) and detail:
            first = detail[0] if isinstance(detail[0], dict) else {}
            location = [str(p) for p in first.get("loc", []) if p not in ("body", "query")]
            messages = "; ".join(str(d.get("msg")) for d in detail if isinstance(d, dict))
            return messages or str(detail), ".".join(location) or None
        if detail:
            return str(detail), None
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error), error.get("param")
        if body.get("message"):
            return str(body["message"]), body.get("param")
    return (str(body) if body else "no detail given"), None


def error_for_status(
    status: int,
    body: Any,
    headers: Any,
    secrets: tuple[str | None, ...],
    *,
    job_call: bool = False,
) -> BackendError:
    """An HTTP error answer as the matching error of our tree (secrets redacted)."""
    message, param = _detail(body)
    message = redact(message, *secrets)
    common: dict[str, Any] = {"backend": NAME, "status_code": status}
    if status == 401:
        return AuthenticationError(
            f"{message}. Set MISTRAL_API_KEY or pass api_key=... to the Tuner", **common
        )
    if status == 403:
        return PermissionDeniedError(message, **common)
    if status == 404 and job_call:
        return JobNotFound(message, **common)
    if status == 429:
        return RateLimitError(message, retry_after=retry_after_seconds(headers), **common)
    if status >= 500:
        return ServerError(message, **common)
    return InvalidRequestError(message, param=param, code=str(status), **common)


def _body_of(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _is_connection_problem(error: BaseException) -> bool:
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(names & {"TransportError", "TimeoutException", "NoResponseError"})


def map_error(
    error: Exception, secrets: tuple[str | None, ...], *, job_call: bool = False
) -> Exception:
    """An httpx or mistralai SDK exception as our error (secrets redacted)."""
    if isinstance(error, FinetuneError):
        return error
    status = getattr(error, "status_code", None)
    if isinstance(status, int):
        raw = getattr(error, "raw_response", None)
        body = _body_of(str(getattr(error, "body", "") or ""))
        headers = getattr(error, "headers", None) or getattr(raw, "headers", None)
        return error_for_status(status, body, headers, secrets, job_call=job_call)
    if _is_connection_problem(error):
        detail = redact(str(error) or type(error).__name__, *secrets)
        return ServerError(f"connection problem: {detail}", backend=NAME)
    return error


# ---- retries ---------------------------------------------------------------------------------


class _Backoff:
    """Exponential backoff with jitter, never shorter than the server's Retry-After."""

    def __init__(self, first: float, cap: float) -> None:
        self.first = first
        self.cap = cap

    def __call__(self, state: RetryCallState) -> float:
        delay: float = min(self.cap, self.first * 2 ** (state.attempt_number - 1))
        delay += random.uniform(0, self.first)
        outcome = state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        if isinstance(error, RateLimitError) and error.retry_after:
            delay = max(delay, min(error.retry_after, 60.0))
        return delay


_RETRY = retry_if_exception(is_retryable)


def _retry_policy(attempts: int, first: float) -> dict[str, Any]:
    return {
        "retry": _RETRY,
        "stop": stop_after_attempt(attempts),
        "wait": _Backoff(first, 10.0),
        "reraise": True,
    }


class _Pager:
    """Collects items across page-numbered answers; done at ``total``, a short or repeated page."""

    def __init__(self, limit: int, page_size: int) -> None:
        self.limit = limit
        self.page_size = page_size
        self.items: list[dict[str, Any]] = []
        self._seen: set[str] = set()

    def add(self, page: dict[str, Any]) -> bool:
        """Take one answer; True when no further page is worth asking for."""
        data = page.get("data") or []
        fresh = [d for d in data if str(d.get("id")) not in self._seen]
        for item in fresh[: self.limit - len(self.items)]:
            self._seen.add(str(item.get("id")))
            self.items.append(item)
        total = page.get("total")
        return (
            not fresh
            or len(self.items) >= self.limit
            or len(data) < self.page_size
            or bool(total and len(self.items) >= total)
        )


def _cancel_seen(job: Job) -> bool:
    return (job.raw or {}).get("status") in ("CANCELLATION_REQUESTED", "CANCELLED")


def _start_seen(job: Job) -> bool:
    return job.status is not JobStatus.PAUSED


# ---- the backends ------------------------------------------------------------------------------


class _Base:
    name = NAME
    capabilities = CAPABILITIES

    def __init__(
        self,
        *,
        api_key: str | None = None,
        server_url: str | None = None,
        base_url: str | None = None,
        sdk: Any = None,
        http_client: Any = None,
        timeout: float = 60.0,
        attempts: int = 6,
        retry_wait: float = 0.5,
        estimate_dry_run: bool = True,
    ) -> None:
        self._key = api_key or os.environ.get("MISTRAL_API_KEY") or None
        url = server_url or base_url or os.environ.get("MISTRAL_SERVER_URL") or DEFAULT_SERVER_URL
        self._server_url = url.rstrip("/")
        self._timeout = timeout
        self._attempts = attempts
        self._retry_wait = retry_wait
        self._dry_run = estimate_dry_run
        self._sdk_client = sdk
        self._http = http_client
        self._own_http = http_client is None
        self._secrets: tuple[str | None, ...] = (self._key,)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(server_url={self._server_url!r})"

    def token_counter(self, model: str) -> TokenCounter:
        """mistral-common's bundled tokenizer for the model (approximate, and said so, without
        the ``finetune[mistral]`` extra)."""
        from finetune.validation import counter_for

        return counter_for("mistral", model)

    def _require_key(self) -> str:
        if not self._key:
            raise AuthenticationError(
                "no Mistral API key: set MISTRAL_API_KEY or pass api_key=... to the Tuner",
                backend=NAME,
            )
        return self._key

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._require_key()}", "Accept": "application/json"}

    def _sdk(self) -> Any:
        if self._sdk_client is None:
            self._sdk_client = _sdk_class()(
                api_key=self._require_key(),
                server_url=self._server_url,
                timeout_ms=int(self._timeout * 1000),
            )
        return self._sdk_client

    def _remember_secrets(self, body: dict[str, Any]) -> None:
        keys = tuple(i.get("api_key") for i in body.get("integrations", []))
        self._secrets = (self._key, *keys)

    def _error(self, error: Exception, *, job_call: bool = False) -> Exception:
        return map_error(error, self._secrets, job_call=job_call)

    def _answer(self, response: httpx.Response, *, job_call: bool = False) -> dict[str, Any]:
        if response.status_code >= 400:
            raise error_for_status(
                response.status_code,
                _body_of(response.text),
                response.headers,
                self._secrets,
                job_call=job_call,
            )
        data: dict[str, Any] = response.json()
        return data

    def pause_job(self, job_id: str) -> Job:
        """Mistral cannot pause a running job."""
        raise UnsupportedFeature("Mistral cannot pause a fine-tuning job; cancel it instead")

    def _list_params(self, page: int, page_size: int, **filters: Any) -> dict[str, Any]:
        params: dict[str, Any] = {"page": page, "page_size": page_size}
        for key, value in filters.items():
            if value is not None:
                params[key] = str(value).lower() if isinstance(value, bool) else value
        return params


class MistralBackend(_Base):
    """Mistral fine-tuning: jobs over REST (httpx), files through the ``mistralai`` SDK.

    Args:
        api_key: Mistral API key (``MISTRAL_API_KEY`` when omitted; only calls need it, so
            ``validate`` and ``estimate`` work without one).
        server_url: API root, ``https://api.mistral.ai`` by default (``MISTRAL_SERVER_URL``);
            ``base_url`` is accepted as an alias.
        sdk: a ``mistralai.Mistral`` to use for files instead of building one.
        http_client: an ``httpx.Client`` for the job endpoints (proxies, tests).
        timeout: seconds per request. attempts: tries per call for transient failures.
        estimate_dry_run: let ``Tuner.estimate`` ask the API's dry run when a key is set.
    """

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(base_url=self._server_url, timeout=self._timeout)
        client: httpx.Client = self._http
        return client

    def close(self) -> None:
        """Close the connections this backend opened."""
        if self._own_http and self._http is not None:
            self._http.close()
        closer = getattr(self._sdk_client, "close", None) if self._sdk_client else None
        if callable(closer):
            closer()

    def _retrying(self) -> Retrying:
        return Retrying(**_retry_policy(self._attempts, self._retry_wait))

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        job_call: bool = False,
    ) -> dict[str, Any]:
        try:
            response = self._client().request(
                method, self._server_url + path, params=params, json=body, headers=self._headers()
            )
        except httpx.HTTPError as exc:
            raise self._error(exc) from None
        return self._answer(response, job_call=job_call)

    def _sdk_call(self, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except Exception as exc:
            raise self._error(exc) from None

    # -- files --

    def upload(self, dataset: Dataset, *, purpose: str = "train") -> FileRef:
        """Upload in Mistral's format, reusing a file of the same fingerprinted name and size."""
        with provider_file(dataset, "mistral") as path:
            return self.upload_file(path, filename=file_name(dataset, purpose))

    def upload_file(self, path: str | os.PathLike[str], *, filename: str | None = None) -> FileRef:
        """Upload a JSONL file already in Mistral's format (``purpose="fine-tune"``).

        A file with the same name and size is reused; after a failed attempt the file list is
        checked before trying again, so a lost answer never leaves a duplicate.
        """
        source = Path(path)
        name = filename or source.name
        size = source.stat().st_size
        for attempt in self._retrying():
            with attempt:
                found = self._find_file(name, size)
                if found is not None:
                    return found
                with source.open("rb") as handle:
                    payload = self._sdk_call(
                        self._sdk().files.upload,
                        file={"file_name": name, "content": handle},
                        purpose="fine-tune",
                    )
                return file_ref(payload)
        raise AssertionError("unreachable")  # pragma: no cover

    def _find_file(self, name: str, size: int) -> FileRef | None:
        for attempt in self._retrying():
            with attempt:
                for page in range(MAX_PAGES):
                    listed = self._sdk_call(
                        self._sdk().files.list,
                        page=page,
                        page_size=PAGE_SIZE,
                        purpose="fine-tune",
                        search=name,
                    )
                    for item in listed.data or []:
                        if _matches_file(item, name, size):
                            return file_ref(item)
                    if len(listed.data or []) < PAGE_SIZE:
                        return None
        return None

    # -- jobs --

    def create_job(self, request: JobRequest) -> Job:
        """Create the job unless one training the same thing exists; never a blind retry."""
        body = create_body(request)
        self._remember_secrets(body)
        for attempt in self._retrying():
            with attempt:
                found = self._find_same_fit(body)
                if found is not None:
                    log.info("re-attached to Mistral job %s that trains the same fit", found.id)
                    return found
                return job_from_payload(self._send("POST", JOBS, body=body))
        raise AssertionError("unreachable")  # pragma: no cover

    def _find_same_fit(self, body: dict[str, Any]) -> Job | None:
        filters = {"model": body["model"], "created_by_me": True, "suffix": body.get("suffix")}
        for item in self._jobs(limit=PAGE_SIZE * 10, **filters):
            if same_fit(item, body):
                return job_from_payload(item)
        return None

    def _jobs(self, *, limit: int, **filters: Any) -> list[dict[str, Any]]:
        pager = _Pager(limit, min(limit, PAGE_SIZE))
        for page in range(MAX_PAGES):
            params = self._list_params(page, pager.page_size, **filters)
            if pager.add(self._get(JOBS, params=params)):
                break
        return pager.items

    def _get(self, path: str, *, params: Any = None, job_call: bool = False) -> dict[str, Any]:
        for attempt in self._retrying():
            with attempt:
                return self._send("GET", path, params=params, job_call=job_call)
        raise AssertionError("unreachable")  # pragma: no cover

    def find_job(self, idempotency_key: str) -> Job | None:
        """Mistral stores no client key: ``create_job`` finds a job by what it trains instead."""
        return None

    def get_job(self, job_id: str) -> Job:
        return job_from_payload(self._get(f"{JOBS}/{job_id}", job_call=True))

    def list_jobs(self, *, limit: int = 20) -> list[Job]:
        return [job_from_payload(item) for item in self._jobs(limit=limit)]

    def cancel_job(self, job_id: str) -> Job:
        """Request cancellation (the job shows running until Mistral reports CANCELLED)."""
        return self._transition(job_id, "cancel", done=_cancel_seen)

    def resume_job(self, job_id: str) -> Job:
        """Start a job created with ``auto_start=False`` (Mistral's ``/start``)."""
        return self.start_job(job_id)

    def start_job(self, job_id: str) -> Job:
        """Start a validated job that was created with ``options={"auto_start": False}``."""
        return self._transition(job_id, "start", done=_start_seen)

    def _transition(self, job_id: str, action: str, done: Any) -> Job:
        for attempt in self._retrying():
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    current = self.get_job(job_id)
                    if done(current):
                        return current
                path = f"{JOBS}/{job_id}/{action}"
                return job_from_payload(self._send("POST", path, job_call=True))
        raise AssertionError("unreachable")  # pragma: no cover

    def list_events(self, job_id: str) -> list[JobEvent]:
        """The job's status changes, oldest first (from the job detail)."""
        payload = self._get(f"{JOBS}/{job_id}", job_call=True)
        events = [event_from_payload(e) for e in payload.get("events") or []]
        return sorted(events, key=lambda e: e.created_at)

    def get_metrics(self, job_id: str) -> list[MetricPoint]:
        """Metrics at each checkpoint: train_loss, valid_loss, valid_mean_token_accuracy."""
        return metrics_from_payload(self._get(f"{JOBS}/{job_id}", job_call=True))

    def list_checkpoints(self, job_id: str) -> list[Checkpoint]:
        return checkpoints_from_payload(self._get(f"{JOBS}/{job_id}", job_call=True))

    def refine_estimate(
        self, dataset: Dataset, estimate: CostEstimate, hyperparameters: Hyperparameters
    ) -> CostEstimate:
        """Our estimate with Mistral's dry-run figures beside it (needs a key; uploads the data,
        which the later fit then reuses)."""
        if not self._dry_run or not self._key:
            return _without_dry_run(estimate, self._dry_run)
        training = self.upload(dataset, purpose="train")
        body = create_body(_dry_run_request(estimate.model, training, hyperparameters))
        for attempt in self._retrying():
            with attempt:
                figures = self._send("POST", JOBS, params={"dry_run": "true"}, body=body)
        return with_dry_run(estimate, figures)

    # -- fine-tuned models and files (through the SDK) --

    def archive_model(self, model: str) -> bool:
        """Archive a fine-tuned model (it stops being listed and served); returns ``archived``."""
        answer = self._sdk_retried(self._sdk().models.archive, model_id=model)
        return bool(as_dict(answer).get("archived", True))

    def unarchive_model(self, model: str) -> bool:
        """Bring an archived fine-tuned model back; returns ``archived`` (``False``)."""
        answer = self._sdk_retried(self._sdk().models.unarchive, model_id=model)
        return bool(as_dict(answer).get("archived", False))

    def update_model(
        self, model: str, *, name: str | None = None, description: str | None = None
    ) -> dict[str, Any]:
        """Rename or describe a fine-tuned model; returns Mistral's model record."""
        fields = {k: v for k, v in (("name", name), ("description", description)) if v}
        answer = self._sdk_retried(self._sdk().models.update, model_id=model, **fields)
        return as_dict(answer)

    def delete_file(self, file_id: str) -> bool:
        """Delete an uploaded file; returns ``deleted``."""
        answer = self._sdk_retried(self._sdk().files.delete, file_id=file_id)
        return bool(as_dict(answer).get("deleted", True))

    def _sdk_retried(self, fn: Any, **kwargs: Any) -> Any:
        for attempt in self._retrying():
            with attempt:
                return self._sdk_call(fn, **kwargs)
        raise AssertionError("unreachable")  # pragma: no cover


def _dry_run_request(model: str, training: FileRef, params: Hyperparameters) -> JobRequest:
    return JobRequest(
        base_model=model, training_file=training, hyperparameters=params, idempotency_key="dry-run"
    )


def _without_dry_run(estimate: CostEstimate, wanted: bool) -> CostEstimate:
    if not wanted:
        return estimate
    note = "no Mistral API key: the API's dry run was skipped; the figures above are our own"
    return estimate.model_copy(update={"notes": [*estimate.notes, note]})


class AsyncMistralBackend(_Base):
    """The asyncio twin of ``MistralBackend`` (``httpx.AsyncClient``, the SDK's async calls)."""

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(base_url=self._server_url, timeout=self._timeout)
        client: httpx.AsyncClient = self._http
        return client

    async def aclose(self) -> None:
        """Close the connections this backend opened."""
        if self._own_http and self._http is not None:
            await self._http.aclose()

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(**_retry_policy(self._attempts, self._retry_wait))

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        job_call: bool = False,
    ) -> dict[str, Any]:
        try:
            response = await self._client().request(
                method, self._server_url + path, params=params, json=body, headers=self._headers()
            )
        except httpx.HTTPError as exc:
            raise self._error(exc) from None
        return self._answer(response, job_call=job_call)

    async def _sdk_call(self, fn: Any, **kwargs: Any) -> Any:
        try:
            return await fn(**kwargs)
        except Exception as exc:
            raise self._error(exc) from None

    async def upload(self, dataset: Dataset, *, purpose: str = "train") -> FileRef:
        """Upload in Mistral's format, reusing a file of the same fingerprinted name and size."""
        with provider_file(dataset, "mistral") as path:
            return await self.upload_file(path, filename=file_name(dataset, purpose))

    async def upload_file(
        self, path: str | os.PathLike[str], *, filename: str | None = None
    ) -> FileRef:
        """Upload a JSONL file already in Mistral's format (see ``MistralBackend.upload_file``)."""
        source = Path(path)
        name = filename or source.name
        size = source.stat().st_size
        async for attempt in self._retrying():
            with attempt:
                found = await self._find_file(name, size)
                if found is not None:
                    return found
                content = await asyncio.to_thread(source.read_bytes)
                payload = await self._sdk_call(
                    self._sdk().files.upload_async,
                    file={"file_name": name, "content": content},
                    purpose="fine-tune",
                )
                return file_ref(payload)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _find_file(self, name: str, size: int) -> FileRef | None:
        async for attempt in self._retrying():
            with attempt:
                for page in range(MAX_PAGES):
                    listed = await self._sdk_call(
                        self._sdk().files.list_async,
                        page=page,
                        page_size=PAGE_SIZE,
                        purpose="fine-tune",
                        search=name,
                    )
                    for item in listed.data or []:
                        if _matches_file(item, name, size):
                            return file_ref(item)
                    if len(listed.data or []) < PAGE_SIZE:
                        return None
        return None

    async def create_job(self, request: JobRequest) -> Job:
        """Create the job unless one training the same thing exists; never a blind retry."""
        body = create_body(request)
        self._remember_secrets(body)
        async for attempt in self._retrying():
            with attempt:
                found = await self._find_same_fit(body)
                if found is not None:
                    log.info("re-attached to Mistral job %s that trains the same fit", found.id)
                    return found
                return job_from_payload(await self._send("POST", JOBS, body=body))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _find_same_fit(self, body: dict[str, Any]) -> Job | None:
        filters = {"model": body["model"], "created_by_me": True, "suffix": body.get("suffix")}
        for item in await self._jobs(limit=PAGE_SIZE * 10, **filters):
            if same_fit(item, body):
                return job_from_payload(item)
        return None

    async def _jobs(self, *, limit: int, **filters: Any) -> list[dict[str, Any]]:
        pager = _Pager(limit, min(limit, PAGE_SIZE))
        for page in range(MAX_PAGES):
            params = self._list_params(page, pager.page_size, **filters)
            if pager.add(await self._get(JOBS, params=params)):
                break
        return pager.items

    async def _get(
        self, path: str, *, params: Any = None, job_call: bool = False
    ) -> dict[str, Any]:
        async for attempt in self._retrying():
            with attempt:
                return await self._send("GET", path, params=params, job_call=job_call)
        raise AssertionError("unreachable")  # pragma: no cover

    async def find_job(self, idempotency_key: str) -> Job | None:
        """Mistral stores no client key: ``create_job`` finds a job by what it trains instead."""
        return None

    async def get_job(self, job_id: str) -> Job:
        return job_from_payload(await self._get(f"{JOBS}/{job_id}", job_call=True))

    async def list_jobs(self, *, limit: int = 20) -> list[Job]:
        return [job_from_payload(item) for item in await self._jobs(limit=limit)]

    async def cancel_job(self, job_id: str) -> Job:
        """Request cancellation (the job shows running until Mistral reports CANCELLED)."""
        return await self._transition(job_id, "cancel", done=_cancel_seen)

    async def resume_job(self, job_id: str) -> Job:
        """Start a job created with ``auto_start=False`` (Mistral's ``/start``)."""
        return await self.start_job(job_id)

    async def start_job(self, job_id: str) -> Job:
        """Start a validated job that was created with ``options={"auto_start": False}``."""
        return await self._transition(job_id, "start", done=_start_seen)

    async def _transition(self, job_id: str, action: str, done: Any) -> Job:
        async for attempt in self._retrying():
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    current = await self.get_job(job_id)
                    if done(current):
                        return current
                path = f"{JOBS}/{job_id}/{action}"
                return job_from_payload(await self._send("POST", path, job_call=True))
        raise AssertionError("unreachable")  # pragma: no cover

    async def list_events(self, job_id: str) -> list[JobEvent]:
        """The job's status changes, oldest first (from the job detail)."""
        payload = await self._get(f"{JOBS}/{job_id}", job_call=True)
        events = [event_from_payload(e) for e in payload.get("events") or []]
        return sorted(events, key=lambda e: e.created_at)

    async def get_metrics(self, job_id: str) -> list[MetricPoint]:
        """Metrics at each checkpoint: train_loss, valid_loss, valid_mean_token_accuracy."""
        return metrics_from_payload(await self._get(f"{JOBS}/{job_id}", job_call=True))

    async def list_checkpoints(self, job_id: str) -> list[Checkpoint]:
        return checkpoints_from_payload(await self._get(f"{JOBS}/{job_id}", job_call=True))

    async def refine_estimate(
        self, dataset: Dataset, estimate: CostEstimate, hyperparameters: Hyperparameters
    ) -> CostEstimate:
        """Our estimate with Mistral's dry-run figures beside it (see ``MistralBackend``)."""
        if not self._dry_run or not self._key:
            return _without_dry_run(estimate, self._dry_run)
        training = await self.upload(dataset, purpose="train")
        body = create_body(_dry_run_request(estimate.model, training, hyperparameters))
        async for attempt in self._retrying():
            with attempt:
                figures = await self._send("POST", JOBS, params={"dry_run": "true"}, body=body)
        return with_dry_run(estimate, figures)

    async def archive_model(self, model: str) -> bool:
        """Archive a fine-tuned model; returns ``archived``."""
        answer = await self._sdk_retried(self._sdk().models.archive_async, model_id=model)
        return bool(as_dict(answer).get("archived", True))

    async def unarchive_model(self, model: str) -> bool:
        """Bring an archived fine-tuned model back; returns ``archived`` (``False``)."""
        answer = await self._sdk_retried(self._sdk().models.unarchive_async, model_id=model)
        return bool(as_dict(answer).get("archived", False))

    async def update_model(
        self, model: str, *, name: str | None = None, description: str | None = None
    ) -> dict[str, Any]:
        """Rename or describe a fine-tuned model; returns Mistral's model record."""
        fields = {k: v for k, v in (("name", name), ("description", description)) if v}
        answer = await self._sdk_retried(self._sdk().models.update_async, model_id=model, **fields)
        return as_dict(answer)

    async def delete_file(self, file_id: str) -> bool:
        """Delete an uploaded file; returns ``deleted``."""
        answer = await self._sdk_retried(self._sdk().files.delete_async, file_id=file_id)
        return bool(as_dict(answer).get("deleted", True))

    async def _sdk_retried(self, fn: Any, **kwargs: Any) -> Any:
        async for attempt in self._retrying():
            with attempt:
                return await self._sdk_call(fn, **kwargs)
        raise AssertionError("unreachable")  # pragma: no cover


MistralBackend.async_variant = AsyncMistralBackend  # type: ignore[attr-defined]

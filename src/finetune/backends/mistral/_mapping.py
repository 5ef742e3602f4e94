"""Mistral payloads <-> finetune's models: pure functions, no I/O.

Only the fields we know are mapped; the whole payload stays on ``Job.raw``. An answer we
cannot read becomes a ``ServerError`` with an excerpt.
"""

from __future__ import annotations

import os
from typing import Any

from finetune._errors import InvalidRequestError, UnsupportedFeature
from finetune.backends.base import Capabilities, JobRequest
from finetune.backends.http import parses
from finetune.backends.payloads import (
    as_dict,
    fraction,
    id_of,
    list_at,
    number,
    numbers,
    object_at,
    positive,
    refuse_hyperparameters,
    refuse_unknown_settings,
    same_value,
    status_from,
    status_table,
    text,
    time_or_now,
    unix_time,
    wandb_settings,
    whole,
    with_figures,
)
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

NAME = "mistral"
MAX_SUFFIX = 18

STATUS_MAP = status_table(
    queued=("QUEUED", "STARTED"),
    validating=("VALIDATING", "VALIDATED"),
    running=("RUNNING", "CANCELLATION_REQUESTED"),
    succeeded=("SUCCESS",),
    failed=("FAILED_VALIDATION", "FAILED"),
    cancelled=("CANCELLED",),
)
_DEAD = {"FAILED_VALIDATION", "FAILED", "CANCELLED", "CANCELLATION_REQUESTED"}

CAPABILITIES = Capabilities(
    example_kinds=frozenset({"chat", "completion"}),
    tools=True,
    validation_target="mistral",
    output_format="mistral",
    max_suffix_length=MAX_SUFFIX,
    notes=(
        "a job created with options={'auto_start': False} stops at VALIDATED (shown as paused);"
        " job.resume() (finetune resume JOB) starts it",
    ),
)

_EXTRA_HYPERPARAMETERS = ("training_steps", "weight_decay", "seq_len", "fim_ratio")
_OPTIONS = ("auto_start", "invalid_sample_skip_percentage")
_REFUSED = ("batch_size", "learning_rate_multiplier", "seed", "beta", "lora")
_TAKES = f"epochs, learning_rate, warmup and extra={list(_EXTRA_HYPERPARAMETERS)}"


def hyperparameters_body(params: Hyperparameters) -> dict[str, Any]:
    """Our ``Hyperparameters`` as Mistral's ``CompletionTrainingParametersIn``.

    Mistral has no batch size, learning-rate multiplier, seed, DPO beta or LoRA settings: asking
    for one is refused before anything is sent, never silently dropped.
    """
    refuse_hyperparameters("Mistral", params, _REFUSED, _TAKES)
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
    for settings in wandb_settings("Mistral", integrations):
        flat = {"type": "wandb", **settings}
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
    refuse_unknown_settings("Mistral", request, _EXTRA_HYPERPARAMETERS, options=_OPTIONS)
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
    if list_at(payload, "training_files") != files:
        return False
    if list_at(payload, "validation_files") != body.get("validation_files", []):
        return False
    if (payload.get("suffix") or None) != body.get("suffix"):
        return False
    if "auto_start" in payload and bool(payload["auto_start"]) != body["auto_start"]:
        return False
    theirs = payload.get("hyperparameters")
    theirs = theirs if isinstance(theirs, dict) else {}
    return all(same_value(theirs.get(k), v) for k, v in body["hyperparameters"].items())


# ---- mapping: Mistral payloads -> our models ---------------------------------------------------


def status_of(payload: dict[str, Any]) -> JobStatus:
    """Mistral's status as ours; a validated job waiting for ``start`` is shown as paused."""
    state = str(payload.get("status"))
    if state == "VALIDATED" and payload.get("auto_start") is False:
        return JobStatus.PAUSED
    return status_from("Mistral", state, STATUS_MAP)


@parses(NAME, "job event")
def event_from_payload(payload: dict[str, Any]) -> JobEvent:
    """A Mistral ``EventOut`` (name, data, created_at) as our ``JobEvent``."""
    data = payload.get("data") if isinstance(payload.get("data"), dict) else None
    name = text(payload.get("name")) or "event"
    status = (data or {}).get("status")
    reason = _reason(data)
    message = name + (f": {status}" if status else "") + (f" ({reason})" if reason else "")
    failed = reason is not None or str(status) in ("FAILED", "FAILED_VALIDATION")
    return JobEvent(
        created_at=time_or_now(payload.get("created_at")),
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


def _hyperparameters_from(source: Any) -> Hyperparameters:
    source = source if isinstance(source, dict) else {}
    epochs = number(source.get("epochs"))
    whole_epochs = whole(epochs)
    extra = {k: source[k] for k in _EXTRA_HYPERPARAMETERS if source.get(k) is not None}
    if epochs is not None and not whole_epochs:
        extra["epochs"] = epochs
    return Hyperparameters(
        epochs=positive(whole_epochs),
        learning_rate=positive(number(source.get("learning_rate"))),
        warmup=fraction(number(source.get("warmup_fraction"))),
        extra=extra,
    )


@parses(NAME, "fine-tuning job")
def job_from_payload(payload: dict[str, Any]) -> Job:
    """A Mistral job (``CompletionJobOut`` or ``CompletionDetailedJobOut``) as our ``Job``."""
    job_id = id_of(payload)
    events = [event_from_payload(e) for e in list_at(payload, "events") if isinstance(e, dict)]
    status = status_of(payload)
    training = [str(f) for f in list_at(payload, "training_files")]
    validation = [str(f) for f in list_at(payload, "validation_files")]
    return Job(
        id=job_id,
        backend=NAME,
        base_model=text(payload.get("model")) or "",
        status=status,
        created_at=unix_time(payload.get("created_at")),
        finished_at=unix_time(payload.get("modified_at")) if status.is_terminal else None,
        fine_tuned_model=text(payload.get("fine_tuned_model")),
        trained_tokens=whole(payload.get("trained_tokens")),
        error=_error_of(payload, events),
        hyperparameters=_hyperparameters_from(payload.get("hyperparameters")),
        training_file=training[0] if training else None,
        validation_file=validation[0] if validation else None,
        suffix=text(payload.get("suffix")),
        raw=payload,
    )


def _checkpoint_rows(payload: dict[str, Any]) -> list[tuple[int, dict[str, float], Any]]:
    rows = []
    for item in list_at(payload, "checkpoints"):
        if not isinstance(item, dict):
            continue
        metrics = numbers(object_at(item, "metrics"))
        rows.append((whole(item.get("step_number")) or 0, metrics, item.get("created_at")))
    return rows


@parses(NAME, "fine-tuning job")
def metrics_from_payload(payload: dict[str, Any]) -> list[MetricPoint]:
    """The metrics of each checkpoint (train_loss, valid_loss, valid_mean_token_accuracy)."""
    points = {}
    for step, metrics, _ in _checkpoint_rows(payload):
        points[step] = MetricPoint(
            step=step,
            train_loss=metrics.get("train_loss"),
            valid_loss=metrics.get("valid_loss"),
            valid_accuracy=metrics.get("valid_mean_token_accuracy"),
        )
    return [points[s] for s in sorted(points)]


@parses(NAME, "fine-tuning job")
def checkpoints_from_payload(payload: dict[str, Any]) -> list[Checkpoint]:
    """Mistral's checkpoints (step, metrics, time) as ours, in step order."""
    model = text(payload.get("fine_tuned_model")) or ""
    checkpoints = [
        Checkpoint(
            id=f"{payload['id']}:step-{step}",
            step=step,
            model=model,
            created_at=unix_time(created),
            metrics=metrics,
        )
        for step, metrics, created in _checkpoint_rows(payload)
    ]
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
    notes = []
    tokens, cost = figures.get("data_tokens"), figures.get("cost")
    if tokens is not None:
        notes.append(
            f"Mistral's dry run counts {tokens} data tokens (ours: {estimate.tokens_total})"
        )
    if cost is not None:
        currency = figures.get("cost_currency") or ""
        notes.append(f"Mistral's dry run prices the job at {cost} {currency}")
    return with_figures(estimate, figures, _DRY_RUN_FIELDS, notes)


@parses(NAME, "file")
def file_ref(payload: Any) -> FileRef:
    """A Mistral file object (SDK model or dict) as our ``FileRef``."""
    data = as_dict(payload)
    return FileRef(
        backend=NAME,
        id=id_of(data),
        filename=text(data.get("filename")),
        bytes=whole(data.get("bytes")) or whole(data.get("size_bytes")),
        status="uploaded",
    )


def matches_file(item: Any, name: str, size: int) -> bool:
    """Whether a listed file is ours: the fingerprinted name and (when given) the size."""
    data = as_dict(item)
    size_seen = whole(data.get("bytes")) or whole(data.get("size_bytes"))
    return bool(data.get("filename") == name and (size_seen is None or size_seen == size))


# ---- errors ---------------------------------------------------------------------------------

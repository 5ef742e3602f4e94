"""Fireworks AI payloads <-> finetune's models: pure functions, no I/O.

Written from Fireworks' API reference (docs.fireworks.ai) and the ``fireworks-ai`` SDK's
types; Fireworks publishes no spec under a licence that allows a copy. The client chooses the
job id and the output model, so both are derived from the fit's idempotency key: a re-run
asks for the same id, and a job can never be made twice.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

from finetune._errors import UnsupportedFeature
from finetune.backends.base import Capabilities, JobRequest
from finetune.backends.http import (
    number,
    object_at,
    parses,
    refuse_unknown_settings,
    text,
    unix_time,
    whole,
)
from finetune.types import (
    CostEstimate,
    FileRef,
    Hyperparameters,
    Job,
    JobError,
    JobStatus,
    MetricPoint,
)

__all__ = [
    "CAPABILITIES",
    "NAME",
    "STATUS_MAP",
    "create_body",
    "dataset_id",
    "job_from_payload",
    "job_id_for",
    "metrics_from_lines",
    "with_quote",
]

log = logging.getLogger("finetune")
NAME = "fireworks"
DEFAULT_LORA_RANK = 8

STATUS_MAP: dict[str, JobStatus] = {
    "JOB_STATE_UNSPECIFIED": JobStatus.QUEUED,
    "JOB_STATE_CREATING": JobStatus.QUEUED,
    "JOB_STATE_PENDING": JobStatus.QUEUED,
    "JOB_STATE_CREATING_INPUT_DATASET": JobStatus.QUEUED,
    "JOB_STATE_RE_QUEUEING": JobStatus.QUEUED,
    "JOB_STATE_IDLE": JobStatus.QUEUED,
    "JOB_STATE_VALIDATING": JobStatus.VALIDATING,
    "JOB_STATE_RUNNING": JobStatus.RUNNING,
    "JOB_STATE_WRITING_RESULTS": JobStatus.RUNNING,
    "JOB_STATE_CANCELLING": JobStatus.RUNNING,
    "JOB_STATE_PAUSED": JobStatus.PAUSED,
    "JOB_STATE_COMPLETED": JobStatus.SUCCEEDED,
    "JOB_STATE_EARLY_STOPPED": JobStatus.SUCCEEDED,
    "JOB_STATE_FAILED": JobStatus.FAILED,
    "JOB_STATE_EXPIRED": JobStatus.FAILED,
    "JOB_STATE_CANCELLED": JobStatus.CANCELLED,
    "JOB_STATE_DELETING": JobStatus.CANCELLED,
    "JOB_STATE_DELETING_CLEANING_UP": JobStatus.CANCELLED,
}

CAPABILITIES = Capabilities(
    methods=frozenset({"sft"}),
    example_kinds=frozenset({"chat"}),
    tools=True,
    validation_file=True,
    pause_resume=False,
    hosted=True,
    validation_target="fireworks",
    output_format="openai",
    max_suffix_length=64,
    notes=(
        "fine-tuned LoRA models are served on on-demand (dedicated) deployments, billed by "
        "GPU time; evaluate one through ModelRef.openai_compatible(...) once deployed",
        "DPO is a separate Fireworks resource (dpoJobs) this backend does not drive yet",
    ),
)
_EXTRA = {
    "learningRateWarmupSteps",
    "maxContextLength",
    "gradientAccumulationSteps",
    "earlyStop",
    "evalAutoCarveout",
    "optimizerWeightDecay",
    "jinjaTemplate",
    "isTurbo",
    "nodes",
}
_ID_CHARS = re.compile(r"[^a-z0-9-]")


def job_id_for(idempotency_key: str) -> str:
    """The job (and output model) id of a fit: the key, made a valid resource id (lowercase
    letters, digits and dashes, a letter first, at most 63 characters)."""
    slug = _ID_CHARS.sub("-", idempotency_key.lower())
    if len(slug) > 60:
        slug = slug[:48] + "-" + hashlib.sha256(slug.encode()).hexdigest()[:11]
    return slug if slug[:1].isalpha() else f"ft-{slug}"[:63]


def dataset_id(fingerprint: str, purpose: str) -> str:
    """The dataset id of some content: named by its fingerprint (never starting with a digit),
    so the same data is one dataset however often it is uploaded."""
    return f"finetune-{fingerprint[:24]}-{purpose}"


def create_body(request: JobRequest, account: str) -> dict[str, Any]:
    """Our JobRequest as the body of ``POST .../supervisedFineTuningJobs``; the job id goes in
    the ``supervisedFineTuningJobId`` query parameter. What cannot map is refused."""
    params = request.hyperparameters
    refused = [n for n in ("learning_rate_multiplier", "warmup", "beta") if _given(params, n)]
    if refused:
        raise UnsupportedFeature(
            f"Fireworks takes no {', '.join(refused)}; it takes epochs, batch_size, "
            "learning_rate, lora and extra={'learningRateWarmupSteps', 'maxContextLength', ...}"
        )
    refuse_unknown_settings("Fireworks", request, _EXTRA)
    identifier = job_id_for(request.idempotency_key)
    body: dict[str, Any] = {
        "dataset": request.training_file.id,
        "baseModel": request.base_model,
        "outputModel": f"accounts/{account}/models/{identifier}",
        "loraRank": params.lora.r if params.lora else DEFAULT_LORA_RANK,
    }
    optional = {
        "epochs": params.epochs if isinstance(params.epochs, int) else None,
        "batchSizeSamples": params.batch_size if isinstance(params.batch_size, int) else None,
        "learningRate": params.learning_rate,
        "evaluationDataset": request.validation_file.id if request.validation_file else None,
        "displayName": request.suffix,
        "wandbConfig": _wandb(request.integrations),
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    body.update(params.extra)
    return body


def _given(params: Hyperparameters, name: str) -> bool:
    return getattr(params, name) not in (None, "auto")


def _wandb(integrations: list[dict[str, Any]]) -> dict[str, Any] | None:
    for item in integrations:
        flat = {**item, **object_at(item, "wandb")}
        if flat.get("type", "wandb") != "wandb":
            raise UnsupportedFeature(f"Fireworks supports only wandb integrations, not {item!r}")
        names = {"api_key": "apiKey", "project": "project", "entity": "entity"}
        config = {theirs: flat[ours] for ours, theirs in names.items() if flat.get(ours)}
        return {"enabled": True, **config}
    return None


def _short_id(name: Any) -> str:
    return str(name).rsplit("/", 1)[-1]


@parses(NAME, "fine-tuning job")
def job_from_payload(payload: dict[str, Any]) -> Job:
    """A ``SupervisedFineTuningJob`` resource as our ``Job`` (its id is the resource name's
    last part)."""
    if not isinstance(payload, dict) or not text(payload.get("name")):
        raise KeyError("name")
    state = str(payload.get("state") or "JOB_STATE_UNSPECIFIED")
    status = STATUS_MAP.get(state)
    if status is None:
        log.warning("unknown Fireworks job state %r; treating it as running", state)
        status = JobStatus.RUNNING
    problem = object_at(payload, "status")
    error = None
    if status is JobStatus.FAILED:
        message = text(problem.get("message")) or f"Fireworks reported {state}"
        error = JobError(code=text(problem.get("code")) or state.lower(), message=message)
    progress = object_at(payload, "jobProgress")
    percent = whole(progress.get("percent"))
    raw = {**payload, **({"step": percent, "max_steps": 100} if percent is not None else {})}
    epochs, rate = whole(payload.get("epochs")), number(payload.get("learningRate"))
    return Job(
        id=_short_id(payload["name"]),
        backend=NAME,
        base_model=text(payload.get("baseModel")) or text(payload.get("warmStartFrom")) or "",
        status=status,
        created_at=unix_time(payload.get("createTime")),
        finished_at=unix_time(payload.get("completedTime")),
        fine_tuned_model=text(payload.get("outputModel"))
        if status is JobStatus.SUCCEEDED
        else None,
        error=error,
        hyperparameters=Hyperparameters(
            epochs=epochs if epochs and epochs > 0 else None,
            learning_rate=rate if rate and rate > 0 else None,
        ),
        training_file=text(payload.get("dataset")),
        validation_file=text(payload.get("evaluationDataset")),
        suffix=text(payload.get("displayName")),
        raw=raw,
    )


@parses(NAME, "dataset")
def dataset_ref(payload: dict[str, Any]) -> FileRef:
    """A Fireworks ``Dataset`` resource as our ``FileRef`` (its id is the full name)."""
    return FileRef(
        backend=NAME,
        id=str(payload["name"]),
        filename=_short_id(payload["name"]),
        status=text(payload.get("state")),
    )


_METRIC_NAMES = {"loss": "train_loss", "train_loss": "train_loss", "eval_loss": "valid_loss"}
_METRIC_NAMES |= {"epoch": "epoch", "learning_rate": "learning_rate", "lr": "learning_rate"}


def metrics_from_lines(lines: list[dict[str, Any]]) -> list[MetricPoint]:
    """The metrics file's rows (JSON objects with a ``step`` and numbers) as points."""
    points: dict[int, MetricPoint] = {}
    for row in lines:
        step = whole(row.get("step"))
        if step is None:
            continue
        values: dict[str, Any] = {"step": step}
        extra: dict[str, float] = {}
        for key, raw in row.items():
            value = number(raw)
            if key == "step" or value is None:
                continue
            if key in _METRIC_NAMES:
                values[_METRIC_NAMES[key]] = value
            else:
                extra[str(key)] = value
        points[step] = MetricPoint(**values, extra=extra)
    return [points[s] for s in sorted(points)]


def with_quote(estimate: CostEstimate, answer: dict[str, Any]) -> CostEstimate:
    """Our estimate with Fireworks' ``:estimateCost`` answer (a google.type.Money) beside it."""
    money = object_at(answer, "estimatedCost") or answer
    units, nanos = number(money.get("units")), number(money.get("nanos")) or 0.0
    notes = list(estimate.notes)
    figures = {k: v for k, v in answer.items() if v is not None}
    if units is not None:
        price = units + nanos / 1e9
        currency = text(money.get("currencyCode")) or "USD"
        notes.append(f"Fireworks quotes {price:.4g} {currency} for this job (estimateCost)")
        figures["estimated_total_price"] = price
    return estimate.model_copy(update={"provider_figures": figures, "notes": notes})

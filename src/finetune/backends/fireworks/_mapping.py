"""Fireworks AI payloads <-> finetune's models: pure functions, no I/O.

Written from Fireworks' API reference (docs.fireworks.ai) and the ``fireworks-ai`` SDK's
types; Fireworks publishes no spec under a licence that allows a copy. The client chooses the
job id and the output model, so both are derived from the fit's idempotency key: a re-run
asks for the same id, and a job can never be made twice.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from finetune._errors import UnsupportedFeature
from finetune.backends.base import Capabilities, JobRequest
from finetune.backends.http import parses
from finetune.backends.payloads import (
    metric_points,
    number,
    object_at,
    positive,
    refuse_hyperparameters,
    refuse_lora_settings,
    refuse_unknown_settings,
    renamed,
    status_from,
    status_table,
    text,
    unix_time,
    wandb_settings,
    whole,
    with_figures,
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
from finetune.validation._catalog import model_meant

NAME = "fireworks"
DEFAULT_LORA_RANK = 8

STATUS_MAP = status_table(
    queued=(
        "JOB_STATE_UNSPECIFIED",
        "JOB_STATE_CREATING",
        "JOB_STATE_PENDING",
        "JOB_STATE_CREATING_INPUT_DATASET",
        "JOB_STATE_RE_QUEUEING",
        "JOB_STATE_IDLE",
    ),
    validating=("JOB_STATE_VALIDATING",),
    running=("JOB_STATE_RUNNING", "JOB_STATE_WRITING_RESULTS", "JOB_STATE_CANCELLING"),
    paused=("JOB_STATE_PAUSED",),
    succeeded=("JOB_STATE_COMPLETED", "JOB_STATE_EARLY_STOPPED"),
    failed=("JOB_STATE_FAILED", "JOB_STATE_EXPIRED"),
    cancelled=("JOB_STATE_CANCELLED", "JOB_STATE_DELETING", "JOB_STATE_DELETING_CLEANING_UP"),
)

CAPABILITIES = Capabilities(
    methods=frozenset({"sft", "dpo"}),
    example_kinds=frozenset({"chat", "preference"}),
    tools=True,
    validation_target="fireworks",
    max_suffix_length=64,
    notes=(
        "fine-tuned LoRA models are served on on-demand (dedicated) deployments, billed by "
        "GPU time; once deployed, ft.evaluate (finetune eval) asks the job's model through the "
        "inference API",
        "DPO runs as a Fireworks dpoJob: one-turn preference pairs, no validation set",
    ),
)
SFT_JOBS, DPO_JOBS = "supervisedFineTuningJobs", "dpoJobs"
DPO_PREFIX = "dpo-"  # the ids we give DPO jobs, so that a job id tells its resource
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


def resource_id(name: str) -> str:
    """``name`` made a valid Fireworks resource id: lowercase letters, digits and dashes, a
    letter first, at most 63 characters (a long name keeps a digest of the rest)."""
    slug = _ID_CHARS.sub("-", name.lower())
    if len(slug) > 60:
        slug = slug[:48] + "-" + hashlib.sha256(slug.encode()).hexdigest()[:11]
    return slug if slug[:1].isalpha() else f"ft-{slug}"[:63]


def job_id_for(idempotency_key: str, method: str = "sft") -> str:
    """The job (and output model) id of a fit: its idempotency key as a resource id, after
    ``dpo-`` for a DPO job."""
    return resource_id(f"{DPO_PREFIX}{idempotency_key}" if method == "dpo" else idempotency_key)


def resource_of(job_id: str) -> str:
    """The collection a job id of ours lives in (``dpoJobs`` or ``supervisedFineTuningJobs``)."""
    return DPO_JOBS if job_id.startswith(DPO_PREFIX) else SFT_JOBS


def dataset_id_for(filename: str) -> str:
    """The dataset id of an uploaded file: its name without ``.jsonl`` as a resource id. Our
    upload names hold the content's fingerprint, so the same data is one dataset however
    often it is uploaded."""
    return resource_id(filename.removesuffix(".jsonl"))


_REFUSED = ("learning_rate_multiplier", "warmup", "beta")
_TAKES = (
    "epochs, batch_size, learning_rate, lora and "
    "extra={'learningRateWarmupSteps', 'maxContextLength', ...}"
)


def create_body(request: JobRequest, account: str) -> dict[str, Any]:
    """Our JobRequest as the body of ``POST .../supervisedFineTuningJobs`` (or ``dpoJobs``);
    the job id goes in the ``supervisedFineTuningJobId`` (``dpoJobId``) query parameter. What
    cannot map is refused."""
    if request.method == "dpo":
        return dpo_body(request, account)
    params = request.hyperparameters
    refuse_hyperparameters("Fireworks", params, _REFUSED, _TAKES)
    refuse_unknown_settings("Fireworks", request, _EXTRA)
    body = {"dataset": request.training_file.id, **_training_settings(request, account)}
    optional = {
        "evaluationDataset": request.validation_file.id if request.validation_file else None,
        "displayName": request.suffix,
        "wandbConfig": _wandb(request.integrations),
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def _training_settings(request: JobRequest, account: str) -> dict[str, Any]:
    """The model, output model and training numbers, as a supervised job's body holds them
    and a DPO job's ``trainingConfig`` does (with the ``extra`` keys)."""
    params = request.hyperparameters
    refuse_lora_settings("Fireworks", params.lora, ("r",))
    identifier = job_id_for(request.idempotency_key, request.method)
    settings: dict[str, Any] = {
        "baseModel": request.base_model,
        "outputModel": f"accounts/{account}/models/{identifier}",
        "loraRank": params.lora.r if params.lora else DEFAULT_LORA_RANK,
    }
    optional = {
        "epochs": params.epochs if isinstance(params.epochs, int) else None,
        "batchSizeSamples": params.batch_size if isinstance(params.batch_size, int) else None,
        "learningRate": params.learning_rate,
    }
    settings.update({k: v for k, v in optional.items() if v is not None}, **params.extra)
    return settings


_DPO_EXTRA = {
    "learningRateWarmupSteps",
    "maxContextLength",
    "gradientAccumulationSteps",
    "optimizerWeightDecay",
    "jinjaTemplate",
}
_DPO_TAKES = (
    "epochs, batch_size, learning_rate, beta (0 to 0.5), lora and extra={'maxContextLength', ...}"
)


def dpo_body(request: JobRequest, account: str) -> dict[str, Any]:
    """Our DPO JobRequest as the body of ``POST .../dpoJobs``: the training settings nest in
    ``trainingConfig``, beta in ``lossConfig``. Fireworks' DPO jobs take no validation set."""
    params = request.hyperparameters
    if request.validation_file is not None:
        raise UnsupportedFeature(
            "Fireworks DPO jobs take no validation set (its dpoJob has no evaluationDataset): "
            "fit without validation=, and evaluate the tuned model with ft.evaluate"
        )
    refuse_hyperparameters(
        "Fireworks DPO", params, ("learning_rate_multiplier", "warmup"), _DPO_TAKES
    )
    refuse_unknown_settings("Fireworks DPO", request, _DPO_EXTRA)
    beta = params.beta if isinstance(params.beta, (int, float)) else None  # "auto": theirs
    if beta is not None and not 0 < beta < 0.5:
        raise UnsupportedFeature(f"Fireworks DPO takes a beta above 0 and below 0.5, not {beta}")
    loss: dict[str, Any] = {"method": "DPO"}
    if beta is not None:
        loss["dpo"] = {"beta": beta}
    body: dict[str, Any] = {
        "dataset": request.training_file.id,
        "trainingConfig": _training_settings(request, account),
        "lossConfig": loss,
    }
    extras = {"displayName": request.suffix, "wandbConfig": _wandb(request.integrations)}
    body.update({k: v for k, v in extras.items() if v is not None})
    return body


def _wandb(integrations: list[dict[str, Any]]) -> dict[str, Any] | None:
    names = {"api_key": "apiKey", "project": "project", "entity": "entity"}
    for settings in wandb_settings("Fireworks", integrations):
        return {"enabled": True, **renamed(settings, names)}
    return None


def _short_id(name: Any) -> str:
    return str(name).rsplit("/", 1)[-1]


@parses(NAME, "fine-tuning job")
def job_from_payload(payload: dict[str, Any]) -> Job:
    """A ``SupervisedFineTuningJob`` or ``DpoJob`` resource as our ``Job`` (its id is the
    resource name's last part; a DPO job's settings are read from its ``trainingConfig``)."""
    if not isinstance(payload, dict) or not text(payload.get("name")):
        raise KeyError("name")
    dpo = f"/{DPO_JOBS}/" in str(payload["name"])
    settings = object_at(payload, "trainingConfig") if dpo else payload
    state = str(payload.get("state") or "JOB_STATE_UNSPECIFIED")
    status = status_from("Fireworks", state, STATUS_MAP)
    problem = object_at(payload, "status")
    error = None
    if status is JobStatus.FAILED:
        message = text(problem.get("message")) or f"Fireworks reported {state}"
        error = JobError(code=text(problem.get("code")) or state.lower(), message=message)
    progress = object_at(payload, "jobProgress")
    percent = whole(progress.get("percent"))
    raw = {**payload, **({"step": percent, "max_steps": 100} if percent is not None else {})}
    return Job(
        id=_short_id(payload["name"]),
        backend=NAME,
        base_model=text(settings.get("baseModel")) or text(settings.get("warmStartFrom")) or "",
        status=status,
        created_at=unix_time(payload.get("createTime")),
        finished_at=unix_time(payload.get("completedTime")),
        fine_tuned_model=text(settings.get("outputModel"))
        if status is JobStatus.SUCCEEDED
        else None,
        error=error,
        method="dpo" if dpo else "sft",
        hyperparameters=Hyperparameters(
            epochs=positive(whole(settings.get("epochs"))),
            batch_size=positive(whole(settings.get("batchSizeSamples"))),
            learning_rate=positive(number(settings.get("learningRate"))),
            beta=positive(number(object_at(object_at(payload, "lossConfig"), "dpo").get("beta"))),
        ),
        training_file=text(payload.get("dataset")),
        validation_file=text(payload.get("evaluationDataset")),
        suffix=text(payload.get("displayName")),
        raw=raw,
    )


MODEL_PREFIX = "accounts/fireworks/models/"


def model_path(model: str) -> tuple[str, str] | None:
    """The account and the id of a model named in full (``accounts/<account>/models/<id>``);
    ``None`` for another name."""
    found = _FULL_NAME.fullmatch(model)
    return (found[1], found[2]) if found else None


_FULL_NAME = re.compile(r"accounts/([^/]+)/models/([^/]+)")


def base_model_refusal(model: str, resource: dict[str, Any] | None) -> str | None:
    """Why Fireworks would not fine-tune ``model``, its ``Model`` resource being ``resource``
    (``None``: there is none); ``None`` when it would. A model is named in full
    (``accounts/fireworks/models/qwen3-8b``)."""
    if model_path(model) is None:
        return (
            f"Fireworks names a model in full, {MODEL_PREFIX}{model.rsplit('/', 1)[-1]} for "
            f"one of its own, accounts/<account>/models/<id> for one of yours: not {model!r}"
        )
    if resource is None:
        return (
            f"Fireworks has no model {model}{model_meant(NAME, model)}: check the name in its "
            "model library (fireworks.ai/models, or firectl list models)"
        )
    tunable = resource.get("tunable", object_at(resource, "baseModelDetails").get("tunable"))
    if tunable is False:
        return (
            f"Fireworks serves {model} but does not fine-tune it (its model says tunable: "
            "false): choose a model its library marks tunable"
        )
    return None


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
    return metric_points(lines, _METRIC_NAMES)


def with_quote(estimate: CostEstimate, answer: dict[str, Any]) -> CostEstimate:
    """Our estimate with Fireworks' ``:estimateCost`` answer (a google.type.Money) beside it."""
    money = object_at(answer, "estimatedCost") or answer
    units, nanos = number(money.get("units")), number(money.get("nanos")) or 0.0
    notes, figures = [], dict(answer)
    if units is not None:
        price = units + nanos / 1e9
        currency = text(money.get("currencyCode")) or "USD"
        notes.append(f"Fireworks quotes {price:.4g} {currency} for this job (estimateCost)")
        figures["estimated_total_price"] = price
    return with_figures(estimate, figures, notes=notes)

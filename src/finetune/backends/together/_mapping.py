"""Together AI payloads <-> finetune's models: pure functions, no I/O.

Written from Together's OpenAPI spec (togethercomputer/openapi) and the ``together`` SDK.
Together keeps no client key or metadata on a job, so a job is recognised by what it trains
(``same_fit``), and what our request cannot express is refused before anything is sent.
"""

from __future__ import annotations

from typing import Any

from finetune._errors import InvalidRequestError, UnsupportedFeature
from finetune.backends.base import EVERY_KIND, SFT_AND_DPO, Capabilities, JobRequest
from finetune.backends.http import parses
from finetune.backends.payloads import (
    fraction,
    id_of,
    list_at,
    metric_points,
    non_negative,
    number,
    object_at,
    positive,
    refuse_hyperparameters,
    refuse_lora_settings,
    refuse_unknown_settings,
    renamed,
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
    LoRA,
    MetricPoint,
)

NAME = "together"
MAX_SUFFIX = 40

STATUS_MAP = status_table(
    queued=("pending", "queued"),
    running=("running", "compressing", "uploading", "cancel_requested"),
    succeeded=("completed",),
    failed=("error", "user_error"),
    cancelled=("cancelled",),
)
_DEAD = {"cancel_requested", "cancelled", "error", "user_error"}

CAPABILITIES = Capabilities(
    methods=SFT_AND_DPO,
    example_kinds=EVERY_KIND,
    tools=True,
    validation_target="together",
    max_suffix_length=MAX_SUFFIX,
    notes=(
        "a LoRA fine-tune is served serverless only for some base models, otherwise on a "
        "dedicated endpoint billed per minute (an error asking such a model says so; "
        "docs/backends/together.md)",
    ),
)
# extra settings that go in the body's training_method (TrainingMethodSFT / ...DPO), the rest
# at its top level
_SFT_SETTINGS = frozenset({"train_on_inputs"})
_DPO_SETTINGS = frozenset(
    {"rpo_alpha", "simpo_gamma", "dpo_normalize_logratios_by_length", "dpo_reference_free"}
)
_METHOD_SETTINGS = _SFT_SETTINGS | _DPO_SETTINGS
_OPTIONS = ("full_finetune",)
_EXTRA = {
    "n_evals",
    "n_checkpoints",
    "lr_scheduler",
    "weight_decay",
    "max_grad_norm",
    "packing",
    "max_seq_length",
    "from_checkpoint",
    *_METHOD_SETTINGS,
}


def _training_type(request: JobRequest, limits: dict[str, Any]) -> dict[str, Any]:
    """``training_type``: LoRA, as Together's API and SDK default to (``LoRA()``'s settings,
    the local backend's too, when none are given), or ``Full`` with
    ``options={"full_finetune": True}``; what the model's limits rule out is refused."""
    params, model = request.hyperparameters, request.base_model
    if _full_finetune(request):
        if params.lora is not None:
            raise InvalidRequestError(
                "full_finetune=True and Hyperparameters(lora=...) contradict each other; drop one",
                backend=NAME,
                param="full_finetune",
            )
        if limits and "full_training" not in limits:
            raise UnsupportedFeature(f"Together trains {model} with LoRA only; drop full_finetune")
        return {"type": "Full"}
    if limits and "lora_training" not in limits:
        raise UnsupportedFeature(
            f"Together trains {model} with full fine-tuning only; pass "
            "options={'full_finetune': True}"
        )
    refuse_lora_settings("Together", params.lora, ("r", "alpha", "dropout", "target_modules"))
    most = whole(object_at(limits, "lora_training").get("max_rank"))
    lora = params.lora or _default_lora(most)
    if most is not None and lora.r > most:
        raise InvalidRequestError(
            f"LoRA rank {lora.r} is above Together's limit of {most} for this model",
            backend=NAME,
            param="lora.r",
        )
    modules = lora.target_modules
    return {
        "type": "Lora",
        "lora_r": lora.r,
        "lora_alpha": lora.alpha,
        "lora_dropout": lora.dropout,
        "lora_trainable_modules": modules if isinstance(modules, str) else ",".join(modules),
    }


def _default_lora(most: int | None) -> LoRA:
    """``LoRA()``, its rank (and alpha, in proportion) lowered to a model's limit below it."""
    default = LoRA()
    if most is None or default.r <= most:
        return default
    return LoRA(r=most, alpha=max(1, default.alpha * most // default.r))


def _full_finetune(request: JobRequest) -> bool:
    """Whether the request asks for a full fine-tune (``options={"full_finetune": True}``)."""
    full = request.options.get("full_finetune", False)
    if not isinstance(full, bool):
        raise InvalidRequestError(
            f"options.full_finetune is true or false, not {full!r}",
            backend=NAME,
            param="full_finetune",
        )
    return full


def _check_batch_size(size: Any, limits: dict[str, Any], lora: bool, dpo: bool) -> None:
    if not isinstance(size, int) or not limits:
        return
    bounds = object_at(limits, "lora_training" if lora else "full_training")
    low = whole(bounds.get("min_batch_size"))
    high = whole(bounds.get("max_batch_size_dpo" if dpo else "max_batch_size"))
    if (low is not None and size < low) or (high is not None and size > high):
        raise InvalidRequestError(
            f"batch size {size} is outside Together's range [{low}, {high}] for this model",
            backend=NAME,
            param="batch_size",
        )


def create_body(request: JobRequest, limits: dict[str, Any] | None = None) -> dict[str, Any]:
    """Our JobRequest as the JSON body of ``POST /fine-tunes``, checked against the model's
    limits (``GET /fine-tunes/models/limits``) when known; what cannot map is refused."""
    params, limits = request.hyperparameters, limits or {}
    takes = "an absolute learning_rate"
    refuse_hyperparameters("Together", params, ["learning_rate_multiplier"], takes)
    refuse_unknown_settings("Together", request, _EXTRA, options=_OPTIONS)
    dpo = request.method == "dpo"
    training_type = _training_type(request, limits)
    _check_batch_size(params.batch_size, limits, training_type["type"] == "Lora", dpo)
    body: dict[str, Any] = {
        "model": request.base_model,
        "training_file": request.training_file.id,
        "n_epochs": params.epochs if isinstance(params.epochs, int) else 1,
        "batch_size": params.batch_size if isinstance(params.batch_size, int) else "max",
        "training_type": training_type,
        "training_method": _method(request),
    }
    if request.validation_file:  # an n_evals of extra's own wins: body.update(extra) below
        from finetune.validation._catalog import n_evals  # the estimate bills the same rule

        body["n_evals"] = n_evals(params.extra, body["n_epochs"])  # Together's 0: never used
    optional = {
        "validation_file": request.validation_file.id if request.validation_file else None,
        "learning_rate": params.learning_rate,
        "warmup_ratio": params.warmup,
        "random_seed": params.seed,
        "suffix": request.suffix,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    body.update(_wandb(request.integrations))
    body.update({k: v for k, v in params.extra.items() if k not in _METHOD_SETTINGS})
    return body


def _method(request: JobRequest) -> dict[str, Any]:
    """``training_method``, with the extra settings that belong to it; one of the other
    method's is refused, as Together's SDK refuses it."""
    extra, dpo = request.hyperparameters.extra, request.method == "dpo"
    misplaced = sorted(set(extra) & (_SFT_SETTINGS if dpo else _DPO_SETTINGS))
    if misplaced:
        raise InvalidRequestError(
            f"{', '.join(misplaced)}: only for {'SFT' if dpo else 'DPO'} on Together, "
            f"and this job is method={request.method!r}",
            backend=NAME,
            param=f"hyperparameters.extra.{misplaced[0]}",
        )
    if not dpo:
        return {"method": "sft", "train_on_inputs": extra.get("train_on_inputs", "auto")}
    beta = request.hyperparameters.beta
    beta = beta if isinstance(beta, (int, float)) else 0.1  # "auto": Together's default
    method: dict[str, Any] = {"method": "dpo", "dpo_beta": beta}
    method.update({k: v for k, v in extra.items() if k in _DPO_SETTINGS})
    gamma = method.get("simpo_gamma")
    if isinstance(gamma, (int, float)) and gamma > 0:
        method.setdefault("dpo_reference_free", True)  # SimPO, as Together's SDK sets it
        method.setdefault("dpo_normalize_logratios_by_length", True)
    return method


_WANDB_FIELDS = {"api_key": "wandb_api_key", "project": "wandb_project_name"}
_WANDB_FIELDS |= {"name": "wandb_name", "entity": "wandb_entity", "base_url": "wandb_base_url"}


def _wandb(integrations: list[dict[str, Any]]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for settings in wandb_settings("Together", integrations):
        fields.update(renamed(settings, _WANDB_FIELDS))
    return fields


# what same_fit compares where the job shows it: the top-level settings, and those of
# training_type and training_method ("auto", "max" and "all-linear" are left out: the API
# may show what it chose)
_COMPARED = (
    "n_epochs",
    "batch_size",
    "learning_rate",
    "warmup_ratio",
    "random_seed",
    "n_evals",
    "n_checkpoints",
    "weight_decay",
    "max_grad_norm",
    "packing",
    "max_seq_length",
    "from_checkpoint",
)


_CHOSEN_BY_TOGETHER = ("auto", "max", "all-linear")


def same_fit(payload: dict[str, Any], body: dict[str, Any]) -> bool:
    """True when a listed job trains what ``body`` asks for and can still succeed: base
    model, files, suffix (in the output name), and every setting the job shows (epochs,
    batch size, learning rate, seed, LoRA rank, alpha and dropout, method, DPO beta ...)."""
    if str(payload.get("status")) in _DEAD or payload.get("model") != body["model"]:
        return False
    if payload.get("training_file") != body["training_file"]:
        return False
    if (payload.get("validation_file") or None) != body.get("validation_file"):
        return False
    suffix = body.get("suffix")
    output = str(payload.get("model_output_name") or payload.get("output_name") or "")
    if suffix and suffix not in output:
        return False
    ours = {k: body[k] for k in _COMPARED if k in body}
    return (
        _agrees(payload, ours)
        and _agrees(object_at(payload, "training_type"), body["training_type"])
        and _agrees(object_at(payload, "training_method"), body["training_method"])
    )


def _agrees(theirs: dict[str, Any], ours: dict[str, Any]) -> bool:
    """Every setting of ``ours`` that ``theirs`` shows has our value."""
    return all(
        k not in theirs or v in _CHOSEN_BY_TOGETHER or same_value(theirs[k], v)
        for k, v in ours.items()
    )


def _error_of(payload: dict[str, Any], events: list[JobEvent]) -> JobError | None:
    state = str(payload.get("status"))
    if state not in ("error", "user_error"):
        return None
    failed = [e.message for e in events if e.level == "error"]
    message = failed[-1] if failed else f"Together reported {state} without a message"
    return JobError(code=state, message=message)


def _hyperparameters_from(payload: dict[str, Any]) -> Hyperparameters:
    batch = payload.get("batch_size")
    method = object_at(payload, "training_method")
    dpo = method.get("method") == "dpo"
    own = _DPO_SETTINGS if dpo else _SFT_SETTINGS
    return Hyperparameters(
        epochs=positive(whole(payload.get("n_epochs"))),
        batch_size="auto" if batch == "max" else positive(whole(batch)),
        learning_rate=positive(number(payload.get("learning_rate"))),
        warmup=fraction(number(payload.get("warmup_ratio"))),
        seed=non_negative(whole(payload.get("random_seed"))),
        beta=positive(number(method.get("dpo_beta"))) if dpo else None,
        lora=_lora_from(object_at(payload, "training_type")),
        extra={k: method[k] for k in sorted(own) if method.get(k) not in (None, "auto")},
    )


def _lora_from(training_type: dict[str, Any]) -> LoRA | None:
    """A job's ``training_type`` as our LoRA settings (``None``: a full fine-tune, or none
    shown); what it does not show keeps our default."""
    rank = positive(whole(training_type.get("lora_r")))
    if training_type.get("type") != "Lora" or rank is None:
        return None
    modules = text(training_type.get("lora_trainable_modules"))
    shown = {
        "r": rank,
        "alpha": positive(whole(training_type.get("lora_alpha"))),
        "dropout": _below_one(fraction(number(training_type.get("lora_dropout")))),
        "target_modules": _modules(modules) if modules else None,
    }
    return LoRA.model_validate({k: v for k, v in shown.items() if v is not None})


def _modules(shown: str) -> str | list[str]:
    """``lora_trainable_modules`` as our ``target_modules``: ``"all-linear"`` or the names."""
    names = [name.strip() for name in shown.split(",") if name.strip()]
    return "all-linear" if names in ([], ["all-linear"]) else names


def _below_one(share: float | None) -> float | None:
    return share if share is not None and share < 1 else None


@parses(NAME, "fine-tuning job")
def job_from_payload(payload: dict[str, Any]) -> Job:
    """A Together ``FinetuneResponse`` (or its truncated list form) as our ``Job``."""
    job_id = id_of(payload)
    events = [event_from_payload(e) for e in list_at(payload, "events") if isinstance(e, dict)]
    status = status_from("Together", payload.get("status"), STATUS_MAP)
    method = object_at(payload, "training_method").get("method")
    done = status is JobStatus.SUCCEEDED
    return Job(
        id=job_id,
        backend=NAME,
        base_model=text(payload.get("model")) or "",
        status=status,
        created_at=unix_time(payload.get("created_at")),
        started_at=unix_time(payload.get("started_at")),
        finished_at=unix_time(payload.get("updated_at")) if status.is_terminal else None,
        fine_tuned_model=text(payload.get("model_output_name")) if done else None,
        trained_tokens=whole(payload.get("token_count")),
        error=_error_of(payload, events),
        method="dpo" if method == "dpo" else "sft",
        hyperparameters=_hyperparameters_from(payload),
        training_file=text(payload.get("training_file")),
        validation_file=text(payload.get("validation_file")),
        suffix=text(payload.get("suffix")),
        raw={**payload, **_time_left(payload, status)},
    )


def _time_left(payload: dict[str, Any], status: JobStatus) -> dict[str, int]:
    """``seconds_left``, as a job view shows it: Together's own estimate of the time to the
    job's next state (its ``progress``), while it has one and the job has not ended."""
    progress = object_at(payload, "progress")
    seconds = whole(progress.get("seconds_remaining"))
    if status.is_terminal or progress.get("estimate_available") is not True or seconds is None:
        return {}
    return {"seconds_left": seconds}


@parses(NAME, "job event")
def event_from_payload(payload: dict[str, Any]) -> JobEvent:
    """A ``FineTuneEvent`` as our ``JobEvent`` (Together's ``legacy_*`` levels folded in)."""
    level = str(payload.get("level") or "info").removeprefix("legacy_").removeprefix("i")
    data = {k: payload[k] for k in ("step", "total_steps", "token_count") if k in payload}
    return JobEvent(
        created_at=time_or_now(payload.get("created_at")),
        level=level if level in ("info", "warning", "error") else "info",
        message=str(payload.get("message") or payload.get("type") or ""),
        data=data or None,
    )


@parses(NAME, "checkpoint")
def checkpoint_from_payload(payload: dict[str, Any], job_id: str) -> Checkpoint:
    """A ``FineTuneCheckpoint`` as our ``Checkpoint``."""
    step = whole(payload.get("step")) or 0
    return Checkpoint(
        id=f"{job_id}:{step}",
        step=step,
        model=text(payload.get("path")) or f"{job_id}:{step}",
        created_at=unix_time(payload.get("created_at")),
    )


_METRIC_NAMES = {
    "epoch": "epoch",
    "train_loss": "train_loss",
    "loss": "train_loss",
    "eval_loss": "valid_loss",
    "valid_loss": "valid_loss",
    "learning_rate": "learning_rate",
    "lr": "learning_rate",
}


@parses(NAME, "metrics list")
def metrics_from_payload(payload: dict[str, Any]) -> list[MetricPoint]:
    """``GET /fine-tunes/{id}/metrics`` (flat dicts of numbers) as points in step order."""
    rows = [row for row in list_at(payload, "metrics") if isinstance(row, dict)]
    return metric_points(rows, _METRIC_NAMES)


@parses(NAME, "file")
def file_ref(payload: dict[str, Any]) -> FileRef:
    """A Together ``FileResponse`` as our ``FileRef``."""
    return FileRef(
        backend=NAME,
        id=str(payload["id"]),
        filename=text(payload.get("filename")),
        bytes=whole(payload.get("bytes")),
        status=text(payload.get("processing_status")) or "uploaded",
    )


def file_problem(payload: dict[str, Any]) -> str | None:
    """Why Together's server-side validation refused a file (its ``validation_report``)."""
    state = str(payload.get("processing_status") or "")
    report = object_at(payload, "validation_report")
    if state not in ("FAILED", "INVALID_FORMAT") and report.get("valid") is not False:
        return None
    return str(report.get("error") or f"Together's file validation ended {state or 'invalid'}")


_QUOTE_FIELDS = (
    "estimated_total_price",
    "allowed_to_proceed",
    "user_limit",
    "estimated_train_token_count",
    "estimated_eval_token_count",
    "estimation_available",
    "unavailable_reason",
)


def with_quote(
    estimate: CostEstimate, quote: dict[str, Any], *, unpacked: bool = False
) -> CostEstimate:
    """Our estimate with Together's ``estimate-price`` answer beside it; ``unpacked``: the job
    turns packing off, which the quote cannot be told."""
    notes = []
    price = number(quote.get("estimated_total_price"))
    if price is not None:
        notes.append(f"Together quotes {price:.4g} USD for this job (estimate-price)")
    if unpacked:
        notes.append(
            "estimate-price takes no packing setting: Together's quote prices the job packed, "
            "below what packing=False bills (our figures above)"
        )
    tokens = whole(quote.get("estimated_train_token_count"))
    if tokens is not None:
        ours = estimate.billed_tokens - estimate.validation_tokens * estimate.validation_passes
        notes.append(f"Together counts {tokens} training tokens (ours: {ours})")
    evaluated = whole(quote.get("estimated_eval_token_count"))
    if estimate.validation_passes and evaluated is not None:
        ours = estimate.validation_tokens * estimate.validation_passes
        notes.append(f"Together counts {evaluated} evaluation tokens (ours: {ours})")
    if quote.get("allowed_to_proceed") is False:
        notes.append("Together says this job is over your credit limit: it would not start")
    if quote.get("estimation_available") is False:
        notes.append(f"Together gave no quote ({quote.get('unavailable_reason') or 'unknown'})")
    return with_figures(estimate, quote, _QUOTE_FIELDS, notes)

"""OpenAI payloads <-> finetune's models: pure functions, no I/O.

Only the fields we know are mapped; everything the API sends is kept on ``Job.raw``. Answers
shaped unlike the spec's examples (extra fields, strings among numbers, ``null``s, ``{}``
errors) map cleanly; answers we cannot read become a ``ServerError`` with an excerpt.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from finetune._errors import InvalidRequestError, UnsupportedFeature
from finetune.backends.base import EVERY_KIND, METADATA_KEY, SFT_AND_DPO, Capabilities, JobRequest
from finetune.backends.http import parses
from finetune.backends.payloads import (
    id_of,
    metric_points,
    non_negative,
    numbers,
    object_at,
    positive,
    refuse_unknown_settings,
    status_from,
    status_table,
    time_or_now,
    unix_time,
)
from finetune.backends.payloads import number as _number
from finetune.backends.payloads import text as _text
from finetune.backends.payloads import whole as _whole
from finetune.types import (
    Checkpoint,
    FileRef,
    Hyperparameters,
    Job,
    JobError,
    JobEvent,
    JobStatus,
    MetricPoint,
)

NAME = "openai"

STATUS_MAP = status_table(
    queued=("queued",),
    validating=("validating_files",),
    running=("running", "pausing", "resuming"),
    paused=("paused",),
    succeeded=("succeeded",),
    failed=("failed",),
    cancelled=("cancelled",),
)

CAPABILITIES = Capabilities(
    methods=SFT_AND_DPO,
    example_kinds=EVERY_KIND,
    tools=True,
    pause_resume=True,
    max_suffix_length=64,
)


def _auto_or(raw: Any, convert: Any) -> Any:
    return "auto" if raw == "auto" else convert(raw)


@parses(NAME, "fine-tuning job")
def job_from_payload(data: dict[str, Any]) -> Job:
    """An OpenAI ``fine_tuning.job`` (the JSON object) as our ``Job``."""
    job_id = id_of(data)
    method = object_at(data, "method")
    kind = method.get("type")
    metadata = data.get("metadata")
    status = status_from("OpenAI", data.get("status"), STATUS_MAP)
    return Job(
        id=job_id,
        backend=NAME,
        base_model=_text(data.get("model")) or "",
        status=status,
        created_at=unix_time(data.get("created_at")),
        finished_at=unix_time(data.get("finished_at")),
        fine_tuned_model=_text(data.get("fine_tuned_model")),
        trained_tokens=_whole(data.get("trained_tokens")),
        error=_job_error(data.get("error")),
        method="dpo" if kind == "dpo" else "sft",
        hyperparameters=_hyperparameters_from(data, method, kind),
        training_file=_text(data.get("training_file")),
        validation_file=_text(data.get("validation_file")),
        suffix=_suffix_of(_text(data.get("fine_tuned_model"))),
        metadata={str(k): str(v) for k, v in metadata.items()}
        if isinstance(metadata, dict)
        else {},
        raw={**data, **_time_left(data, status)},
    )


def _time_left(data: dict[str, Any], status: JobStatus) -> dict[str, int]:
    """``seconds_left``, as a job view shows it: the time to OpenAI's ``estimated_finish``
    (null unless the job is running), as of this answer."""
    finish = unix_time(data.get("estimated_finish"))
    if finish is None or status is not JobStatus.RUNNING:
        return {}
    return {"seconds_left": max(0, int((finish - datetime.now(timezone.utc)).total_seconds()))}


def _job_error(error: Any) -> JobError | None:
    if isinstance(error, str) and error:
        return JobError(message=error)
    if not isinstance(error, dict) or not error.get("message"):
        return None
    return JobError(
        code=_text(error.get("code")),
        message=str(error["message"]),
        param=_text(error.get("param")),
    )


def _hyperparameters_from(
    data: dict[str, Any], method: dict[str, Any], kind: Any
) -> Hyperparameters:
    source = data.get("hyperparameters")
    if kind in ("supervised", "dpo") and isinstance(method.get(kind), dict):
        source = method[kind].get("hyperparameters") or source
    if not isinstance(source, dict):
        source = {}
    seed = data.get("seed")
    return Hyperparameters(
        epochs=_auto_or(source.get("n_epochs"), lambda v: positive(_whole(v))),
        batch_size=_auto_or(source.get("batch_size"), lambda v: positive(_whole(v))),
        learning_rate_multiplier=_auto_or(
            source.get("learning_rate_multiplier"), lambda v: positive(_number(v))
        ),
        beta=_auto_or(source.get("beta"), lambda v: positive(_number(v))),
        seed=non_negative(seed) if isinstance(seed, int) and not isinstance(seed, bool) else None,
    )


def _suffix_of(model: str | None) -> str | None:
    parts = (model or "").split(":")
    return parts[3] if len(parts) >= 5 and parts[3] else None


def create_params(request: JobRequest) -> dict[str, Any]:
    """Our JobRequest as the JSON body of ``POST /fine_tuning/jobs``."""
    params = request.hyperparameters
    if params.learning_rate is not None or params.warmup is not None:
        raise UnsupportedFeature(
            "OpenAI takes learning_rate_multiplier, not learning_rate or warmup; "
            "set Hyperparameters(learning_rate_multiplier=...)"
        )
    if params.lora is not None:
        raise UnsupportedFeature("OpenAI chooses its own adapter settings; drop lora=...")
    hyper: dict[str, Any] = {}
    for ours, theirs in (
        ("epochs", "n_epochs"),
        ("batch_size", "batch_size"),
        ("learning_rate_multiplier", "learning_rate_multiplier"),
    ):
        value = getattr(params, ours)
        if value is not None:
            hyper[theirs] = value
    if request.method == "dpo" and params.beta is not None:
        hyper["beta"] = params.beta
    kind = "dpo" if request.method == "dpo" else "supervised"
    refuse_unknown_settings("OpenAI", request, _HYPERPARAMETERS[kind], options=request.options)
    hyper.update(params.extra)
    _check_ranges(hyper, params.seed)
    _check_metadata(request.metadata)
    body: dict[str, Any] = {
        "model": request.base_model,
        "training_file": request.training_file.id,
        "method": {"type": kind, kind: {"hyperparameters": hyper}},
        "metadata": {**request.metadata, METADATA_KEY: request.idempotency_key},
    }
    optional = {
        "validation_file": request.validation_file.id if request.validation_file else None,
        "suffix": request.suffix,
        "seed": params.seed,
        "integrations": request.integrations or None,
    }
    _refuse_hyperparameters_as_options(request.options)
    _refuse_local_training_options(request.options)
    taken = sorted(set(request.options) & {*body, *optional, "hyperparameters"})
    if taken:
        raise UnsupportedFeature(
            f"options={taken} would replace what fit() sets itself (the idempotency key rides in "
            "metadata); use fit(hyperparameters=..., suffix=..., metadata=...) instead"
        )
    body.update({k: v for k, v in optional.items() if v is not None})
    body.update(request.options)  # fields the API gained after this release, sent as given
    return body


def _refuse_hyperparameters_as_options(options: Mapping[str, Any]) -> None:
    """Options are sent as fields of the create body: a hyperparameter among them
    (``n_epochs``, ``lr``) is no field there, and would fail the create after the upload."""
    from finetune._fit import hyperparameter_meant, named_as_hyperparameters

    misplaced = sorted(name for name in options if hyperparameter_meant(name))
    if misplaced:
        raise UnsupportedFeature(
            f"options={misplaced} are hyperparameters, not fields of OpenAI's job"
            f"{named_as_hyperparameters(misplaced)}; nothing was uploaded"
        )


def _refuse_local_training_options(options: Mapping[str, Any]) -> None:
    """Options of local training (``max_length``, ``packing``), as a config written for
    ``Tuner("hf")`` keeps them when its backend becomes OpenAI: no fields of the create body,
    they would fail the create after the upload."""
    from finetune.backends.hf._config import LocalOptions

    local = sorted(set(options) & set(LocalOptions.model_fields))
    if local:
        raise UnsupportedFeature(
            f"options={local} are options of local training (Tuner('hf')), not fields of "
            "OpenAI's job: OpenAI chooses how it trains; nothing was uploaded"
        )


_RANGES = {"n_epochs": (1, 50), "batch_size": (1, 256), "beta": (0, 2)}  # the API spec's
# a method's hyperparameters in the API spec: extra may give them under OpenAI's names
_HYPERPARAMETERS = {
    "supervised": ("batch_size", "learning_rate_multiplier", "n_epochs"),
    "dpo": ("batch_size", "beta", "learning_rate_multiplier", "n_epochs"),
}


def _check_ranges(hyper: dict[str, Any], seed: int | None) -> None:
    """The bounds OpenAI's API reference sets, checked before any upload (its create refuses
    the rest with a 400, after the files are sent)."""
    for name, (low, high) in _RANGES.items():
        value = hyper.get(name)
        if isinstance(value, (int, float)) and not low <= value <= high:
            raise InvalidRequestError(
                f"OpenAI takes {name} from {low} to {high}, not {value}", backend=NAME, param=name
            )
    if seed is not None and seed > 2**31 - 1:
        raise InvalidRequestError(
            f"OpenAI takes a seed up to {2**31 - 1}, not {seed}", backend=NAME, param="seed"
        )


def _check_metadata(metadata: dict[str, str]) -> None:
    """OpenAI keeps 16 metadata pairs, keys of 64 characters and values of 512 at most, and
    ``fit`` uses one pair for its idempotency key: refused before any upload, not after."""
    given = len(set(metadata) - {METADATA_KEY})
    if given > 15:
        raise InvalidRequestError(
            f"OpenAI keeps 16 metadata pairs and fit() uses one ({METADATA_KEY!r}): give at most "
            f"15, not {given}",
            backend=NAME,
            param="metadata",
        )
    for key, value in metadata.items():
        if len(key) > 64 or len(value) > 512:
            shown = key if len(key) <= 40 else key[:37] + "..."
            raise InvalidRequestError(
                f"metadata {shown!r}: OpenAI takes keys of up to 64 characters and values of up "
                f"to 512; this pair has {len(key)} and {len(value)}",
                backend=NAME,
                param="metadata",
            )


@parses(NAME, "job event")
def event_from_payload(data: dict[str, Any]) -> JobEvent:
    """An OpenAI ``fine_tuning.job.event`` as our ``JobEvent``."""
    level = data.get("level") if data.get("level") in ("info", "warning", "error") else "info"
    return JobEvent(
        id=_text(data.get("id")),
        created_at=time_or_now(data.get("created_at")),
        level=level,
        message=str(data.get("message") or ""),
        data=data.get("data") if isinstance(data.get("data"), dict) else None,
    )


@parses(NAME, "checkpoint")
def checkpoint_from_payload(data: dict[str, Any]) -> Checkpoint:
    """An OpenAI ``fine_tuning.job.checkpoint`` as our ``Checkpoint`` (numeric metrics only:
    the live API puts ``"type": "supervised"`` among them)."""
    return Checkpoint(
        id=str(data["id"]),
        step=_whole(data.get("step_number")) or 0,
        model=_text(data.get("fine_tuned_model_checkpoint")) or "",
        created_at=unix_time(data.get("created_at")),
        metrics=numbers(object_at(data, "metrics")),
    )


_CSV_COLUMNS = {
    "train_loss": "train_loss",
    "train_accuracy": "train_accuracy",
    "train_mean_token_accuracy": "train_accuracy",
    "valid_loss": "valid_loss",
    "valid_accuracy": "valid_accuracy",
    "valid_mean_token_accuracy": "valid_accuracy",
}


def metrics_from_csv(text: str) -> list[MetricPoint]:
    """The result file's metrics CSV (step, train_loss, ...) as ``MetricPoint``s; rows without
    a numeric step are skipped."""
    return metric_points(csv.DictReader(io.StringIO(text)), _CSV_COLUMNS)


def metrics_from_events(events: list[JobEvent]) -> list[MetricPoint]:
    """Metric events (type ``metrics``) as points, while the result file does not exist yet."""
    points: dict[int, MetricPoint] = {}
    for event in events:
        data = event.data or {}
        step = _whole(data.get("step"))
        if step is None:
            continue
        fields = {v: _number(data.get(k)) for k, v in _CSV_COLUMNS.items() if k in data}
        points[step] = MetricPoint(step=step, **fields)
    return [points[s] for s in sorted(points)]


def oldest_first(newest_first: list[JobEvent]) -> list[JobEvent]:
    """The API pages newest first; events of the same second keep their relative order."""
    oldest = list(reversed(newest_first))
    return sorted(oldest, key=lambda e: e.created_at)


@parses(NAME, "file")
def file_ref(data: dict[str, Any]) -> FileRef:
    """An OpenAI file object as our ``FileRef``."""
    size = data.get("bytes")
    return FileRef(
        backend=NAME,
        id=str(data["id"]),
        filename=_text(data.get("filename")),
        bytes=size if isinstance(size, int) else None,
        status=_text(data.get("status")),
    )


def file_failure(data: dict[str, Any]) -> str | None:
    """Why OpenAI rejected a file (``status: error``), else ``None``."""
    if data.get("status") == "error":
        return str(data.get("status_details") or "the file was rejected")
    return None

"""Reading and writing providers' JSON: pure helpers for a backend's mapping module, no I/O.

Providers put strings among their numbers, ``null`` where a spec says a list, and states no
spec lists; these helpers read such answers the same way in every backend. They are re-exported
by ``finetune.backends.http``, so a plugin needs one import.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from finetune._errors import UnsupportedFeature
from finetune._namespace import PublicNames, public_names
from finetune.types import JobStatus, MetricPoint

if TYPE_CHECKING:
    from finetune.backends.base import JobRequest
    from finetune.types import CostEstimate, Hyperparameters, LoRA

__all__ = [
    "as_dict",
    "fraction",
    "given",
    "id_of",
    "list_at",
    "metric_points",
    "non_negative",
    "number",
    "numbers",
    "object_at",
    "positive",
    "refuse_hyperparameters",
    "refuse_lora_settings",
    "refuse_unknown_settings",
    "renamed",
    "same_value",
    "status_from",
    "status_table",
    "text",
    "time_or_now",
    "unix_time",
    "wandb_settings",
    "whole",
    "with_figures",
]
__dir__: PublicNames = public_names(__name__)

log: logging.Logger = logging.getLogger("finetune")
N = TypeVar("N", int, float)


def number(raw: Any) -> float | None:
    """A finite number from a number or numeric text; anything else (``"supervised"``,
    ``None``, ``true``) is ``None``: providers put strings among their numbers."""
    if isinstance(raw, bool) or raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def whole(raw: Any) -> int | None:
    """An integer from an integral number or numeric text, else ``None``."""
    value = number(raw)
    return int(value) if value is not None and value.is_integer() else None


def positive(value: N | None) -> N | None:
    """``value`` when above zero, else ``None`` (providers send 0 for "not set")."""
    return value if value is not None and value > 0 else None


def non_negative(value: N | None) -> N | None:
    """``value`` when zero or above, else ``None``."""
    return value if value is not None and value >= 0 else None


def fraction(value: float | None) -> float | None:
    """``value`` when it is a fraction (0 to 1), else ``None``."""
    return value if value is not None and 0 <= value <= 1 else None


def numbers(data: Mapping[Any, Any]) -> dict[str, float]:
    """The entries of ``data`` that are numbers (numeric text included), keyed by text."""
    read = {str(key): number(raw) for key, raw in data.items()}
    return {key: value for key, value in read.items() if value is not None}


def object_at(data: dict[str, Any], key: str) -> dict[str, Any]:
    """``data[key]`` when it is a JSON object, else ``{}``."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def list_at(data: dict[str, Any], key: str) -> list[Any]:
    """``data[key]`` when it is a JSON array, else ``[]``."""
    value = data.get(key)
    return value if isinstance(value, list) else []


def text(raw: Any) -> str | None:
    """A non-empty string, else ``None``."""
    return raw if isinstance(raw, str) and raw else None


def id_of(payload: Any, key: str = "id") -> str:
    """The identifier of a resource; a payload without one raises ``KeyError`` (inside
    ``@parses`` that is a ``ServerError`` with an excerpt)."""
    if not isinstance(payload, dict) or not text(payload.get(key)):
        raise KeyError(key)
    return str(payload[key])


def unix_time(value: Any) -> datetime | None:
    """A provider's UNIX timestamp (seconds) or ISO 8601 text as an aware UTC datetime.

    ``None`` and values that are neither give ``None`` (an odd timestamp is not worth an error).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(float(value), tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


def time_or_now(value: Any) -> datetime:
    """``unix_time(value)``, or now when the provider sent none (an event still gets a time)."""
    return unix_time(value) or datetime.now(timezone.utc)


def as_dict(payload: Any) -> dict[str, Any]:
    """An SDK model (pydantic) or a mapping as a plain JSON-ready dict; anything else is ``{}``
    when empty and a ``TypeError`` otherwise (inside ``@parses`` that is a ``ServerError``)."""
    if hasattr(payload, "model_dump"):
        dumped: dict[str, Any] = payload.model_dump(mode="json")
        return dumped
    if isinstance(payload, dict):
        return dict(payload)
    if payload is None:
        return {}
    raise TypeError(f"expected an object, got {type(payload).__name__}")


def status_from(provider: str, state: Any, table: Mapping[str, JobStatus]) -> JobStatus:
    """A provider's job state as ours. A state missing from ``table`` is logged and read as
    running: a new state is far more often a step of a live job than its end."""
    status = table.get(str(state))
    if status is None:
        log.warning("unknown %s job status %r; treating it as running", provider, state)
        return JobStatus.RUNNING
    return status


def status_table(**groups: tuple[str, ...]) -> dict[str, JobStatus]:
    """A provider's job states grouped under our status names, as the lookup ``status_from``
    reads: ``status_table(running=("RUNNING", "STOPPING"), failed=("FAILED",))``."""
    return {state: JobStatus(ours) for ours, states in groups.items() for state in states}


def same_value(theirs: Any, ours: Any) -> bool:
    """Whether a value a provider stored is the one we sent (numbers within float rounding)."""
    if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)):
        return math.isclose(float(theirs), float(ours), rel_tol=1e-9)
    return bool(theirs == ours)


def metric_points(rows: Iterable[Mapping[Any, Any]], names: Mapping[str, str]) -> list[MetricPoint]:
    """Rows of a ``step`` and numbers as ``MetricPoint``s in step order (the last row of a step
    wins). ``names`` maps a provider's column to our field (``train_loss``, ``valid_loss``,
    ``epoch`` ...); other numeric columns go to ``extra``; rows without a whole step are skipped.
    """
    points: dict[int, MetricPoint] = {}
    for row in rows:
        step = whole(row.get("step"))
        if step is None:
            continue
        fields: dict[str, Any] = {}
        extra: dict[str, float] = {}
        for column, value in numbers(row).items():
            if column in names:
                fields[names[column]] = value
            elif column != "step":
                extra[column] = value
        points[step] = MetricPoint(**{**fields, "step": step}, extra=extra)
    return [points[step] for step in sorted(points)]


def with_figures(
    estimate: CostEstimate,
    figures: Mapping[str, Any],
    fields: Iterable[str] | None = None,
    notes: Iterable[str] = (),
) -> CostEstimate:
    """Our estimate with a provider's own figures (its quote, its dry run) kept beside it in
    ``provider_figures`` (only ``fields`` when given; never ``None`` values), and ``notes``
    saying what they mean added to its notes."""
    keys = figures.keys() if fields is None else fields
    kept = {key: figures[key] for key in keys if figures.get(key) is not None}
    return estimate.model_copy(update={"provider_figures": kept}).with_notes(*notes)


def given(params: Hyperparameters, name: str) -> bool:
    """Whether a hyperparameter was set (not ``None`` and not ``"auto"``)."""
    return getattr(params, name) not in (None, "auto")


def refuse_hyperparameters(
    provider: str, params: Hyperparameters, names: Iterable[str], takes: str
) -> None:
    """Refuse, before anything is sent, hyperparameters a provider has no field for: dropping
    one silently would train something else than asked. ``takes`` says what it does take."""
    refused = [name for name in names if given(params, name)]
    if refused:
        raise UnsupportedFeature(f"{provider} takes no {', '.join(refused)}; it takes {takes}")


def refuse_lora_settings(provider: str, lora: LoRA | None, takes: tuple[str, ...]) -> None:
    """Refuse LoRA settings given a value of their own (``LoRA(alpha=64)``) that a provider
    has no field for; those left at ``LoRA()``'s are the provider's to choose."""
    if lora is None:
        return
    defaults = type(lora).model_fields
    refused = [
        f"{name}={getattr(lora, name)!r}"
        for name in sorted(lora.model_fields_set - set(takes))
        if getattr(lora, name) != defaults[name].default
    ]
    if refused:
        raise UnsupportedFeature(
            f"{provider} takes no LoRA {', '.join(refused)}; of LoRA it takes {', '.join(takes)}"
        )


def refuse_unknown_settings(
    provider: str, request: JobRequest, allowed: Iterable[str], *, options: Iterable[str] = ()
) -> None:
    """Refuse, before anything is sent, ``extra`` settings other than ``allowed`` and backend
    ``options`` other than ``options`` (``provider`` is the name shown: ``"Together"``)."""
    from finetune._fit import named_as_hyperparameters

    known = sorted(allowed)
    unknown = sorted(set(request.hyperparameters.extra) - set(known))
    if unknown:
        takes = f"{provider} takes {known}"
        ours = named_as_hyperparameters(unknown)
        raise UnsupportedFeature(f"unknown {provider} setting(s) {unknown} in extra{ours}; {takes}")
    strays = sorted(set(request.options) - set(options))
    if strays:
        takes = f"takes only {sorted(options)}" if options else "takes no options"
        settings = [
            f"{name!r} is ft.Hyperparameters(extra={{{name!r}: ...}})"
            for name in strays
            if name in known
        ]
        of_the_job = f" ({'; '.join(settings)})" if settings else ""
        raise UnsupportedFeature(
            f"{provider} {takes}; got {strays}{named_as_hyperparameters(strays)}{of_the_job}"
        )


def wandb_settings(provider: str, integrations: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Weights & Biases integrations as flat dicts (``project``, ``api_key``, ``entity`` ...):
    OpenAI's nested ``{"type": "wandb", "wandb": {...}}`` and a flat dict both work, so one
    script runs on every provider. Any other integration type is refused."""
    flat = []
    for item in integrations:
        if item.get("type", "wandb") != "wandb":
            kind = str(item.get("type"))[:40]  # never the item: it may hold a key
            raise UnsupportedFeature(f"{provider} supports only wandb integrations, not {kind!r}")
        settings = {key: value for key, value in item.items() if key not in ("type", "wandb")}
        flat.append({**settings, **object_at(item, "wandb")})
    return flat


def renamed(settings: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """The set entries of ``settings`` under a provider's names (``names``: ours -> theirs)."""
    return {theirs: settings[ours] for ours, theirs in names.items() if settings.get(ours)}

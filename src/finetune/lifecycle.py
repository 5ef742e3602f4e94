"""Provider lifecycle: which hosted providers still train, which are closing, and what to use
instead. One small data table drives ``finetune backends``, the docs, warnings, the notes of
an estimate and the ``ProviderUnavailable`` errors raised before anything is uploaded.

Dates move: ``allow_closed_provider=True`` on a backend lets a user who knows better try anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from finetune._namespace import PublicNames, public_names

__all__ = [
    "LIFECYCLE",
    "OPEN_WEIGHTS",
    "SAME_DATASET",
    "ProviderLifecycle",
    "alternatives_for",
    "closed_on",
    "closing_text",
    "estimate_note",
    "lifecycle",
    "status_text",
    "today",
]
__dir__: PublicNames = public_names(__name__)


@dataclass(frozen=True)
class ProviderLifecycle:
    """One provider's fine-tuning lifecycle, with where the facts come from."""

    provider: str
    state: str  # "open", "closing" or "retired"
    summary: str
    closes_on: date | None = None
    since: date | None = None
    source: str = ""
    still_works: str = ""


LIFECYCLE: dict[str, ProviderLifecycle] = {
    "openai": ProviderLifecycle(
        provider="openai",
        state="closing",
        summary=(
            "OpenAI stops creating fine-tuning jobs on 2027-01-06 (new organisations were cut "
            "off on 2026-05-07, inactive ones on 2026-07-02)"
        ),
        closes_on=date(2027, 1, 6),
        source="https://platform.openai.com/docs/deprecations",
        still_works=(
            "fine-tuned models keep serving until their base model is retired; jobs, events, "
            "metrics and checkpoints stay readable"
        ),
    ),
    "mistral": ProviderLifecycle(
        provider="mistral",
        state="retired",
        summary="Mistral's fine-tuning job API answers 410 Gone (retired in 2026-07)",
        since=date(2026, 7, 1),
        source="https://github.com/mistralai/client-ts/pull/255",
        still_works=(
            "existing fine-tuned models can be listed, renamed, archived and called; existing "
            "jobs stay readable"
        ),
    ),
    "together": ProviderLifecycle(
        provider="together",
        state="open",
        summary="Together AI fine-tuning (LoRA and full, SFT and DPO) is open",
        source="https://docs.together.ai/reference/post-fine-tunes",
    ),
    "fireworks": ProviderLifecycle(
        provider="fireworks",
        state="open",
        summary="Fireworks AI fine-tuning (LoRA, SFT and DPO) is open",
        source="https://docs.fireworks.ai/fine-tuning/fine-tuning-models",
    ),
}
"""Each hosted provider's fine-tuning lifecycle: when it stops creating jobs, what still works
and the source that says so."""

# open-weights equivalents of hosted base models, for Tuner("hf", model=...)
OPEN_WEIGHTS: dict[str, tuple[str, str]] = {
    "open-mistral-7b": (
        "mistralai/Mistral-7B-Instruct-v0.3",
        "https://huggingface.co/mistralai/Mistral-7B-Instruct-v0.3",
    ),
    "open-mistral-nemo": (
        "mistralai/Mistral-Nemo-Instruct-2407",
        "https://huggingface.co/mistralai/Mistral-Nemo-Instruct-2407",
    ),
    "mistral-small-latest": (
        "mistralai/Mistral-Small-24B-Instruct-2501",
        "https://huggingface.co/mistralai/Mistral-Small-24B-Instruct-2501",
    ),
    "codestral-latest": (
        "mistralai/Codestral-22B-v0.1",
        "https://huggingface.co/mistralai/Codestral-22B-v0.1",
    ),
    "ministral-8b-latest": (
        "mistralai/Ministral-8B-Instruct-2410",
        "https://huggingface.co/mistralai/Ministral-8B-Instruct-2410",
    ),
}
"""Open-weights equivalents of hosted base models, for ``Tuner("hf", model=...)``: the model
id and its page."""
SAME_DATASET = "the same Dataset on"
"""How an alternative begins (``the same Dataset on Tuner("hf", model=...)``): the command
line says it in its own terms."""
_HOSTED_INSTEAD = (
    f'{SAME_DATASET} Tuner("together", model=...) or Tuner("fireworks", model=...), '
    "which still train hosted"
)


def today() -> date:
    """Today's date in UTC, the one day it is everywhere at once: a provider's closing date
    comes at the same moment wherever its user sits (a function, so tests and users can move
    the clock)."""
    return datetime.now(timezone.utc).date()


def lifecycle(provider: str) -> ProviderLifecycle | None:
    """The lifecycle row of a hosted provider (``None`` for local and plugin backends)."""
    return LIFECYCLE.get(provider)


def status_text(provider: str, on: date | None = None) -> str:
    """``open``, ``closing 2027-01-06`` or ``retired`` (``-`` when the table has no row), as
    of ``on`` (default: today)."""
    row = LIFECYCLE.get(provider)
    if row is None:
        return "-"
    day = on or today()
    if row.state == "closing" and row.closes_on is not None:
        return "retired" if day >= row.closes_on else f"closing {row.closes_on.isoformat()}"
    return row.state


def closed_on(provider: str, on: date | None = None) -> ProviderLifecycle | None:
    """The provider's row when it no longer creates jobs as of ``on`` (default: today)."""
    row = LIFECYCLE.get(provider)
    if row is None:
        return None
    return row if status_text(provider, on) == "retired" else None


def alternatives_for(model: str | None) -> list[str]:
    """What to train ``model``'s fit on instead: its open-weights twin locally, a hosted peer."""
    found = OPEN_WEIGHTS.get(model or "")
    options = []
    if found is not None:
        repo, source = found
        options.append(f'{SAME_DATASET} Tuner("hf", model="{repo}") (open weights: {source})')
    else:
        options.append(f'{SAME_DATASET} Tuner("hf", model=<an open-weights model>) locally')
    options.append(_HOSTED_INSTEAD)
    return options


def estimate_note(provider: str, model: str | None = None, on: date | None = None) -> str | None:
    """The line an estimate carries for a provider that is closing or no longer creates jobs
    (``None`` while it is open, and for local and plugin backends): the cost is only worth
    reading with it in view."""
    row = LIFECYCLE.get(provider)
    status = status_text(provider, on)
    if row is None or status == "open":
        return None
    instead = "; ".join(alternatives_for(model))
    if status == "retired":
        return (
            f"{row.summary}: a fit is refused before anything is uploaded "
            "(allow_closed_provider=True, or finetune train --allow-closed-provider, tries "
            f"anyway); instead: {instead}"
        )
    return f"{closing_text(provider, on)}; plan the move: {instead}"


def closing_text(provider: str, on: date | None = None) -> str:
    """A closing provider's summary after the days it has left as of ``on`` (default: today),
    ``34 days left: OpenAI stops creating fine-tuning jobs on 2027-01-06 (...)``; else its
    summary alone."""
    row = LIFECYCLE[provider]
    if row.closes_on is None or status_text(provider, on) == "retired":
        return row.summary
    left = (row.closes_on - (on or today())).days
    return f"{left} day{'' if left == 1 else 's'} left: {row.summary}"

"""Calling a backend's hooks from the Tuner: each is given the keywords it takes, so that a
plugin written before a keyword was added keeps working (``options``, ``validation``)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finetune.backends.base import BaseBackend, JobRequest
    from finetune.dataset import Dataset
    from finetune.types import CostEstimate, Hyperparameters
    from finetune.validation import Target, TokenCounter

__all__ = ["context_for", "counter_for_fit", "quote_for", "rules_for", "with_estimate_notes"]


def rules_for(
    backend: BaseBackend, model: str | None, options: Mapping[str, Any] | None = None
) -> Target:
    """``backend.validation_rules(model, options)``, also for a plugin whose method takes
    neither (the contract before 0.2)."""
    method = getattr(getattr(backend, "wrapped", backend), "validation_rules", None)
    if method is not None and not _accepts(method, "model"):
        return backend.validation_rules()
    return backend.validation_rules(model=model, options=options)


def context_for(
    backend: BaseBackend, model: str, options: Mapping[str, Any] | None = None
) -> int | None:
    """``backend.context_limit(model, options)``, also for a plugin whose method takes the
    model alone."""
    hook: Callable[..., int | None] = backend.context_limit
    return hook(model, **_taken(backend, "context_limit", options=options or None))


def counter_for_fit(
    backend: BaseBackend, model: str, options: Mapping[str, Any] | None = None
) -> TokenCounter:
    """``backend.token_counter(model, options)``, also for a backend whose counter takes
    the model alone."""
    hook: Callable[..., TokenCounter] = backend.token_counter
    return hook(model, **_taken(backend, "token_counter", options=options or None))


async def quote_for(
    backend: BaseBackend,
    dataset: Dataset,
    estimate: CostEstimate,
    hyperparameters: Hyperparameters,
    validation: Dataset | None,
    options: Mapping[str, Any],
) -> CostEstimate:
    """``backend.refine_estimate``, given the validation set and the fit's ``options`` where
    the hook takes them."""
    keywords = _taken(backend, "refine_estimate", validation=validation, options=options or None)
    hook: Callable[..., Awaitable[CostEstimate]] = backend.refine_estimate
    return await hook(dataset, estimate, hyperparameters, **keywords)


def _taken(backend: BaseBackend, operation: str, **given: Any) -> dict[str, Any]:
    """The keywords of ``given`` that are set and that the backend's ``operation`` takes (a
    hook written before the keyword was added is called without it)."""
    method = getattr(getattr(backend, "wrapped", backend), operation, None)
    return {
        name: value
        for name, value in given.items()
        if value is not None and method is not None and _accepts(method, name)
    }


def _accepts(method: Callable[..., Any], name: str) -> bool:
    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def with_estimate_notes(
    backend: BaseBackend, request: JobRequest, estimate: CostEstimate
) -> CostEstimate:
    """``estimate`` with the provider's closing date, where it is closing or closed, and the
    backend's own lines on the job it is about (``backend.estimate_notes``)."""
    from finetune.lifecycle import estimate_note

    closing = estimate_note(backend.name, request.base_model)
    notes = backend.estimate_notes(request, estimate)
    return estimate.with_notes(*([closing] if closing else []), *notes)

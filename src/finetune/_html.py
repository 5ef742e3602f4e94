"""Small HTML tables for notebooks (``_repr_html_``)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finetune.types import CostEstimate, Job


def table(title: str, rows: list[tuple[str, Any]]) -> str:
    """A two-column HTML table with a bold title."""
    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in rows
        if v is not None
    )
    return f"<div><b>{html.escape(title)}</b><table>{body}</table></div>"


def job_html(job: Job) -> str:
    """A job's key fields."""
    error = f"{job.error.code}: {job.error.message}" if job.error else None
    return table(
        f"Job {job.id}",
        [
            ("backend", job.backend),
            ("base model", job.base_model),
            ("status", job.status.value),
            ("fine-tuned model", job.fine_tuned_model),
            ("created", job.created_at),
            ("finished", job.finished_at),
            ("trained tokens", job.trained_tokens),
            ("error", error),
        ],
    )


def cost_html(cost: CostEstimate) -> str:
    """A cost estimate's key figures."""
    price = None if cost.cost is None else f"{cost.cost:.2f} {cost.currency}"
    span = None
    if cost.cost_low is not None and cost.cost_high is not None and cost.cost_low != cost.cost_high:
        span = f"{cost.cost_low:.2f} – {cost.cost_high:.2f} {cost.currency}"
    return table(
        f"Cost estimate: {cost.backend} / {cost.model}",
        [
            ("examples", cost.examples),
            ("tokens (total)", cost.tokens_total),
            (
                "tokens p50 / p95 / max",
                f"{cost.tokens_p50} / {cost.tokens_p95} / {cost.tokens_max}",
            ),
            ("epochs", cost.epochs),
            ("billed tokens", cost.billed_tokens),
            ("cost", price),
            ("range", span),
            ("fits context", cost.fits_context),
            ("exact", cost.exact),
            ("pricing date", cost.pricing_date),
        ],
    )

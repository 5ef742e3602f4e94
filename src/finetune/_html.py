"""Notebook views (``_repr_html_``): the job as it trains, the evaluation's verdict, the
validation report and the cost estimate. Every user string is escaped; inline styles only."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from html import escape
from typing import TYPE_CHECKING, Any

from finetune._svg import interval_bar, line_chart
from finetune._words import cost_figure, counted, duration

if TYPE_CHECKING:
    from finetune._series import MetricSeries
    from finetune.dataset._reader import RawRecord, ReadProblem
    from finetune.evaluation import EvalResult
    from finetune.types import CostEstimate, Job
    from finetune.validation import ValidationReport

__all__ = [
    "cost_html",
    "dataset_html",
    "eval_html",
    "job_html",
    "report_html",
    "series_html",
    "table",
]

GREEN, RED, GREY, AMBER = "#1a7f37", "#cf222e", "#6e7781", "#9a6700"
VERDICT_COLOURS = {"improved": GREEN, "worse": RED, "no evidence": GREY}
_BOX = "font-family:sans-serif;font-size:13px;line-height:1.4"


def esc(value: Any) -> str:
    """Any value as HTML text (examples may hold ``<script>``)."""
    return escape(str(value))


def badge(text: str, colour: str) -> str:
    """A coloured label."""
    return (
        f"<span style='background:{colour};color:white;border-radius:4px;padding:1px 6px'>"
        f"{esc(text)}</span>"
    )


def table(title: str, rows: list[tuple[str, Any]]) -> str:
    """A two-column table with a bold title; ``None`` values are left out."""
    body = "".join(
        f"<tr><th style='text-align:left;padding-right:12px'>{esc(k)}</th><td>{esc(v)}</td></tr>"
        for k, v in rows
        if v is not None
    )
    return f"<div style='{_BOX}'><b>{esc(title)}</b><table>{body}</table></div>"


# -- jobs --

_STATUS_COLOURS = {"succeeded": GREEN, "failed": RED, "cancelled": GREY, "paused": AMBER}


def _progress_bar(step: int, total: int) -> str:
    share = min(step / total, 1.0) if total else 0.0
    return (
        "<div style='width:360px;height:8px;background:#eaeef2;border-radius:4px'>"
        f"<div style='width:{share * 100:.1f}%;height:8px;background:#0969da;"
        "border-radius:4px'></div></div>"
    )


def _timing(job: Job, step: int | None, total: int | None, started: float | None) -> str:
    begun = job.started_at or job.created_at
    end = job.finished_at or datetime.now(timezone.utc)
    if begun is not None:
        elapsed = (end - begun).total_seconds()
    elif started is not None:
        elapsed = time.time() - started
    else:
        return ""
    text = f"elapsed {duration(elapsed)}"
    told = (job.raw or {}).get("seconds_left")  # the provider's own estimate, where it has one
    if isinstance(told, int) and not job.status.is_terminal:
        return f"{text}, about {duration(told)} left ({job.backend}'s estimate)"
    if step and total and not job.status.is_terminal and step < total:
        per_step = _seconds_per_step(job, step, elapsed)
        if per_step is not None:
            text += f", about {duration(per_step * (total - step))} left"
    return text


def _seconds_per_step(job: Job, step: int, elapsed: float) -> float | None:
    """The pace of the steps so far: of the current run where the backend says when it began
    at which step (a local job resumed after a pause or a failure is not timed by the hours
    it stood still, nor by loading its model), else of the whole job since it started."""
    raw = job.raw or {}
    began, first = raw.get("run_started_at"), raw.get("run_first_step")
    if not isinstance(began, str) or not isinstance(first, int):
        return elapsed / step
    if step <= first:
        return None  # no step of this run yet: no pace to tell
    running = datetime.now(timezone.utc) - datetime.fromisoformat(began)
    return running.total_seconds() / (step - first)


def _losses(metrics: MetricSeries | None) -> tuple[str, str]:
    """The loss chart and a line of the latest losses, from the metrics seen so far."""
    if metrics is None or not len(metrics):
        return "", ""
    series = {
        name: [
            (p.step, v) for p, v in zip(metrics, metrics.column(name), strict=True) if v is not None
        ]
        for name in ("train_loss", "valid_loss")
    }
    latest = ", ".join(f"{name} {points[-1][1]:.4g}" for name, points in series.items() if points)
    return line_chart(series), latest


def _ending(job: Job) -> str:
    if job.status.value == "succeeded":
        model = job.fine_tuned_model or "(on the provider)"
        return f"<div>model: <code>{esc(model)}</code> (<code>job.model</code>)</div>"
    if job.status.value == "failed":
        reason = str(job.error) if job.error else "no reason given"
        return (
            f"<div style='color:{RED}'>{esc(reason)}</div><div style='color:{GREY}'>"
            "<code>job.events()</code> has the log; a local job continues with "
            "<code>job.resume()</code>, a hosted one needs a new <code>fit()</code> once the "
            "cause is fixed.</div>"
        )
    return ""


def job_html(
    job: Job,
    metrics: MetricSeries | None = None,
    *,
    started: float | None = None,
    reattached: bool = False,
) -> str:
    """The job at a glance: status, progress, time left, losses and their curve, and how it
    ended (the model, or the reason and what to do); ``reattached``: that an earlier run of
    the same fit started it."""
    raw = job.raw or {}
    step = raw.get("step") if isinstance(raw.get("step"), int) else None
    total = raw.get("max_steps") if isinstance(raw.get("max_steps"), int) else None
    if job.status.value == "succeeded" and total:
        step = total
    colour = _STATUS_COLOURS.get(job.status.value, "#0969da")
    parts = [
        f"<div style='{_BOX}'><div><b>{esc(job.backend)} job {esc(job.id)}</b> "
        f"{badge(job.status.value, colour)} <span style='color:{GREY}'>base model "
        f"{esc(job.base_model)}</span></div>"
    ]
    if reattached:
        parts.append(f"<div style='color:{GREY}'>{esc(REATTACHED)}</div>")
    if total:
        parts.append(f"<div>step {step or 0} / {total}</div>{_progress_bar(step or 0, total)}")
    timing = _timing(job, step, total, started)
    chart, latest = _losses(metrics)
    if timing or latest:
        parts.append(f"<div>{esc(' · '.join(x for x in (timing, latest) if x))}</div>")
    parts.append(chart)
    parts.append(_ending(job))
    parts.append("</div>")
    return "".join(parts)


REATTACHED = (
    "re-attached: an earlier run of the same fit started this job; nothing was trained anew"
)


def series_html(metrics: MetricSeries) -> str:
    """A metric series: its loss curve and last values, or a note when it is empty."""
    if not len(metrics):
        return f"<div style='{_BOX}'>no metrics yet</div>"
    chart, latest = _losses(metrics)
    last = metrics[-1]
    head = f"<b>{counted(len(metrics), 'point')}, last step {last.step}</b>: {esc(latest)}"
    return f"<div style='{_BOX}'><div>{head}</div>{chart}</div>"


# -- costs, validation, evaluation --


def _context_badge(cost: CostEstimate) -> str:
    """A badge when examples are over the context limit, or when no limit was known."""
    if cost.context_limit is None:
        return f" {badge('context unknown', AMBER)}"
    if cost.fits_context:
        return ""
    return f" {badge(f'{cost.examples_over_limit} over the limit', RED)}"


def cost_html(cost: CostEstimate) -> str:
    """The cost first (a range when the provider's rule leaves one), then the breakdown."""
    unpriced = "price unknown" if cost.hosted else "no provider bill (local training)"
    headline = cost_figure(cost) or unpriced
    exact = "" if cost.exact else f" {badge('approximate', AMBER)}"
    head = (
        f"<div style='font-size:20px'><b>{esc(headline)}</b>{exact}{_context_badge(cost)}</div>"
        f"<div style='color:{GREY}'>{esc(cost.backend)} / {esc(cost.model)}"
        f"{f', prices of {esc(cost.pricing_date)}' if cost.pricing_date else ''}</div>"
    )
    breakdown = table(
        "breakdown",
        [
            ("examples", cost.examples),
            ("tokens (total)", cost.tokens_total),
            (
                "tokens p50 / p95 / max",
                f"{cost.tokens_p50} / {cost.tokens_p95} / {cost.tokens_max}",
            ),
            ("epochs", cost.epochs),
            ("billed tokens", cost.billed_tokens),
            ("price per million tokens", cost.price_per_million),
        ],
    )
    notes = "".join(f"<li>{esc(note)}</li>" for note in cost.notes)
    return f"<div style='{_BOX}'>{head}{breakdown}{f'<ul>{notes}</ul>' if notes else ''}</div>"


def report_html(report: ValidationReport) -> str:
    """Counts by severity first; then each rule, expandable to its file:line findings."""
    verdict = badge("OK", GREEN) if report.ok else badge("errors", RED)
    head = (
        f"<div>{verdict} <b>{counted(report.examples, 'example')}</b>: "
        f"<span style='color:{RED}'>{counted(report.error_count, 'error')}</span>, "
        f"<span style='color:{AMBER}'>{counted(report.warning_count, 'warning')}</span> "
        f"<span style='color:{GREY}'>({esc(report.checked_as)})</span></div>"
    )
    order = sorted(report.counts, key=lambda c: (report.severities[c] != "error", c))
    sections = []
    for code in order:
        severity = report.severities[code]
        colour = RED if severity == "error" else AMBER
        items = "".join(
            f"<li><code>{esc(f.location)}</code> {esc(f.message)}</li>" for f in report.kept[code]
        )
        more = report.counts[code] - len(report.kept[code])
        tail = f"<li style='color:{GREY}'>and {more} more</li>" if more > 0 else ""
        opened = " open" if severity == "error" else ""
        sections.append(
            f"<details{opened}><summary><span style='color:{colour}'>{esc(severity)}</span> "
            f"<code>{esc(code)}</code> × {report.counts[code]}</summary>"
            f"<ul>{items}{tail}</ul></details>"
        )
    return f"<div style='{_BOX}'>{head}{''.join(sections)}</div>"


def eval_html(result: EvalResult, baseline: str | None = None) -> str:
    """Each candidate's mean with its 95% interval drawn to scale, then every candidate
    against the baseline (the first candidate unless given) with coloured verdicts."""
    summary = result.summary()
    intervals = [i for row in summary.values() for i in row.values()]
    lo = min([0.0, *(i.low for i in intervals)])
    hi = max([1.0, *(i.high for i in intervals)])
    head = "".join(f"<th>{esc(m)}</th>" for m in result.metrics)
    rows = ""
    for candidate in result.candidates:
        cells = "".join(
            f"<td>{interval_bar(i.mean, i.low, i.high, lo, hi)}<br>{esc(i)}</td>"
            for i in (summary[candidate][m] for m in result.metrics)
        )
        rows += f"<tr><th style='text-align:left'>{esc(candidate)}</th>{cells}</tr>"
    means = (
        f"<table><thead><tr><th>candidate</th>{head}</tr></thead><tbody>{rows}</tbody></table>"
        f"<div style='color:{GREY}'>mean [95% CI: Wilson for 0/1 scores, else bootstrap], "
        f"drawn on [{lo:g}, {hi:g}]</div>"
    )
    notes = "".join(f"<div><b>Note:</b> {esc(note)}</div>" for note in result.notes)
    return f"<div style='{_BOX}'>{means}{_comparisons(result, baseline)}{notes}</div>"


def _comparisons(result: EvalResult, baseline: str | None) -> str:
    from finetune.evaluation._result import comparison_notes

    comparisons = result.compare_all(baseline)
    rows = ""
    for c in comparisons:
        colour = VERDICT_COLOURS.get(c.verdict, GREY)
        rows += (
            f"<tr><td>{esc(c.a)} vs {esc(c.b)}</td><td>{esc(c.metric)}</td>"
            f"<td>{c.delta:+.3f} [{c.low:+.3f}, {c.high:+.3f}]</td>"
            f"<td>{c.wins}/{c.ties}/{c.losses}</td><td>{esc(c.p_text)}</td>"
            f"<td>{esc(c.p_holm_text)}</td><td>{badge(c.verdict, colour)}</td></tr>"
        )
    if not rows:
        return ""
    caveats = "".join(f"<div><b>Note:</b> {esc(c)}</div>" for c in comparison_notes(comparisons))
    return (
        "<table style='margin-top:8px'><thead><tr><th>comparison</th><th>metric</th>"
        "<th>delta [95% CI]</th><th>win/tie/loss</th><th>p</th><th>p (Holm)</th>"
        f"<th>verdict</th></tr></thead><tbody>{rows}</tbody></table>" + caveats
    )


# -- datasets --


def dataset_html(
    name: str,
    kind: str | None,
    length: int | None,
    path: str | None,
    size: int | None,
    first: list[RawRecord | ReadProblem],
) -> str:
    """What a dataset is (kind, examples when counted, file) and its first rows, read alone:
    a file is never read whole to be shown."""
    files = "the file" if path else "each file"  # no path: a concatenation of files
    examples = str(length) if length is not None else f"not counted yet (len() reads {files})"
    head = table(
        f"Dataset {name!r}",
        [
            ("kind", kind or "unknown (no readable first row)"),
            ("examples", examples),
            ("file", f"{path} ({size:,} bytes)" if path and size is not None else path),
        ],
    )
    rows = "".join(_preview_row(item) for item in first)
    if not rows:
        return head
    return f"{head}<div style='{_BOX}'><b>first rows</b><ol>{rows}</ol></div>"


def _preview_row(item: RawRecord | ReadProblem) -> str:
    data = getattr(item, "data", None)
    if not isinstance(data, dict):
        problem = getattr(item, "message", "not an object")
        return f"<li value='{item.line}' style='color:{RED}'>{esc(problem)}</li>"
    turns = "<br>".join(
        f"<b>{esc(label)}</b>: {esc(_clipped(text))}" for label, text in _turns(data)
    )
    return f"<li value='{item.line}'>{turns}</li>"


def _turns(data: dict[str, Any]) -> list[tuple[str, str]]:
    """A raw row as (label, text) lines, whatever its shape."""
    from finetune.dataset._formats import as_chat_record
    from finetune.dataset._tool_rows import MESSAGE_LIST_KEYS

    data = as_chat_record(data)  # other tools' and APIs' shapes, as read
    found: list[tuple[str, str]] = []
    for key in (*MESSAGE_LIST_KEYS, "completion"):
        value = data.get(key)
        if isinstance(value, dict):
            value = value.get("messages")
        if isinstance(value, str):
            found.append((key, value))
        elif isinstance(value, list):
            found.extend(_message_line(key, message) for message in value)
    return found or [("row", str(data))]


def _message_line(key: str, message: Any) -> tuple[str, str]:
    if not isinstance(message, dict):
        return key, str(message)
    from finetune.validation._tokens import reasoning_of, text_of

    text = text_of(message.get("content"))
    reasoning = reasoning_of(message)
    if reasoning:
        text = f"[reasoning: {reasoning}] {text}"
    calls = message.get("tool_calls") or []
    names = [c.get("function", {}).get("name", "?") for c in calls if isinstance(c, dict)]
    if names:
        text = f"{text} [calls {', '.join(names)}]".strip()
    role = str(message.get("role", "?"))
    return (role if key == "messages" else f"{key} {role}"), text


_CLIP = 200


def _clipped(text: str) -> str:
    return text if len(text) <= _CLIP else text[: _CLIP - 1] + "…"

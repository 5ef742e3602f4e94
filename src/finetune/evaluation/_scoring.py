"""Scoring: every metric over every prediction, a row per prediction. A judge's scores come
asked beforehand (``judge_rows``); a metric with a ``batch`` function is called once with
every answer (an embedding model takes many texts at once); any other, once per answer."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from finetune._errors import add_note
from finetune.evaluation.metrics import Metric
from finetune.types import Example

__all__ = ["Scored", "score_rows"]


class Scored(Protocol):
    """A prediction to score: the candidate, the example's index, the answer."""

    candidate: str
    example: int
    prediction: str | None


def score_rows(
    tasks: Sequence[Scored],
    examples: list[Example],
    references: list[str],
    metrics: Sequence[Metric],
    judged: Mapping[tuple[int, str], float],
) -> list[dict[str, Any]]:
    """Each task's row of scores: a judge's from ``judged`` (asked on the loop beforehand),
    a batch metric's in one call for every task, every other metric's one task at a time."""
    given: dict[tuple[int, str], Any] = {**judged, **_batched(tasks, examples, references, metrics)}
    rows = []
    for position, task in enumerate(tasks):
        example, reference = examples[task.example], references[task.example]
        prediction = str(task.prediction or "")
        row: dict[str, Any] = {
            "example": task.example,
            "candidate": task.candidate,
            "prediction": prediction,
            "reference": reference,
        }
        for metric in metrics:
            try:
                key = (position, metric.__name__)
                score = given[key] if key in given else metric(prediction, reference, example)
            except Exception as error:
                where = f"candidate {task.candidate!r} on the example at index {task.example}"
                add_note(error, f"while metric {metric.__name__!r} scored {where}")
                raise
            row[metric.__name__] = _number(score, metric, task)
        rows.append(row)
    return rows


def _batched(
    tasks: Sequence[Scored],
    examples: list[Example],
    references: list[str],
    metrics: Sequence[Metric],
) -> dict[tuple[int, str], Any]:
    """The scores of the metrics with a ``batch`` function (an embedding model's, asked for
    many texts at once), each called once with every task's answer."""
    scores: dict[tuple[int, str], Any] = {}
    for metric in metrics:
        batch = getattr(metric, "batch", None)
        if not callable(batch):
            continue
        predictions = [str(task.prediction or "") for task in tasks]
        given = [references[t.example] for t in tasks], [examples[t.example] for t in tasks]
        try:
            found = list(batch(predictions, *given))
        except Exception as error:
            add_note(error, f"while metric {metric.__name__!r} scored every answer at once")
            raise
        if len(found) != len(tasks):
            raise ValueError(
                f"metric {metric.__name__!r} scored {len(found)} answers of {len(tasks)}: its "
                "batch function returns one score per answer, in order"
            )
        scores.update(((i, metric.__name__), score) for i, score in enumerate(found))
    return scores


def _number(score: Any, metric: Metric, task: Scored) -> float:
    """A metric's score as a float; anything else names the metric, candidate and example
    (text too, though it reads as a number: a metric that returns the answer, ``"3"``)."""
    try:
        value = math.nan if isinstance(score, (str, bytes)) else float(score)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):  # NaN, or an infinity no mean or interval survives
        raise ValueError(
            f"metric {metric.__name__!r} returned {score!r} for candidate {task.candidate!r} on "
            f"the example at index {task.example}; a metric returns a finite number (from 0 "
            "to 1 for a score of quality, any for a count of your own)"
        )
    return value

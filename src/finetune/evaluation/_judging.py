"""Asking a judge model, written once: an exchange is a generator that yields the messages to
ask and is sent each reply, until it returns the score. ``ask_blocking`` drives it for a
metric called on its own; ``judge_rows`` drives every judge metric of an evaluation on its
event loop, ``max_concurrency`` requests at once, each reply cached as predictions are.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from finetune._loop import gather_or_cancel
from finetune._progress import CountingBar
from finetune.backends.http import blocking_call_with_retries, retrying
from finetune.evaluation._cache import PredictionCache
from finetune.evaluation._predictors import (
    Predictor,
    add_note,
    as_reply,
    close_predictors,
    is_cacheable,
    predictor_for,
)
from finetune.evaluation._prompts import Messages
from finetune.evaluation._scoring import Scored
from finetune.types import Example

__all__ = ["Asking", "Exchange", "Judging", "ask_all", "ask_blocking", "judge_rows", "judging_of"]

log = logging.getLogger("finetune")

Exchange = Generator[Messages, str, float]
"""Yields the messages to ask the judge, is sent its reply, returns the score."""


@dataclass(frozen=True)
class Judging:
    """What a judge metric asks: ``judge`` as given (a ``ModelRef``, a ``Predictor`` or a
    function), and the exchange that scores one prediction."""

    judge: Any
    exchange: Callable[[str, str, Any], Exchange]


def judging_of(metric: Any) -> Judging | None:
    """The ``Judging`` of a metric that asks a judge model (``llm_judge``), else ``None``."""
    judging = getattr(metric, "judging", None)
    return judging if isinstance(judging, Judging) else None


def ask_blocking(grader: Predictor, exchange: Exchange) -> float:
    """The exchange's score, each ask a blocking ``predict`` retried under the one policy."""
    try:
        messages = next(exchange)
        while True:
            reply = blocking_call_with_retries(functools.partial(grader.predict, messages))
            messages = exchange.send(as_reply(grader, reply))
    except StopIteration as done:
        return float(done.value)


async def _ask(
    grader: Predictor, exchange: Exchange, cache: PredictionCache | None, attempts: int
) -> float:
    """The exchange's score, each ask answered from the cache or awaited and cached."""
    try:
        messages = next(exchange)
        while True:
            messages = exchange.send(await _reply(grader, messages, cache, attempts))
    except StopIteration as done:
        return float(done.value)


async def _reply(
    grader: Predictor, messages: Messages, cache: PredictionCache | None, attempts: int
) -> str:
    key = PredictionCache.key(grader.name, messages)
    if cache is not None and (cached := cache.get(key)) is not None:
        return cached
    async for attempt in retrying(attempts, first=0.25, cap=8.0):
        with attempt:
            reply = as_reply(grader, await grader.apredict(messages))
    if cache is not None:
        cache.put(key, reply)
    return reply


@dataclass
class Asking:
    """One exchange to drive: the judge asked, and where it is, for the note on its error."""

    grader: Predictor
    exchange: Exchange
    where: str
    score: float = math.nan  # until the exchange ends


async def ask_all(
    asked: Sequence[Asking],
    cache: PredictionCache | None,
    max_concurrency: int,
    attempts: int,
    progress: bool = False,
) -> None:
    """Drive every exchange to its ``score``, ``max_concurrency`` requests at once (with a
    bar of the grades, where ``progress``); the first failure stops them all, with its
    ``where`` as a note."""
    queue = iter(asked)
    bar = CountingBar(progress and bool(asked), len(asked), "judge", "grade")
    try:
        await gather_or_cancel(_drive(queue, cache, attempts, bar) for _ in asked[:max_concurrency])
    finally:
        bar.close()


async def _drive(
    queue: Iterator[Asking], cache: PredictionCache | None, attempts: int, bar: CountingBar
) -> None:
    for asking in queue:
        kept = cache if is_cacheable(asking.grader) else None
        try:
            asking.score = await _ask(asking.grader, asking.exchange, kept, attempts)
        except BaseException as error:
            add_note(error, asking.where)
            raise
        bar.advance()


async def judge_rows(
    tasks: Sequence[Scored],
    examples: Sequence[Example],
    references: Sequence[str],
    metrics: Sequence[Any],
    cache: PredictionCache | None,
    max_concurrency: int,
    attempts: int,
    progress: bool = False,
) -> dict[tuple[int, str], float]:
    """Every judge metric's score of every task (by the task's position and the metric's
    name), ``max_concurrency`` judge requests at once."""
    judged = [(metric.__name__, j) for metric in metrics if (j := judging_of(metric))]
    if not judged:
        return {}
    graders = {id(judging): predictor_for(judging.judge) for _, judging in judged}
    asked: dict[tuple[int, str], Asking] = {}
    for index, task in enumerate(tasks):
        example, reference = examples[task.example], references[task.example]
        prediction = str(task.prediction or "")
        where = f"candidate {task.candidate!r} on the example at index {task.example}"
        for name, judging in judged:
            exchange = judging.exchange(prediction, reference, example)
            note = f"while metric {name!r} scored {where}"
            asked[index, name] = Asking(graders[id(judging)], exchange, note)
    log.info("evaluate: %d judge requests", len(asked))
    try:
        await ask_all(list(asked.values()), cache, max_concurrency, attempts, progress)
    finally:
        await close_predictors(graders.values())  # on this loop: the next run opens its own
    return {key: asking.score for key, asking in asked.items()}

"""Asking a judge model, written once: an exchange is a generator that yields the messages to
ask and is sent each reply, until it returns the score. ``ask_blocking`` drives it for a
metric called on its own; ``judge_rows`` drives every judge metric of an evaluation on its
event loop, ``max_concurrency`` requests at once, each reply cached as predictions are, and
each prediction graded as soon as it is in (``Predicted``), while the others are asked.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import AsyncIterable, AsyncIterator, Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from finetune._errors import add_note
from finetune._loop import gather_or_cancel
from finetune._progress import CountingBar
from finetune.backends.http import blocking_call_with_retries, excerpt
from finetune.evaluation._cache import PredictionCache
from finetune.evaluation._predictors import (
    Predictor,
    TruncatedReply,
    as_reply,
    close_predictors,
    is_cacheable,
    predictor_for,
    retrying_a_model,
)
from finetune.evaluation._prompts import Messages
from finetune.evaluation._scoring import Scored
from finetune.types import Example

__all__ = [
    "JUDGE_ROOM",
    "Asking",
    "Exchange",
    "Judging",
    "Predicted",
    "ask_all",
    "ask_blocking",
    "judge_rows",
    "judging_of",
    "no_verdict",
]

log = logging.getLogger("finetune")
T = TypeVar("T")

Exchange = Generator[Messages, str, float]
"""Yields the messages to ask the judge, is sent its reply, returns the score."""


@dataclass(frozen=True)
class Judging:
    """What a judge metric asks: ``judge`` as given (a ``ModelRef``, a ``Predictor`` or a
    function), the exchange that scores one prediction, and what the judge grades against
    (``the rubric '...'``), for the result's note of who graded how."""

    judge: Any
    exchange: Callable[[str, str, Any], Exchange]
    against: str


def judging_of(metric: Any) -> Judging | None:
    """The ``Judging`` of a metric that asks a judge model (``llm_judge``), else ``None``."""
    judging = getattr(metric, "judging", None)
    return judging if isinstance(judging, Judging) else None


# a judge given room to reason (an eval config gives its [judge] table the option instead)
JUDGE_ROOM = "OpenAIPredictor(model, max_tokens=1024)"


def no_verdict(grader: Predictor, failed: str, reply: str) -> ValueError:
    """The refusal of a judge that gave no verdict, asked twice: what it replied, and, where
    that stopped at its length limit (a judge that reasons first), which limit to raise."""
    advice = "use a judge model that follows the instruction"
    if isinstance(reply, TruncatedReply):
        advice = (
            f"its reply stopped at {reply.limit} before it gave one: give the judge room to "
            f"reason, e.g. {JUDGE_ROOM}"
        )
    return ValueError(
        f"the judge {grader.name} {failed}, asked twice; it replied {excerpt(reply, 80)!r}: "
        f"{advice}"
    )


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
    if cache is not None and (cached := cache.recall(key)) is not None:
        return cached
    async for attempt in retrying_a_model(attempts):
        with attempt:
            reply = as_reply(grader, await grader.apredict(messages))
    if cache is not None:
        cache.keep(key, reply)
    return reply


@dataclass
class Asking:
    """One exchange to drive: the judge asked, and where it is, for the note on its error."""

    grader: Predictor
    exchange: Exchange
    where: str
    score: float = math.nan  # until the exchange ends


_Line = asyncio.Queue[Asking | None]
"""Exchanges waiting for a driver; each driver stops at a ``None``."""


async def ask_all(
    asked: Sequence[Asking],
    cache: PredictionCache | None,
    max_concurrency: int,
    attempts: int,
    progress: bool = False,
) -> None:
    """Drive every exchange to its ``score``, ``max_concurrency`` requests at once, or, for
    a judge that answers in batches (a local model), ``batch_size`` requests a call (with a
    bar of the grades, where ``progress``); the first failure stops them all, with its
    ``where`` as a note."""
    await _ask_as_they_come(_listed(asked), len(asked), cache, max_concurrency, attempts, progress)


async def _ask_as_they_come(
    asked: AsyncIterator[Asking],
    total: int,
    cache: PredictionCache | None,
    max_concurrency: int,
    attempts: int,
    progress: bool,
) -> None:
    """``ask_all`` of the ``total`` exchanges ``asked`` yields, each asked as it comes."""
    bar = CountingBar(progress and total > 0, total, "judge", "grade")
    line: _Line = asyncio.Queue()
    drivers = [_drive(line, cache, attempts, bar) for _ in range(min(max_concurrency, total))]
    try:
        await gather_or_cancel([*drivers, _hand_out(asked, line, len(drivers), cache, bar)])
    finally:
        bar.close()


async def _listed(items: Iterable[T]) -> AsyncIterator[T]:
    for item in items:
        yield item


async def _hand_out(
    asked: AsyncIterator[Asking],
    line: _Line,
    drivers: int,
    cache: PredictionCache | None,
    bar: CountingBar,
) -> None:
    """Put each exchange in the drivers' ``line`` as it comes, or, for a judge that answers
    in batches, keep it for that judge's batches, asked once every exchange has come (a
    local judge shares the machine with a local candidate: it would gain nothing)."""
    in_batches: dict[int, list[Asking]] = {}
    async for asking in asked:
        if _batches(asking.grader):
            in_batches.setdefault(id(asking.grader), []).append(asking)
        else:
            line.put_nowait(asking)
    for _ in range(drivers):
        line.put_nowait(None)
    await gather_or_cancel(_drive_in_batches(batch, cache, bar) for batch in in_batches.values())


def _batches(grader: Predictor) -> bool:
    return callable(getattr(grader, "predict_batch", None))


async def _drive(
    line: _Line, cache: PredictionCache | None, attempts: int, bar: CountingBar
) -> None:
    while (asking := await line.get()) is not None:
        kept = cache if is_cacheable(asking.grader) else None
        try:
            asking.score = await _ask(asking.grader, asking.exchange, kept, attempts)
        except BaseException as error:
            add_note(error, asking.where)
            raise
        bar.advance()
        await asyncio.sleep(0)  # a cached reply awaits nothing: let the loop's others run


async def _drive_in_batches(
    asked: list[Asking], cache: PredictionCache | None, bar: CountingBar
) -> None:
    """One judge's exchanges, its ``batch_size`` next requests a ``predict_batch`` call (a
    local model: 3.5x the requests a second of one at a time, SmolLM2 on a CPU); a request
    asked again joins the end of the line."""
    grader = asked[0].grader
    kept = cache if is_cacheable(grader) else None
    size = int(getattr(grader, "batch_size", 16))
    waiting = [(asking, _first_request(asking)) for asking in asked]
    while waiting:
        await asyncio.sleep(0)  # a chunk of cached replies awaits nothing: let others run
        chunk, waiting = waiting[:size], waiting[size:]
        try:
            replies = await _batch_replies(grader, [messages for _, messages in chunk], kept)
        except BaseException as error:
            add_note(error, chunk[0][0].where)
            raise
        for (asking, _), reply in zip(chunk, replies, strict=True):
            try:
                waiting.append((asking, asking.exchange.send(reply)))
            except StopIteration as done:
                asking.score = float(done.value)
                bar.advance()
            except BaseException as error:
                add_note(error, asking.where)
                raise


def _first_request(asking: Asking) -> Messages:
    try:
        return next(asking.exchange)
    except Exception as error:
        add_note(error, asking.where)
        raise


async def _batch_replies(
    grader: Any, asked: list[Messages], cache: PredictionCache | None
) -> list[str]:
    """The replies to ``asked``: the cache's, and the rest from one ``predict_batch`` call in
    a worker thread."""
    keys = [PredictionCache.key(grader.name, messages) for messages in asked]
    replies = [cache.recall(key) if cache is not None else None for key in keys]
    missing = [index for index, reply in enumerate(replies) if reply is None]
    if missing:
        answered = await asyncio.to_thread(grader.predict_batch, [asked[i] for i in missing])
        for index, reply in zip(missing, answered, strict=True):
            text = replies[index] = as_reply(grader, reply)
            if cache is not None:
                cache.keep(keys[index], text)
    return cast("list[str]", replies)  # every one answered by now


class Predicted:
    """The tasks whose predictions are in, as they come in: ``judge_rows`` grades each one
    while the others are still being asked."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Scored | None] = asyncio.Queue()

    def put(self, task: Scored) -> None:
        """``task`` has its prediction."""
        self._queue.put_nowait(task)

    def close(self) -> None:
        """Every prediction is in (or none will come: the asking stopped)."""
        self._queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[Scored]:
        while (task := await self._queue.get()) is not None:
            yield task


async def judge_rows(
    tasks: Sequence[Scored],
    examples: Sequence[Example],
    references: Sequence[str],
    metrics: Sequence[Any],
    cache: PredictionCache | None,
    max_concurrency: int,
    attempts: int,
    progress: bool = False,
    predicted: AsyncIterable[Scored] | None = None,
) -> tuple[dict[tuple[int, str], float], list[str]]:
    """Every judge metric's score of every task (by the task's position and the metric's
    name), ``max_concurrency`` judge requests at once, each task's asked once it comes from
    ``predicted`` (every task at once, without it), and a note for each metric of which
    judge graded, against what (the result's reader must know it)."""
    judged = [(metric.__name__, j) for metric in metrics if (j := judging_of(metric))]
    if not judged:
        return {}, []
    graders = {id(judging): predictor_for(judging.judge) for _, judging in judged}
    notes = [
        f"{name}: graded by the judge {graders[id(judging)].name} against {judging.against}"
        for name, judging in judged
    ]
    positions = {id(task): position for position, task in enumerate(tasks)}
    asked: dict[tuple[int, str], Asking] = {}

    async def askings() -> AsyncIterator[Asking]:
        async for task in predicted or _listed(tasks):
            example, reference = examples[task.example], references[task.example]
            prediction = str(task.prediction or "")
            where = f"candidate {task.candidate!r} on the example at index {task.example}"
            for name, judging in judged:
                exchange = judging.exchange(prediction, reference, example)
                note = f"while metric {name!r} scored {where}"
                asking = asked[positions[id(task)], name] = Asking(
                    graders[id(judging)], exchange, note
                )
                yield asking

    total = len(tasks) * len(judged)
    log.info("evaluate: %d judge requests", total)
    try:
        await _ask_as_they_come(askings(), total, cache, max_concurrency, attempts, progress)
    finally:
        await close_predictors(graders.values())  # on this loop: the next run opens its own
    return {key: asking.score for key, asking in asked.items()}, notes

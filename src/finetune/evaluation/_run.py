"""Running an evaluation: prompts, bounded concurrency, retries, the cache, the scores."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import os
import re
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from finetune._errors import InvalidRequestError, add_note
from finetune._loop import gather_or_cancel, run_to_the_end
from finetune._progress import CountingBar
from finetune.dataset import Dataset, require_dataset
from finetune.dataset._formats import Turns, split_turns
from finetune.evaluation._cache import PredictionCache, open_cache
from finetune.evaluation._callable import takes_tools
from finetune.evaluation._checks import (
    as_examples,
    as_models,
    indexes,
    made_predictor,
    metric_names,
    refuse_examples_with_no_reference,
    refuse_predictors_without_images,
    refuse_predictors_without_tools,
    refuse_unknown_options,
    refuse_unnamed_candidates,
)
from finetune.evaluation._judging import Predicted, judge_rows
from finetune.evaluation._lineage import note_how_served
from finetune.evaluation._overlap import (
    notes_on_what_was_trained_on,
    refuse_shots_from_the_evaluated_data,
    what_was_trained_on,
)
from finetune.evaluation._predictors import (
    Predictor,
    TruncatedReply,
    as_reply,
    at_least_one,
    close_predictors,
    is_cacheable,
    reply_of,
    retrying_a_model,
)
from finetune.evaluation._prompts import (
    Messages,
    build_prompt,
    example_key,
    example_tools,
    shot_turns,
    split_example,
)
from finetune.evaluation._result import EvalResult
from finetune.evaluation._scoring import score_rows
from finetune.evaluation._tools import Tools
from finetune.evaluation.metrics import Metric, by_name
from finetune.types import Example, ModelRef

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["OPTIONS_OF", "EvaluateOptions", "aevaluate", "evaluate"]

log = logging.getLogger("finetune")

_Judged = tuple[dict[tuple[int, str], float], list[str]]

Metrics = Metric | str | Sequence[Metric | str] | Mapping[str, Metric | str]
"""What ``evaluate`` takes as metrics: one or several, functions or names of ready ones, or a
dict of column names to them."""


@dataclass
class _Task:
    candidate: str
    example: int
    messages: Messages
    tools: Tools | None
    key: str
    prediction: str | None = None
    serving: str | None = None  # how its provider serves the candidate's model (ModelRef.note)
    shots: int = 0  # the few-shot examples in its prompt


def _resolve(
    candidates: Mapping[str, Any], options: Mapping[str, dict[str, Any]]
) -> dict[str, tuple[Predictor, list[Any] | None]]:
    strays = sorted(set(options) - set(candidates))
    if strays:
        raise ValueError(
            f"predictor_options names no candidate: {', '.join(map(repr, strays))}; "
            f"the candidates are {', '.join(map(repr, candidates))}"
        )
    resolved = {}
    for name, candidate in candidates.items():
        shots = candidate.few_shot if isinstance(candidate, ModelRef) else None
        resolved[name] = (_predictor(name, candidate, options.get(name, {})), shots)
    return resolved


# what a candidate's options are called in errors (an eval config calls them its options)
OPTIONS_OF = "predictor_options of candidate"


def _predictor(name: str, candidate: Any, options: dict[str, Any]) -> Predictor:
    return made_predictor(candidate, options, f"{OPTIONS_OF} {name!r}", f"candidate {name!r}")


_Asking = tuple[Predictor, PredictionCache | None, _Task]


async def _asker(
    queue: Iterator[_Asking],
    attempts: int,
    failed: asyncio.Event,
    progress: CountingBar,
    predicted: Predicted,
) -> None:
    """Ask the queue's predictions one after another, until it is empty or one has failed
    (``max_concurrency`` askers share the queue: a task each at a time, none made per
    prediction, which for 20,000 of them stalled the event loop 0.1 s)."""
    for predictor, cache, task in queue:
        if failed.is_set():
            return
        await _predict_one(predictor, task, cache, attempts, failed)
        predicted.put(task)
        progress.advance()


async def _predict_one(
    predictor: Predictor,
    task: _Task,
    cache: PredictionCache | None,
    attempts: int,
    failed: asyncio.Event,
) -> None:
    try:
        async for attempt in retrying_a_model(attempts):
            with attempt:
                prediction = await reply_of(predictor, task.messages, task.tools)
    except BaseException as error:
        failed.set()
        _note(error, task, f"the example at index {task.example}")
        raise
    task.prediction = prediction
    if cache is not None:
        cache.keep(task.key, prediction)


async def _predict_batched(
    predictor: Any,
    tasks: list[_Task],
    cache: PredictionCache | None,
    progress: CountingBar,
    predicted: Predicted,
) -> None:
    size = int(getattr(predictor, "batch_size", 16))
    for tools, offered in _by_tools(tasks):
        for start in range(0, len(offered), size):
            chunk = offered[start : start + size]
            await _predict_chunk(predictor, chunk, tools, cache)
            for task in chunk:
                predicted.put(task)
            progress.advance(len(chunk))


def _by_tools(tasks: list[_Task]) -> list[tuple[Tools | None, list[_Task]]]:
    """The tasks in groups offered the same tools (most examples share one list), in order."""
    groups: dict[str, tuple[Tools | None, list[_Task]]] = {}
    for task in tasks:
        key = json.dumps(task.tools, sort_keys=True)
        groups.setdefault(key, (task.tools, []))[1].append(task)
    return list(groups.values())


async def _predict_chunk(
    predictor: Any, chunk: list[_Task], tools: Tools | None, cache: PredictionCache | None
) -> None:
    """One batch of a batching predictor's replies (offered the chunk's tools, where any)."""
    offered = {"tools": tools} if tools else {}
    try:
        replies = await asyncio.to_thread(
            functools.partial(predictor.predict_batch, [t.messages for t in chunk], **offered)
        )
        texts = [as_reply(predictor, reply) for reply in replies]
    except BaseException as error:
        where = f"the examples at index {chunk[0].example} to {chunk[-1].example}"
        _note(error, chunk[0], where)
        raise
    for task, text in zip(chunk, texts, strict=True):
        task.prediction = text
        if cache is not None:
            cache.keep(task.key, text)


def _note(error: BaseException, task: _Task, where: str) -> None:
    """Name the candidate and the example on a prediction's error, and how its provider
    serves the candidate's model (``note_how_served``)."""
    add_note(error, f"while candidate {task.candidate!r} predicted {where}")
    if task.shots and isinstance(error, InvalidRequestError) and "context" in error.message:
        add_note(error, f"its {task.shots} few-shot examples are in each prompt: fewer leave room")
    note_how_served(error, f"candidate {task.candidate!r}", task.serving)


async def _run_tasks(
    resolved: dict[str, tuple[Predictor, list[Any] | None]],
    tasks: list[_Task],
    cache: PredictionCache | None,
    max_concurrency: int,
    attempts: int,
    progress: CountingBar,
    predicted: Predicted,
) -> None:
    failed = asyncio.Event()
    jobs = []
    asked: list[_Asking] = []
    for name, (predictor, _) in resolved.items():
        mine = [t for t in tasks if t.candidate == name and t.prediction is None]
        kept = cache if is_cacheable(predictor) else None
        batch = getattr(predictor, "predict_batch", None)
        if batch is not None and (takes_tools(batch) or not any(task.tools for task in mine)):
            jobs.append(_predict_batched(predictor, mine, kept, progress, predicted))
        else:
            asked += [(predictor, kept, task) for task in mine]
    queue = iter(asked)
    askers = min(max_concurrency, len(asked))
    jobs += [_asker(queue, attempts, failed, progress, predicted) for _ in range(askers)]
    await gather_or_cancel(jobs)  # the first failure stops the asking; the cache keeps the rest


async def _predict(
    plan: _Plan, max_concurrency: int, attempts: int, progress: bool, predicted: Predicted
) -> None:
    """Ask every prediction the cache does not hold (with a bar, where asked for one), each
    put in ``predicted`` once it is in (those the cache holds, first)."""
    tasks = plan.tasks
    missing = sum(task.prediction is None for task in tasks)
    log.info("evaluate: %d predictions, %d from the cache", len(tasks), len(tasks) - missing)
    for task in tasks:
        if task.prediction is not None:
            predicted.put(task)
    # no bar for answers all cached
    bar = CountingBar(progress and missing > 0, missing, "evaluate", "prediction")
    try:
        await _run_tasks(
            plan.resolved, tasks, plan.store, max_concurrency, attempts, bar, predicted
        )
    finally:
        predicted.close()
        bar.close()
        await close_predictors(predictor for predictor, _ in plan.resolved.values())


async def aevaluate(
    dataset: Iterable[Example | Mapping[str, Any]],
    candidates: Mapping[str, Any],
    metrics: Metrics,
    *,
    max_concurrency: int = 8,
    cache: bool | str | os.PathLike[str] | PredictionCache = True,
    progress: bool = False,
    max_attempts: int = 5,
    predictor_options: Mapping[str, dict[str, Any]] | None = None,
) -> EvalResult:
    """Predict every example with every candidate, score, and return an ``EvalResult``.

    ``dataset`` is a ``Dataset`` or a list of examples, or of dicts, read as
    ``ft.Dataset.from_records`` reads them.
    ``candidates`` maps a name to a ``ModelRef`` (``tuner.base_model``, ``job.model``,
    ``ref.with_few_shot(train, k)``, or its text ``"openai:gpt-4.1-mini"``), a job (read as
    its ``job.model``), a ``Predictor`` or a function ``messages -> str``.
    Predictions are cached on disk (``cache=False`` turns it off; a path picks the file), so
    a re-run, or a run after an interruption, asks only for what is missing. A bare function
    is asked every time; ``CallablePredictor(function, name=...)`` names it for the cache.
    ``metrics`` is a list of metrics, or one, or a dict naming each one's column
    (``{"strict": ft.metrics.exact(case=False), "f1": "token_f1"}``); a ready metric may be
    given by its name (``"exact_match"``). A candidate that raises stops the run; its
    exception carries a note naming the candidate and the example.
    """
    metrics = _as_metrics(metrics)
    if not metrics:
        raise ValueError("give at least one metric, e.g. metrics=[ft.metrics.exact_match]")
    max_concurrency = at_least_one("max_concurrency", max_concurrency)
    max_attempts = at_least_one("max_attempts", max_attempts)
    names = metric_names(metrics)
    if isinstance(dataset, str | os.PathLike):  # its characters would be read as examples
        require_dataset(dataset, "the data to evaluate")
    # reading the data, the job registry, training copies and the cache is file I/O: in a
    # worker thread, never on the event loop
    options = predictor_options or {}
    plan = await asyncio.to_thread(_plan, dataset, candidates, metrics, options, cache)
    tasks, store, examples, references = plan.tasks, plan.store, plan.examples, plan.references
    predicted = Predicted()  # each prediction is graded by the judges as soon as it is in
    judging = judge_rows(
        tasks,
        examples,
        references,
        metrics,
        store,
        max_concurrency,
        max_attempts,
        progress,
        predicted,
    )
    try:
        judged, graded = await _predicted_and_judged(
            _predict(plan, max_concurrency, max_attempts, progress, predicted), judging
        )
    finally:
        if store is not None and store is not cache:
            await asyncio.to_thread(store.close)
    # other metrics may block (an embedding call): never on the event loop
    rows = await asyncio.to_thread(score_rows, tasks, examples, references, metrics, judged)
    notes = plan.notes + graded + _notes_on_cut_answers(tasks, len(plan.examples))
    asked, keys = list(plan.resolved), plan.example_keys
    return EvalResult(asked, names, rows, notes, example_keys=keys, trained_on=plan.trained_on)


async def _predicted_and_judged(
    predicting: Coroutine[Any, Any, None], judging: Coroutine[Any, Any, _Judged]
) -> _Judged:
    """The judges' scores and notes, asked while the predictions are: the first failure of
    either stops both."""
    asking = asyncio.ensure_future(predicting)  # first: its bar above the judges'
    judged = asyncio.ensure_future(judging)
    await gather_or_cancel([asking, judged])
    return judged.result()


@dataclass
class _Plan:
    """What ``aevaluate`` knows before any model is asked."""

    examples: list[Example]
    example_keys: list[str]
    references: list[str]
    resolved: dict[str, tuple[Predictor, list[Any] | None]]
    trained_on: dict[str, list[int]]
    notes: list[str]
    tasks: list[_Task]
    store: PredictionCache | None


def _plan(
    dataset: Iterable[Example | Mapping[str, Any]],
    candidates: Mapping[str, Any],
    metrics: list[Metric],
    options: Mapping[str, dict[str, Any]],
    cache: bool | str | os.PathLike[str] | PredictionCache,
) -> _Plan:
    """The examples read, the candidates resolved and checked against them, and a task for
    each prediction, with its answer where the cache holds one."""
    examples = as_examples(dataset)
    if not examples:
        given = repr(dataset) if isinstance(dataset, Dataset) else "the data given"
        raise ValueError(f"nothing to evaluate: {given} holds no example")
    if not candidates:
        raise ValueError(
            "nothing to evaluate: give at least one candidate, e.g. "
            "{'base': tuner.base_model, 'tuned': job.model}"
        )
    refuse_unnamed_candidates(candidates)
    candidates = as_models(candidates)
    turns = [split_turns(example) for example in examples]  # each one's question and answer
    split = [split_example(example) for example in examples]  # each one's prompt and answer
    references = [answer for _, answer in split]
    refuse_examples_with_no_reference(references, metrics)
    resolved = _resolve(candidates, options)
    refuse_predictors_without_tools(resolved, examples)
    refuse_predictors_without_images(resolved, examples)
    evaluated: dict[Turns, int] = {key: index for index, key in enumerate(turns)}
    refuse_shots_from_the_evaluated_data(resolved, evaluated)
    trained_on = what_was_trained_on(candidates, options, evaluated)
    notes = notes_on_what_was_trained_on(trained_on, len(turns))
    prompts = [prompt for prompt, _ in split]
    store = open_cache(cache)
    try:
        tasks = _tasks(resolved, examples, prompts, store, _serving_notes(candidates))
    except BaseException:
        if store is not None and store is not cache:
            store.close()
        raise
    keys = [example_key(example) for example in examples]
    return _Plan(examples, keys, references, resolved, trained_on, notes, tasks, store)


def _serving_notes(candidates: Mapping[str, Any]) -> dict[str, str]:
    """How its provider serves each candidate's model, where the model says (``job.model``
    of a hosted job: ``ModelRef.note``)."""
    return {
        name: model.note
        for name, model in candidates.items()
        if isinstance(model, ModelRef) and model.note
    }


def _tasks(
    resolved: dict[str, tuple[Predictor, list[Any] | None]],
    examples: list[Example],
    prompts: list[Messages],
    store: PredictionCache | None,
    serving: Mapping[str, str],
) -> list[_Task]:
    """A task for each candidate's prediction of each example, its answer read from the
    cache where it holds one."""
    tasks = []
    for name, (predictor, shots) in resolved.items():
        shown, count = shot_turns(shots), len(shots or ())
        for index, example in enumerate(examples):
            messages, tools = build_prompt(prompts[index], shown), example_tools(example)
            key = PredictionCache.key(predictor.name, messages, tools)
            cached = store.get(key) if store is not None and is_cacheable(predictor) else None
            served = serving.get(name)
            tasks.append(_Task(name, index, messages, tools, key, cached, served, count))
    return tasks


def _toml_key(name: str) -> str:
    """A candidate's name as a TOML table writes it: bare, or quoted (``"base 3-shot"``)."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def _notes_on_cut_answers(tasks: list[_Task], examples: int) -> list[str]:
    """Answers that stopped at their predictor's length limit are scored as they are, which
    lowers a candidate's scores when the model had more to say: said on the result (and
    logged) for each candidate, whether the answers were asked now or read from the cache."""
    cut: dict[tuple[str, str], list[int]] = {}
    for task in tasks:
        if isinstance(task.prediction, TruncatedReply):
            cut.setdefault((task.candidate, task.prediction.limit), []).append(task.example)
    notes = []
    for (name, limit), marks in cut.items():
        notes.append(
            f"candidate {name!r}: {len(marks)} of its {examples} answers stopped at {limit} (at "
            f"index {indexes(marks)}), cut short, and are scored as they are; if answers "
            f"should be longer, {_longer_answers(name, limit)}"
        )
        log.warning("evaluate: %s", notes[-1])
    return notes


def _longer_answers(name: str, limit: str) -> str:
    """How a candidate's answers get longer: its setting raised (``max_tokens=256``), or,
    where the model's context cut them, shorter prompts or another model."""
    setting, is_setting, _ = limit.partition("=")
    if not is_setting:
        if "context" in limit:
            return "ask with shorter prompts (fewer shots), or a model with a longer context"
        return "raise that limit"
    return (
        f"raise it: predictor_options={{{name!r}: {{{setting!r}: ...}}}} (an eval config's "
        f"options = {{ {setting} = ... }} under [candidates.{_toml_key(name)}])"
    )


def _as_metrics(metrics: Metrics) -> list[Metric]:
    """One metric or several, each a function or the name of a ready one, as functions; a
    dict's keys name their columns."""
    if isinstance(metrics, Mapping):
        return [_named_as(name, _as_metric(metric)) for name, metric in metrics.items()]
    if isinstance(metrics, str) or callable(metrics) or not isinstance(metrics, Iterable):
        return [_as_metric(metrics)]
    return [_as_metric(metric) for metric in metrics]


def _as_metric(metric: Metric | str) -> Metric:
    if isinstance(metric, str):
        return by_name(metric)
    if callable(metric):
        return _with_example(metric)
    raise TypeError(
        "a metric is a function (prediction, reference, example) -> float, or the "
        f"name of a ready one (ft.metrics.READY), not {metric!r}"
    )


def _named_as(name: object, metric: Metric) -> Metric:
    """``metric`` under the column ``name`` (its attributes kept: ``batch``, a judge's
    ``judging``, ``needs_reference``), the function given left as it was."""
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"a metric's name (a key of the metrics dict) is text, not {name!r}")
    if getattr(metric, "__name__", None) == name:
        return metric
    return _scored_as(metric, name, given_example=True)


def _with_example(metric: Metric) -> Metric:
    """``metric`` as ``(prediction, reference, example)``: one of ``(prediction, reference)``
    is given those two; one that takes neither is refused before any model is asked."""
    try:
        signature = inspect.signature(metric)
    except (TypeError, ValueError):  # a builtin or an extension: called as documented
        return metric
    if _binds(signature, "", "", None):
        return metric
    if _binds(signature, "", ""):  # a partial's name: none, not the wrapper's
        return _scored_as(metric, getattr(metric, "__name__", ""), given_example=False)
    name = getattr(metric, "__name__", repr(metric))
    raise TypeError(
        f"metric {name}({', '.join(signature.parameters)}) takes neither (prediction, "
        "reference, example) nor (prediction, reference)"
    )


def _binds(signature: inspect.Signature, *arguments: Any) -> bool:
    try:
        signature.bind(*arguments)
    except TypeError:
        return False
    return True


def _scored_as(metric: Callable[..., Any], name: str, *, given_example: bool) -> Metric:
    """``metric`` as ``(prediction, reference, example)`` under the column ``name``, what it
    carries kept (``functools.wraps``); ``given_example=False``: it is given the first two."""

    @functools.wraps(metric)
    def scored(prediction: str, reference: str, example: Any = None) -> Any:
        if given_example:
            return metric(prediction, reference, example)
        return metric(prediction, reference)

    scored.__name__ = scored.__qualname__ = name
    return scored


class EvaluateOptions(TypedDict, total=False):
    """The keyword arguments of ``evaluate``, every one optional: those of ``aevaluate``.

    ``max_concurrency`` (8: predictions asked at once, and as many judge requests beside
    them, each answer graded as soon as it is in), ``cache``
    (``True``: the prediction cache, which keeps a judge's replies too; ``False``, a file's
    path or a ``PredictionCache``), ``progress`` (a tqdm bar), ``max_attempts`` (5: tries of
    a prediction or a judge request that fails for a transient reason),
    ``predictor_options`` (per candidate name, its predictor's options).
    """

    max_concurrency: int
    cache: bool | str | os.PathLike[str] | PredictionCache
    progress: bool
    max_attempts: int
    predictor_options: Mapping[str, dict[str, Any]] | None


def evaluate(
    dataset: Iterable[Example | Mapping[str, Any]],
    candidates: Mapping[str, Any],
    metrics: Metrics,
    **options: Unpack[EvaluateOptions],
) -> EvalResult:
    """The synchronous form of ``aevaluate`` (works inside a running event loop too).

    Keyword arguments: see ``EvaluateOptions`` (``max_concurrency``, ``cache``, ``progress``,
    ``max_attempts``, ``predictor_options``).
    """

    refuse_unknown_options(options, list(EvaluateOptions.__annotations__), candidates)

    return run_to_the_end(lambda: aevaluate(dataset, candidates, metrics, **options))

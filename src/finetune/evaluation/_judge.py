"""A pairwise LLM judge with position swapping, so a judge that favours "A" cancels out."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from finetune._errors import did_you_mean
from finetune._loop import run_to_the_end
from finetune.backends.http import excerpt
from finetune.evaluation._cache import PredictionCache, open_cache
from finetune.evaluation._checks import as_examples
from finetune.evaluation._judging import Asking, Exchange, ask_all, no_verdict
from finetune.evaluation._predictors import (
    Predictor,
    at_least_one,
    close_predictors,
    predictor_for,
)
from finetune.evaluation._prompts import example_key, split_example, transcript
from finetune.evaluation._result import EvalResult
from finetune.evaluation._stats import Comparison, compare_paired
from finetune.types import Example

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["PairwiseOptions", "ajudge_pairwise", "judge_pairwise"]

_PAIRWISE_PROMPT = (
    "Compare two answers to the same conversation.\nCriterion: {rubric}\n\n"
    "Conversation:\n{question}\n\nAnswer A:\n{first}\n\nAnswer B:\n{second}\n\n"
    "Reply with exactly one of: A, B, TIE."
)


_VERDICT = re.compile(r"\b(A|B|TIE|[Tt]ie)\b")
# a verdict named as one, where a judge that reasons first concludes ("Verdict: B")
_NAMED_VERDICT = re.compile(
    r"\b(?i:verdict|winner|decision|choice|final answer)\b\W{0,4}(?i:is\W{1,3})?"
    r"(A|B|TIE|[Tt]ie)\b"
)
_SCORE = {"A": 1.0, "B": 0.0, "TIE": 0.5}


def _vote(reply: str, *, guess: bool = False) -> float | None:
    """1 for A, 0 for B, 0.5 for a tie, ``None`` for a reply with no clear verdict.

    A reply of one word ("b", "**A**") is read in any case. In a longer one the verdict is
    the last one named as a verdict ("Verdict: B", "**Winner:** A", "final answer is TIE"),
    so that reasoning about both answers before it is not read as a vote; else the capital A
    or B, or "tie", that stands alone ("Answer B.", "The better one is A"), so neither the
    first letter of "Both" or "Answer" nor the article "a" is read as a vote. A reply naming
    more than one ("A close call, but B is better", "A tie.") is no clear verdict: the judge
    is asked again, and only its second reply is read by the first it names (``guess``).
    """
    bare = reply.strip().strip("*.:!`'\" ").upper()
    if bare in _SCORE:
        return _SCORE[bare]
    named = _NAMED_VERDICT.findall(reply)
    if named:
        return _SCORE[named[-1].upper()]
    found = [verdict.upper() for verdict in _VERDICT.findall(reply)]
    if len(set(found)) == 1 or (found and guess):
        return _SCORE[found[0]]
    return None


async def ajudge_pairwise(
    result: EvalResult,
    dataset: Iterable[Example | Mapping[str, Any]],
    a: str,
    b: str,
    judge: Any,
    *,
    rubric: str = "Which answer better follows the instructions and is correct?",
    max_concurrency: int = 8,
    cache: bool | str | os.PathLike[str] | PredictionCache = True,
    max_attempts: int = 5,
    progress: bool = False,
) -> Comparison:
    """Ask ``judge`` (a ModelRef or its ``"backend:model"`` text, a Predictor or a function)
    which of ``a`` and ``b`` answered better, once in each order; ``a`` scores 1 (won both),
    0.5 (split or tie) or 0 per example.
    Up to ``max_concurrency`` requests at once; replies are kept in the prediction cache
    (``cache`` as ``evaluate`` takes it), so a re-run asks for none again; ``progress`` shows
    a bar of the votes. Rate limits, 5xx and dropped connections are retried as predictions
    are. A reply with no verdict is answered once with the instruction again; a second is a
    ``ValueError`` quoting it (never a tie the judge did not call).

    The comparison's verdict follows the same rule as ``EvalResult.compare``.
    """
    max_concurrency = at_least_one("max_concurrency", max_concurrency)
    max_attempts = at_least_one("max_attempts", max_attempts)
    grader = predictor_for(judge, what="judge")
    # reading the data and building the prompts: in a worker thread, off the event loop
    asked = await asyncio.to_thread(_both_orders, result, dataset, a, b, grader, rubric)
    store = await asyncio.to_thread(open_cache, cache)
    try:
        await ask_all(asked, store, max_concurrency, max_attempts, progress)
    finally:
        await close_predictors([grader])
        if store is not None and store is not cache:
            await asyncio.to_thread(store.close)
    forward, backward = asked[0::2], asked[1::2]
    preferences = [(f.score + 1.0 - s.score) / 2 for f, s in zip(forward, backward, strict=True)]
    return compare_paired(
        a, preferences, b, [1.0 - p for p in preferences], metric=f"judge:{grader.name}"
    )


class PairwiseOptions(TypedDict, total=False):
    """The keyword arguments of ``judge_pairwise``, every one optional: those of
    ``ajudge_pairwise``: ``rubric`` (what makes an answer better), ``max_concurrency`` (8:
    judge requests at once), ``cache`` (``True``: the prediction cache; ``False``, a file's
    path or a ``PredictionCache``), ``max_attempts`` (5: tries of a request that fails for a
    transient reason), ``progress`` (a tqdm bar)."""

    rubric: str
    max_concurrency: int
    cache: bool | str | os.PathLike[str] | PredictionCache
    max_attempts: int
    progress: bool


def judge_pairwise(
    result: EvalResult,
    dataset: Iterable[Example | Mapping[str, Any]],
    a: str,
    b: str,
    judge: Any,
    **options: Unpack[PairwiseOptions],
) -> Comparison:
    """The synchronous form of ``ajudge_pairwise`` (works inside a running event loop too).

    Keyword arguments: see ``PairwiseOptions`` (``rubric``, ``max_concurrency``, ``cache``,
    ``max_attempts``, ``progress``).
    """
    takes = list(PairwiseOptions.__annotations__)
    if unknown := sorted(set(options) - set(takes)):
        raise TypeError(
            f"judge_pairwise() got unexpected keyword argument(s) {unknown}"
            f"{did_you_mean(unknown[0], takes)}; it takes {sorted(takes)}"
        )
    return run_to_the_end(lambda: ajudge_pairwise(result, dataset, a, b, judge, **options))


def _both_orders(
    result: EvalResult,
    dataset: Iterable[Example | Mapping[str, Any]],
    a: str,
    b: str,
    grader: Predictor,
    rubric: str,
) -> list[Asking]:
    """The judge's two questions about each example, ``a``'s answer first, then ``b``'s."""
    examples = as_examples(dataset)
    answers = _answers(result, examples, a, b)
    asked = []
    for index, example in enumerate(examples):
        question = transcript(split_example(example)[0])
        first, second = answers[(a, index)], answers[(b, index)]
        where = f"while the judge compared {a!r} and {b!r} on the example at index {index}"
        for shown in ((first, second), (second, first)):
            exchange = _vote_of(grader, _ask(rubric, question, *shown), index)
            asked.append(Asking(grader, exchange, where))
    return asked


def _answers(
    result: EvalResult, examples: list[Example], a: str, b: str
) -> dict[tuple[str, int], str]:
    """Each of the two candidates' answer to each example, from a result of this dataset."""
    answers = {
        (row["candidate"], row["example"]): row["prediction"]
        for row in result.rows
        if row["candidate"] in (a, b)
    }
    evaluated = sum(1 for row in result.rows if row["candidate"] == a)
    if len(examples) != evaluated or len(answers) != 2 * evaluated:
        raise ValueError(
            f"judge_pairwise needs the dataset the result was evaluated on, with both "
            f"candidates in it: {len(examples)} examples given, {evaluated} evaluated for {a!r}"
            f"{'' if b in result.candidates else f', and no candidate {b!r}'}"
        )
    _refuse_other_examples(result, examples, a)
    return answers


def _refuse_other_examples(result: EvalResult, examples: list[Example], a: str) -> None:
    """Another dataset of the same size, or the same one in another order, would show the
    judge each question beside the answers to another. A result from ``ft.evaluate`` knows
    each example it ran on; one without ``example_keys`` (written before they were kept, or
    built by hand) is checked by its reference answers."""
    if result.example_keys is None:
        _refuse_other_answers(result, examples, a)
        return
    for index, (example, key) in enumerate(zip(examples, result.example_keys, strict=True)):
        if example_key(example) != key:
            question = transcript(split_example(example)[0])
            raise ValueError(
                "judge_pairwise needs the dataset the result was evaluated on, in the same "
                f"order: the example at index {index} ({excerpt(question, 60)!r}) is not the "
                "one evaluated there"
            )


def _refuse_other_answers(result: EvalResult, examples: list[Example], a: str) -> None:
    rows = (row for row in result.rows if row["candidate"] == a)
    evaluated = {row["example"]: row.get("reference") for row in rows}
    for index, example in enumerate(examples):
        _, reference = split_example(example)
        if evaluated[index] is not None and reference != evaluated[index]:
            raise ValueError(
                "judge_pairwise needs the dataset the result was evaluated on, in the same "
                f"order: the example at index {index} answers {excerpt(reference, 60)!r}, the one "
                f"evaluated there {excerpt(evaluated[index], 60)!r}"
            )


def _vote_of(grader: Predictor, message: dict[str, str], index: int) -> Exchange:
    """The judge's vote, asked once more when its reply has none, or names more than one."""
    reply = yield [message]
    vote = _vote(reply)
    if vote is None:
        reply = yield [message, {"role": "assistant", "content": reply}, _VOTE_AGAIN]
        vote = _vote(reply, guess=True)
    if vote is None:
        raise no_verdict(grader, f"named no better answer for example {index}", reply)
    return vote


_VOTE_AGAIN = {"role": "user", "content": "Reply with exactly one of: A, B, TIE."}


def _ask(rubric: str, question: str, first: str, second: str) -> dict[str, str]:
    content = _PAIRWISE_PROMPT.format(rubric=rubric, question=question, first=first, second=second)
    return {"role": "user", "content": content}

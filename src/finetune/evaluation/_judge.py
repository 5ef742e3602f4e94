"""A pairwise LLM judge with position swapping, so a judge that favours "A" cancels out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from finetune.evaluation._predictors import predictor_for
from finetune.evaluation._prompts import split_example, transcript
from finetune.evaluation._result import EvalResult
from finetune.evaluation._stats import Comparison, compare_paired
from finetune.types import Example

__all__ = ["judge_pairwise"]

_PAIRWISE_PROMPT = (
    "Compare two answers to the same conversation.\nCriterion: {rubric}\n\n"
    "Conversation:\n{question}\n\nAnswer A:\n{first}\n\nAnswer B:\n{second}\n\n"
    "Reply with exactly one of: A, B, TIE."
)


def _vote(reply: str) -> float:
    """1 for A, 0 for B, 0.5 for a tie or an unreadable reply."""
    word = reply.strip().upper()
    if word.startswith("TIE"):
        return 0.5
    if word.startswith("A"):
        return 1.0
    if word.startswith("B"):
        return 0.0
    return 0.5


def judge_pairwise(
    result: EvalResult,
    dataset: Iterable[Example],
    a: str,
    b: str,
    judge: Any,
    *,
    rubric: str = "Which answer better follows the instructions and is correct?",
) -> Comparison:
    """Ask ``judge`` (a ModelRef, Predictor or function) which of ``a`` and ``b`` answered
    better, once in each order; ``a`` scores 1 (won both), 0.5 (split or tie) or 0 per example.

    The comparison's verdict follows the same rule as ``EvalResult.compare``.
    """
    grader = predictor_for(judge)
    examples = list(dataset)
    answers = {
        (row["candidate"], row["example"]): row["prediction"]
        for row in result.rows
        if row["candidate"] in (a, b)
    }
    preferences = []
    for index, example in enumerate(examples):
        messages, _ = split_example(example)
        question = transcript(messages)
        first, second = answers[(a, index)], answers[(b, index)]
        forward = _vote(grader.predict([_ask(rubric, question, first, second)]))
        backward = 1.0 - _vote(grader.predict([_ask(rubric, question, second, first)]))
        preferences.append((forward + backward) / 2)
    return compare_paired(
        a, preferences, b, [1.0 - p for p in preferences], metric=f"judge:{grader.name}"
    )


def _ask(rubric: str, question: str, first: str, second: str) -> dict[str, str]:
    content = _PAIRWISE_PROMPT.format(rubric=rubric, question=question, first=first, second=second)
    return {"role": "user", "content": content}

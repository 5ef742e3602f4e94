"""Candidates that have seen the evaluated examples, answers included: in their few-shot
prompt (refused: their scores would be inflated) or in their training (noted on the result:
a dataset's duplicates split apart land on both sides)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from finetune._words import counted
from finetune.dataset._formats import Turns, split_turns, turns_digest
from finetune.evaluation._checks import indexes
from finetune.evaluation._lineage import rows_kept_for
from finetune.evaluation._predictors import Predictor, trained_on
from finetune.types import Example

__all__ = [
    "ShotsFromEvaluatedData",
    "notes_on_what_was_trained_on",
    "refuse_shots_from_the_evaluated_data",
    "what_was_trained_on",
]

log = logging.getLogger("finetune")


def refuse_shots_from_the_evaluated_data(
    resolved: dict[str, tuple[Predictor, list[Any] | None]], evaluated: dict[Turns, int]
) -> None:
    """A few-shot prompt that shows an evaluated example hands the candidate its answer."""
    for name, (_, shots) in resolved.items():
        shown = _seen(evaluated, shots or ())
        if shown:
            raise ShotsFromEvaluatedData(name, shown)


class ShotsFromEvaluatedData(ValueError):
    """A candidate's few-shot prompt shows evaluated examples (``indices``, from 0)."""

    def __init__(self, candidate: str, indices: list[int]) -> None:
        self.candidate = candidate
        self.indices = indices
        super().__init__(
            f"candidate {candidate!r} shows {counted(len(indices), 'evaluated example')} (at "
            f"index {indexes(indices)}) in its few-shot prompt, answers included: its scores "
            "would be inflated. Draw the shots from the training split: train, holdout = "
            "data.split(...); ref.with_few_shot(train, k)"
        )


def what_was_trained_on(
    candidates: Mapping[str, Any],
    options: Mapping[str, dict[str, Any]],
    evaluated: dict[Turns, int],
) -> dict[str, list[int]]:
    """The indices of the evaluated examples each candidate was fine-tuned on, where it was
    on any. What it was trained on comes from its backend, else from the digests the job
    registry kept."""
    found = {
        name: _learned(model, options.get(name, {}), evaluated)
        for name, model in candidates.items()
    }
    return {name: learned for name, learned in found.items() if learned}


def notes_on_what_was_trained_on(trained_on: dict[str, list[int]], examples: int) -> list[str]:
    """A candidate fine-tuned on some of the evaluated examples has seen their answers: said
    on the result (and logged), not refused, since a dataset's duplicates split apart land on
    both sides; a model evaluated on its whole training set is told as plainly."""
    notes = []
    for name, learned in trained_on.items():
        notes.append(
            f"candidate {name!r} was fine-tuned on {len(learned)} of the {examples} "
            f"evaluated examples (at index {indexes(learned)}), answers included: its scores "
            "on them are inflated. Evaluate on data without them: holdout.excluding(train) "
            '(an eval config\'s exclude = "train.jsonl")'
        )
        log.warning("evaluate: %s", notes[-1])
    return notes


def _learned(candidate: Any, options: dict[str, Any], evaluated: dict[Turns, int]) -> list[int]:
    """The indices of the evaluated examples the candidate was trained on, as far as known."""
    rows = trained_on(candidate, options)
    if rows is not None:
        return _seen(evaluated, rows)
    kept = rows_kept_for(candidate)
    if not kept:
        return []
    return sorted(i for key, i in evaluated.items() if turns_digest(key) in kept)


def _seen(evaluated: dict[Turns, int], rows: Iterable[Example]) -> list[int]:
    """The indices of the evaluated examples among ``rows``, each once, in order."""
    return sorted({evaluated[key] for key in map(split_turns, rows) if key in evaluated})

"""A cost estimate before any money is spent: exact tokens per example, cut at the context
limit, epochs by the provider's rule, billed tokens and the price from the model table."""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Any

from finetune._numbers import is_amount, is_whole
from finetune._words import counted
from finetune.dataset._formats import as_chat_record, detect_kind
from finetune.dataset._reader import RawRecord
from finetune.types import CostEstimate, Hyperparameters
from finetune.validation._catalog import (
    bills_padding,
    default_epochs,
    model_info,
    no_price_note,
    old_prices_note,
    pricing,
    size_price,
    unchecked_context_message,
    validation_passes,
)
from finetune.validation._engine import context_limit_for, token_stats
from finetune.validation._rules import TARGETS, Target, first_non_text_part
from finetune.validation._tokens import ApproximateCounter, TokenCounter, counter_for

if TYPE_CHECKING:
    from finetune.dataset import Dataset

__all__ = ["estimate"]


def estimate(
    dataset: Dataset,
    *,
    target: str | Target,
    backend: str,
    model: str,
    hyperparameters: Hyperparameters | None = None,
    token_counter: TokenCounter | None = None,
    context_limit: int | None = None,
    price_per_million: float | None = None,
    hosted: bool = True,
    validation: Dataset | None = None,
) -> CostEstimate:
    """Exact tokens, epochs and billed tokens, priced from the versioned model table (or at
    ``price_per_million``); a local backend (``hosted=False``) has no provider bill. The
    ``validation`` set's tokens are counted, and billed where the provider bills its passes
    over it (Together: ``n_evals``). ``target`` is a rule set's name or a ``Target``: a
    dataset with fewer examples than its minimum is noted as one a fit refuses."""
    rules = target if isinstance(target, Target) else TARGETS.get(target)
    name = target if isinstance(target, str) else target.name
    if price_per_million is not None:
        if not is_amount(price_per_million):
            raise ValueError(f"price_per_million must be 0 or more, not {price_per_million!r}")
        price_per_million = float(price_per_million)
    counter = token_counter or counter_for(name, model)
    limit = context_limit_for(name, model, context_limit)
    tally = _Tally(dataset, counter, limit)
    counts = tally.counts
    stats = token_stats(counts)
    params = hyperparameters or Hyperparameters()
    epochs, notes = _epochs(name, params, len(counts))
    rows = len(counts) + tally.unreadable + tally.kindless  # as validation counts them
    if rules is not None and rows < rules.min_examples:
        notes.insert(0, _too_few_note(rules, rows))
    notes.extend(tally.notes())
    billed = stats["tokens_total"] * epochs
    if bills_padding(name, params.extra):
        billed, padding = _padded_bill(len(counts), epochs, params.extra, limit, billed)
        notes.append(padding)
    validation_tokens = passes = 0
    images = tally.with_images
    if validation is not None:
        checked = _Tally(validation, counter, limit)
        images += checked.with_images
        validation_tokens = sum(checked.counts)
        passes = validation_passes(name, params.extra, epochs)
        billed += validation_tokens * passes
        notes.append(_validation_note(name, validation_tokens, passes, hosted))
        notes.extend(checked.notes(of=" of the validation set"))
    if images and hosted:
        notes.append(
            f"{counted(images, 'example')} {'shows' if images == 1 else 'show'} images, which "
            "these tokens leave out: "
            f"{name} bills each image by its size, so the billed tokens and cost are a floor"
        )
    info: dict[str, Any] = model_info(name, model) or {}
    priced = info or price_per_million is not None or not hosted
    sized = None if priced else size_price(name, model)
    if sized is not None:  # a model the table lacks, priced by its size
        info = {"price": sized[0]}
        notes.append(sized[1])
    price = price_per_million if price_per_million is not None else info.get("price")
    low = info.get("low", price) if price_per_million is None else price
    high = info.get("high", price) if price_per_million is None else price
    dated, source = pricing(name)
    from_table = price_per_million is None and (price is not None or low is not None)
    if price is None and low is None:
        notes.append(no_price_note(name, model, hosted))
    elif from_table:
        notes.extend(old_prices_note(name, dated, source))
    if not counter.exact:
        notes.append("token counts are approximate: " + getattr(counter, "reason", ""))
    if limit is None:
        notes.append(unchecked_context_message(name, model))
    return CostEstimate(
        backend=backend,
        model=model,
        examples=len(counts),
        tokens_total=stats["tokens_total"],
        tokens_p50=stats["tokens_p50"],
        tokens_p95=stats["tokens_p95"],
        tokens_max=stats["tokens_max"],
        epochs=epochs,
        billed_tokens=billed,
        price_per_million=price,
        cost=_cost(billed, price),
        cost_low=_cost(billed, low),
        cost_high=_cost(billed, high),
        exact=counter.exact
        and not tally.refused
        and (price is not None or not hosted)
        and not (images and hosted),
        context_limit=limit,
        examples_over_limit=tally.over,
        pricing_date=dated if from_table else None,
        hosted=hosted,
        validation_tokens=validation_tokens,
        validation_passes=passes,
        notes=notes,
    )


class _Tally:
    """Token counts of a dataset's readable examples, each cut at the context limit."""

    def __init__(self, dataset: Dataset, counter: TokenCounter, limit: int | None) -> None:
        self.counts = array("l")
        self.over = self.refused = self.unreadable = self.kindless = self.with_images = 0
        fallback = ApproximateCounter("")
        for record in dataset.items():
            if not isinstance(record, RawRecord):
                self.unreadable += record.severity == "error"
                continue
            if detect_kind(record.data) is None:  # no example: a fit would refuse it
                self.kindless += 1
                continue
            data = as_chat_record(record.data)
            try:
                tokens = counter.count_example(data)
            except Exception:  # an invalid example: validate() names it; here it is estimated
                tokens = fallback.count_example(data)
                self.refused += 1
            self.over += limit is not None and tokens > limit
            self.counts.append(min(tokens, limit) if limit else tokens)
            self.with_images += first_non_text_part(data) is not None

    def notes(self, of: str = "") -> list[str]:
        """What was estimated rather than counted, and why (``of``: whose lines they are)."""
        notes = []
        if self.unreadable:
            notes.append(
                f"not counted: {counted(self.unreadable, 'line')}{of} that could not be read; "
                "tuner.validate() (finetune validate) names them"
            )
        if self.kindless:
            notes.append(
                f"not counted: {counted(self.kindless, 'row')}{of} of no example kind (neither "
                "chat, completion nor preference); tuner.validate() (finetune validate) names "
                "them, and how to read them"
            )
        if self.refused:
            notes.append(
                f"{counted(self.refused, 'example')}{of} the tokenizer refused: estimated at "
                "about 4 characters a token; tuner.validate() (finetune validate) names them"
            )
        return notes


def _padded_bill(
    examples: int, epochs: int, extra: dict[str, Any], limit: int | None, packed: int
) -> tuple[int, str]:
    """Training tokens billed without packing: every example at ``max_seq_length`` (the
    ``packed`` bill, the examples' own tokens, where that length is unknown)."""
    rule = "packing=False: Together bills each training example at max_seq_length tokens"
    length: Any = extra.get("max_seq_length")
    guessed = ""
    if not is_whole(length) or length <= 0:
        if limit is None:
            return packed, (
                f"{rule}, more than the billed tokens above, which count the examples' own; "
                "set extra={'max_seq_length': N} to have it estimated"
            )
        length = limit
        guessed = f"max_seq_length not set: taken as the model's context, {limit}; "
    billed = examples * length * epochs
    return billed, (
        f"{rule}, filled or not: {counted(examples, 'example')} x {length} x "
        f"{counted(epochs, 'epoch')} = {billed} ({guessed}packing, the default, bills the "
        "examples' own tokens)"
    )


def _too_few_note(rules: Target, examples: int) -> str:
    return (
        f"a fit refuses this data: {counted(examples, 'example')}, and {rules.name} needs at "
        f"least {rules.min_examples} (too_few_examples; tuner.validate(), finetune validate, "
        "checks it all)"
    )


def _validation_note(target: str, tokens: int, passes: int, hosted: bool) -> str:
    if not hosted:
        return f"validation: {counted(tokens, 'token')}"
    if not passes:
        return (
            f"validation: {counted(tokens, 'token')}, not in the billed tokens (our {target} "
            "rule bills training tokens only)"
        )
    return (
        f"validation: {counted(tokens, 'token')} x {counted(passes, 'evaluation')} = "
        f"{tokens * passes} billed tokens, included above ({target} bills each evaluation; "
        "extra={'n_evals': N} sets how many)"
    )


def _epochs(target: str, params: Hyperparameters, examples: int) -> tuple[int, list[str]]:
    if isinstance(params.epochs, int):
        return params.epochs, []
    epochs = default_epochs(target, examples)
    rule = f"{epochs} by {target}'s default rule for {counted(examples, 'example')}"
    return epochs, [f"epochs='auto': {rule}"]


def _cost(billed: int, price: Any) -> float | None:
    """The price of ``billed`` tokens to six significant digits (a cost rounded to cents, or
    to four places, would call 65 tokens at 0.48 USD a million free)."""
    return None if price is None else float(f"{billed / 1_000_000 * float(price):.6g}")

"""Splits: a stratified test side that takes from every label in proportion, and why a
split would leave a side empty."""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence

from finetune._words import counted

__all__ = ["empty_side", "stratified_sample"]


def stratified_sample(labels: Sequence[Hashable], count: int, draw: random.Random) -> set[int]:
    """``count`` positions of ``labels``, each label's share of them as near its share of the
    whole as whole numbers allow (the largest remainders take the seats rounding leaves; on a
    tie, the label seen first), drawn at random within each label."""
    groups: dict[Hashable, list[int]] = {}
    for position, label in enumerate(labels):
        groups.setdefault(label, []).append(position)
    quotas = {label: count * len(members) / len(labels) for label, members in groups.items()}
    seats = {label: int(quota) for label, quota in quotas.items()}
    by_remainder = sorted(groups, key=lambda label: quotas[label] - seats[label], reverse=True)
    for label in by_remainder[: count - sum(seats.values())]:
        seats[label] += 1
    chosen: set[int] = set()
    for label, members in groups.items():
        chosen.update(draw.sample(members, seats[label]))
    return chosen


def empty_side(test_size: float, total: int) -> str:
    """Why ``test_size`` leaves a side of ``total`` examples empty, and what to give."""
    if total < 2:
        return f"{counted(total, 'example')} cannot be split: each side needs one at least"
    if isinstance(test_size, float) and 0 < test_size < 1:
        side = "test" if round(total * test_size) == 0 else "training"
        return (
            f"test_size={test_size!r} leaves an empty side for {total} examples: "
            f"{total} x {test_size!r} rounds to no {side} example; give a count, "
            f"test_size={1 if side == 'test' else total - 1}"
        )
    return (
        f"test_size={test_size!r} leaves an empty side for {total} examples; "
        "choose a fraction in (0, 1) or a count below the dataset size"
    )

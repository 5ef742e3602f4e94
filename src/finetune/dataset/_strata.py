"""Stratified sampling: a test side that takes from every label in proportion."""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence

__all__ = ["stratified_sample"]


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

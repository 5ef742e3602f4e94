"""EvalResult: per-example scores, summaries with confidence intervals, paired comparisons."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

from finetune._errors import MissingDependency, StorageError, did_you_mean
from finetune._json_text import json_from_text
from finetune._synonyms import METRIC_SYNONYMS
from finetune._words import counted, table_cell
from finetune.evaluation._stats import Comparison, Interval, compare_paired, holm, mean_interval

__all__ = ["EvalResult"]


class EvalResult:
    """Every prediction and score of an evaluation run.

    ``rows`` holds one dict per (example, candidate): ``example``, ``candidate``,
    ``prediction``, ``reference`` and one key per metric. ``notes`` are what a reader of the
    numbers must know (a candidate fine-tuned on some of the evaluated examples); every view
    of the result shows them. ``trained_on`` names, for each candidate fine-tuned on some of
    the evaluated examples, their indices: its scores on them are inflated (a gate such as
    ``finetune eval --fail-unless-improved`` refuses to pass it). ``example_keys`` (from
    ``ft.evaluate``) hold a digest of each evaluated example, by index, so
    ``judge_pairwise`` can refuse other examples.
    """

    def __init__(
        self,
        candidates: list[str],
        metrics: list[str],
        rows: list[dict[str, Any]],
        notes: list[str] | None = None,
        *,
        example_keys: list[str] | None = None,
        trained_on: dict[str, list[int]] | None = None,
    ) -> None:
        self.candidates = candidates
        self.metrics = metrics
        self.rows = rows
        self.notes: list[str] = list(notes or [])
        self.example_keys = example_keys
        self.trained_on: dict[str, list[int]] = dict(trained_on or {})

    def __repr__(self) -> str:
        examples = len(self.rows) // max(1, len(self.candidates))
        return (
            f"<EvalResult {counted(examples, 'example')} x "
            f"{counted(len(self.candidates), 'candidate')}, "
            f"metrics {self.metrics}>"
        )

    def scores(self, candidate: str, metric: str | None = None) -> list[float]:
        """The per-example scores of ``candidate`` on ``metric`` (default: the first metric)."""
        name = self._metric(metric)
        return [float(row[name]) for row in self._rows_of(candidate)]

    def predictions(self, candidate: str) -> list[str]:
        """What ``candidate`` answered, example by example."""
        return [str(row["prediction"]) for row in self._rows_of(candidate)]

    def _rows_of(self, candidate: str) -> list[dict[str, Any]]:
        _one_of(candidate, self.candidates, "candidate")
        return sorted(
            (row for row in self.rows if row["candidate"] == candidate),
            key=lambda row: row["example"],
        )

    def summary(self) -> dict[str, dict[str, Interval]]:
        """Mean and 95% CI per candidate and metric (Wilson's for 0/1 scores, else bootstrap)."""
        return {
            candidate: {m: mean_interval(self.scores(candidate, m)) for m in self.metrics}
            for candidate in self.candidates
        }

    def compare(self, a: str, b: str, metric: str | None = None) -> Comparison:
        """Paired comparison of ``a`` against ``b`` on ``metric`` (default: the first metric):
        delta, CI, win/tie/loss, p, verdict; ``compare_all`` compares on every metric."""
        name = self._metric(metric)
        return compare_paired(a, self.scores(a, name), b, self.scores(b, name), metric=name)

    def compare_all(self, baseline: str | None = None) -> list[Comparison]:
        """Every other candidate against ``baseline`` (default: the first candidate) on every
        metric, as the tables show them, each with ``p_holm``: its p-value adjusted by Holm's
        method for all of them. A verdict is of its comparison alone; a claim about several
        at once (the best of three candidates, improved on any metric) holds where
        ``p_holm`` is below 0.05."""
        base = self._candidate(baseline)
        found = [
            self.compare(candidate, base, metric)
            for candidate in self.candidates
            if candidate != base
            for metric in self.metrics
        ]
        adjusted = holm([c.p_value for c in found])
        return [dataclasses.replace(c, p_holm=p) for c, p in zip(found, adjusted, strict=True)]

    def _candidate(self, name: str | None) -> str:
        return _one_of(name, self.candidates, "candidate")

    def _metric(self, metric: str | None) -> str:
        return _one_of(metric, self.metrics, "metric")

    def to_pandas(self) -> Any:
        """The per-example table as a pandas DataFrame."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise MissingDependency("pandas", "eval", purpose="for to_pandas()") from exc
        return pd.DataFrame(self.rows)

    def to_markdown(self, baseline: str | None = None) -> str:
        """A table of every candidate's means with 95% CIs, and deltas against ``baseline``."""
        header = ["candidate", *map(table_cell, self.metrics)]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        summary = self.summary()
        for candidate in self.candidates:
            cells = [table_cell(candidate), *(str(summary[candidate][m]) for m in self.metrics)]
            lines.append("| " + " | ".join(cells) + " |")
        comparisons = self.compare_all(baseline) if baseline is not None else []
        if comparisons:  # none where the baseline is the only candidate
            lines += ["", _COMPARISON_HEADER, "|---|---|---|---|---|---|---|"]
            for c in comparisons:
                lines.append(
                    f"| {table_cell(f'{c.a} vs {c.b}')} | {table_cell(c.metric)} | "
                    f"{c.delta:+.3f} [{c.low:+.3f}, {c.high:+.3f}] | "
                    f"{c.wins}/{c.ties}/{c.losses} | {c.p_text} | {c.p_holm_text} | {c.verdict} |"
                )
            caveats = comparison_notes(comparisons)
            lines += [""] + [f"Note: {caveat}" for caveat in caveats] if caveats else []
        lines += [""] + [f"Note: {note}" for note in self.notes] if self.notes else []
        return "\n".join(lines)

    def __str__(self) -> str:
        """The table ``to_markdown`` writes, every other candidate compared with the first, as
        the notebook view shows it."""
        return self.to_markdown(baseline=self.candidates[0] if len(self.candidates) > 1 else None)

    def _repr_html_(self) -> str:
        from finetune._html import eval_html

        return eval_html(self)

    def plot(self, ax: Any = None) -> Any:
        """Bars of each candidate's mean per metric with 95% CI whiskers (matplotlib)."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise MissingDependency("matplotlib", "eval", purpose="for plot()") from exc
        if ax is None:
            _, ax = plt.subplots()
        summary = self.summary()
        width = 0.8 / max(1, len(self.candidates))
        for index, candidate in enumerate(self.candidates):
            intervals = [summary[candidate][m] for m in self.metrics]
            xs = [m + index * width for m in range(len(self.metrics))]
            means = [i.mean for i in intervals]
            errors = [  # a bootstrap's percentile interval may lie off its mean: no whisker
                [max(0.0, i.mean - i.low) for i in intervals],
                [max(0.0, i.high - i.mean) for i in intervals],
            ]
            ax.bar(xs, means, width, yerr=errors, capsize=3, label=candidate)
        ax.set_xticks([m + 0.4 - width / 2 for m in range(len(self.metrics))])
        ax.set_xticklabels(self.metrics)
        shown = [interval for scores in summary.values() for interval in scores.values()]
        low = min([0.0, *(interval.low for interval in shown)])
        high = max([1.0, *(interval.high for interval in shown)])
        margin = 0.05 * (high - low)  # a metric of your own may score outside [0, 1]
        ax.set_ylim(low - margin if low < 0 else 0, high + margin)
        ax.legend()
        return ax

    def to_dict(self) -> dict[str, Any]:
        """Everything, as JSON-ready data."""
        data: dict[str, Any] = {
            "candidates": self.candidates,
            "metrics": self.metrics,
            "rows": self.rows,
        }
        if self.notes:
            data["notes"] = self.notes
        if self.example_keys is not None:
            data["example_keys"] = self.example_keys
        if self.trained_on:
            data["trained_on"] = self.trained_on
        return data

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write the result as JSON, atomically (a write that fails is a ``StorageError``
        naming the path, and leaves the file as it was)."""
        from finetune._paths import writes_to
        from finetune.dataset import atomic_write

        target = Path(path).expanduser()
        with writes_to(target), atomic_write(target) as handle:
            handle.write(json.dumps(self.to_dict(), indent=1, ensure_ascii=False).encode())
        return target

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> EvalResult:
        """Read a result written by ``to_json``; any other file is a ``StorageError`` naming it."""
        source = Path(path).expanduser()
        try:
            data = json_from_text(source.read_text(encoding="utf-8"))
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, nested too deeply
            raise _not_a_result(source, f"not JSON: {exc}") from None
        if not isinstance(data, dict) or not {"candidates", "metrics", "rows"} <= data.keys():
            raise _not_a_result(source, "no candidates, metrics and rows")
        candidates, metrics, rows = data["candidates"], data["metrics"], data["rows"]
        why = _names_problem(candidates, metrics) or _rows_problem(candidates, metrics, rows)
        if why:
            raise _not_a_result(source, why)
        notes = data.get("notes", [])
        if not isinstance(notes, list) or not all(isinstance(note, str) for note in notes):
            raise _not_a_result(source, "notes is not a list of text")
        keys = data.get("example_keys")  # results written before they were kept have none
        if keys is not None and not _keys_fit(keys, len(rows) // len(candidates)):
            raise _not_a_result(source, "example_keys is not a digest for each example")
        trained_on = data.get("trained_on", {})
        if not _indices_fit(trained_on, candidates, len(rows) // len(candidates)):
            raise _not_a_result(source, "trained_on is not example indices by candidate")
        return cls(
            list(candidates),
            list(metrics),
            rows,
            notes,
            example_keys=keys,
            trained_on=trained_on,
        )


def _indices_fit(trained_on: object, candidates: list[str], examples: int) -> bool:
    return isinstance(trained_on, dict) and all(
        name in candidates
        and isinstance(indices, list)
        and all(type(i) is int and 0 <= i < examples for i in indices)
        for name, indices in trained_on.items()
    )


def _one_of(name: str | None, names: list[str], what: str) -> str:
    """``name``, one of ``names`` (the first when ``None``); any other is a ``KeyError``."""
    if name is None:
        return names[0]
    if name not in names:
        meant = did_you_mean(str(name), names, METRIC_SYNONYMS if what == "metric" else None)
        raise KeyError(f"no {what} {name!r}{meant}; {what}s: {names}")
    return name


_COMPARISON_HEADER = (
    "| comparison | metric | delta [95% CI] | win/tie/loss | p | p (Holm) | verdict |"
)


def comparison_notes(comparisons: list[Comparison], alpha: float = 0.05) -> list[str]:
    """What a reader of the comparisons must know: the verdicts that do not hold once all of
    them are counted (Holm), and the ``no evidence`` that only says too few examples differ."""
    notes = []
    fragile = [c for c in comparisons if c.verdict != "no evidence" and (c.p_holm or 0) >= alpha]
    if fragile:
        named = "; ".join(
            f"{c.a} vs {c.b} on {c.metric} ({c.verdict}, p {c.p_text}, Holm {c.p_holm_text})"
            for c in fragile
        )
        notes.append(
            f"each verdict is of its comparison alone; counting all {len(comparisons)} "
            f"comparisons (Holm's p, below {alpha:g} to hold), these do not hold: {named}"
        )
    if few := [c for c in comparisons if c.too_few_to_tell]:
        named = "; ".join(
            f"{c.a} vs {c.b} on {c.metric} ({counted(c.wins + c.losses, 'differing example')})"
            for c in few
        )
        notes.append(
            "no evidence, and none possible: on these, 5 or fewer examples scored differently, "
            "and so few give no p below 0.05 whatever they show (for 5 the least is 0.0625): "
            f"{named}; evaluate more examples (6 or more must differ; many more for a small "
            "effect)"
        )
    return notes


def _names_problem(candidates: Any, metrics: Any) -> str | None:
    for field, names in (("candidates", candidates), ("metrics", metrics)):
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            return f"{field} is not a list of text"
    return None


def _rows_problem(candidates: list[str], metrics: list[str], rows: Any) -> str | None:
    """What keeps ``rows`` from being every candidate's scores on the same examples, if
    anything: a result cut short or edited would show means over other examples, or NaN."""
    if not isinstance(rows, list) or not rows:
        return "rows is not a list of scores"
    needed = {"example", "candidate", "prediction", *metrics}
    seen: dict[str, set[Any]] = {candidate: set() for candidate in candidates}
    for number, row in enumerate(rows):
        if not isinstance(row, dict) or not needed <= row.keys():
            return f"row {number} lacks {sorted(needed)}"
        if not isinstance(row["example"], int):
            return f"row {number}'s example is {row['example']!r}, not an index"
        if not isinstance(row["candidate"], str) or row["candidate"] not in seen:
            return f"row {number} is of candidate {row['candidate']!r}, not one of {candidates}"
        for metric in metrics:
            score = row[metric]
            if not isinstance(score, int | float) or not math.isfinite(score):
                return f"row {number}'s {metric} is {score!r}, not a number"
        seen[row["candidate"]].add(row["example"])
    examples = set().union(*seen.values())
    short = [candidate for candidate, done in seen.items() if done != examples]
    if short or len(rows) != len(examples) * len(candidates):
        return f"not every candidate has one row for each of the {len(examples)} examples"
    return None


def _keys_fit(keys: Any, examples: int) -> bool:
    return (
        isinstance(keys, list)
        and len(keys) == examples
        and all(isinstance(key, str) for key in keys)
    )


def _not_a_result(path: Path, why: str) -> StorageError:
    return StorageError(f"{path}: not an evaluation result written by EvalResult.to_json ({why})")

"""MetricSeries: a job's training metrics as a list, a table or a plot."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

from finetune._errors import MissingDependency, did_you_mean
from finetune._words import counted
from finetune.types import MetricPoint

__all__ = ["MetricSeries"]

_STANDARD = tuple(name for name in MetricPoint.model_fields if name not in ("step", "extra"))


class MetricSeries(Sequence[MetricPoint]):
    """Metric points in step order, with helpers for notebooks."""

    def __init__(self, points: Sequence[MetricPoint]) -> None:
        self._points = sorted(points, key=lambda p: p.step)

    @overload
    def __getitem__(self, index: int) -> MetricPoint: ...
    @overload
    def __getitem__(self, index: slice) -> MetricSeries: ...
    @overload
    def __getitem__(self, index: str) -> list[float | None]: ...
    def __getitem__(
        self, index: int | slice | str
    ) -> MetricPoint | MetricSeries | list[float | None]:
        """A point by position, a series by slice, or one metric's values by name
        (``series["train_loss"]``, as ``column`` reads them)."""
        if isinstance(index, str):
            return self.column(index)
        if isinstance(index, slice):
            return MetricSeries(self._points[index])
        return self._points[index]

    def __len__(self) -> int:
        return len(self._points)

    def __iter__(self) -> Iterator[MetricPoint]:
        return iter(self._points)

    def __repr__(self) -> str:
        if not self._points:
            return "<MetricSeries 0 points>"
        latest = [self._latest(name) for name in ("train_loss", "valid_loss")]
        losses = "".join(f", {seen}" for seen in latest if seen)
        points = counted(len(self), "point")
        return f"<MetricSeries {points} to step {self._points[-1].step}{losses}>"

    def _latest(self, name: str) -> str:
        """``name`` at the last step that logged it (a step of its own where that differs
        from the series' last step), or ``""`` when no step did."""
        for point in reversed(self._points):
            value = getattr(point, name)
            if value is not None:
                at = "" if point is self._points[-1] else f" (step {point.step})"
                return f"{name} {value:.4g}{at}"
        return ""

    def _repr_html_(self) -> str:
        from finetune._html import series_html

        return series_html(self)

    @property
    def names(self) -> list[str]:
        """Every metric a column can be read for: the standard ones, then each
        provider-specific one in ``extra`` (``grad_norm``, ...) that a step reported, sorted."""
        extras = {name for p in self._points for name in p.extra}.difference(_STANDARD)
        return [*_STANDARD, *sorted(extras)]

    def column(self, name: str) -> list[float | None]:
        """One metric across steps (``None`` where a step did not report it). A name no step
        reports and no standard metric has (a misspelt one) is a ``KeyError`` listing them."""
        standard = name in MetricPoint.model_fields and name != "extra"
        if not standard and self._points and all(name not in p.extra for p in self._points):
            known = self.names
            raise KeyError(f"no metric {name!r}{did_you_mean(name, known)}; metrics: {known}")
        return [getattr(p, name) if standard else p.extra.get(name) for p in self._points]

    def at(self, step: int) -> dict[str, float]:
        """Each standard metric's latest value logged at or before ``step``: what a checkpoint
        saved at that step had seen (``{}`` before the first log)."""
        seen: dict[str, float] = {}
        for point in self._points:
            if point.step > step:
                break
            logged = ((name, getattr(point, name)) for name in _STANDARD)
            seen.update((name, float(value)) for name, value in logged if value is not None)
        return seen

    def to_records(self) -> list[dict[str, Any]]:
        """Plain dicts, one per step."""
        return [p.model_dump(mode="json") for p in self._points]

    def to_pandas(self) -> Any:
        """A DataFrame of floats indexed by step, a column per metric of ``names``; NaN where
        a step did not report it. A series with no points gives an empty frame with the standard
        columns (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise MissingDependency("pandas", "eval", purpose="for to_pandas()") from exc
        steps = pd.Index([p.step for p in self._points], name="step", dtype="int64")
        columns = {name: self.column(name) for name in self.names}
        return pd.DataFrame(columns, index=steps, dtype="float64")

    def plot(self, ax: Any = None, *, metrics: Sequence[str] = ("train_loss", "valid_loss")) -> Any:
        """Loss curves (train and validation) with matplotlib, or the curves of ``metrics``
        (``["learning_rate"]``, ``["grad_norm"]``: any of ``names``); returns the Axes."""
        if isinstance(metrics, str):
            metrics = [metrics]
        columns = {name: self.column(name) for name in metrics}  # a misspelt one: KeyError
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise MissingDependency("matplotlib", "eval", purpose="for plot()") from exc
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        steps = [p.step for p in self._points]
        for name, column in columns.items():
            pairs = [(s, v) for s, v in zip(steps, column, strict=True) if v is not None]
            if pairs:
                ax.plot([s for s, _ in pairs], [v for _, v in pairs], label=name)
        ax.set_xlabel("step")
        ax.set_ylabel("loss" if all(name.endswith("_loss") for name in metrics) else "value")
        if ax.get_lines():  # no points yet: an empty plot, without matplotlib's warning
            ax.legend()
        return ax

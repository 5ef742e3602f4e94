"""Inline SVG pictures for notebooks: a line chart and a confidence-interval bar. No
JavaScript, no external CSS: they render in JupyterLab, VS Code and static HTML exports."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from html import escape

__all__ = ["COLOURS", "interval_bar", "line_chart"]

COLOURS = ("#0969da", "#bc4c00", "#1a7f37", "#8250df", "#cf222e")


def _number(value: float) -> str:
    return f"{value:.3g}"


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    width: int = 360,
    height: int = 150,
    x_label: str = "step",
) -> str:
    """Lines of (x, y) points, one per named series, with axis ranges and a legend that shows
    each series' last value. Empty series are left out; no point at all gives ''. A point that
    is not a finite number (a loss gone NaN or infinite) breaks its line there, and stays out
    of the axis ranges, so the rest is still drawn (the legend shows it when it is the last)."""
    drawn = {name: list(points) for name, points in series.items() if points}
    finite = [point for points in drawn.values() for point in points if _is_finite(point)]
    if not finite:
        return ""
    xs = [x for x, _ in finite]
    ys = [y for _, y in finite]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1
    left, right, top, bottom = 44, 8, 8, 22
    plot_w, plot_h = width - left - right, height - top - bottom

    def place(x: float, y: float) -> tuple[float, float]:
        return left + (x - x0) / (x1 - x0) * plot_w, top + (1 - (y - y0) / (y1 - y0)) * plot_h

    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height + 16}' "
        f"role='img' aria-label='loss chart' style='font:11px sans-serif'>",
        f"<rect x='{left}' y='{top}' width='{plot_w}' height='{plot_h}' fill='none' "
        "stroke='#d0d7de'/>",
        f"<text x='{left - 4}' y='{top + 9}' text-anchor='end'>{_number(y1)}</text>",
        f"<text x='{left - 4}' y='{top + plot_h}' text-anchor='end'>{_number(y0)}</text>",
        f"<text x='{left}' y='{height - 6}'>{_number(x0)}</text>",
        f"<text x='{left + plot_w}' y='{height - 6}' text-anchor='end'>{_number(x1)}</text>",
        f"<text x='{left + plot_w / 2}' y='{height - 6}' text-anchor='middle'>"
        f"{escape(x_label)}</text>",
    ]
    legend_x = left
    for index, (name, points) in enumerate(drawn.items()):
        colour = COLOURS[index % len(COLOURS)]
        parts.extend(_trace([place(x, y) for x, y in run], colour) for run in _finite_runs(points))
        label = f"{name} {_number(points[-1][1])}"
        parts.append(
            f"<text x='{legend_x}' y='{height + 12}' fill='{colour}'>{escape(label)}</text>"
        )
        legend_x += 9 + 7 * len(label)
    parts.append("</svg>")
    return "".join(parts)


def _trace(spots: list[tuple[float, float]], colour: str) -> str:
    """A line through the spots; a lone one (its neighbours not finite) as a dot."""
    if len(spots) == 1:
        ((x, y),) = spots
        return f"<circle cx='{x:.1f}' cy='{y:.1f}' r='1.8' fill='{colour}'/>"
    coordinates = " ".join(f"{x:.1f},{y:.1f}" for x, y in spots)
    return f"<polyline fill='none' stroke='{colour}' stroke-width='1.8' points='{coordinates}'/>"


def _is_finite(point: tuple[float, float]) -> bool:
    return math.isfinite(point[0]) and math.isfinite(point[1])


def _finite_runs(points: Sequence[tuple[float, float]]) -> Iterator[list[tuple[float, float]]]:
    """The stretches of finite points between the points that are not."""
    run: list[tuple[float, float]] = []
    for point in points:
        if _is_finite(point):
            run.append(point)
        elif run:
            yield run
            run = []
    if run:
        yield run


def interval_bar(
    mean: float, low: float, high: float, lo: float = 0.0, hi: float = 1.0, width: int = 120
) -> str:
    """A 95% interval drawn on a fixed scale [lo, hi]: a bar from low to high, a tick at the
    mean, so intervals of different candidates compare by eye down a column."""
    span = hi - lo if hi > lo else 1.0

    def at(value: float) -> float:
        return 2 + (min(max(value, lo), hi) - lo) / span * (width - 4)

    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='12' "
        f"role='img' aria-label='{mean:.3f} [{low:.3f}, {high:.3f}]'>"
        f"<line x1='2' y1='6' x2='{width - 2}' y2='6' stroke='#d0d7de'/>"
        f"<rect x='{at(low):.1f}' y='2' width='{max(at(high) - at(low), 1.5):.1f}' height='8' "
        "fill='#0969da' fill-opacity='0.35'/>"
        f"<line x1='{at(mean):.1f}' y1='0' x2='{at(mean):.1f}' y2='12' stroke='#0969da' "
        "stroke-width='2'/></svg>"
    )

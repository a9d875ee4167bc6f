"""The connection index over time as an inline SVG drawn on the server (no script): the
geometry here, the markup in ``templates/_ci_plot.html``.

Each practice story (a circle) and each analysed session (a square) is a point at its date and
connection index, with a vertical line for its 95 % interval. Kind is told by shape and by the
legend's words as well as by colour; the page gives the same numbers as a table.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import pandas as pd

__all__ = ["HEIGHT", "WIDTH", "Plot", "PlotPoint", "connection_plot"]

WIDTH, HEIGHT = 640, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 24, 16, 56


@dataclass(frozen=True)
class PlotPoint:
    """One story or session placed on the plot (``low``/``high`` ``None``: no interval)."""

    x: float
    y: float
    low: float | None
    high: float | None
    kind: str
    label: str


@dataclass(frozen=True)
class Plot:
    """What the template draws: points, axis ticks and the plotting area's edges."""

    points: tuple[PlotPoint, ...]
    y_ticks: tuple[tuple[float, str], ...]
    x_ticks: tuple[tuple[float, str], ...]
    left: float
    right: float
    top: float
    bottom: float
    width: int
    height: int
    summary: str


def _x_of(dates: list[dt.date]) -> tuple[dict[dt.date, float], list[dt.date]]:
    left, right = _LEFT + 12, WIDTH - _RIGHT - 12
    first, last = min(dates), max(dates)
    span = (last - first).days
    ticks = sorted({first, last} | ({first + (last - first) / 2} if span > 14 else set()))
    if span == 0:
        return {first: (left + right) / 2}, [first]
    return {d: left + (right - left) * (d - first).days / span for d in set(dates) | set(ticks)}, (
        ticks
    )


def _y(value: float) -> float:
    return _TOP + (HEIGHT - _TOP - _BOTTOM) * (1.0 - value)


def connection_plot(frame: pd.DataFrame) -> Plot | None:
    """Lay out :func:`peerlens.study.connection_over_time`'s rows with a defined index (``None``
    when there is none to plot)."""
    rows = [r for r in frame.to_dict(orient="records") if not _missing(r["connection_index"])]
    if not rows:
        return None
    x_of, ticks = _x_of([r["date"] for r in rows])
    points = tuple(
        PlotPoint(
            x=round(x_of[r["date"]], 1),
            y=round(_y(float(r["connection_index"])), 1),
            low=None if _missing(r["ci_low"]) else round(_y(float(r["ci_low"])), 1),
            high=None if _missing(r["ci_high"]) else round(_y(float(r["ci_high"])), 1),
            kind=str(r["kind"]),
            label=f"{r['kind']} {r['date'].isoformat()}: {float(r['connection_index']):.2f}",
        )
        for r in rows
    )
    kinds = [r["kind"] for r in rows]
    first, last = rows[0], rows[-1]
    summary = (
        f"{kinds.count('practice')} practice stories and {kinds.count('session')} sessions "
        f"from {first['date'].isoformat()} to {last['date'].isoformat()}; connection index "
        f"{float(first['connection_index']):.2f} first, {float(last['connection_index']):.2f} "
        "latest. The table below gives every value with its interval."
    )
    return Plot(
        points=points,
        y_ticks=tuple((round(_y(v), 1), f"{v:.2f}") for v in (0.0, 0.25, 0.5, 0.75, 1.0)),
        x_ticks=tuple((round(x_of[d], 1), d.isoformat()) for d in ticks),
        left=_LEFT,
        right=WIDTH - _RIGHT,
        top=_TOP,
        bottom=HEIGHT - _BOTTOM,
        width=WIDTH,
        height=HEIGHT,
        summary=summary,
    )


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))

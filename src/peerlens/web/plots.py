"""Plots drawn on the server as inline SVG: no script and no inline style (the pages' CSP allows
neither; ``static/peerlens.css`` styles them by class), each labelled for screen readers by a
``<title>`` and a ``<desc>`` that sums up what it shows.

Two plots share one frame (a plotting area, linear scales, axes and tick labels):

- :func:`line_plot`: a series against time, e.g. a recording's RR intervals (gaps where values
  are missing);
- :func:`connection_plot`: the connection index over time, each practice story (a circle) and
  each analysed session (a square) at its date and index with a vertical line for its 95 %
  interval. Kind is told by shape and by the legend's words as well as by colour; the page
  gives the same numbers as a table.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from markupsafe import Markup, escape

__all__ = ["Plot", "PlotPoint", "connection_plot", "line_plot"]

_SVG = (
    '<svg class="plot" viewBox="0 0 {w} {h}" role="img" aria-labelledby="plot-title plot-desc" '
    'focusable="false" xmlns="http://www.w3.org/2000/svg"><title id="plot-title">{title}</title>'
    '<desc id="plot-desc">{desc}</desc>'
)


@dataclass(frozen=True)
class _Frame:
    """A plot's size and the edges of its plotting area, in SVG units (y grows downwards)."""

    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float

    def svg(
        self,
        title: str,
        desc: str,
        body: Sequence[str],
        x_ticks: Sequence[tuple[float, str]],
        y_ticks: Sequence[tuple[float, str]],
        *,
        grid: bool = False,
    ) -> Markup:
        """The whole ``<svg>``: title and description, tick labels (with grid lines across
        the area at the y ticks when ``grid``), both axes, then ``body`` (markup made here)."""
        parts = [
            _SVG.format(w=self.width, h=self.height, title=escape(title), desc=escape(desc)),
            '<g class="grid">',
        ]
        for y, label in y_ticks:
            if grid:
                parts.append(f'<line x1="{self.left}" x2="{self.right}" y1="{y}" y2="{y}"/>')
            parts.append(
                f'<text class="tick" x="{self.left - 8}" y="{y + 5}" text-anchor="end">'
                f"{escape(label)}</text>"
            )
        for x, label in x_ticks:
            parts.append(
                f'<text class="tick" x="{x}" y="{self.bottom + 22}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
        parts.append("</g>")
        parts.append(
            f'<line class="axis" x1="{self.left}" x2="{self.left}" y1="{self.top}" '
            f'y2="{self.bottom}"/>'
        )
        parts.append(
            f'<line class="axis" x1="{self.left}" x2="{self.right}" y1="{self.bottom}" '
            f'y2="{self.bottom}"/>'
        )
        parts.extend(body)
        parts.append("</svg>")
        return Markup("".join(parts))


def _scale(value: float, low: float, high: float, start: float, end: float) -> float:
    """``value`` in ``[low, high]`` mapped linearly onto ``[start, end]`` (the middle when the
    range is empty), rounded to 0.1 unit."""
    if high == low:
        return round((start + end) / 2, 1)
    return round(start + (end - start) * (value - low) / (high - low), 1)


def _ticks(low: float, high: float, n: int = 4) -> list[float]:
    """``n + 1`` evenly spaced values from ``low`` to ``high`` (``[low]`` for an empty range)."""
    if high <= low:
        return [low]
    return [low + i * (high - low) / n for i in range(n + 1)]


_LINE = _Frame(640, 260, 64, 616, 16, 210)


def line_plot(
    x: Sequence[float], y: Sequence[float], *, title: str, x_label: str, y_label: str
) -> Markup:
    """An SVG line plot of ``y`` against ``x`` (missing values leave gaps).

    Examples
    --------
    >>> svg = line_plot([0, 1, 2], [800, 810, 790], title="RR", x_label="s", y_label="ms")
    >>> svg.startswith("<svg") and 'role="img"' in svg and "<title" in svg
    True
    """
    f = _LINE
    pairs = [(float(a), float(b)) for a, b in zip(x, y, strict=True)]
    finite = [(a, b) for a, b in pairs if math.isfinite(a) and math.isfinite(b)]
    if not finite:
        return f.svg(title, "No values to plot.", [], [], [])
    xs, ys = [a for a, _ in finite], [b for _, b in finite]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    desc = (
        f"{y_label} against {x_label}: {len(finite)} points, {y_label} from {y0:.0f} to {y1:.0f}."
    )

    def px(a: float) -> float:
        return _scale(a, x0, x1, f.left, f.right)

    def py(b: float) -> float:
        return _scale(b, y0, y1, f.bottom, f.top)

    runs: list[list[tuple[float, float]]] = [[]]
    for a, b in pairs:
        if math.isfinite(a) and math.isfinite(b):
            runs[-1].append((px(a), py(b)))
        elif runs[-1]:
            runs.append([])
    body = [
        '<polyline class="line" points="' + " ".join(f"{a:.1f},{b:.1f}" for a, b in run) + '"/>'
        for run in runs
        if run
    ]
    mid_y = (f.top + f.bottom) / 2
    body.append(
        f'<text class="label" x="{(f.left + f.right) / 2:.0f}" y="{f.height - 8}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    body.append(
        f'<text class="label" x="14" y="{mid_y:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {mid_y:.0f})">{escape(y_label)}</text>'
    )
    return f.svg(
        title,
        desc,
        body,
        [(px(t), f"{t:.0f}") for t in _ticks(x0, x1)],
        [(py(t), f"{t:.0f}") for t in _ticks(y0, y1)],
    )


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
    """The connection index over time: the points, axis ticks and the plotting area's edges,
    and the SVG drawing them (:attr:`svg`)."""

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

    @property
    def svg(self) -> Markup:
        """The plot as an inline SVG, with a legend naming each shape."""
        body: list[str] = []
        for p in self.points:
            body.append(f'<g class="point {escape(p.kind)}">')
            if p.low is not None and p.high is not None:
                for x1, x2, y1, y2 in (
                    (p.x, p.x, p.low, p.high),
                    (p.x - 5, p.x + 5, p.low, p.low),
                    (p.x - 5, p.x + 5, p.high, p.high),
                ):
                    body.append(
                        f'<line class="interval" x1="{x1:g}" x2="{x2:g}" y1="{y1}" y2="{y2}"/>'
                    )
            if p.kind == "session":
                body.append(
                    f'<rect x="{p.x - 6:g}" y="{p.y - 6:g}" width="12" height="12">'
                    f"<title>{escape(p.label)}</title></rect>"
                )
            else:
                body.append(
                    f'<circle cx="{p.x}" cy="{p.y}" r="7"><title>{escape(p.label)}</title></circle>'
                )
            body.append("</g>")
        left, bottom = self.left, self.height
        body.append(
            f'<g class="legend"><circle class="practice" cx="{left + 10:g}" cy="{bottom - 10}" '
            f'r="6"/><text x="{left + 22:g}" y="{bottom - 5}">circle: practice story</text>'
            f'<rect class="session" x="{left + 200:g}" y="{bottom - 16}" width="12" '
            f'height="12"/><text x="{left + 218:g}" y="{bottom - 5}">square: session</text>'
            f'<text x="{left + 350:g}" y="{bottom - 5}">line: 95% interval</text></g>'
        )
        frame = _Frame(self.width, self.height, self.left, self.right, self.top, self.bottom)
        title = "Connection index over time"
        return frame.svg(title, self.summary, body, self.x_ticks, self.y_ticks, grid=True)


_CONNECTION = _Frame(640, 300, 56, 616, 16, 244)
#: How far in from the area's edges the first and last dates sit.
_INSET = 12


def connection_plot(frame: pd.DataFrame) -> Plot | None:
    """Lay out :func:`peerlens.study.connection_over_time`'s rows with a defined index (``None``
    when there is none to plot)."""
    rows = [r for r in frame.to_dict(orient="records") if not _missing(r["connection_index"])]
    if not rows:
        return None
    f = _CONNECTION
    dates: list[dt.date] = [r["date"] for r in rows]
    first_day, last_day = min(dates), max(dates)
    span = (last_day - first_day).days
    ticks = sorted(
        {first_day, last_day} | ({first_day + (last_day - first_day) / 2} if span > 14 else set())
    )

    def px(d: dt.date) -> float:
        return _scale((d - first_day).days, 0, span, f.left + _INSET, f.right - _INSET)

    def py(value: float) -> float:
        return _scale(value, 0.0, 1.0, f.bottom, f.top)

    points = tuple(
        PlotPoint(
            x=px(r["date"]),
            y=py(float(r["connection_index"])),
            low=None if _missing(r["ci_low"]) else py(float(r["ci_low"])),
            high=None if _missing(r["ci_high"]) else py(float(r["ci_high"])),
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
        y_ticks=tuple((py(v), f"{v:.2f}") for v in _ticks(0.0, 1.0)),
        x_ticks=tuple((px(d), d.isoformat()) for d in (ticks if span else [first_day])),
        left=f.left,
        right=f.right,
        top=f.top,
        bottom=f.bottom,
        width=f.width,
        height=f.height,
        summary=summary,
    )


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))

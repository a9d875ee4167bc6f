"""Plots drawn on the server as inline SVG (no script, no inline style: the page's CSP allows
neither), labelled for screen readers."""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

__all__ = ["line_plot"]

_W, _H, _PAD = 640.0, 240.0, 48.0


def _ticks(low: float, high: float, n: int = 4) -> list[float]:
    if high <= low:
        return [low]
    step = (high - low) / n
    return [low + i * step for i in range(n + 1)]


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
    pairs = [(float(a), float(b)) for a, b in zip(x, y, strict=True)]
    finite = [(a, b) for a, b in pairs if math.isfinite(a) and math.isfinite(b)]
    parts = [
        f'<svg class="plot" viewBox="0 0 {_W:g} {_H:g}" role="img" '
        'aria-labelledby="plot-title plot-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="plot-title">{escape(title)}</title>',
    ]
    if not finite:
        parts.append('<desc id="plot-desc">No values to plot.</desc></svg>')
        return Markup("".join(parts))
    xs, ys = [a for a, _ in finite], [b for _, b in finite]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1

    def px(a: float) -> float:
        return _PAD + (a - x0) / (x1 - x0) * (_W - 1.5 * _PAD)

    def py(b: float) -> float:
        return _H - _PAD + (b - y0) / (y1 - y0) * -(_H - 1.5 * _PAD)

    parts.append(
        f'<desc id="plot-desc">{escape(y_label)} against {escape(x_label)}: {len(finite)} '
        f"points, {escape(y_label)} from {y0:.0f} to {y1:.0f}.</desc>"
    )
    axis = 'stroke="#1b1b1b" stroke-width="1"'
    parts.append(
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD / 2}" y2="{_H - _PAD}" {axis}/>'
    )
    parts.append(f'<line x1="{_PAD}" y1="{_PAD / 2}" x2="{_PAD}" y2="{_H - _PAD}" {axis}/>')
    for t in _ticks(y0, y1):
        parts.append(
            f'<text x="{_PAD - 6}" y="{py(t) + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="#1b1b1b">{t:.0f}</text>'
        )
    for t in _ticks(x0, x1):
        parts.append(
            f'<text x="{px(t):.1f}" y="{_H - _PAD + 16}" text-anchor="middle" font-size="12" '
            f'fill="#1b1b1b">{t:.0f}</text>'
        )
    parts.append(
        f'<text x="{(_W + _PAD) / 2:.0f}" y="{_H - 8}" text-anchor="middle" font-size="13" '
        f'fill="#1b1b1b">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text x="14" y="{_H / 2:.0f}" text-anchor="middle" font-size="13" fill="#1b1b1b" '
        f'transform="rotate(-90 14 {_H / 2:.0f})">{escape(y_label)}</text>'
    )
    runs: list[list[tuple[float, float]]] = [[]]
    for a, b in pairs:
        if math.isfinite(a) and math.isfinite(b):
            runs[-1].append((px(a), py(b)))
        elif runs[-1]:
            runs.append([])
    for run in runs:
        if run:
            points = " ".join(f"{a:.1f},{b:.1f}" for a, b in run)
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="#1d5a8c" stroke-width="1.5"/>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))

"""The server-drawn SVG plots: the connection-index plot's layout (later dates further right,
higher indices higher up, intervals around their point, undefined indices left out: they stay
in the table) and markup, and the line plot (gaps where values are missing, labels escaped)."""

from __future__ import annotations

import datetime as dt
import math
import re

import pandas as pd

from peerlens.study.stories import TIMELINE_COLUMNS
from peerlens.web.plots import connection_plot, line_plot


def _frame(*rows: tuple[dt.date, str, float, float, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "date": d,
                "kind": kind,
                "story": None,
                "source": "typed",
                "n_sentences": 5,
                "connection_index": index,
                "ci_low": low,
                "ci_high": high,
                "ci_method": "wilson",
                "model_version": "m",
            }
            for d, kind, index, low, high in rows
        ],
        columns=list(TIMELINE_COLUMNS),
    )


def test_points_follow_date_and_index() -> None:
    plot = connection_plot(
        _frame(
            (dt.date(2026, 3, 1), "practice", 0.25, 0.1, 0.5),
            (dt.date(2026, 3, 5), "session", 0.5, math.nan, math.nan),
            (dt.date(2026, 4, 1), "practice", 1.0, 0.6, 1.0),
        )
    )
    assert plot is not None
    xs = [p.x for p in plot.points]
    ys = [p.y for p in plot.points]
    assert xs == sorted(xs) and len(set(xs)) == 3
    assert ys == sorted(ys, reverse=True)  # SVG y grows downwards
    assert plot.left < xs[0] and xs[-1] < plot.right
    first, session, last = plot.points
    assert first.high is not None and first.low is not None and first.high < first.y < first.low
    assert session.low is None and session.kind == "session"
    assert last.y == plot.top  # an index of 1 sits on the top edge
    assert [t[1] for t in plot.x_ticks] == ["2026-03-01", "2026-03-16", "2026-04-01"]
    assert "2 practice stories and 1 sessions" in plot.summary


def test_undefined_indices_are_not_drawn_and_one_date_is_centred() -> None:
    none = connection_plot(_frame((dt.date(2026, 3, 1), "practice", math.nan, math.nan, math.nan)))
    assert none is None
    one = connection_plot(_frame((dt.date(2026, 3, 1), "practice", 0.5, 0.2, 0.8)))
    assert one is not None and one.points[0].x == (one.left + one.right) / 2


def test_the_connection_plot_draws_each_point_by_its_kind() -> None:
    plot = connection_plot(
        _frame(
            (dt.date(2026, 3, 1), "practice", 0.25, 0.1, 0.5),
            (dt.date(2026, 3, 5), "session", 0.5, math.nan, math.nan),
        )
    )
    assert plot is not None
    svg = str(plot.svg)
    assert svg.startswith("<svg") and svg.endswith("</svg>") and 'role="img"' in svg
    assert f'<desc id="plot-desc">{plot.summary}</desc>' in svg
    first, session = plot.points
    assert f'<circle cx="{first.x}" cy="{first.y}" r="7">' in svg
    assert f'<rect x="{session.x - 6:g}" y="{session.y - 6:g}"' in svg
    assert svg.count('class="interval"') == 3  # one interval: its line and two whiskers
    assert "style=" not in svg and "<script" not in svg  # the CSP allows neither


def test_the_line_plot_leaves_gaps_and_escapes_its_labels() -> None:
    svg = str(
        line_plot(
            [0, 1, 2, 3, 4],
            [800, 820, math.nan, 780, 800],
            title="RR <after> & before",
            x_label="time (s)",
            y_label="RR <ms>",
        )
    )
    runs = re.findall(r'<polyline class="line" points="([^"]+)"', svg)
    assert [len(r.split()) for r in runs] == [2, 2]  # the missing value splits the line
    xs = [float(p.split(",")[0]) for r in runs for p in r.split()]
    ys = {float(p.split(",")[1]) for r in runs for p in r.split()}
    assert xs == sorted(xs)
    low, high = max(ys), min(ys)  # SVG y grows downwards: 780 lowest, 820 highest
    assert f"{low:.1f}" in runs[1].split()[0] and f"{high:.1f}" in runs[0].split()[1]
    assert "RR &lt;after&gt; &amp; before" in svg and "<after>" not in svg
    assert "RR &lt;ms&gt; against time (s): 4 points" in svg
    assert "No values to plot." in line_plot([0], [math.nan], title="t", x_label="x", y_label="y")

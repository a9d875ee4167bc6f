"""The connection-index plot's layout: later dates further right, higher indices higher up,
intervals around their point, undefined indices left out (they stay in the table)."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd

from peerlens.study.stories import TIMELINE_COLUMNS
from peerlens.web.plots import connection_plot


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

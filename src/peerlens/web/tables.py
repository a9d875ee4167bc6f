"""Frames from the study API shaped as the dashboard's tables (counts by site and arm, by
timepoint and state): presentation only, no rights and no queries here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["Table", "counts", "rows_of"]


@dataclass(frozen=True)
class Table:
    """A table for a page: its caption, header cells and body rows (the first cell of each
    row is the row's header)."""

    caption: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]


def counts(
    frame: pd.DataFrame,
    by: str,
    across: str,
    caption: str,
    *,
    order: Sequence[str] = (),
    row_order: Sequence[str] = (),
) -> Table:
    """How many rows of ``frame`` fall in each ``by`` x ``across`` cell, with totals (the
    ``order`` columns and ``row_order`` rows come first and are shown even when empty).

    Examples
    --------
    >>> t = counts(pd.DataFrame({"site": ["a", "a", "b"], "arm": ["x", "y", "x"]}),
    ...            "site", "arm", "Enrolment")
    >>> list(t.columns), [list(r) for r in t.rows]
    (['site', 'x', 'y', 'total'], [['a', 1, 1, 2], ['b', 1, 0, 1], ['total', 2, 1, 3]])
    """
    data = frame[[by, across]].fillna("(none)").astype(str)
    table = pd.crosstab(data[by], data[across])
    # The ``order`` columns always (zero when empty), then any others found.
    columns = [*order, *sorted(c for c in table.columns if c not in order)]
    table = table.reindex(columns=columns, fill_value=0)
    if row_order:
        index = [*row_order, *sorted(r for r in table.index if r not in row_order)]
        table = table.reindex(index=index, fill_value=0)
    rows: list[list[Any]] = [
        [name, *(int(v) for v in values), int(sum(values))]
        for name, values in zip(table.index, table.to_numpy().tolist(), strict=True)
    ]
    totals = [int(table[c].sum()) for c in columns]
    rows.append(["total", *totals, int(sum(totals))])
    return Table(caption, [by, *columns, "total"], rows)


def rows_of(frame: pd.DataFrame, columns: Sequence[str], caption: str) -> Table:
    """``columns`` of ``frame`` as a table (missing values shown empty, times to the minute)."""

    def cell(value: Any) -> Any:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return ""
        if isinstance(value, pd.Timestamp):
            return value.strftime("%Y-%m-%d %H:%M")
        return value

    body = [[cell(v) for v in row] for row in frame[list(columns)].itertuples(index=False)]
    return Table(caption, list(columns), body)

"""Study API tables as JSON rows: one dict per row, every cell a JSON scalar.

pandas cells are not all JSON: ``NaN`` and ``NaT`` (no value) become ``null``, infinities
``null``, timestamps and dates ISO 8601 text, numpy numbers plain numbers.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Cell", "Row", "cell", "records"]

#: One JSON cell of a row.
Cell = str | int | float | bool | None
#: One row: column name -> cell.
Row = dict[str, Cell]


def cell(value: Any) -> Cell:
    """``value`` as a JSON scalar.

    Examples
    --------
    >>> cell(float("nan")), cell(pd.Timestamp("2026-03-02", tz="UTC")), cell(np.int64(3))
    (None, '2026-03-02T00:00:00+00:00', 3)
    """
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.hex()
    if not isinstance(value, list | tuple | dict) and pd.isna(value):
        return None
    return str(value)


def records(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> list[Row]:
    """The rows of ``frame`` (only ``columns``, in that order, when given) as JSON rows."""
    names = list(frame.columns if columns is None else columns)
    values = frame[names].itertuples(index=False, name=None)
    return [dict(zip(names, (cell(v) for v in row), strict=True)) for row in values]

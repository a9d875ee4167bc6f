"""Finding item columns in a table and turning their cells into validated numbers.

Validation is strict, because every silent repair is a wrong score: a value must be an integer in
the instrument's response range (``"3"``, ``3``, ``"3.0"``, ``3.0`` are all 3), an empty cell, a
declared missing code, or one of the universal missing tokens written by R and pandas (``NA``,
``NaN``). Anything else (``0`` on a 1-5 scale, ``2.5``, ``often``) is reported with its 1-based
data row, its column and the value, and nothing is scored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from peerlens import PeerlensError
from peerlens.instruments._spec import InstrumentSpec
from peerlens.instruments.registry import list_specs

__all__ = [
    "ItemColumnError",
    "ItemProblem",
    "ItemValueError",
    "MissingCodeError",
    "detect_instruments",
    "find_item_columns",
    "item_matrix",
    "parse_missing_codes",
]

#: Tokens treated as an empty cell everywhere (R's and pandas' own missing markers).
MISSING_TOKENS = frozenset({"na", "nan"})

#: How many problems an error message lists before summarising the rest.
MAX_LISTED = 20


class ItemColumnError(PeerlensError):
    """Item columns are missing, unknown (beyond the instrument's items) or repeated."""


class MissingCodeError(PeerlensError):
    """A declared missing code is ambiguous (it is also a valid answer)."""


@dataclass(frozen=True)
class ItemProblem:
    """One invalid cell: 1-based data ``row``, its ``column``, the raw ``value`` and why."""

    row: int
    column: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column}: {self.value!r} {self.reason}"


class ItemValueError(PeerlensError):
    """One or more item cells hold values that are not valid answers.

    Attributes
    ----------
    problems
        Every invalid cell, in row then column order.
    """

    def __init__(self, problems: Sequence[ItemProblem], source: str | None = None) -> None:
        self.problems = tuple(problems)
        self.source = source
        where = f"{source}: " if source else ""
        listed = "\n".join(f"  {p}" for p in self.problems[:MAX_LISTED])
        more = len(self.problems) - MAX_LISTED
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(
            f"{where}{len(self.problems)} invalid item value(s); nothing was scored "
            f"(rows are 1-based data rows, after the header):\n{listed}{tail}"
        )


def _item_pattern(spec: InstrumentSpec) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(spec.id)}_0*(\d+)$", re.IGNORECASE)


def find_item_columns(
    columns: Iterable[str], spec: InstrumentSpec, source: str | None = None
) -> dict[int, str]:
    """Map each item number of ``spec`` to its column in ``columns``.

    Columns are matched as ``<id>_<n>``, case-insensitively, with optional zero padding
    (``SCS_01`` is item 1 of ``scs``).

    Raises
    ------
    ItemColumnError
        Some items have no column (listed by name), a column names an item the instrument does
        not have (``scs_27``), or two columns name the same item (``scs_1`` and ``scs_01``).
    """
    pattern = _item_pattern(spec)
    found: dict[int, str] = {}
    unknown: list[str] = []
    repeated: list[str] = []
    for col in columns:
        m = pattern.match(str(col))
        if not m:
            continue
        n = int(m.group(1))
        if not 1 <= n <= spec.n_items:
            unknown.append(str(col))
        elif n in found:
            repeated.append(f"{found[n]} and {col}")
        else:
            found[n] = str(col)
    missing = [f"{spec.id}_{n}" for n in range(1, spec.n_items + 1) if n not in found]
    where = f"{source}: " if source else ""
    problems = []
    if missing:
        problems.append(f"missing item column(s) {', '.join(missing)}")
    if unknown:
        problems.append(
            f"unknown item column(s) {', '.join(unknown)} ({spec.short_name} has items "
            f"1-{spec.n_items})"
        )
    if repeated:
        problems.append(f"columns naming the same item: {'; '.join(repeated)}")
    if problems:
        raise ItemColumnError(f"{where}{spec.id}: " + "; ".join(problems))
    return found


def detect_instruments(columns: Iterable[str]) -> list[str]:
    """Ids of the bundled instruments that have at least one item column in ``columns``."""
    cols = [str(c) for c in columns]
    return [spec.id for spec in list_specs() if any(_item_pattern(spec).match(c) for c in cols)]


def parse_missing_codes(codes: Iterable[str | int | float]) -> tuple[str, ...]:
    """Normalise missing codes (``-9``, ``"-99"``, ``"."``) to stripped, lower-case text."""
    out: list[str] = []
    for code in codes:
        text = str(code).strip().lower()
        if not text:
            continue
        try:
            number = float(text)
        except ValueError:
            out.append(text)
            continue
        out.append(str(int(number)) if number.is_integer() else text)
    return tuple(dict.fromkeys(out))


def _check_codes(codes: tuple[str, ...], spec: InstrumentSpec) -> frozenset[float]:
    numeric: set[float] = set()
    for code in codes:
        try:
            value = float(code)
        except ValueError:
            continue
        if spec.response_min <= value <= spec.response_max:
            raise MissingCodeError(
                f"missing code {code} is also a valid {spec.short_name} answer "
                f"({spec.response_min}-{spec.response_max}); choose codes outside the range"
            )
        numeric.add(value)
    return frozenset(numeric)


def _row_numbers(index: pd.Index) -> np.ndarray:
    """1-based data row of each frame row: index label + 1 for an integer index (rows dropped
    or filtered out keep their file numbers), else the position + 1."""
    if pd.api.types.is_integer_dtype(index.dtype) and (index >= 0).all():
        return np.asarray(index, dtype=np.int64) + 1
    return np.arange(1, len(index) + 1)


def item_matrix(
    frame: pd.DataFrame,
    spec: InstrumentSpec,
    missing_codes: Iterable[str | int | float] = (),
    source: str | None = None,
) -> np.ndarray:
    """Validated item answers as a float matrix (rows x items), missing as NaN.

    Parameters
    ----------
    frame
        One row per response; item columns named ``<id>_<n>`` (see :func:`find_item_columns`).
        Cells may be numbers or text.
    spec
        The instrument.
    missing_codes
        Codes that mean "not answered" (e.g. ``-9``, ``-99``, ``"."``).
    source
        File name for error messages.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(frame), spec.n_items)``, ``float64``; column ``j`` holds item ``j + 1``.

    Raises
    ------
    ItemColumnError, MissingCodeError, ItemValueError
        See their descriptions; :class:`ItemValueError` lists every invalid cell.

    Examples
    --------
    >>> import pandas as pd
    >>> from peerlens.instruments import load_spec
    >>> frame = pd.DataFrame({"ucla3_1": ["1", "3"], "ucla3_2": ["2", ""], "ucla3_3": [3, -9]})
    >>> item_matrix(frame, load_spec("ucla3"), missing_codes=[-9])
    array([[ 1.,  2.,  3.],
           [ 3., nan, nan]])
    """
    codes = parse_missing_codes(missing_codes)
    numeric_codes = _check_codes(codes, spec)
    text_codes = frozenset(codes) | MISSING_TOKENS
    columns = find_item_columns(frame.columns, spec, source)
    n_rows = len(frame)
    out = np.empty((n_rows, spec.n_items), dtype=np.float64, order="F")
    problems: list[ItemProblem] = []
    rows = _row_numbers(frame.index)
    lo, hi = spec.response_min, spec.response_max
    for item in range(1, spec.n_items + 1):
        col = columns[item]
        series = frame[col]
        if pd.api.types.is_bool_dtype(series.dtype):
            values = np.full(n_rows, np.nan)
            unparsed = series.notna().to_numpy()
            raw: pd.Series | None = series
        elif pd.api.types.is_integer_dtype(series.dtype) and not numeric_codes and n_rows:
            ints = series.to_numpy()
            if series.hasnans or ints.min() < lo or ints.max() > hi:
                values = series.to_numpy(dtype=np.float64, na_value=np.nan)
            else:  # fast path: a plain integer column already inside the range
                out[:, item - 1] = ints
                continue
            unparsed = np.zeros(n_rows, dtype=bool)
            raw = None
        elif pd.api.types.is_numeric_dtype(series.dtype):
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
            unparsed = np.zeros(n_rows, dtype=bool)
            raw = None
        else:
            text = series.astype("string").str.strip()
            lowered = text.str.lower()
            empty = (text.isna() | (text == "") | lowered.isin(text_codes)).to_numpy(
                dtype=bool, na_value=True
            )
            parsed = pd.to_numeric(text.where(~pd.Series(empty, index=text.index)), errors="coerce")
            values = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
            unparsed = ~empty & np.isnan(values)
            raw = series
        if numeric_codes:
            values = np.where(np.isin(values, list(numeric_codes)), np.nan, values)
        # Text such as "1e999", "inf" or "-Infinity" parses to an infinite float: not an answer.
        infinite = np.isinf(values)
        finite = np.isfinite(values)
        with np.errstate(invalid="ignore"):
            fractional = finite & (values != np.floor(values))
            outside = finite & ~fractional & ((values < lo) | (values > hi))
        bad = unparsed | infinite | fractional | outside
        if bad.any():
            shown = raw if raw is not None else series
            for idx in np.flatnonzero(bad):
                if unparsed[idx]:
                    reason = f"is not a number (allowed: {lo}-{hi}, empty, or a missing code)"
                elif infinite[idx]:
                    reason = f"is not a finite number (allowed: {lo}-{hi})"
                elif fractional[idx]:
                    reason = f"is not a whole number (allowed: {lo}-{hi})"
                else:
                    reason = f"is outside the response range {lo}-{hi}"
                problems.append(ItemProblem(int(rows[idx]), col, str(shown.iloc[idx]), reason))
        out[:, item - 1] = values
    if problems:
        order = {col: i for i, col in enumerate(frame.columns)}
        problems.sort(key=lambda p: (p.row, order[p.column]))
        raise ItemValueError(problems, source)
    return out

"""Writing tables (CSV/TSV, Excel, Parquet) atomically, with spreadsheet formulas neutralised.

Formula ("CSV") injection: a spreadsheet program opening a CSV, TSV or workbook runs a cell that
begins with ``=``, ``+``, ``-`` or ``@`` (and, in some programs, tab or carriage return) as a
formula, which can fetch URLs or, through DDE in older Excel, start programs. Free-text cells of
peer-support data (a participant's note, a story sentence) are written by people outside the
team, so by default every text cell beginning with one of those characters is written with a
single quote ``'`` in front, as the OWASP "CSV Injection" page recommends; spreadsheets show the
rest as text. Header names are treated the same way.

Two deliberate limits:

* Only text cells are touched. Numeric columns (``-3`` as a number) are no formula; and a text
  cell that is exactly a decimal number (``-9``, ``+2.5``, ``-1e3``) is left alone too, because
  spreadsheets read it as that number, never as a formula, while a quote would turn missing
  codes such as ``-9`` into ``'-9`` for every program that reads the file back.
* Parquet is never changed: no spreadsheet opens it.

``raw=True`` writes every value as it is. Workbooks never get live formulas from data either
way: a text cell beginning with ``=`` is stored as text, not as a formula.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import os
import re
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from peerlens._tables._errors import TableWriteError

#: Leading characters that make a spreadsheet treat a cell as a formula (OWASP, CSV Injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")

#: Records end with CRLF, as RFC 4180 has it. Not only convention: Python's csv writer (before
#: 3.12) quotes a cell holding a carriage return only when the line terminator contains one,
#: and an unquoted CR ends the row early for every reader.
LINE_ENDING = "\r\n"

#: Excel's limit on the characters of one cell.
EXCEL_CELL_LIMIT = 32_767

_CSV_SUFFIXES = {".csv", ".txt", ""}
_EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}


def _is_formula_like(value: object) -> bool:
    return (
        isinstance(value, str)
        and value.startswith(FORMULA_TRIGGERS)
        and _DECIMAL.match(value) is None
    )


def _quote(value: object) -> object:
    return f"'{value}" if _is_formula_like(value) else value


def _neutralised(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    count = 0
    out = frame
    for j in range(frame.shape[1]):
        series = frame.iloc[:, j]
        dtype = series.dtype
        textual = isinstance(dtype, pd.StringDtype) or pd.api.types.is_object_dtype(dtype)
        if not (textual or isinstance(dtype, pd.CategoricalDtype)):
            continue
        cells = series.astype(object)
        flags = np.fromiter((_is_formula_like(v) for v in cells), dtype=bool, count=len(cells))
        if not flags.any():
            continue
        if out is frame:
            out = frame.copy()
        values = cells.to_numpy(copy=True)
        values[flags] = [f"'{v}" for v in values[flags]]
        keep = dtype if textual else object
        out.isetitem(j, pd.Series(values, index=frame.index, dtype=keep).array)
        count += int(flags.sum())
    renamed = [_is_formula_like(c) for c in frame.columns]
    if any(renamed):
        if out is frame:
            out = frame.copy()
        out.columns = pd.Index([_quote(c) for c in frame.columns])
        count += sum(renamed)
    return out, count


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every formula-like text cell (and header name) prefixed with ``'``.

    Formula-like: text beginning with ``=``, ``+``, ``-``, ``@``, tab or carriage return that
    is not exactly a decimal number. Other cells and non-text columns are unchanged; ``frame``
    itself is never modified.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"note": ["=1+2", "-9", "- felt ok", "ok"], "n": [-3, 1, 2, 3]})
    >>> neutralise_formulas(frame).to_dict("list")
    {'note': ["'=1+2", '-9', "'- felt ok", 'ok'], 'n': [-3, 1, 2, 3]}
    """
    return _neutralised(frame)[0]


def _csv_text(frame: pd.DataFrame, delimiter: str) -> str:
    buffer = io.StringIO()
    # The header is always quoted in CSV: a name holding ';' or a tab must not look like a
    # delimiter to a reader that detects it (peerlens's own does, from the header).
    header = csv.writer(
        buffer,
        delimiter=delimiter,
        quoting=csv.QUOTE_ALL if delimiter == "," else csv.QUOTE_MINIMAL,
        lineterminator=LINE_ENDING,
    )
    header.writerow([str(c) for c in frame.columns])
    frame.to_csv(buffer, sep=delimiter, index=False, header=False, lineterminator=LINE_ENDING)
    return buffer.getvalue()


def write_table(
    frame: pd.DataFrame, destination: str | os.PathLike[str] | BinaryIO, *, raw: bool = False
) -> int:
    """Write ``frame`` as CSV/TSV, Excel or Parquet (by suffix), atomically, formulas
    neutralised.

    Parameters
    ----------
    frame
        The table; its index is not written.
    destination
        A path (``.csv``/``.txt``, ``.tsv``, ``.xlsx``/``.xlsm``, ``.parquet``) or a binary
        stream such as ``sys.stdout.buffer`` (which receives CSV). CSV and TSV are UTF-8
        without a BOM, lines ending with CRLF, header names quoted in CSV.
    raw
        Write text cells as they are; by default formula-like text cells of CSV, TSV and
        workbooks get a leading ``'`` (see the module docstring). Parquet is never changed.

    Returns
    -------
    int
        How many cells (and header names) were prefixed; 0 with ``raw=True`` or for Parquet.

    Raises
    ------
    TableWriteError
        Unknown output type, or a value the format cannot hold (a control character or more
        than 32,767 characters in a workbook cell, time-zone-aware datetimes in a workbook, a
        column Parquet cannot type). Nothing is left at ``destination`` then: the table is
        written beside it and renamed into place only when complete.
    """
    if not isinstance(destination, str | os.PathLike):
        data, count = (frame, 0) if raw else _neutralised(frame)
        destination.write(_csv_text(data, ",").encode("utf-8"))
        return count
    path = Path(destination)
    suffix = path.suffix.lower()
    if suffix not in _CSV_SUFFIXES | {".tsv"} | _EXCEL_SUFFIXES | _PARQUET_SUFFIXES:
        raise TableWriteError(
            f"{path}: unknown output type {suffix!r}; use .csv, .tsv, .xlsx or .parquet"
        )
    data, count = (frame, 0) if raw or suffix in _PARQUET_SUFFIXES else _neutralised(frame)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        if suffix in _CSV_SUFFIXES or suffix == ".tsv":
            text = _csv_text(data, "\t" if suffix == ".tsv" else ",")
            with tmp.open("w", encoding="utf-8", newline="") as handle:
                handle.write(text)
        elif suffix in _EXCEL_SUFFIXES:
            _write_workbook(data, tmp, path)
        else:
            _write_parquet(data, tmp, path)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return count


def _write_parquet(frame: pd.DataFrame, tmp: Path, path: Path) -> None:
    import pyarrow as pa

    try:
        frame.to_parquet(tmp, index=False)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise TableWriteError(f"{path}: cannot write as Parquet ({exc})") from None


def _excel_value(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _write_workbook(frame: pd.DataFrame, tmp: Path, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    columns = [str(c) for c in frame.columns]

    def checked(value: Any, row: int, column: int) -> Any:
        value = _excel_value(value)
        where = f"{path}: row {row}, column {columns[column]!r}" if row else f"{path}: header"
        if isinstance(value, dt.datetime | dt.time) and value.tzinfo is not None:
            raise TableWriteError(
                f"{where}: Excel cannot store time-zone-aware times; convert them first"
            )
        if isinstance(value, str) and ILLEGAL_CHARACTERS_RE.search(value):
            raise TableWriteError(
                f"{where}: {value[:40]!r} holds a control character a workbook cannot store; "
                "write CSV or Parquet instead"
            )
        if isinstance(value, str) and len(value) > EXCEL_CELL_LIMIT:
            raise TableWriteError(
                f"{where}: {len(value)} characters; an Excel cell holds at most "
                f"{EXCEL_CELL_LIMIT}, so write CSV or Parquet instead"
            )
        return value

    # Every value is checked before the workbook is started, so a refusal leaves nothing open.
    rows = [[checked(c, 0, j) for j, c in enumerate(columns)]]
    rows += [
        [checked(v, i, j) for j, v in enumerate(values)]
        for i, values in enumerate(frame.itertuples(index=False, name=None), start=1)
    ]
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Sheet1")

    def as_text(value: str) -> Any:
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"  # text is text: '=...' must not become a live formula
        return cell

    try:
        for row in rows:
            sheet.append([as_text(v) if isinstance(v, str) and v[:1] == "=" else v for v in row])
        book.save(tmp)
    except (ValueError, TypeError) as exc:  # openpyxl: "Cannot convert ... to Excel"
        raise TableWriteError(f"{path}: cannot write as a workbook ({exc})") from None

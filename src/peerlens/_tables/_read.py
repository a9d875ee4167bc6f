"""``read_table``: any supported table file as a DataFrame, by one set of rules."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from peerlens._tables._errors import TableNote, TableReadError
from peerlens._tables._excel import read_workbook
from peerlens._tables._header import header_problems
from peerlens._tables._text import read_bytes, read_text_table

TEXT_SUFFIXES = {".csv", ".tsv", ".txt", ""}
EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
PARQUET_SUFFIXES = {".parquet", ".pq"}


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV/TSV, Excel or Parquet table exactly, or refuse it.

    Parameters
    ----------
    path
        ``.csv``, ``.tsv``, ``.txt`` or no suffix (read by :func:`read_text_table`: delimiter
        ``,``, ``;`` or tab; UTF-8 with or without BOM, UTF-16/UTF-32, Windows-1252 with a
        warning), ``.xlsx``/``.xlsm`` (first sheet) or ``.parquet``.

    Returns
    -------
    pandas.DataFrame
        Text tables: every column as text (``str`` dtype), each cell exactly as written, empty
        cells ``""``. Workbooks: the stored values in ``object`` columns, empty cells NaN.
        Parquet: the stored types. The index is a fresh ``RangeIndex``: index ``i`` is data
        row ``i + 1``.

    Warns
    -----
    TableEncodingWarning
        A text table was decoded as Windows-1252.
    TableNoteWarning
        Anything else the reader did that leaves the cells as written (an all-empty trailing
        column dropped, empty lines skipped, a delimiter chosen among several, a workbook's
        other sheets not read).

    Raises
    ------
    TableReadError
        The file is missing, empty, binary, undecodable, corrupt, of an unknown type (``.xls``
        included), has malformed quoting, no header, empty or repeated column names, or rows
        whose cell count differs from the header's.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    notes: tuple[TableNote, ...]
    if suffix in TEXT_SUFFIXES:
        table = read_text_table(path)
        frame, notes = table.to_frame(), table.notes
    elif suffix in EXCEL_SUFFIXES:
        read_bytes(path)  # missing file or folder: the same message as for text tables
        frame, notes = read_workbook(path)
    elif suffix in PARQUET_SUFFIXES:
        read_bytes(path)
        frame, notes = _read_parquet(path), ()
    elif suffix == ".xls":
        raise TableReadError(
            str(path),
            "old Excel .xls workbooks are not read; save it as .xlsx (Excel Workbook) or "
            "CSV UTF-8 and use that",
        )
    else:
        raise TableReadError(
            str(path), f"unknown table type {suffix!r}; use .csv, .tsv, .xlsx or .parquet"
        )
    for note in notes:
        warnings.warn(note.message, note.category, stacklevel=2)
    return frame.reset_index(drop=True)


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid and OSError variants
        raise TableReadError(str(path), f"cannot read as Parquet ({exc})") from None
    problems = header_problems([str(c) for c in frame.columns], 1)
    if problems:
        raise TableReadError(str(path), "empty or repeated column names:", problems)
    return frame

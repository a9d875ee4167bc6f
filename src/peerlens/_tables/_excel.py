"""Excel workbooks (.xlsx, .xlsm): the first sheet, under the same header rules as text tables.

A sheet cannot have ragged rows, but it can have what a CSV's trailing delimiter is: columns
without a name. Those holding any value are refused; those holding nothing are dropped without a
note, because Excel keeps formatted-but-empty cells inside a sheet's range and they are no column
the user wrote. Empty rows after the last row are dropped the same way; empty rows between rows
are kept (as rows without values), so data row ``N`` is always the ``N``-th sheet row under the
header.

Formula cells are read as the value Excel last saved for them; a formula without a saved value
(a workbook written by a program and never opened in Excel) is refused rather than read as empty.
Legacy ``.xls`` files are refused with a message saying how to convert them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from openpyxl.utils import get_column_letter

from peerlens._tables._errors import TableNote, TableProblem, TableReadError
from peerlens._tables._header import header_problems

#: The most cells (counting an empty row as one) read from a sheet: openpyxl's reader pads each
#: row from column A to its last cell, so a few KB of XML can stand for billions of cells.
MAX_CELLS = 5_000_000
#: The most columns a sheet row may reach.
MAX_COLUMNS = 4_096
#: The most bytes the workbook's parts may hold once unzipped (their declared sizes; Python's
#: zipfile stops reading a part at its declared size).
MAX_UNZIPPED_BYTES = 256 * 1024 * 1024


def _check_unzipped_size(path: Path) -> None:
    """Refuse a workbook whose parts unzip to more than :data:`MAX_UNZIPPED_BYTES`."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            total = sum(info.file_size for info in z.infolist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return  # not a zip: openpyxl says what is wrong with it
    if total > MAX_UNZIPPED_BYTES:
        raise TableReadError(
            str(path),
            f"the workbook unzips to {total:,} bytes, more than the {MAX_UNZIPPED_BYTES:,} a "
            "response file may hold; nothing was read (split it, or save it as CSV)",
        )


def _load(path: Path, data_only: bool) -> Any:
    import openpyxl

    _check_unzipped_size(path)
    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=data_only)
    except Exception as exc:  # zipfile, XML and openpyxl raise many types for corrupt files
        raise TableReadError(
            str(path), f"cannot read as an Excel workbook ({type(exc).__name__}: {exc})"
        ) from None


def _sheet_cells(
    path: Path, data_only: bool
) -> tuple[list[list[Any]], list[tuple[int, int]], list[str]]:
    """Cell values of the first sheet by row (from row 1, column 1), the (row, column) of every
    formula cell, and the sheet names."""
    book = _load(path, data_only)
    try:
        if not book.worksheets:
            raise TableReadError(str(path), "the workbook has no worksheet")
        sheet = book.worksheets[0]
        sheet.reset_dimensions()  # the stored dimensions may be wrong; read what is there
        values: list[list[Any]] = []
        formulas: list[tuple[int, int]] = []
        cells = 0
        try:
            for r, row in enumerate(sheet.iter_rows(min_row=1, min_col=1), start=1):
                cells += max(1, len(row))
                if len(row) > MAX_COLUMNS or cells > MAX_CELLS:
                    raise _too_big(path, sheet.title, r, len(row))
                values.append([cell.value for cell in row])
                formulas += [(r, c) for c, cell in enumerate(row, start=1) if cell.data_type == "f"]
        except TableReadError:
            raise
        except Exception as exc:  # malformed sheet XML
            raise TableReadError(
                str(path), f"cannot read the first sheet ({type(exc).__name__}: {exc})"
            ) from None
        return values, formulas, list(book.sheetnames)
    finally:
        book.close()


def _too_big(path: Path, sheet: str, row: int, width: int) -> TableReadError:
    """The refusal of a sheet beyond :data:`MAX_COLUMNS` or :data:`MAX_CELLS` at ``row``."""
    if width > MAX_COLUMNS:
        what = (
            f"sheet row {row} reaches column {get_column_letter(width)}, beyond the "
            f"{MAX_COLUMNS:,} columns a response file may have"
        )
    else:
        what = f"by sheet row {row} it holds more than the {MAX_CELLS:,} cells peerlens reads"
    return TableReadError(
        str(path),
        f"sheet {sheet!r} is too large: {what}; nothing was read (delete the empty rows and "
        "columns after the data, or save it as CSV)",
    )


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value == "")


def read_workbook(path: Path) -> tuple[pd.DataFrame, tuple[TableNote, ...]]:
    """The first sheet as a frame (stored types, ``object`` columns, empty cells NaN) and notes.

    Raises
    ------
    TableReadError
        Corrupt or not a workbook, no header, empty or repeated names, values in a column
        without a name, or formulas without a saved value.
    """
    source = str(path)
    values, formulas, sheets = _sheet_cells(path, data_only=False)
    if formulas:
        saved, _, _ = _sheet_cells(path, data_only=True)
        unsaved = []
        for r, c in formulas:
            value = saved[r - 1][c - 1] if c <= len(saved[r - 1]) else None
            if value is None:
                unsaved.append(
                    TableProblem(
                        r,
                        None,
                        c,
                        f"cell {get_column_letter(c)}{r} holds the formula {values[r - 1][c - 1]}"
                        " with no saved value",
                        "sheet row",
                    )
                )
            values[r - 1][c - 1] = value
        if unsaved:
            raise TableReadError(
                source,
                "formulas without saved values (open the workbook in Excel and save it, or "
                "paste the values); nothing was read:",
                unsaved,
            )
    filled = [i for i, row in enumerate(values) if not all(_empty(v) for v in row)]
    if not filled:
        raise TableReadError(source, "the first sheet is empty")
    top = filled[0]
    header_row = top + 1
    raw_names = values[top]
    names = ["" if _empty(v) else str(v).strip() for v in raw_names]
    width = max((i + 1 for i, n in enumerate(names) if n), default=0)
    if width == 0:
        raise TableReadError(source, f"no header row (sheet row {header_row} has no names)")
    names = names[:width]
    body = values[top + 1 : filled[-1] + 1]
    problems = header_problems(names, header_row, get_column_letter, "sheet row")
    for n, row in enumerate(body, start=1):
        extra = [c for c in range(width, len(row)) if not _empty(row[c])]
        problems += [
            TableProblem(
                header_row + n,
                n,
                c + 1,
                f"column {get_column_letter(c + 1)} has a value but no name in the header",
                "sheet row",
            )
            for c in extra
        ]
    if problems:
        problems.sort(key=lambda p: (p.line or 0, p.column or 0))
        raise TableReadError(
            source, "columns without a name or with a repeated name; nothing was read:", problems
        )
    rows = [[math.nan if _empty(v) else v for v in (row + [None] * width)[:width]] for row in body]
    frame = pd.DataFrame(rows, columns=names, dtype=object)
    notes: tuple[TableNote, ...] = ()
    if len(sheets) > 1:
        notes = (
            TableNote(
                "sheets",
                f"{source}: the workbook has {len(sheets)} sheets; read the first, {sheets[0]!r}",
            ),
        )
    return frame, notes

"""Reading and writing the tables users bring (CSV/TSV, Excel, Parquet), shared by the CLI and
the study importers.

Real exports are messy: Excel writes a byte-order mark, European locales use ``;`` as the
delimiter, Windows tools write cp1252. Cells are read as text so that validation sees exactly what
the file holds (``"2.5"``, ``"often"``), not what a parser guessed.
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import pandas as pd

from peerlens import PeerlensError, PeerlensWarning

__all__ = ["TableEncodingWarning", "TableReadError", "read_table", "write_table"]

_TEXT_SUFFIXES = {".csv", ".tsv", ".txt"}
_EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}


class TableReadError(PeerlensError):
    """A table file cannot be read (missing, empty, wrong format, undecodable)."""


class TableEncodingWarning(PeerlensWarning):
    """A text table was not UTF-8 and was decoded as Windows-1252."""


def _decode(raw: bytes, path: Path) -> str:
    if b"\x00" in raw[:4096]:
        raise TableReadError(f"{path}: looks like a binary file, not a text table")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError:
            raise TableReadError(
                f"{path}: not valid UTF-8 (byte {exc.start}) nor Windows-1252; "
                "save the file as UTF-8 CSV"
            ) from exc
        warnings.warn(
            f"{path}: not valid UTF-8 (byte {exc.start}); decoded as Windows-1252",
            TableEncodingWarning,
            stacklevel=3,
        )
        return text


def _delimiter(text: str, suffix: str) -> str:
    if suffix == ".tsv":
        return "\t"
    header = text.split("\n", 1)[0]
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV/TSV, Excel or Parquet table, every cell of a text file as a string.

    Parameters
    ----------
    path
        ``.csv``, ``.tsv`` or ``.txt`` (delimiter ``,``, ``;`` or tab, detected from the header;
        UTF-8 with or without BOM, Windows-1252 with a warning), ``.xlsx`` (first sheet) or
        ``.parquet``.

    Returns
    -------
    pandas.DataFrame
        Text tables: every column as ``object`` strings, empty cells as ``""``. Excel and Parquet:
        the stored types. The index is a fresh ``RangeIndex`` (data row ``i`` is row ``i + 1``).

    Raises
    ------
    TableReadError
        The file is missing, empty, binary, undecodable, of an unknown type, has no header or
        repeats a column name.
    """
    path = Path(path)
    if not path.exists():
        raise TableReadError(f"{path}: no such file")
    if path.is_dir():
        raise TableReadError(f"{path}: is a folder, not a table file")
    suffix = path.suffix.lower()
    if suffix in _TEXT_SUFFIXES or suffix == "":
        raw = path.read_bytes()
        if not raw.strip():
            raise TableReadError(f"{path}: the file is empty")
        text = _decode(raw, path)
        delim = _delimiter(text, suffix)
        header = next(csv.reader(io.StringIO(text), delimiter=delim), [])
        _check_header([h.strip() for h in header], path)
        try:
            frame = pd.read_csv(
                io.StringIO(text),
                sep=delim,
                dtype=str,
                keep_default_na=False,
                skipinitialspace=False,
            )
        except (pd.errors.ParserError, ValueError) as exc:
            raise TableReadError(f"{path}: cannot parse as a delimited table: {exc}") from exc
        frame.columns = [str(c).strip() for c in frame.columns]
    elif suffix in _EXCEL_SUFFIXES:
        try:
            frame = pd.read_excel(path, sheet_name=0, dtype=object)
        except Exception as exc:  # openpyxl raises many types for corrupt files
            raise TableReadError(f"{path}: cannot read as an Excel workbook: {exc}") from exc
        _check_header([str(c).strip() for c in frame.columns], path)
        frame.columns = [str(c).strip() for c in frame.columns]
    elif suffix in _PARQUET_SUFFIXES:
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises ArrowInvalid and OSError variants
            raise TableReadError(f"{path}: cannot read as Parquet: {exc}") from exc
    else:
        raise TableReadError(
            f"{path}: unknown table type {suffix!r}; use .csv, .tsv, .xlsx or .parquet"
        )
    return frame.reset_index(drop=True)


def _check_header(columns: list[str], path: Path) -> None:
    if not columns or all(c == "" for c in columns):
        raise TableReadError(f"{path}: no header row")
    seen: set[str] = set()
    for i, c in enumerate(columns, start=1):
        if c in seen:
            raise TableReadError(f"{path}: column {c!r} appears twice (column {i})")
        seen.add(c)


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``frame`` to ``path`` as CSV/TSV, Excel or Parquet (by suffix), atomically.

    The table is written to a temporary file beside ``path`` and renamed into place, so a failure
    never leaves a half-written output.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    tmp = path.with_name(f".{path.name}.partial")
    try:
        if suffix in {".csv", ".txt", ""}:
            frame.to_csv(tmp, index=False)
        elif suffix == ".tsv":
            frame.to_csv(tmp, index=False, sep="\t")
        elif suffix in _EXCEL_SUFFIXES:
            frame.to_excel(tmp, index=False, engine="openpyxl")
        elif suffix in _PARQUET_SUFFIXES:
            frame.to_parquet(tmp, index=False)
        else:
            raise TableReadError(
                f"{path}: unknown output type {suffix!r}; use .csv, .tsv, .xlsx or .parquet"
            )
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)

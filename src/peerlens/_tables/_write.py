"""Writing tables (CSV/TSV, Excel, Parquet) atomically."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from peerlens._tables._errors import TableWriteError

_EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}


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
            raise TableWriteError(
                f"{path}: unknown output type {suffix!r}; use .csv, .tsv, .xlsx or .parquet"
            )
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)

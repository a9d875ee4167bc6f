"""Mapping the columns of real survey exports onto item columns ``<id>_<n>``.

Survey tools name item columns after their own question ids (Qualtrics ``Q12_3``, a REDCap form's
``selfcomp_03``, an in-house ``item17``). Rather than asking users to rename columns by hand (where
an off-by-one shift scores the wrong items silently), the mapping is declared once and checked:

* a map file, CSV with columns ``column``, ``instrument``, ``item`` (1-based item number), one
  row per item column, see :func:`read_column_map`;
* a pattern per instrument, ``scs=Q12_{n}`` (``{n}`` is the item number; ``{n:02d}`` pads it),
  see :func:`pattern_column_map`.

:func:`apply_column_map` renames the columns and refuses anything ambiguous: a mapped column that
is not in the data, two columns mapped to one item, or a target name that the data already uses
for another column.

Qualtrics CSV exports carry two rows under the header (question wording, then
``{"ImportId": ...}``); :func:`drop_qualtrics_rows` removes them and keeps the file's row numbers
for error messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from peerlens import PeerlensError
from peerlens.instruments.registry import load_spec
from peerlens.instruments.validation import ItemColumnError

__all__ = [
    "ColumnMapError",
    "apply_column_map",
    "column_map_from",
    "drop_qualtrics_rows",
    "pattern_column_map",
    "read_column_map",
]

_MAP_COLUMNS = ("column", "instrument", "item")

_ITEM_NUMBER = re.compile(r"[0-9]+(?:\.0*)?")


class ColumnMapError(PeerlensError):
    """A column map file or pattern is malformed or names unknown instruments or items."""


def _target(instrument: str, item: int, where: str) -> str:
    spec = load_spec(instrument)
    if not 1 <= item <= spec.n_items:
        raise ColumnMapError(f"{where}: {spec.id} has items 1-{spec.n_items}, not {item}")
    return f"{spec.id}_{item}"


def _add(mapping: dict[str, str], column: str, target: str, where: str) -> None:
    if column in mapping:
        raise ColumnMapError(f"{where}: column {column!r} is mapped twice")
    taken = [c for c, t in mapping.items() if t == target]
    if taken:
        raise ColumnMapError(f"{where}: {target} is mapped from both {taken[0]!r} and {column!r}")
    mapping[column] = target


def read_column_map(path: str | Path) -> dict[str, str]:
    """Read a column map file: CSV/TSV/XLSX with columns ``column``, ``instrument``, ``item``.

    Returns
    -------
    dict
        Source column name to item column name (``{"Q12_1": "scs_1", ...}``).

    Raises
    ------
    ColumnMapError
        Missing map columns, an empty cell, an item that is not a whole number or outside the
        instrument's items, an unknown instrument, or a column or item mapped twice; each with
        the file and its 1-based data row.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "map.csv")
    >>> _ = open(path, "w").write("column,instrument,item\\nQ5_1,ucla3,1\\nQ5_2,ucla3,2\\n")
    >>> read_column_map(path)
    {'Q5_1': 'ucla3_1', 'Q5_2': 'ucla3_2'}
    """
    from peerlens._tables import read_table
    from peerlens.instruments.registry import UnknownInstrumentError

    path = Path(path)
    table = read_table(path)
    lowered = {str(c).strip().lower(): c for c in table.columns}
    absent = [c for c in _MAP_COLUMNS if c not in lowered]
    if absent:
        raise ColumnMapError(
            f"{path}: a column map needs the columns {', '.join(_MAP_COLUMNS)}; "
            f"missing {', '.join(absent)} (found {', '.join(map(str, table.columns))})"
        )
    mapping: dict[str, str] = {}
    for i, row in enumerate(table.to_dict(orient="records"), start=1):
        where = f"{path}, row {i}"
        column, instrument, item = (str(row[lowered[c]]).strip() for c in _MAP_COLUMNS)
        if not column or not instrument or not item or "nan" in (column, instrument, item):
            raise ColumnMapError(f"{where}: column, instrument and item must all be filled in")
        # Digits only (a workbook's 3.0 too): float() would also take "1e999", "inf", "1_0".
        if not _ITEM_NUMBER.fullmatch(item):
            try:
                float(item)
            except ValueError:
                raise ColumnMapError(f"{where}: item {item!r} is not a number") from None
            raise ColumnMapError(f"{where}: item {item!r} is not a whole number")
        number = int(item.split(".")[0])
        try:
            _add(mapping, column, _target(instrument.lower(), number, where), where)
        except UnknownInstrumentError as exc:
            raise ColumnMapError(f"{where}: {exc}") from None
    if not mapping:
        raise ColumnMapError(f"{path}: the column map has no rows")
    return mapping


def pattern_column_map(patterns: Iterable[str]) -> dict[str, str]:
    """Build a column map from patterns ``ID=TEMPLATE`` such as ``scs=Q12_{n}``.

    ``{n}`` in the template is replaced by each item number of the instrument (1 to the number of
    items); format specs work (``sc{n:02d}`` gives ``sc01`` ...).

    Raises
    ------
    ColumnMapError
        A pattern without ``=`` or without ``{n}``, an unknown instrument, or two patterns
        producing the same column.

    Examples
    --------
    >>> pattern_column_map(["ucla3=lone{n:02d}"])
    {'lone01': 'ucla3_1', 'lone02': 'ucla3_2', 'lone03': 'ucla3_3'}
    """
    from peerlens.instruments.registry import UnknownInstrumentError

    mapping: dict[str, str] = {}
    for pattern in patterns:
        where = f"item pattern {pattern!r}"
        instrument, sep, template = pattern.partition("=")
        instrument, template = instrument.strip().lower(), template.strip()
        if not sep or not instrument or "{n" not in template:
            raise ColumnMapError(
                f"{where}: write ID=TEMPLATE with {{n}} for the item number, e.g. scs=Q12_{{n}}"
            )
        try:
            spec = load_spec(instrument)
        except UnknownInstrumentError as exc:
            raise ColumnMapError(f"{where}: {exc}") from None
        for n in range(1, spec.n_items + 1):
            try:
                column = template.format(n=n)
            except (KeyError, IndexError, ValueError) as exc:
                raise ColumnMapError(f"{where}: cannot fill in the template ({exc})") from None
            _add(mapping, column, f"{spec.id}_{n}", where)
    return mapping


def column_map_from(path: str | Path | None, patterns: Iterable[str] = ()) -> dict[str, str]:
    """One column map from a map file (optional) and patterns (the CLI's ``--map`` and
    ``--items``).

    Raises
    ------
    ColumnMapError
        As :func:`read_column_map` and :func:`pattern_column_map`, or a column or item that
        both the file and a pattern map.
    """
    mapping = read_column_map(path) if path is not None else {}
    for column, target in pattern_column_map(patterns).items():
        _add(mapping, column, target, "--map and --items")
    return mapping


def apply_column_map(
    frame: pd.DataFrame, mapping: Mapping[str, str], source: str | None = None
) -> pd.DataFrame:
    """Rename mapped columns to item columns, refusing anything ambiguous.

    Column names are matched exactly first, then ignoring case and surrounding spaces.

    Raises
    ------
    ItemColumnError
        Mapped columns absent from the data (all listed), or a target item column that the data
        already has as another, unmapped column.
    """
    where = f"{source}: " if source else ""
    exact = {str(c): c for c in frame.columns}
    folded = {str(c).strip().lower(): c for c in frame.columns}
    renames: dict[object, str] = {}
    absent = []
    for column, target in mapping.items():
        found = exact.get(column, folded.get(column.strip().lower()))
        if found is None:
            absent.append(column)
        else:
            renames[found] = target
    if absent:
        raise ItemColumnError(
            f"{where}the column map names column(s) not in the data: {', '.join(absent)}"
        )
    targets = {t.lower() for t in renames.values()}
    clashes = [
        str(c) for c in frame.columns if c not in renames and str(c).strip().lower() in targets
    ]
    if clashes:
        raise ItemColumnError(
            f"{where}the data already has column(s) {', '.join(clashes)}, which the column map "
            "also produces; drop or rename them first"
        )
    return frame.rename(columns=renames)


def drop_qualtrics_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Drop the wording and ``{"ImportId": ...}`` rows under a Qualtrics export's header.

    Only when one of the first two rows holds ``{"ImportId"`` cells (Qualtrics' current CSV
    layout) are rows dropped: that row and any above it. The index labels are kept, so errors
    still name the row as it stands in the file (a first response on file row 3 stays row 3).

    Returns
    -------
    (pandas.DataFrame, int)
        The frame without those rows, and how many were dropped.
    """
    for position in range(min(2, len(frame))):
        cells = frame.iloc[position].astype("string").str.strip()
        if cells.str.startswith('{"ImportId"', na=False).any():
            return frame.iloc[position + 1 :], position + 1
    return frame, 0

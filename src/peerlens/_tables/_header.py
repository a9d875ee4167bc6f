"""The header rules shared by text tables, workbooks and Parquet files: every column has a name,
and no two names are the same after the normalisation the callers match columns with."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from typing import Literal

from peerlens._tables._errors import TableProblem


def name_key(name: str) -> str:
    """The form two column names are compared in: surrounding space stripped, Unicode NFKC,
    case-folded.

    Callers match columns case-insensitively (``SCS_01`` is item 1 of ``scs``, a column map
    matches ``Q1`` to ``q1 ``), so two names with one key would be read as one column; such a
    header is refused rather than letting the first or the last silently win.
    """
    return unicodedata.normalize("NFKC", name.strip()).casefold()


def header_problems(
    names: Sequence[str],
    line: int,
    label: Callable[[int], str] = str,
    unit: Literal["line", "sheet row"] = "line",
) -> list[TableProblem]:
    """Empty and repeated names in a header (already stripped of surrounding space).

    ``label`` turns a 1-based column number into the form users see (``3``, or ``C`` in a
    workbook). A header whose names are all empty is "no header row".
    """
    problems: list[TableProblem] = []
    seen: dict[str, int] = {}
    for number, name in enumerate(names, start=1):
        if name == "":
            problems.append(
                TableProblem(
                    line, None, number, f"column {label(number)} has no name in the header", unit
                )
            )
            continue
        key = name_key(name)
        if key in seen:
            first = seen[key]
            problems.append(
                TableProblem(
                    line,
                    None,
                    number,
                    f"column {label(number)} {name!r} repeats column {label(first)} "
                    f"{names[first - 1]!r}",
                    unit,
                )
            )
        else:
            seen[key] = number
    return problems

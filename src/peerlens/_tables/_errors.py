"""What the table reader and writer report: errors that stop them, notes that do not."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from peerlens import PeerlensError, PeerlensWarning

#: How many problems an error message lists before summarising the rest (as item validation).
MAX_LISTED = 20


class TableNoteWarning(PeerlensWarning):
    """Something the reader did that changes nothing in the cells but the user should know
    (a dropped all-empty trailing column, skipped empty lines, a delimiter choice)."""


class TableEncodingWarning(TableNoteWarning):
    """A text table was not UTF-8 and was decoded as Windows-1252."""


NoteKind = Literal["encoding", "trailing_delimiter", "empty_lines", "delimiter", "sheets"]


@dataclass(frozen=True)
class TableNote:
    """One note about how a table was read.

    ``kind`` is ``"encoding"`` (decoded as Windows-1252), ``"trailing_delimiter"`` (every line
    ended with a delimiter; the empty last column was dropped), ``"empty_lines"`` (empty lines
    between rows were skipped), ``"delimiter"`` (the header held more than one candidate
    delimiter) or ``"sheets"`` (a workbook has more than one sheet; the first was read).
    """

    kind: NoteKind
    message: str

    @property
    def category(self) -> type[TableNoteWarning]:
        """The warning class :func:`peerlens._tables.read_table` issues this note as."""
        return TableEncodingWarning if self.kind == "encoding" else TableNoteWarning


@dataclass(frozen=True)
class TableProblem:
    """One reason a table was refused, located as precisely as the reader knows.

    Attributes
    ----------
    line
        Text files: the file line where the record starts (header = line 1 when the file
        starts with it). Workbooks: the sheet row. ``None`` when the problem is the whole file.
    data_row
        1-based data row (the first row under the header is 1), as item validation counts.
    column
        1-based column number, or ``None``.
    reason
        What is wrong, in words.
    """

    line: int | None
    data_row: int | None
    column: int | None
    reason: str
    unit: Literal["line", "sheet row"] = "line"

    def __str__(self) -> str:
        if self.data_row is not None:
            where = f"data row {self.data_row} ({self.unit} {self.line})"
        elif self.line is not None:
            where = f"{self.unit} {self.line}"
        else:
            return self.reason
        return f"{where}: {self.reason}"


class TableReadError(PeerlensError):
    """A table file cannot be read exactly: missing, empty, binary, undecodable, of an unknown
    type, malformed quoting, a bad header, or rows whose cell count differs from the header's.

    Attributes
    ----------
    source
        The file (or the name given for parsed bytes).
    problems
        Every located problem found, in file order; empty when the message says it all.
    """

    def __init__(self, source: str, reason: str, problems: Sequence[TableProblem] = ()) -> None:
        self.source = source
        self.problems = tuple(problems)
        listed = "".join(f"\n  {p}" for p in self.problems[:MAX_LISTED])
        more = len(self.problems) - MAX_LISTED
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{source}: {reason}{listed}{tail}")


class TableWriteError(PeerlensError):
    """A table cannot be written (unknown output type, or a value the format cannot hold)."""

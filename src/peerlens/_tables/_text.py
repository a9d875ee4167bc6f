"""Delimited text tables (CSV, TSV, semicolon CSV) read cell for cell, or refused.

The rules, kept here once for every caller:

* The header is the first non-empty record; its names are stripped of surrounding space. A name
  may not be empty, nor repeat another (compared as :func:`~peerlens._tables._header.name_key`).
* Every data record has exactly as many cells as the header. The one exception: the header ends
  with an empty name and every record ends with an empty cell under it (every line ends with a
  delimiter); that column is dropped and a note says so.
* Cells are kept exactly as written: no whitespace trimming, no type guessing, quotes only
  removed where they are CSV quoting. Malformed quoting (text after a closing quote, a quote
  never closed) is refused; a quote inside an unquoted cell is part of the cell.
* Records end at LF, CRLF or CR, mixed freely; line breaks inside quoted cells are part of the
  cell. Empty lines are not records: after the last row they are ignored, between rows they are
  skipped with a note (and refused in a one-column table, where an empty line could be an empty
  value).
* The delimiter is ``,``, ``;`` or tab, found from the header (see :func:`_choose_delimiter`), or
  given by the caller (``.tsv`` files are always tab-delimited).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from peerlens._tables._decode import decode_table_bytes
from peerlens._tables._errors import TableNote, TableProblem, TableReadError, TableWriteError
from peerlens._tables._header import header_problems

#: Delimiters looked for in a header, in order of preference when several fit.
CANDIDATE_DELIMITERS = (",", ";", "\t")

_LINE_BREAK = re.compile(r"\r\n|\r|\n")

#: csv's field limit is process-wide; it is only ever raised (to the longest possible field of
#: the text at hand), never lowered, so concurrent readers cannot undo each other. Capped at the
#: largest C long on every platform.
_FIELD_LIMIT_CAP = 2**31 - 1

_NOT_TEXT = {".xlsx", ".xlsm", ".xls", ".parquet", ".pq"}


@dataclass(frozen=True)
class TextTable:
    """A delimited text table exactly as the file holds it.

    Attributes
    ----------
    source
        The file (or the name given to :func:`parse_text_table`).
    header
        Column names, stripped of surrounding space; none empty, none repeated.
    rows
        One list of cells per record, each exactly as written (``""`` for an empty cell), every
        list as long as ``header``. Treat as read-only.
    row_numbers
        The file line on which each row's record starts (1-based, counting every line break of
        the file: LF, CRLF or CR). A record with a quoted line break spans several lines; the
        next record's number counts them. ``rows[i]`` is data row ``i + 1``.
    header_line
        The line the header starts on (1 unless empty lines precede it).
    encoding
        Python codec name of the text: ``utf-8``, ``utf-16-le``, ``utf-16-be``, ``utf-32-le``,
        ``utf-32-be`` or ``cp1252`` (the last always with an ``"encoding"`` note).
    bom
        Whether a byte-order mark preceded the text. The file's bytes are
        ``BOM + text.encode(encoding)``.
    delimiter
        ``","``, ``";"`` or ``"\\t"``.
    line_ending
        The break that ends the records (the most common one if they differ; ``"\\n"`` for a
        one-line file without a break). Breaks inside quoted cells belong to the cells.
    trailing_delimiter
        Every line ended with a delimiter, and the empty last column was dropped (a
        ``"trailing_delimiter"`` note says so); write it back with a delimiter at each line's
        end to reproduce the layout.
    notes
        What the reader did that the user should know about; show them.
    """

    source: str
    header: list[str]
    rows: list[list[str]]
    row_numbers: list[int]
    header_line: int
    encoding: str
    bom: bool
    delimiter: str
    line_ending: str
    trailing_delimiter: bool
    notes: tuple[TableNote, ...]

    def to_frame(self) -> pd.DataFrame:
        """The rows as a DataFrame of text columns (``str`` dtype), index ``0 .. n - 1``."""
        return pd.DataFrame(self.rows, columns=self.header, dtype=str)

    def to_bytes(self) -> bytes:
        """The table written back in its own layout: encoding and BOM, delimiter, line ending,
        trailing delimiter; cells exactly as they are (no formula neutralising).

        Cells are quoted only where needed (a delimiter, quote or line break in the cell; a
        candidate delimiter where the reader looks for one), so the bytes may differ from the
        original file's where it quoted more, but reading them gives this table again (header
        names as stripped). Change ``rows``
        in a copy (``dataclasses.replace``) to write an edited table.

        Raises
        ------
        TableWriteError
            A cell cannot be encoded in the table's encoding (Windows-1252 holds few
            characters).
        """
        records = [_record(self.header, self, header=True)]
        records += [_record(row, self, header=False) for row in self.rows]
        text = "".join(record + self.line_ending for record in records)
        bom = _BOM_OF[self.encoding] if self.bom else b""
        try:
            return bom + text.encode(self.encoding)
        except UnicodeEncodeError as exc:
            raise TableWriteError(
                f"{self.source}: {text[exc.start : exc.end]!r} cannot be written in {self.encoding}"
            ) from None


_BOM_OF = {
    "utf-8": codecs.BOM_UTF8,
    "utf-16-le": codecs.BOM_UTF16_LE,
    "utf-16-be": codecs.BOM_UTF16_BE,
    "utf-32-le": codecs.BOM_UTF32_LE,
    "utf-32-be": codecs.BOM_UTF32_BE,
}


def _record(cells: list[str], table: TextTable, header: bool) -> str:
    # Quoting by hand: the csv writer (Python < 3.12) leaves a lone CR unquoted when the line
    # ending is LF, and would end the row there. Candidate delimiters are quoted where the
    # reader looks for the delimiter: in the header, and in every cell of a one-column table.
    special = {table.delimiter, '"', "\r", "\n"}
    if header or (len(table.header) == 1 and not table.trailing_delimiter):
        special |= set(CANDIDATE_DELIMITERS)
    fields = [
        f'"{cell.replace(chr(34), chr(34) * 2)}"' if any(ch in cell for ch in special) else cell
        for cell in cells
    ]
    if table.trailing_delimiter:
        fields.append("")
    return '""' if fields == [""] else table.delimiter.join(fields)


class _Malformed(Exception):
    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message


def _records(text: str, delimiter: str) -> Iterator[tuple[int, int, list[str]]]:
    """Each record as (first line, last line, cells); empty lines give ``[]``."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _Malformed(start, str(exc)) from None
        yield start, reader.line_num, cells
        start = reader.line_num + 1


def _first_record(text: str, delimiter: str) -> list[str] | None:
    try:
        return next((cells for _, _, cells in _records(text, delimiter) if cells), None)
    except _Malformed:
        return None


def _rectangular(text: str, delimiter: str, width: int) -> bool:
    try:
        return all(len(cells) in (0, width) for _, _, cells in _records(text, delimiter))
    except _Malformed:
        return False


def _choose_delimiter(text: str, source: str) -> tuple[str, TableNote | None]:
    """The delimiter: the one candidate that splits the header, else the one that splits every
    row like the header, preferring more columns; a tie is refused rather than guessed.

    A header with no candidate outside quotes is one column (``","``).
    """
    widths = {}
    for delimiter in CANDIDATE_DELIMITERS:
        header = _first_record(text, delimiter)
        if header is not None and len(header) > 1:
            widths[delimiter] = len(header)
    if not widths:
        return ",", None
    if len(widths) == 1:
        return next(iter(widths)), None
    fitting = [d for d in widths if _rectangular(text, d, widths[d])]
    shown = " and ".join(repr(d) for d in widths)
    if not fitting:  # the ragged-row check will refuse it, naming the rows
        return max(widths, key=lambda d: widths[d]), None
    best = max(widths[d] for d in fitting)
    chosen = [d for d in fitting if widths[d] == best]
    if len(chosen) > 1:
        raise TableReadError(
            source,
            f"cannot tell the delimiter: the header holds {shown} outside quotes and each of "
            f"{' and '.join(repr(d) for d in chosen)} splits every row into {best} cells; "
            "quote the header names that contain the other character",
        )
    note = TableNote(
        "delimiter",
        f"{source}: the header holds {shown} outside quotes; read as {chosen[0]!r}-delimited, "
        f"which splits every row like the header, into the most cells ({best})",
    )
    return chosen[0], note


def _check_delimiter(delimiter: str) -> None:
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise ValueError(
            f"a delimiter is one character other than a quote or line break, not {delimiter!r}"
        )


def parse_text_table(data: bytes, source: str, *, delimiter: str | None = None) -> TextTable:
    """Parse the bytes of a delimited text table exactly, or refuse them.

    Parameters
    ----------
    data
        The file's bytes (any encoding the reader detects; see :mod:`peerlens._tables`).
    source
        Name for messages (the file path, or e.g. ``"REDCap API metadata"``).
    delimiter
        ``","``, ``";"``, ``"\\t"`` (or any single character); ``None`` detects it.

    Returns
    -------
    TextTable

    Raises
    ------
    TableReadError
        Empty, binary or undecodable data, malformed quoting, a bad header, rows whose cell
        count differs from the header's, or an ambiguous delimiter; every located problem is in
        ``problems``.
    """
    if delimiter is not None:
        _check_delimiter(delimiter)
    decoded = decode_table_bytes(data, source)
    text = decoded.text
    if not text.strip():
        raise TableReadError(source, "the file is empty")
    limit = min(len(text) + 1, _FIELD_LIMIT_CAP)
    if csv.field_size_limit() < limit:
        csv.field_size_limit(limit)
    notes: list[TableNote] = [decoded.note] if decoded.note else []
    if delimiter is None:
        delimiter, note = _choose_delimiter(text, source)
        notes += [note] if note else []
    try:
        records = list(_records(text, delimiter))
    except _Malformed as exc:
        raise TableReadError(
            source, "malformed quoting; nothing was read:", [_quoting_problem(exc)]
        ) from None
    return _build(records, text, source, decoded.encoding, decoded.bom, delimiter, notes)


def _quoting_problem(exc: _Malformed) -> TableProblem:
    if exc.message == "unexpected end of data":
        reason = 'a quoted cell starting on this line is never closed (no closing ")'
    else:
        reason = f"{exc.message}: quote a whole cell or none of it"
    return TableProblem(exc.line, None, None, reason)


def _build(
    records: list[tuple[int, int, list[str]]],
    text: str,
    source: str,
    encoding: str,
    bom: bool,
    delimiter: str,
    notes: list[TableNote],
) -> TextTable:
    filled = [i for i, (_, _, cells) in enumerate(records) if cells]
    if not filled or all(c.strip() == "" for c in records[filled[0]][2]):
        raise TableReadError(source, "no header row (the first non-empty line has no names)")
    header_line, _, raw_header = records[filled[0]]
    header = [h.strip() for h in raw_header]
    body = records[filled[0] + 1 : filled[-1] + 1]  # empty lines after the last row are ignored
    rows = [cells for _, _, cells in body if cells]
    row_numbers = [start for start, _, cells in body if cells]
    empty_lines = [start for start, _, cells in body if not cells]

    width = len(header)
    trailing = (
        width > 1
        and header[-1] == ""
        and any(header[:-1])
        and all(len(r) == width and r[-1] == "" for r in rows)
    )
    if trailing:
        header.pop()
        rows = [r[:-1] for r in rows]
        width -= 1
        notes.append(
            TableNote(
                "trailing_delimiter",
                f"{source}: every line ends with a delimiter; the empty column after the last "
                f"name ({header[-1]!r}) was dropped",
            )
        )

    header_issues = header_problems(header, header_line)
    row_issues = [
        TableProblem(line, n, None, f"has {len(r)} cells, the header has {width}")
        for n, (r, line) in enumerate(zip(rows, row_numbers, strict=True), start=1)
        if len(r) != width
    ]
    empty_issues: list[TableProblem] = []
    if empty_lines and width == 1:
        empty_issues = [
            TableProblem(
                line, None, None, 'is empty; in a one-column table write an empty value as ""'
            )
            for line in empty_lines
        ]
    elif empty_lines:
        listed = ", ".join(map(str, empty_lines[:10])) + (" ..." if len(empty_lines) > 10 else "")
        notes.append(
            TableNote(
                "empty_lines",
                f"{source}: skipped {len(empty_lines)} empty line(s) between rows (line {listed})",
            )
        )
    if header_issues or row_issues or empty_issues:
        problems = sorted(header_issues + row_issues + empty_issues, key=lambda p: p.line or 0)
        summary = _summary(header_issues, row_issues, empty_issues, header, rows, width)
        raise TableReadError(source, summary, problems)

    breaks = _LINE_BREAK.findall(text)
    ends = Counter(breaks[end - 1] for _, end, cells in records if cells and end <= len(breaks))
    line_ending = ends.most_common(1)[0][0] if ends else "\n"
    return TextTable(
        source=source,
        header=header,
        rows=rows,
        row_numbers=row_numbers,
        header_line=header_line,
        encoding=encoding,
        bom=bom,
        delimiter=delimiter,
        line_ending=line_ending,
        trailing_delimiter=trailing,
        notes=tuple(notes),
    )


def _summary(
    header_issues: list[TableProblem],
    row_issues: list[TableProblem],
    empty_issues: list[TableProblem],
    header: list[str],
    rows: list[list[str]],
    width: int,
) -> str:
    parts = []
    if header_issues:
        parts.append("the header has empty or repeated names")
    if row_issues:
        text = (
            f"{len(row_issues)} of {len(rows)} data row(s) do not have the header's {width} cells"
        )
        if len(row_issues) == len(rows) and all(len(r) == width + 1 and r[-1] == "" for r in rows):
            text += (
                " (each has one more, empty, at its end: the rows end with a delimiter the "
                "header lacks; add one at the end of the header line or remove theirs)"
            )
        elif header[-1] == "" and all(len(r) == width - 1 for r in rows):
            text += (
                " (each has one fewer: the header ends with a delimiter the rows lack; remove it)"
            )
        parts.append(text)
    if empty_issues:
        parts.append("a one-column table has empty lines between its rows")
    return "; ".join(parts) + "; nothing was read:"


def read_text_table(path: str | Path, *, delimiter: str | None = None) -> TextTable:
    """Read a delimited text table exactly, or refuse it.

    Parameters
    ----------
    path
        A CSV/TSV/TXT file (any suffix but a workbook's or Parquet's). ``.tsv`` files are
        tab-delimited; others have their delimiter detected unless ``delimiter`` is given.
    delimiter
        Force the delimiter.

    Returns
    -------
    TextTable
        Cells exactly as written, with the file lines of the records, the encoding, delimiter,
        line ending, and notes the caller must show (they are not issued as warnings here).

    Raises
    ------
    TableReadError
        As :func:`parse_text_table`, or the file is missing, a folder, unreadable, or a
        workbook/Parquet file.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.csv")
    >>> _ = open(path, "wb").write(b'id;note\\r\\np1;" two\\r\\nlines"\\r\\np2;x\\r\\n')
    >>> table = read_text_table(path)
    >>> table.header, table.rows, table.row_numbers, table.delimiter, table.line_ending
    (['id', 'note'], [['p1', ' two\\r\\nlines'], ['p2', 'x']], [2, 4], ';', '\\r\\n')
    """
    path = Path(path)
    source = str(path)
    if path.suffix.lower() in _NOT_TEXT:
        raise TableReadError(source, f"a {path.suffix} file is not a text table")
    if path.suffix.lower() == ".tsv" and delimiter is None:
        delimiter = "\t"
    return parse_text_table(read_bytes(path), source, delimiter=delimiter)


def read_bytes(path: Path) -> bytes:
    """A file's bytes, or a :class:`TableReadError` saying why not."""
    if not path.exists():
        raise TableReadError(str(path), "no such file")
    if path.is_dir():
        raise TableReadError(str(path), "is a folder, not a table file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TableReadError(str(path), f"cannot read ({exc.strerror})") from None

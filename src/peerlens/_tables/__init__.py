"""Reading and writing the tables users bring (CSV/TSV, Excel, Parquet), shared by the CLI and
the study importers: every input is read exactly, or refused with the file, row and reason.

Real exports are messy: Excel writes a byte-order mark, European locales use ``;`` as the
delimiter, Windows tools write Windows-1252 or UTF-16, some tools end every line with a
delimiter. Cells are read as text so that validation sees exactly what the file holds
(``"2.5"``, ``" 3"``, ``"1e999"``), not what a parser guessed.

Reading
    :func:`read_table` returns a DataFrame for any supported file; :func:`read_text_table`
    (and :func:`parse_text_table` for bytes) returns a :class:`TextTable` with the cells, the
    line each record starts on, the encoding, delimiter and line ending, for callers that need
    to write a file back in its own layout (:meth:`TextTable.to_bytes`). Both apply the same
    rules, kept in :mod:`peerlens._tables._text` (text) and :mod:`peerlens._tables._excel`
    (workbooks).
Encodings
    UTF-8 with or without BOM; UTF-16 and UTF-32 with a BOM; UTF-16 and UTF-32 without a BOM
    when their NUL-byte pattern shows it; Windows-1252 only with a note
    (:class:`TableEncodingWarning` from :func:`read_table`). Anything else, binary files and
    known non-text formats are refused (:mod:`peerlens._tables._decode`).
Writing
    :func:`write_table` writes atomically and neutralises spreadsheet formulas in text cells
    unless ``raw=True`` (:mod:`peerlens._tables._write`).
"""

from peerlens._tables._errors import (
    TableEncodingWarning,
    TableNote,
    TableNoteWarning,
    TableProblem,
    TableReadError,
    TableWriteError,
)
from peerlens._tables._header import name_key
from peerlens._tables._read import read_table
from peerlens._tables._text import TextTable, parse_text_table, read_text_table
from peerlens._tables._write import FORMULA_TRIGGERS, neutralise_formulas, write_table

__all__ = [
    "FORMULA_TRIGGERS",
    "TableEncodingWarning",
    "TableNote",
    "TableNoteWarning",
    "TableProblem",
    "TableReadError",
    "TableWriteError",
    "TextTable",
    "name_key",
    "neutralise_formulas",
    "parse_text_table",
    "read_table",
    "read_text_table",
    "write_table",
]

"""Encodings: detected from a BOM or the bytes, Windows-1252 only with a note, else refused."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from peerlens._tables import TableEncodingWarning, TableReadError, parse_text_table, read_table

TEXT = "id;name;a\r\np1;José Ørsted;1\r\np2;Zoë, 中文;2\r\n"
CELLS = [["p1", "José Ørsted", "1"], ["p2", "Zoë, 中文", "2"]]


@pytest.mark.parametrize(
    ("bom", "encoding"),
    [
        (b"", "utf-8"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
    ],
)
def test_unicode_with_or_without_a_bom_reads_exactly(bom: bytes, encoding: str) -> None:
    table = parse_text_table(bom + TEXT.encode(encoding), "t.csv")
    assert (table.header, table.rows) == (["id", "name", "a"], CELLS)
    assert (table.encoding, table.bom, table.notes) == (encoding, bool(bom), ())


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_wide_unicode_without_a_bom_is_recognised_by_its_nul_bytes(encoding: str) -> None:
    table = parse_text_table(TEXT.encode(encoding), "t.csv")
    assert table.rows == CELLS
    assert (table.encoding, table.bom) == (encoding, False)


def test_utf16_without_bom_that_shows_no_pattern_is_refused_not_misread() -> None:
    # Mostly CJK text: few NUL bytes, and in both positions (U+4E00 has a zero low byte).
    data = "一,二\n一一一,二二二\n".encode("utf-16-le")
    with pytest.raises(TableReadError, match="binary"):
        parse_text_table(data, "t.csv")


def test_windows_1252_is_read_with_a_note_naming_the_byte_and_line(tmp_path: Path) -> None:
    data = "id;name\r\np1;Zoë\r\n".encode("cp1252")
    table = parse_text_table(data, "t.csv")
    assert (table.rows, table.encoding) == ([["p1", "Zoë"]], "cp1252")
    (note,) = table.notes
    assert note.kind == "encoding"
    assert "not valid UTF-8 (byte 14, line 2); decoded as Windows-1252" in note.message
    assert "'ë'" in note.message
    path = tmp_path / "w.csv"
    path.write_bytes(data)
    with pytest.warns(TableEncodingWarning, match="decoded as Windows-1252"):
        read_table(path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"id,a\n1,\x81\n", r"not valid UTF-8 \(byte 7\) nor Windows-1252"),
        (b"id,a\n\xe9,\x02\n", r"binary file.*control character '\\x02' on line 2"),
        (b"id,a\n1,2\x00\n", r"binary file"),
        (codecs.BOM_UTF8 + b"id,a\n\xe9,1\n", r"utf-8 BOM, but byte 5 is not valid UTF-8"),
        (codecs.BOM_UTF16_LE + b"i\x00\x00\xd8", r"utf-16-le BOM, but byte 2"),
        ("id\n\x00\n".encode("utf-16"), r"NUL character on line 2"),
        (b"PK\x03\x04\x14\x00", r"zip archive \(an .xlsx workbook\?\)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1", r"old Excel \(.xls\) workbook"),
        (b"\x1f\x8b\x08\x00", r"gzip-compressed"),
        (b"PAR1\x15\x04", r"Parquet file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"binary file"),
    ],
)
def test_undecodable_and_binary_data_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(TableReadError, match=message):
        parse_text_table(data, "t.csv")

"""The issue-9 findings, each reproduced as it was found on main (before the fix these passed
silently with shifted columns)."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerlens._tables import TableReadError, read_table


def write(tmp_path: Path, data: bytes, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_rows_ending_with_a_delimiter_the_header_lacks_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, b"id,gad7_1,gad7_2\np1,1,2,\np2,3,0,\n")
    with pytest.raises(
        TableReadError, match=r"data row 1 \(line 2\): has 4 cells, the header has 3"
    ):
        read_table(path)


def test_header_ending_with_a_delimiter_the_rows_lack_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, b"id,gad7_1,gad7_2,\np1,1,2\np2,3,0\n")
    with pytest.raises(
        TableReadError, match=r"data row 1 \(line 2\): has 3 cells, the header has 4"
    ):
        read_table(path)


def test_one_long_row_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, b"id,a,b\np1,1,2\np2,3,0,9\n")
    with pytest.raises(TableReadError, match=r"data row 2 \(line 3\): has 4 cells"):
        read_table(path)


def test_duplicate_header_names_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, b"id,a,a\np1,1,2\n")
    with pytest.raises(TableReadError, match=r"column 3 'a' repeats column 2"):
        read_table(path)


def test_huge_cells_do_not_hit_the_csv_field_limit(tmp_path: Path) -> None:
    label = "x" * 181_000
    path = write(tmp_path, f'field,label\nf1,"{label}"\n'.encode())
    assert read_table(path)["label"].iloc[0] == label


def test_case_variants_of_one_name_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, b"id,ID\n1,2\n")
    with pytest.raises(TableReadError, match=r"column 2 'ID' repeats column 1 'id'"):
        read_table(path)


def test_an_empty_header_name_in_the_middle_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, b"id,,b\n1,2,3\n")
    with pytest.raises(TableReadError, match=r"column 2 has no name in the header"):
        read_table(path)


def test_cr_only_line_endings_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, b"id,a\r1,2\r3,4\r")
    assert read_table(path).to_dict("list") == {"id": ["1", "3"], "a": ["2", "4"]}


def test_text_after_a_closing_quote_is_refused_not_glued_on(tmp_path: Path) -> None:
    path = write(tmp_path, b'id,a\n"x"y,2\n')
    with pytest.raises(
        TableReadError,
        match=r"malformed quoting; nothing was read:\n  line 2: ',' expected after '\"'",
    ):
        read_table(path)


def test_utf16_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, "id,a\nJosé,2\n".encode("utf-16"))
    assert read_table(path).to_dict("list") == {"id": ["José"], "a": ["2"]}


def test_excel_duplicate_headers_are_refused_not_renamed(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["a", "a"])
    book.active.append([1, 2])
    path = tmp_path / "dup.xlsx"
    book.save(path)
    with pytest.raises(TableReadError, match=r"column B 'a' repeats column A"):
        read_table(path)

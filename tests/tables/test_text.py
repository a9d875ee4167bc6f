"""Delimited text tables: cells exactly as written, or the file refused with its lines."""

from __future__ import annotations

import csv
import dataclasses
import warnings
from pathlib import Path

import pytest

from peerlens._tables import (
    TableNoteWarning,
    TableReadError,
    TableWriteError,
    parse_text_table,
    read_table,
    read_text_table,
)


def write(tmp_path: Path, data: bytes | str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def parse(text: str, delimiter: str | None = None):  # type: ignore[no-untyped-def]
    return parse_text_table(text.encode("utf-8"), "t.csv", delimiter=delimiter)


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_each_line_ending_reads_the_same_cells_and_is_reported(ending: str) -> None:
    table = parse(ending.join(["id,a", "p1,1", "p2,2"]) + ending)
    assert table.header == ["id", "a"]
    assert table.rows == [["p1", "1"], ["p2", "2"]]
    assert table.row_numbers == [2, 3]
    assert table.line_ending == ending


def test_mixed_line_endings_read_and_the_most_common_is_reported() -> None:
    table = parse("id,a\r\np1,1\np2,2\r\np3,3\r")
    assert table.rows == [["p1", "1"], ["p2", "2"], ["p3", "3"]]
    assert table.row_numbers == [2, 3, 4]
    assert table.line_ending == "\r\n"


def test_quoted_line_breaks_and_delimiters_stay_in_the_cell_and_rows_keep_their_lines() -> None:
    text = 'id,note,x\r\np1,"one, two\r\nthree\nfour",1\r\np2,"say ""hi""",2\r\n'
    table = parse(text)
    assert table.rows == [["p1", "one, two\r\nthree\nfour", "1"], ["p2", 'say "hi"', "2"]]
    assert table.row_numbers == [2, 5]  # p1's record spans lines 2-4
    assert table.line_ending == "\r\n"


def test_cells_keep_their_spaces_and_header_names_are_stripped() -> None:
    table = parse(" id , a \n p1 ,  1\t\n")
    assert table.header == ["id", "a"]
    assert table.rows == [[" p1 ", "  1\t"]]


def test_a_quote_inside_an_unquoted_cell_is_part_of_it() -> None:
    assert parse('id,a\n5" screen,x"y\n').rows == [['5" screen', 'x"y']]


def test_a_quote_never_closed_is_refused_at_the_line_it_opens() -> None:
    with pytest.raises(TableReadError, match=r"line 3: a quoted cell starting on this line") as e:
        parse('id,a\np1,1\np2,"two\np3,3\np4,4\n')
    assert [(p.line, p.data_row) for p in e.value.problems] == [(3, None)]


def test_cells_beyond_the_csv_modules_default_field_limit(tmp_path: Path) -> None:
    label = "<p>" + "ä" * 181_000 + ",\n</p>"
    path = write(tmp_path, f'field,label\r\nf1,"{label}"\r\nf2,short\r\n')
    table = read_text_table(path)
    assert table.rows == [["f1", label], ["f2", "short"]]
    assert table.row_numbers == [2, 4]
    assert csv.field_size_limit() > 181_000


def test_every_line_ending_with_a_delimiter_drops_the_empty_column_with_a_note() -> None:
    table = parse("id,a,\np1,1,\np2,,\n")
    assert table.header == ["id", "a"]
    assert table.rows == [["p1", "1"], ["p2", ""]]
    assert table.trailing_delimiter
    assert [n.kind for n in table.notes] == ["trailing_delimiter"]


def test_read_table_shows_the_dropped_trailing_column_as_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "id;a;\r\np1;1;\r\n")
    with pytest.warns(TableNoteWarning, match="every line ends with a delimiter"):
        frame = read_table(path)
    assert frame.to_dict("list") == {"id": ["p1"], "a": ["1"]}


def test_a_value_under_the_unnamed_trailing_column_is_refused() -> None:
    with pytest.raises(TableReadError, match=r"line 1: column 3 has no name in the header"):
        parse("id,a,\np1,1,\np2,2,x\n")


def test_two_trailing_empty_columns_are_refused() -> None:
    with pytest.raises(TableReadError, match=r"column 3 has no name"):
        parse("id,a,,\np1,1,,\n")


def test_the_ragged_row_error_lists_every_row_with_data_row_line_and_counts() -> None:
    rows = "\n".join(f"p{i},1" + (",9" if i % 2 else "") for i in range(1, 51))
    with pytest.raises(TableReadError) as e:
        parse("id,a\n" + rows + "\n")
    problems = e.value.problems
    assert len(problems) == 25
    assert (problems[0].data_row, problems[0].line, problems[0].reason) == (
        1,
        2,
        "has 3 cells, the header has 2",
    )
    message = str(e.value)
    assert message.startswith("t.csv: 25 of 50 data row(s) do not have the header's 2 cells")
    assert "data row 39 (line 40): has 3 cells" in message
    assert "data row 41 (line 42)" not in message  # 20 listed
    assert "... and 5 more" in message


def test_a_multi_line_record_is_located_at_the_line_it_starts_on() -> None:
    with pytest.raises(TableReadError, match=r"data row 2 \(line 4\): has 1 cells"):
        parse('id,a\np1,"x\ny"\np2\n')


def test_empty_lines_between_rows_are_skipped_with_a_note_and_trailing_ones_ignored() -> None:
    table = parse("\n\nid,a\n\np1,1\n\n\np2,2\n\n\n")
    assert table.header_line == 3
    assert table.rows == [["p1", "1"], ["p2", "2"]]
    assert table.row_numbers == [5, 8]
    (note,) = table.notes
    assert note.kind == "empty_lines" and "skipped 3 empty line(s) between rows (line 4, 6, 7)" in (
        note.message
    )


def test_empty_lines_inside_a_one_column_table_are_refused() -> None:
    assert parse("id\np1\np2\n\n").rows == [["p1"], ["p2"]]
    with pytest.raises(TableReadError, match=r"line 3: is empty; in a one-column table write an"):
        parse("id\np1\n\np2\n")
    assert parse('id\np1\n""\np2\n').rows == [["p1"], [""], ["p2"]]


def test_a_whitespace_only_line_is_a_one_cell_row() -> None:
    with pytest.raises(TableReadError, match=r"data row 2 \(line 3\): has 1 cells"):
        parse("id,a\np1,1\n  \np2,2\n")


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("id;a;b\np1;1,5;2\n", ";"),
        ("id\ta\tb\np1\t1,5\t2\n", "\t"),
        ('"a,b";c\n1;2\n', ";"),
        ("id\np1;2\n", ","),  # one column: nothing to split the header on
    ],
)
def test_the_delimiter_is_found_from_the_header(text: str, delimiter: str) -> None:
    assert parse(text).delimiter == delimiter


def test_one_column_keeps_commas_semicolons_and_tabs_in_the_header() -> None:
    table = parse('"a;b\tc"\n"x;y"\n')
    assert (table.header, table.rows) == (["a;b\tc"], [["x;y"]])


def test_several_delimiters_in_the_header_choose_the_one_every_row_agrees_with() -> None:
    table = parse("id;Score, total;x\n1;2,5;3\n4;5;6\n")
    assert table.delimiter == ";"
    assert table.rows == [["1", "2,5", "3"], ["4", "5", "6"]]
    assert [n.kind for n in table.notes] == ["delimiter"]


def test_an_undecidable_delimiter_is_refused() -> None:
    with pytest.raises(TableReadError, match=r"cannot tell the delimiter"):
        parse("a,b;c\n1,2;3\n")


def test_the_caller_can_fix_the_delimiter_and_tsv_files_are_tab_delimited(
    tmp_path: Path,
) -> None:
    assert parse("a,b;c\n1,2;3\n", delimiter=";").rows == [["1,2", "3"]]
    path = write(tmp_path, "a,b\tc\n1,2\t3\n", "t.tsv")
    assert read_text_table(path).header == ["a,b", "c"]
    with pytest.raises(ValueError, match="one character"):
        parse("a\n1\n", delimiter='"')


def test_a_header_only_file_is_a_table_without_rows(tmp_path: Path) -> None:
    frame = read_table(write(tmp_path, "id,a\n"))
    assert list(frame.columns) == ["id", "a"] and len(frame) == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b" \r\n\n", "the file is empty"),
        (b",,\n1,2,3\n", "no header row"),
    ],
)
def test_no_table_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(TableReadError, match=message):
        parse_text_table(data, "t.csv")


def test_missing_folder_and_non_text_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TableReadError, match="no such file"):
        read_text_table(tmp_path / "nope.csv")
    with pytest.raises(TableReadError, match="is a folder"):
        read_text_table(tmp_path)
    with pytest.raises(TableReadError, match="not a text table"):
        read_text_table(write(tmp_path, b"PK", "a.xlsx"))


def test_read_table_is_the_text_table_as_str_columns(tmp_path: Path) -> None:
    path = write(tmp_path, 'id,a,b\r\np1," 1",\r\np2,NA,nan\r\n')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = read_table(path)
    assert frame.to_dict("list") == {"id": ["p1", "p2"], "a": [" 1", "NA"], "b": ["", "nan"]}
    assert all(str(t) in ("str", "object") for t in frame.dtypes)
    assert list(frame.index) == [0, 1]


@pytest.mark.parametrize(
    "data",
    [
        b'id;note;\r\np1;"a;b\nc";\r\np2;;\r\n',
        '\ufeffid,note\rp1,"x""y"\r'.encode(),
        "id\tname\r\np1\tZoë\r\n".encode("utf-16"),
        "id;name\np1;Zoë\n".encode("cp1252"),
        b'"a;b"\n"x,y"\n""\n',
    ],
)
def test_a_text_table_writes_itself_back_in_its_own_layout(data: bytes) -> None:
    table = parse_text_table(data, "t.csv")
    written = table.to_bytes()
    again = parse_text_table(written, "t.csv")
    assert again == dataclasses.replace(table, notes=again.notes)
    assert [n.kind for n in again.notes] == [n.kind for n in table.notes]


def test_a_text_table_refuses_to_write_what_its_encoding_cannot_hold() -> None:
    table = parse_text_table("id;name\np1;Zoë\n".encode("cp1252"), "t.csv")
    edited = dataclasses.replace(table, rows=[["p1", "中"]])
    with pytest.raises(TableWriteError, match="'中' cannot be written in cp1252"):
        edited.to_bytes()

"""Excel workbooks: the first sheet under the header rules of text tables."""

from __future__ import annotations

import datetime as dt
import math
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from peerlens._tables import TableNoteWarning, TableReadError, read_table


def workbook(tmp_path: Path, cells: dict[str, Any], name: str = "in.xlsx") -> Path:
    book = openpyxl.Workbook()
    for ref, value in cells.items():
        book.active[ref] = value
    path = tmp_path / name
    book.save(path)
    return path


def test_stored_types_are_kept_and_empty_cells_are_nan(tmp_path: Path) -> None:
    path = workbook(
        tmp_path,
        {"A1": "id", "B1": "n", "C1": "when", "A2": "p1", "B2": 3, "C2": dt.datetime(2024, 3, 1)},
    )
    book = openpyxl.load_workbook(path)
    book.active["A3"] = "p2"
    book.save(path)
    frame = read_table(path)
    assert list(frame.columns) == ["id", "n", "when"]
    assert frame.iloc[0].tolist() == ["p1", 3, dt.datetime(2024, 3, 1)]
    assert frame.iloc[1, 0] == "p2" and math.isnan(frame.iloc[1, 1])


def test_empty_formatted_columns_and_rows_at_the_edges_are_not_data(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["id", "a"])
    sheet.append(["p1", 1])
    sheet["F1"].number_format = "0.00"  # formatting widens the sheet's range...
    sheet["A9"].number_format = "0.00"  # ...and lengthens it
    path = tmp_path / "f.xlsx"
    book.save(path)
    assert read_table(path).to_dict("list") == {"id": ["p1"], "a": [1]}


def test_blank_rows_between_rows_are_kept_so_data_rows_match_sheet_rows(tmp_path: Path) -> None:
    path = workbook(tmp_path, {"A3": "id", "B3": "a", "A4": "p1", "A6": "p3", "B6": 2})
    frame = read_table(path)  # header on sheet row 3: data row N is sheet row N + 3
    assert frame["id"].tolist()[0] == "p1" and frame["id"].tolist()[2] == "p3"
    assert len(frame) == 3 and frame.iloc[1].isna().all()


def test_a_value_in_a_column_without_a_name_is_refused_with_its_cell(tmp_path: Path) -> None:
    path = workbook(tmp_path, {"A1": "id", "B1": "a", "A2": "p1", "B2": 1, "A3": "p2", "D3": 7})
    with pytest.raises(TableReadError) as e:
        read_table(path)
    assert "data row 2 (sheet row 3): column D has a value but no name in the header" in str(
        e.value
    )
    (problem,) = e.value.problems
    assert (problem.line, problem.data_row, problem.column) == (3, 2, 4)


def test_empty_and_repeated_names_are_refused_with_column_letters(tmp_path: Path) -> None:
    path = workbook(tmp_path, {"A1": "id", "C1": "Score", "D1": "score ", "A2": 1, "B2": 2})
    with pytest.raises(TableReadError) as e:
        read_table(path)
    message = str(e.value)
    assert "sheet row 1: column B has no name in the header" in message
    assert "sheet row 1: column D 'score' repeats column C 'Score'" in message


def test_formulas_read_as_their_saved_values(tmp_path: Path) -> None:
    path = workbook(tmp_path, {"A1": "a", "B1": "b", "A2": 3, "B2": "=A2*2"})
    with pytest.raises(TableReadError, match=r"cell B2 holds the formula =A2\*2 with no saved"):
        read_table(path)
    saved = tmp_path / "saved.xlsx"  # what Excel writes after calculating: <f> and its <v>
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(saved, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                assert b"<f>A2*2</f><v />" in data
                data = data.replace(b"<f>A2*2</f><v />", b"<f>A2*2</f><v>6</v>")
            dst.writestr(item, data)
    assert read_table(saved).to_dict("list") == {"a": [3], "b": [6]}


def test_other_sheets_are_named_in_a_note(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.append(["id"])
    book.active.append(["p1"])
    book.active.title = "responses"
    book.create_sheet("codebook")
    path = tmp_path / "two.xlsx"
    book.save(path)
    with pytest.warns(TableNoteWarning, match="has 2 sheets; read the first, 'responses'"):
        assert read_table(path)["id"].tolist() == ["p1"]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", r"old Excel .xls workbooks are not read"),
        ("bad.xlsx", b"PK\x03\x04 this is no zip", r"cannot read as an Excel workbook"),
        ("text.xlsx", b"id,a\n1,2\n", r"cannot read as an Excel workbook"),
        ("empty.xlsx", b"", r"cannot read as an Excel workbook"),
    ],
)
def test_old_corrupt_and_fake_workbooks_are_refused(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(TableReadError, match=message):
        read_table(path)


def test_a_zip_that_is_no_workbook_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "z.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(TableReadError, match="cannot read as an Excel workbook"):
        read_table(path)


def test_an_empty_sheet_is_refused(tmp_path: Path) -> None:
    path = workbook(tmp_path, {})
    with pytest.raises(TableReadError, match="the first sheet is empty"):
        read_table(path)

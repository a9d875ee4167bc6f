"""Writing tables: atomic, formula-like text neutralised unless raw, read back exactly."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from peerlens._tables import (
    FORMULA_TRIGGERS,
    TableWriteError,
    neutralise_formulas,
    read_table,
    write_table,
)

NOTES = ['=HYPERLINK("http://x")', "+1 555", "-2+3", "@SUM(A1)", "\tx", "\rx", "ok", "a=b", ""]


def test_every_trigger_character_is_neutralised_and_nothing_else() -> None:
    assert FORMULA_TRIGGERS == ("=", "+", "-", "@", "\t", "\r")  # OWASP's list
    frame = pd.DataFrame({"note": NOTES})
    out = neutralise_formulas(frame)["note"].tolist()
    assert out == [f"'{n}" for n in NOTES[:6]] + ["ok", "a=b", ""]
    assert frame["note"].tolist() == NOTES  # the input is not modified


def test_numbers_stay_numbers_whether_stored_as_numbers_or_text() -> None:
    frame = pd.DataFrame(
        {
            "n": [-3, 2, 1],
            "x": [-1.5, float("nan"), 2.0],
            "text": ["-9", "+2.5", "-1e3"],
            "not_numbers": ["-inf", "-1,5", "- 3"],
        }
    )
    out = neutralise_formulas(frame)
    pd.testing.assert_frame_equal(out[["n", "x", "text"]], frame[["n", "x", "text"]])
    assert out["not_numbers"].tolist() == ["'-inf", "'-1,5", "'- 3"]


def test_header_names_str_and_categorical_columns_are_neutralised() -> None:
    frame = pd.DataFrame(
        {
            "=cmd": pd.Series(["@x", None], dtype="string"),
            "c": pd.Categorical(["=a", "b"]),
        }
    )
    out = neutralise_formulas(frame)
    assert list(out.columns) == ["'=cmd", "c"]
    assert out["'=cmd"].tolist()[0] == "'@x" and pd.isna(out["'=cmd"].tolist()[1])
    assert out["c"].tolist() == ["'=a", "b"]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".xlsx"])
def test_spreadsheet_formats_are_neutralised_by_default_and_raw_on_request(
    tmp_path: Path, suffix: str
) -> None:
    frame = pd.DataFrame({"id": ["p1", "p2"], "note": ["=1+2", "-9"], "n": [-3, 4]})
    path = tmp_path / f"out{suffix}"
    assert write_table(frame, path) == 1
    back = read_table(path)
    assert back["note"].tolist() == ["'=1+2", "-9"]
    assert write_table(frame, path, raw=True) == 0
    back = read_table(path)
    assert back["note"].tolist() == ["=1+2", "-9"]
    assert [str(v) for v in back["n"]] == ["-3", "4"]


def test_a_raw_workbook_stores_formula_text_as_text_not_as_a_formula(tmp_path: Path) -> None:
    path = tmp_path / "raw.xlsx"
    write_table(pd.DataFrame({"note": ["=1+2"]}), path, raw=True)
    cell = openpyxl.load_workbook(path).active["A2"]
    assert (cell.value, cell.data_type) == ("=1+2", "s")


def test_parquet_is_never_changed(tmp_path: Path) -> None:
    frame = pd.DataFrame({"note": ["=1+2", "@x"]})
    path = tmp_path / "out.parquet"
    assert write_table(frame, path) == 0
    assert pd.read_parquet(path)["note"].tolist() == ["=1+2", "@x"]


def test_a_stream_receives_utf8_csv_with_a_quoted_header_and_crlf() -> None:
    buffer = io.BytesIO()
    assert write_table(pd.DataFrame({"a;b": ["@x"], "c": ["é\r"]}), buffer) == 1
    assert buffer.getvalue() == '"a;b","c"\r\n\'@x,"é\r"\r\n'.encode()


@pytest.mark.parametrize(
    ("frame", "name", "message"),
    [
        (pd.DataFrame({"a": [1]}), "out.json", "unknown output type '.json'"),
        (pd.DataFrame({"a": ["x\x01y"]}), "out.xlsx", "row 1, column 'a'.*control character"),
        (pd.DataFrame({"a": ["x" * 40_000]}), "out.xlsx", "40000 characters; an Excel cell"),
        (
            pd.DataFrame({"t": pd.to_datetime(["2024-01-01T10:00"]).tz_localize("UTC")}),
            "out.xlsx",
            "time-zone-aware",
        ),
        (pd.DataFrame({"a": [1, "x"]}), "out.parquet", "cannot write as Parquet"),
    ],
)
def test_values_a_format_cannot_hold_are_refused_and_nothing_is_left(
    tmp_path: Path, frame: pd.DataFrame, name: str, message: str
) -> None:
    with pytest.raises(TableWriteError, match=message):
        write_table(frame, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_the_previous_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    write_table(pd.DataFrame({"a": ["old"]}), path)
    with pytest.raises(TableWriteError):
        write_table(pd.DataFrame({"a": ["\x00"]}), path)
    assert read_table(path)["a"].tolist() == ["old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.xlsx"]

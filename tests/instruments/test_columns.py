"""Column maps and patterns for real survey exports, and Qualtrics' extra header rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from peerlens._tables import TableReadError
from peerlens.instruments import ItemColumnError, ItemValueError, score
from peerlens.instruments.columns import (
    ColumnMapError,
    apply_column_map,
    drop_qualtrics_rows,
    pattern_column_map,
    read_column_map,
)


def write(tmp_path: Path, text: str, name: str = "map.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_map_file_renames_and_scores_like_named_columns(tmp_path: Path) -> None:
    # GAD-7 answers under a survey tool's own question ids, in shuffled order.
    path = write(
        tmp_path,
        "column,instrument,item\n" + "".join(f"Q9_{8 - n},gad7,{n}\n" for n in range(1, 8)),
    )
    mapping = read_column_map(path)
    assert mapping["Q9_7"] == "gad7_1" and mapping["Q9_1"] == "gad7_7"
    answers = [3, 2, 1, 0, 1, 2, 3]
    export = pd.DataFrame({f"Q9_{8 - n}": [answers[n - 1]] for n in range(1, 8)})
    named = pd.DataFrame({f"gad7_{n}": [answers[n - 1]] for n in range(1, 8)})
    got = score(apply_column_map(export, mapping), "gad7")
    assert got["gad7_total"].iloc[0] == score(named, "gad7")["gad7_total"].iloc[0] == 12


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("column,instrument\nQ1,gad7\n", "missing item"),
        ("column,instrument,item\nQ1,gad7,8\n", "gad7 has items 1-7, not 8"),
        ("column,instrument,item\nQ1,gad7,1.5\n", "not a whole number"),
        ("column,instrument,item\nQ1,gad7,one\n", "'one' is not a number"),
        ("column,instrument,item\nQ1,gad7,1e999\n", "'1e999' is not a whole number"),
        ("column,instrument,item\nQ1,gad7,inf\n", "'inf' is not a whole number"),
        ("column,instrument,item\nQ1,gad7,1_0\n", "'1_0' is not a whole number"),
        ("column,instrument,item\nQ1,nosuch,1\n", "row 1"),
        ("column,instrument,item\nQ1,gad7,1\nQ2,gad7,1\n", "gad7_1 is mapped from both"),
        ("column,instrument,item\nQ1,gad7,1\nQ1,gad7,2\n", "row 2: column 'Q1' is mapped twice"),
        ("column,instrument,item\nQ1,,1\n", "must all be filled in"),
        ("column,instrument,item\n", "no rows"),
    ],
)
def test_bad_map_files_say_what_and_where(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ColumnMapError, match=message) as info:
        read_column_map(path)
    assert str(path) in str(info.value)


def test_a_ragged_map_file_is_refused_by_the_table_reader(tmp_path: Path) -> None:
    path = write(tmp_path, "column,instrument,item\nQ1,gad7,1\nQ2,gad7,2,\n")
    with pytest.raises(TableReadError, match=r"data row 2 \(line 3\): has 4 cells"):
        read_column_map(path)


def test_patterns_cover_every_item_with_padding() -> None:
    mapping = pattern_column_map(["scs=SC{n:02d}", "ucla3=Q5_{n}"])
    assert mapping["SC01"] == "scs_1" and mapping["SC26"] == "scs_26"
    assert [mapping[f"Q5_{n}"] for n in (1, 2, 3)] == ["ucla3_1", "ucla3_2", "ucla3_3"]
    assert len(mapping) == 29


@pytest.mark.parametrize(
    ("patterns", "message"),
    [
        (["scs"], "ID=TEMPLATE"),
        (["scs=Q12_"], "ID=TEMPLATE"),
        (["nosuch=Q{n}"], "nosuch"),
        (["scs=Q{n:x2}"], "cannot fill in"),
        (["gad7=Q{n}", "phq9=Q{n}"], "column 'Q1' is mapped twice"),
    ],
)
def test_bad_patterns_are_refused(patterns: list[str], message: str) -> None:
    with pytest.raises(ColumnMapError, match=message):
        pattern_column_map(patterns)


def test_mapped_columns_absent_from_the_data_are_listed() -> None:
    frame = pd.DataFrame({"Q5_1": [1], "Q5_3": [2]})
    with pytest.raises(ItemColumnError, match="not in the data: Q5_2") as info:
        apply_column_map(frame, pattern_column_map(["ucla3=Q5_{n}"]), "survey.csv")
    assert "survey.csv" in str(info.value)


def test_a_target_already_in_the_data_is_a_clash_not_an_overwrite() -> None:
    frame = pd.DataFrame({"Q1": [1], "Q2": [1], "Q3": [1], "UCLA3_1": [3]})
    with pytest.raises(ItemColumnError, match=r"already has column.*UCLA3_1"):
        apply_column_map(frame, pattern_column_map(["ucla3=Q{n}"]))


def test_case_and_space_differences_in_headers_are_forgiven() -> None:
    frame = pd.DataFrame({" q1 ": [1], "Q2": [2], "q3": [3]})
    renamed = apply_column_map(frame, pattern_column_map(["ucla3=Q{n}"]))
    assert list(renamed.columns) == ["ucla3_1", "ucla3_2", "ucla3_3"]


def qualtrics_frame() -> pd.DataFrame:
    header = ["ResponseId", "Q5_1", "Q5_2", "Q5_3"]
    rows = [
        ["Response ID", "How often do you feel ...? - 1", "... - 2", "... - 3"],
        ['{"ImportId":"_recordId"}', '{"ImportId":"QID5_1"}', '{"ImportId":"QID5_2"}', "{}"],
        ["R_1", "1", "2", "3"],
        ["R_2", "2", "9", "1"],
    ]
    return pd.DataFrame(rows, columns=header)


def test_qualtrics_rows_are_dropped_and_row_numbers_kept() -> None:
    frame, dropped = drop_qualtrics_rows(qualtrics_frame())
    assert dropped == 2 and list(frame["ResponseId"]) == ["R_1", "R_2"]
    mapped = apply_column_map(frame, pattern_column_map(["ucla3=Q5_{n}"]))
    with pytest.raises(ItemValueError) as info:
        score(mapped, "ucla3")
    # The bad answer is on the 4th data row of the file (after the two Qualtrics rows).
    assert [(p.row, p.column, p.value) for p in info.value.problems] == [(4, "ucla3_2", "9")]


def test_ordinary_tables_are_left_alone() -> None:
    frame = pd.DataFrame({"id": ["a", "b"], "ucla3_1": ["1", "2"]})
    out, dropped = drop_qualtrics_rows(frame)
    assert dropped == 0 and out.equals(frame)

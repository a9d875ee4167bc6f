"""Strict item validation: every invalid cell named by row, column and value; nothing scored."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from peerlens.instruments import (
    ItemColumnError,
    ItemValueError,
    MissingCodeError,
    detect_instruments,
    item_matrix,
    load_spec,
    score,
)


def ucla(rows: list[list[object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["ucla3_1", "ucla3_2", "ucla3_3"])


def test_text_cells_are_parsed_strictly() -> None:
    data = ucla([["1", " 2 ", "3.0"], ["", "NA", "nan"], [1, 2.0, "3"]])
    values = item_matrix(data, load_spec("ucla3"))
    np.testing.assert_array_equal(
        values, np.array([[1, 2, 3], [np.nan, np.nan, np.nan], [1, 2, 3]], dtype=float)
    )


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("0", "outside the response range 1-3"),
        ("4", "outside the response range 1-3"),
        ("2.5", "not a whole number"),
        ("often", "not a number"),
        ("-9", "outside the response range"),  # -9 is missing only when declared
        ("1e999", "not a finite number"),  # overflows to inf when parsed
        ("inf", "not a finite number"),
        ("-Infinity", "not a finite number"),
        ("9" * 400, "not a finite number"),
        ("1e-999", "outside the response range"),  # underflows to 0
        ("1_0", "not a number"),  # Python's float() would read 10
        ("0x2", "not a number"),
        ("\u0662", "not a number"),  # Arabic-Indic two: int() would read 2
    ],
)
def test_invalid_cells_are_reported_with_row_column_and_value(cell: str, reason: str) -> None:
    data = ucla([["1", "1", "1"], ["2", cell, "2"]])
    with pytest.raises(ItemValueError) as info:
        score(data, "ucla3", source="answers.csv")
    message = str(info.value)
    assert "answers.csv" in message
    assert f"row 2, column ucla3_2: {cell!r}" in message
    assert reason in message
    assert [(p.row, p.column, p.value) for p in info.value.problems] == [(2, "ucla3_2", cell)]


def test_infinite_numbers_from_a_numeric_column_are_refused_not_scored() -> None:
    data = ucla([[1.0, 2.0, 3.0], [1.0, np.inf, -np.inf]])
    with pytest.raises(ItemValueError) as info:
        score(data, "ucla3")
    assert [(p.row, p.column, p.value, p.reason) for p in info.value.problems] == [
        (2, "ucla3_2", "inf", "is not a finite number (allowed: 1-3)"),
        (2, "ucla3_3", "-inf", "is not a finite number (allowed: 1-3)"),
    ]


def test_every_problem_is_listed_in_row_then_item_order() -> None:
    data = ucla([["9", "1", "x"], ["1", "1", "1"], ["1", "0", "1"]])
    with pytest.raises(ItemValueError) as info:
        score(data, "ucla3")
    assert [(p.row, p.column) for p in info.value.problems] == [
        (1, "ucla3_1"),
        (1, "ucla3_3"),
        (3, "ucla3_2"),
    ]


def test_item_order_is_numeric_not_alphabetical() -> None:
    spec = load_spec("qpr15")
    data = pd.DataFrame([[5] * 15], columns=list(spec.item_columns))
    with pytest.raises(ItemValueError) as info:
        item_matrix(data, spec)
    assert [p.column for p in info.value.problems][:3] == ["qpr15_1", "qpr15_2", "qpr15_3"]


def test_declared_missing_codes_become_missing() -> None:
    data = ucla([["-9", "-99", "3"], [".", "2", "2"]])
    values = item_matrix(data, load_spec("ucla3"), missing_codes=["-9", -99, "."])
    assert np.isnan(values[0, :2]).all()
    assert values[0, 2] == 3
    assert np.isnan(values[1, 0])


def test_numeric_missing_code_in_numeric_column() -> None:
    data = ucla([[-9, 2, 3]])
    values = item_matrix(data, load_spec("ucla3"), missing_codes=[-9])
    assert np.isnan(values[0, 0])


def test_missing_code_inside_the_response_range_is_refused() -> None:
    with pytest.raises(MissingCodeError, match="missing code 2 is also a valid UCLA-3 answer"):
        item_matrix(ucla([[1, 2, 3]]), load_spec("ucla3"), missing_codes=[2])


def test_missing_and_unknown_item_columns_are_named() -> None:
    spec = load_spec("scs")
    data = pd.DataFrame([[3] * 26], columns=list(spec.item_columns))
    with pytest.raises(ItemColumnError, match="missing item column\\(s\\) scs_4, scs_9"):
        score(data.drop(columns=["scs_4", "scs_9"]), "scs")
    with pytest.raises(ItemColumnError, match="unknown item column\\(s\\) scs_27"):
        score(data.assign(scs_27=1), "scs")
    with pytest.raises(ItemColumnError, match="scs_1 and scs_01"):
        score(data.assign(scs_01=1), "scs")


def test_case_and_zero_padding_are_accepted() -> None:
    data = pd.DataFrame([[1, 2, 3]], columns=["UCLA3_01", "Ucla3_2", "ucla3_003"])
    assert score(data, "ucla3")["ucla3_total"].iloc[0] == 6.0


def test_detection_does_not_confuse_prefixes() -> None:
    cols = ["scs_sf_1", "sscs_s_1", "phq9_total", "phq9_1", "id"]
    assert detect_instruments(cols) == ["phq9", "scs_sf", "sscs_s"]


def test_nothing_is_scored_when_any_instrument_is_invalid() -> None:
    data = pd.concat(
        [
            ucla([[1, 2, 3]]),
            pd.DataFrame([[0, 0, 0, 0, 0, 0, 7]], columns=[f"gad7_{i}" for i in range(1, 8)]),
        ],
        axis=1,
    )
    with pytest.raises(ItemValueError, match="gad7_7"):
        score(data)

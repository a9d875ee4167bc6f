"""Hand-computed cases for every instrument: complete, missing, prorated and rule-breaking rows.

Expected values are worked out by hand in the comments from the published scoring keys, not taken
from the engine's output.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from peerlens.instruments import (
    ScoreColumnConflictError,
    ScoringCaveatWarning,
    list_specs,
    load_spec,
    score,
    score_with_provenance,
)

NA = np.nan


def frame_for(instrument: str, rows: list[list[float]]) -> pd.DataFrame:
    spec = load_spec(instrument)
    data = pd.DataFrame(rows, columns=list(spec.item_columns))
    data.insert(0, "participant", [f"P{i:03d}" for i in range(len(rows))])
    return data


def row_at(out: pd.DataFrame, i: int) -> pd.Series:
    return out.iloc[i]


# SCS item i answered ((i - 1) % 5) + 1: 1,2,3,4,5,1,2,3,4,5,...
SCS_A = [float((i - 1) % 5 + 1) for i in range(1, 27)]


def test_scs_complete_row_matches_hand_computation() -> None:
    out = score(frame_for("scs", [SCS_A]), "scs")
    r = row_at(out, 0)
    assert r["scs_self_kindness"] == pytest.approx(15 / 5)  # items 5,12,19,23,26 = 5,2,4,3,1
    assert r["scs_self_judgment"] == pytest.approx(7 / 5)  # items 1,8,11,16,21 = 1,3,1,1,1
    assert r["scs_common_humanity"] == pytest.approx(15 / 4)  # 3,7,10,15 = 3,2,5,5
    assert r["scs_isolation"] == pytest.approx(15 / 4)  # 4,13,18,25 = 4,3,3,5 (raw, high=isolated)
    assert r["scs_mindfulness"] == pytest.approx(12 / 4)  # 9,14,17,22 = 4,4,2,2
    assert r["scs_over_identification"] == pytest.approx(12 / 4)  # 2,6,20,24 = 2,1,5,4
    # keyed: positives 15+15+12; reversed SJ 5,3,5,5,5 = 23; ISO 2,3,3,1 = 9; OI 4,5,1,2 = 12
    assert r["scs_total"] == pytest.approx(86 / 26)
    # subscale means with the negative ones reversed: 3 + 4.6 + 3.75 + 2.25 + 3 + 3
    assert r["scs_total_subscale_mean"] == pytest.approx(19.6 / 6)
    assert r["scs_n_answered"] == 26
    assert not r["scs_prorated"]
    assert r["participant"] == "P000"


def test_scs_one_missing_per_subscale_is_scored_from_the_answered_items() -> None:
    row = SCS_A.copy()
    row[5 - 1] = NA  # self-kindness item 5 (answer 5)
    row[4 - 1] = NA  # isolation item 4 (answer 4, keyed 2)
    r = row_at(score(frame_for("scs", [row]), "scs"), 0)
    assert r["scs_self_kindness"] == pytest.approx(10 / 4)
    assert r["scs_isolation"] == pytest.approx(11 / 3)
    assert r["scs_total"] == pytest.approx((86 - 5 - 2) / 24)
    assert r["scs_total_subscale_mean"] == pytest.approx((2.5 + 4.6 + 3.75 + 7 / 3 + 3 + 3) / 6)
    assert r["scs_n_answered"] == 24
    assert r["scs_prorated"]


def test_scs_two_missing_in_a_subscale_leaves_it_and_the_totals_missing() -> None:
    row = SCS_A.copy()
    row[5 - 1] = NA
    row[12 - 1] = NA
    r = row_at(score(frame_for("scs", [row]), "scs"), 0)
    assert math.isnan(r["scs_self_kindness"])
    assert math.isnan(r["scs_total"])
    assert math.isnan(r["scs_total_subscale_mean"])
    assert r["scs_self_judgment"] == pytest.approx(1.4)
    assert not r["scs_prorated"]  # every reported score rests on all its items


def test_scs_sf_total_subscales_and_author_caveat() -> None:
    row = [2, 4, 3, 2, 4, 5, 3, 1, 2, 5, 1, 2]
    short = row.copy()
    short[3 - 1] = NA
    with pytest.warns(ScoringCaveatWarning, match="not recommended"):
        out = score(frame_for("scs_sf", [row, short]), "scs_sf")
    a, b = row_at(out, 0), row_at(out, 1)
    # keyed items 1..12: 4,4,3,4,4,5,3,5,4,5,5,4 = 50
    assert a["scs_sf_total"] == pytest.approx(50 / 12)
    assert a["scs_sf_self_kindness"] == pytest.approx(4.5)
    assert a["scs_sf_self_judgment"] == pytest.approx(1.5)
    assert a["scs_sf_common_humanity"] == pytest.approx(4.5)
    assert a["scs_sf_isolation"] == pytest.approx(1.5)
    assert a["scs_sf_mindfulness"] == pytest.approx(3.0)
    assert a["scs_sf_over_identification"] == pytest.approx(2.0)
    assert b["scs_sf_total"] == pytest.approx(47 / 11)
    assert math.isnan(b["scs_sf_mindfulness"])  # both items required
    two_missing = row.copy()
    two_missing[0] = two_missing[1] = NA
    with pytest.warns(ScoringCaveatWarning):
        c = row_at(score(frame_for("scs_sf", [two_missing]), "scs_sf"), 0)
    assert math.isnan(c["scs_sf_total"])


def test_phq9_total_severity_flag_and_half_up_proration() -> None:
    rows = [
        [1, 2, 3, 0, 1, 2, 3, 0, 1],  # 13 -> moderate, item 9 = 1 -> flag
        [1, NA, NA, 0, 1, 2, 3, 0, 1],  # 8 over 7 items -> 8 * 9 / 7 = 10.29 -> 10 moderate
        [0, 0, 0, 0, 1, 1, 1, NA, 1],  # 4 over 8 -> 4.5 -> 5 (half up; half-even gives 4)
        [1, NA, NA, NA, 1, 2, 3, 0, 1],  # 3 missing -> no total
        [0, 0, 0, 0, 0, 0, 0, 0, NA],  # item 9 missing: flag unknown, total 0 -> 0
    ]
    out = score(frame_for("phq9", rows), "phq9")
    assert list(out["phq9_total"].iloc[:3]) == [13.0, 10.0, 5.0]
    assert math.isnan(out["phq9_total"].iloc[3])
    assert out["phq9_total"].iloc[4] == 0.0
    assert list(out["phq9_severity"].astype(object).iloc[:3]) == ["moderate", "moderate", "mild"]
    assert pd.isna(out["phq9_severity"].iloc[3])
    assert out["phq9_severity"].iloc[4] == "none"
    assert list(out["phq9_item9_flag"].iloc[:4]) == [True, True, True, True]
    assert out["phq9_item9_flag"].iloc[4] is pd.NA
    assert list(out["phq9_prorated"]) == [False, True, True, False, True]


def test_phq9_severity_band_edges() -> None:
    # totals 4,5,9,10,14,15,19,20,27 from complete rows
    totals = [4, 5, 9, 10, 14, 15, 19, 20, 27]
    rows = []
    for t in totals:
        items = [3] * (t // 3) + ([t % 3] if t % 3 else [])
        rows.append(items + [0] * (9 - len(items)))
    out = score(frame_for("phq9", rows), "phq9")
    assert list(out["phq9_total"]) == [float(t) for t in totals]
    assert list(out["phq9_severity"].astype(str)) == [
        "none",
        "mild",
        "mild",
        "moderate",
        "moderate",
        "moderately_severe",
        "moderately_severe",
        "severe",
        "severe",
    ]


def test_gad7_half_up_and_missing_limit() -> None:
    rows = [
        [3, 3, 3, 0, 0, 0, NA],  # 9 over 6 -> 10.5 -> 11 (half-even would give 10) -> moderate
        [3, 3, 3, 0, 0, NA, NA],  # two missing -> no total
        [0, 1, 1, 1, 1, 0, 0],  # 4 -> minimal
    ]
    out = score(frame_for("gad7", rows), "gad7")
    assert out["gad7_total"].iloc[0] == 11.0
    assert out["gad7_severity"].iloc[0] == "moderate"
    assert math.isnan(out["gad7_total"].iloc[1])
    assert out["gad7_total"].iloc[2] == 4.0
    assert out["gad7_severity"].iloc[2] == "minimal"


def test_fscrs_sums_and_unrounded_proration() -> None:
    full = [float(i % 5) for i in range(1, 23)]
    one_missing = full.copy()
    one_missing[0] = NA  # inadequate-self item 1 (answer 1)
    two_missing_hated = full.copy()
    two_missing_hated[9 - 1] = two_missing_hated[10 - 1] = NA
    out = score(frame_for("fscrs", [full, one_missing, two_missing_hated]), "fscrs")
    # IS items 1,2,4,6,7,14,17,18,20 -> 1,2,4,1,2,4,2,3,0 = 19
    # HS items 9,10,12,15,22 -> 4,0,2,0,2 = 8; RS 3,5,8,11,13,16,19,21 -> 3,0,3,1,3,1,4,1 = 16
    assert list(out.loc[0, ["fscrs_inadequate_self", "fscrs_hated_self"]]) == [19.0, 8.0]
    assert out.loc[0, "fscrs_reassured_self"] == 16.0
    assert out.loc[1, "fscrs_inadequate_self"] == pytest.approx(18 * 9 / 8)  # 20.25, unrounded
    assert math.isnan(out.loc[2, "fscrs_hated_self"])
    assert out.loc[2, "fscrs_inadequate_self"] == 19.0


def test_qpr15_prorates_up_to_three_missing() -> None:
    rows = [[2] * 15, [3] * 12 + [NA] * 3, [3] * 11 + [NA] * 4]
    out = score(frame_for("qpr15", rows), "qpr15")
    assert out["qpr15_total"].iloc[0] == 30.0
    assert out["qpr15_total"].iloc[1] == 45.0  # 36 * 15 / 12
    assert math.isnan(out["qpr15_total"].iloc[2])


def test_swemwbs_conversion_table_and_complete_only() -> None:
    rows = [[3] * 7, [5] * 7, [1] * 7, [4, 4, 4, 4, 4, 4, 3], [3, 3, 3, 3, 3, 3, NA]]
    out = score(frame_for("swemwbs", rows), "swemwbs")
    assert list(out["swemwbs_raw"].iloc[:4]) == [21.0, 35.0, 7.0, 27.0]
    # Warwick conversion table: 21 -> 19.25, 35 -> 35.00, 7 -> 7.00, 27 -> 24.11
    assert list(out["swemwbs_metric"].iloc[:4]) == [19.25, 35.00, 7.00, 24.11]
    assert math.isnan(out["swemwbs_raw"].iloc[4])
    assert math.isnan(out["swemwbs_metric"].iloc[4])


def test_incom_reverses_items_5_and_11() -> None:
    row = [5, 4, 3, 2, 1, 5, 4, 3, 2, 1, 5]
    missing_two_ability = row.copy()
    missing_two_ability[0] = missing_two_ability[1] = NA
    out = score(frame_for("incom", [row, missing_two_ability]), "incom")
    assert out.loc[0, "incom_ability"] == pytest.approx(24 / 6)  # 5,4,3,2,(6-1),5
    assert out.loc[0, "incom_opinion"] == pytest.approx(11 / 5)  # 4,3,2,1,(6-5)
    assert out.loc[0, "incom_total"] == pytest.approx(35 / 11)
    assert math.isnan(out.loc[1, "incom_ability"])
    assert math.isnan(out.loc[1, "incom_total"])
    assert out.loc[1, "incom_opinion"] == pytest.approx(11 / 5)


def test_ucla3_complete_only() -> None:
    out = score(frame_for("ucla3", [[1, 2, 3], [3, NA, 3]]), "ucla3")
    assert out["ucla3_total"].iloc[0] == 6.0
    assert math.isnan(out["ucla3_total"].iloc[1])


def test_ders16_subscales_and_total() -> None:
    row = [float(i % 5 + 1) for i in range(1, 17)]
    out = score(frame_for("ders16", [row]), "ders16")
    r = row_at(out, 0)
    assert r["ders16_clarity"] == 5.0  # items 1,2 = 2,3
    assert r["ders16_goals"] == 8.0  # 3,7,15 = 4,3,1
    assert r["ders16_impulse"] == 11.0  # 4,8,11 = 5,4,2
    assert r["ders16_strategies"] == 13.0  # 5,6,12,14,16 = 1,2,3,5,2
    assert r["ders16_nonacceptance"] == 10.0  # 9,10,13 = 5,1,4
    assert r["ders16_total"] == 47.0


def test_sscs_s_reverses_2_4_5() -> None:
    out = score(frame_for("sscs_s", [[5, 1, 4, 2, 2, 3]]), "sscs_s")
    assert out["sscs_s_total"].iloc[0] == pytest.approx(25 / 6)  # 5,5,4,4,4,3


def test_empty_response_row_scores_nothing_and_is_not_zero() -> None:
    for spec in list_specs():
        data = frame_for(spec.id, [[NA] * spec.n_items])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ScoringCaveatWarning)
            result = score_with_provenance(data, spec.id).data
        for col in spec.score_columns[:-2]:
            assert pd.isna(result[col].iloc[0]), (spec.id, col)
        assert result[f"{spec.id}_n_answered"].iloc[0] == 0


def test_several_instruments_keep_other_columns_and_record_provenance() -> None:
    a = frame_for("gad7", [[1] * 7, [2] * 7])
    b = frame_for("ucla3", [[1, 1, 1], [3, 3, 3]]).drop(columns="participant")
    data = pd.concat([a, b], axis=1)
    data["timepoint"] = ["baseline", "week12"]
    result = score_with_provenance(data)  # detect instruments from the columns
    assert [p.instrument for p in result.provenance] == ["gad7", "ucla3"]
    assert all(len(p.spec_sha256) == 64 for p in result.provenance)
    out = result.data
    assert list(out["timepoint"]) == ["baseline", "week12"]
    assert list(out["gad7_total"]) == [7.0, 14.0]
    assert list(out["ucla3_total"]) == [3.0, 9.0]
    assert list(out.columns[: len(data.columns)]) == list(data.columns)


def test_existing_score_column_is_an_error_unless_replaced() -> None:
    data = frame_for("ucla3", [[1, 2, 3]])
    data["ucla3_total"] = 99
    with pytest.raises(ScoreColumnConflictError, match="ucla3_total"):
        score(data, "ucla3")
    assert score(data, "ucla3", replace_existing=True)["ucla3_total"].iloc[0] == 6.0

"""Tests for peerlens.instruments.change (Reliable Change Index, clinical cut-offs).

Independent references used:
- Published worked RCI example (Wodrich, *Social-Emotional Assessment in Schools*, open
  textbook, Appendix "How to Calculate Reliable Change Indexes"): Piers-Harris-2 total
  score SEM = 3.07, S_diff = 4.34, criterion 1.96 x 4.34 = 8.51; a change from 24 to 35
  (11 points) is reliable.
- Jacobson & Truax (1991) formulas computed by hand in the test: SE_diff = SD sqrt(2)
  sqrt(1 - r_xx), cut-offs a, b, c, on the Dyadic Adjustment Scale norms of Spanier (1976):
  married M = 114.8 (SD 17.8), divorced M = 70.7 (SD 23.8).
- Hypothesis properties: the classification mirrors when the direction of improvement
  flips; c is equally many SDs from both population means.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerlens import PeerlensError
from peerlens.instruments.change import ClinicalCutoffs, clinical_cutoffs, reliable_change
from peerlens.instruments.reliability import (
    InsufficientDataError,
    NonNumericDataError,
    PsychometricsError,
    ZeroVarianceError,
)

DAS = {
    "clinical_mean": 70.7,
    "clinical_sd": 23.8,
    "functional_mean": 114.8,
    "functional_sd": 17.8,
}


def test_published_worked_example_piers_harris() -> None:
    # T-score scale (SD 10 by construction) with reliability chosen so SEM = 3.07 exactly.
    sem = 3.07
    reliability = 1 - (sem / 10.0) ** 2
    rc = reliable_change(
        pd.DataFrame({"pre": [24.0], "post": [35.0]}),
        sd_pre=10.0,
        reliability=reliability,
        higher_is_better=True,
    )
    assert round(rc.se_diff, 2) == 4.34
    assert round(rc.min_reliable_change, 2) == 8.51
    assert rc.table["change"].tolist() == [11.0]
    assert rc.table["reliable_change"].tolist() == ["improved"]


def test_se_diff_and_rci_by_hand() -> None:
    data = pd.DataFrame({"pre": [30.0, 28.0, 35.0, 22.0], "post": [20.0, 27.0, 40.0, 21.0]})
    sd, r = 7.5, 0.88
    rc = reliable_change(data, sd_pre=sd, reliability=r, higher_is_better=False)
    se_diff = math.sqrt(2 * (sd * math.sqrt(1 - r)) ** 2)
    assert rc.se_diff == pytest.approx(se_diff, rel=1e-12)
    expected_rci = [(b - a) / se_diff for a, b in zip(data["pre"], data["post"], strict=True)]
    assert rc.table["rci"].tolist() == pytest.approx(expected_rci, rel=1e-12)
    # se_diff = 3.674; |RCI|: 2.72, 0.27, 1.36, 0.27; lower is better -> first improved.
    assert rc.table["reliable_change"].tolist() == [
        "improved",
        "no_reliable_change",
        "no_reliable_change",
        "no_reliable_change",
    ]
    assert rc.z_critical == pytest.approx(1.959964, abs=1e-6)
    assert rc.sd_pre_source == "given"
    assert "Jacobson" in rc.citation


def test_sample_sd_used_when_no_norm_given() -> None:
    pre = [12.0, 15.0, 9.0, 20.0, 14.0]
    data = pd.DataFrame({"pre": pre, "post": [10.0, 15.0, 4.0, 12.0, 14.0]})
    rc = reliable_change(data, reliability=0.8, higher_is_better=False)
    mean = sum(pre) / 5
    sd = math.sqrt(sum((p - mean) ** 2 for p in pre) / 4)
    assert rc.sd_pre == pytest.approx(sd)
    assert rc.sd_pre_source == "sample"
    assert rc.se_diff == pytest.approx(sd * math.sqrt(2) * math.sqrt(0.2))


def test_threshold_is_strict() -> None:
    sd, r = 10.0, 0.9
    rc0 = reliable_change(
        pd.DataFrame({"pre": [0.0], "post": [1.0]}), sd_pre=sd, reliability=r, higher_is_better=True
    )
    just = rc0.min_reliable_change
    data = pd.DataFrame(
        {
            "pre": [0.0, 0.0, 0.0, 0.0],
            "post": [just + 1e-9, just - 1e-9, -just - 1e-9, -just + 1e-9],
        }
    )
    rc = reliable_change(data, sd_pre=sd, reliability=r, higher_is_better=True)
    assert rc.table["reliable_change"].tolist() == [
        "improved",
        "no_reliable_change",
        "deteriorated",
        "no_reliable_change",
    ]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    pairs=st.lists(
        st.tuples(st.integers(min_value=0, max_value=27), st.integers(min_value=0, max_value=27)),
        min_size=1,
        max_size=25,
    ),
    reliability=st.floats(min_value=0.5, max_value=0.95),
    sd=st.floats(min_value=1.0, max_value=10.0),
)
def test_classification_mirrors_when_direction_flips(
    pairs: list[tuple[int, int]], reliability: float, sd: float
) -> None:
    data = pd.DataFrame(pairs, columns=["pre", "post"])
    up = reliable_change(data, sd_pre=sd, reliability=reliability, higher_is_better=True)
    down = reliable_change(data, sd_pre=sd, reliability=reliability, higher_is_better=False)
    assert up.table["rci"].tolist() == down.table["rci"].tolist()
    swap = {"improved": "deteriorated", "deteriorated": "improved"}
    mirrored = [swap.get(c, c) for c in up.table["reliable_change"]]
    assert mirrored == down.table["reliable_change"].tolist()
    # The sign of the RCI is the sign of post - pre.
    signs = np.sign(up.table["rci"].to_numpy())
    assert (signs == np.sign(data["post"] - data["pre"]).to_numpy()).all()


def test_cutoffs_by_hand_on_das_norms() -> None:
    cut = clinical_cutoffs(**DAS, higher_is_better=True)
    assert cut.a == pytest.approx(70.7 + 2 * 23.8)
    assert cut.b == pytest.approx(114.8 - 2 * 17.8)
    assert cut.c == pytest.approx((23.8 * 114.8 + 17.8 * 70.7) / (23.8 + 17.8))
    assert (round(cut.a, 1), round(cut.b, 1), round(cut.c, 2)) == (118.3, 79.2, 95.93)


def test_cutoffs_for_a_symptom_scale_point_downwards() -> None:
    # Illustrative symptom norms: clinical 18 (SD 5), functional 4 (SD 3.5); lower is better.
    cut = clinical_cutoffs(
        clinical_mean=18,
        clinical_sd=5,
        functional_mean=4,
        functional_sd=3.5,
        higher_is_better=False,
    )
    assert cut.a == pytest.approx(8.0)
    assert cut.b == pytest.approx(11.0)
    assert cut.c == pytest.approx((5 * 4 + 3.5 * 18) / 8.5)
    assert 4 < cut.c < 18


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    m_clin=st.floats(min_value=-50, max_value=50),
    gap=st.floats(min_value=0.5, max_value=50),
    s_clin=st.floats(min_value=0.5, max_value=20),
    s_func=st.floats(min_value=0.5, max_value=20),
    higher=st.booleans(),
)
def test_c_is_equally_many_sds_from_both_means(
    m_clin: float, gap: float, s_clin: float, s_func: float, higher: bool
) -> None:
    m_func = m_clin + gap if higher else m_clin - gap
    cut = clinical_cutoffs(
        clinical_mean=m_clin,
        clinical_sd=s_clin,
        functional_mean=m_func,
        functional_sd=s_func,
        higher_is_better=higher,
    )
    assert abs(cut.c - m_clin) / s_clin == pytest.approx(abs(m_func - cut.c) / s_func, rel=1e-9)
    assert min(m_clin, m_func) <= cut.c <= max(m_clin, m_func)


def test_cutoffs_refuse_norms_contradicting_direction() -> None:
    with pytest.raises(PsychometricsError, match="check the direction"):
        clinical_cutoffs(**DAS, higher_is_better=False)
    with pytest.raises(PsychometricsError, match="positive"):
        clinical_cutoffs(**{**DAS, "clinical_sd": 0}, higher_is_better=True)
    with pytest.raises(PsychometricsError, match="finite"):
        clinical_cutoffs(**{**DAS, "functional_mean": float("nan")}, higher_is_better=True)


def test_jacobson_truax_categories_with_cutoff() -> None:
    cut = clinical_cutoffs(**DAS, higher_is_better=True)
    data = pd.DataFrame(
        {
            "couple": ["A", "B", "C", "D"],
            # recovered: big gain past c; improved: big gain below c;
            # unchanged: small gain; deteriorated: big loss.
            "pre": [70.0, 50.0, 80.0, 90.0],
            "post": [110.0, 85.0, 85.0, 55.0],
        }
    )
    rc = reliable_change(
        data,
        participant="couple",
        sd_pre=23.8,
        reliability=0.96,
        higher_is_better=True,
        cutoff=cut,
        criterion="c",
    )
    # SE_diff = 23.8 * sqrt(2) * sqrt(0.04) = 6.73; criterion 13.2 points.
    assert rc.se_diff == pytest.approx(23.8 * math.sqrt(2) * 0.2)
    assert rc.cutoff == pytest.approx(cut.c)
    assert rc.table["couple"].tolist() == ["A", "B", "C", "D"]
    assert rc.table["jt_category"].tolist() == [
        "recovered",
        "improved",
        "unchanged",
        "deteriorated",
    ]
    assert rc.table["post_functional"].tolist() == [True, False, False, False]
    assert rc.table["pre_functional"].tolist() == [False, False, False, False]


def test_cutoff_object_direction_must_match() -> None:
    cut = clinical_cutoffs(**DAS, higher_is_better=True)
    with pytest.raises(PsychometricsError, match="higher_is_better"):
        reliable_change(
            pd.DataFrame({"pre": [1.0], "post": [2.0]}),
            sd_pre=5,
            reliability=0.8,
            higher_is_better=False,
            cutoff=cut,
        )
    assert isinstance(cut, ClinicalCutoffs)


def test_long_layout_equals_wide_and_counts_missing() -> None:
    wide = pd.DataFrame(
        {"id": [1, 2, 3, 4], "pre": [10.0, 12.0, np.nan, 8.0], "post": [5.0, 13.0, 7.0, 2.0]}
    )
    long = wide.melt(id_vars="id", var_name="when", value_name="phq9_total").dropna()
    long = pd.concat([long, pd.DataFrame({"id": [1], "when": ["follow_up"], "phq9_total": [3.0]})])
    from_wide = reliable_change(
        wide, participant="id", sd_pre=5.0, reliability=0.84, higher_is_better=False
    )
    from_long = reliable_change(
        long,
        "pre",
        "post",
        participant="id",
        timepoint="when",
        score="phq9_total",
        sd_pre=5.0,
        reliability=0.84,
        higher_is_better=False,
    )
    assert from_wide.n == from_long.n == 3
    assert from_wide.n_excluded == from_long.n_excluded == 1
    pd.testing.assert_series_equal(
        from_wide.table["rci"].reset_index(drop=True),
        from_long.table.sort_values("id")["rci"].reset_index(drop=True),
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"reliability": 1.0}, PsychometricsError, "strictly between 0 and 1"),
        ({"reliability": 0.0}, PsychometricsError, "strictly between 0 and 1"),
        ({"reliability": 1.3}, PsychometricsError, "strictly between 0 and 1"),
        ({"sd_pre": -2.0}, PsychometricsError, "sd_pre must be positive"),
        ({"higher_is_better": "yes"}, PsychometricsError, "True or False"),
        ({"criterion": "d"}, PsychometricsError, "criterion"),
    ],
)
def test_bad_parameters_are_refused(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    params: dict[str, object] = {"reliability": 0.8, "sd_pre": 5.0, "higher_is_better": True}
    params.update(kwargs)
    with pytest.raises(error, match=message):
        reliable_change(pd.DataFrame({"pre": [1.0, 2.0], "post": [2.0, 3.0]}), **params)  # type: ignore[arg-type]
    assert issubclass(error, PeerlensError)


def test_bad_data_is_refused() -> None:
    with pytest.raises(PsychometricsError, match="'baseline'"):
        reliable_change(
            pd.DataFrame({"pre": [1.0]}),
            "baseline",
            "pre",
            reliability=0.8,
            sd_pre=1.0,
            higher_is_better=True,
        )
    with pytest.raises(NonNumericDataError, match=r"'post'.*'n/a'.*data row 2"):
        reliable_change(
            pd.DataFrame({"pre": [1, 2], "post": ["3", "n/a"]}),
            reliability=0.8,
            sd_pre=1.0,
            higher_is_better=True,
        )
    with pytest.raises(InsufficientDataError, match="at least 3"):
        reliable_change(
            pd.DataFrame({"pre": [1.0, 2.0], "post": [2.0, 3.0]}),
            reliability=0.8,
            higher_is_better=True,
        )
    with pytest.raises(ZeroVarianceError, match="same pre score"):
        reliable_change(
            pd.DataFrame({"pre": [4.0, 4.0, 4.0], "post": [2.0, 3.0, 5.0]}),
            reliability=0.8,
            higher_is_better=True,
        )
    with pytest.raises(InsufficientDataError, match="no participant"):
        reliable_change(
            pd.DataFrame({"pre": [np.nan], "post": [2.0]}),
            reliability=0.8,
            sd_pre=3.0,
            higher_is_better=True,
        )
    with pytest.raises(PsychometricsError, match="participant= and score="):
        reliable_change(
            pd.DataFrame({"t": ["pre"], "s": [1.0]}),
            timepoint="t",
            reliability=0.8,
            sd_pre=3.0,
            higher_is_better=True,
        )


def test_direction_comes_from_the_spec() -> None:
    from peerlens.instruments.change import score_higher_is_better
    from peerlens.instruments.registry import load_spec

    assert score_higher_is_better(load_spec("phq9"), "phq9_total") is False
    assert score_higher_is_better(load_spec("swemwbs"), "swemwbs_metric") is True
    with pytest.raises(PsychometricsError, match="no direction"):
        score_higher_is_better(load_spec("phq9"), "phq9_severity")
    with pytest.raises(PsychometricsError, match="no score"):
        score_higher_is_better(load_spec("phq9"), "phq9_sum")

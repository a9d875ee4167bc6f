"""Tests for peerlens.instruments.effect_sizes (d_z, d_rm, d_av, g_av).

Independent references used:
- Lakens (2013), Table 1 worked example: ten people rate two movies (Movie 1: 9 7 8 9 8
  9 9 10 9 9; Movie 2: 9 6 7 8 7 9 8 8 8 7). Published: M = 8.7 (SD 0.82) vs 7.7
  (SD 0.95), paired t(9) = 4.74, Cohen's d_z = 1.50, r = .726; reporting example of the
  paper's companion spreadsheet: Hedges's g_av = 1.03. (d_z = 1.50 and t(9) = 4.74 for these
  data are also asserted by the papaja R package's test suite.) d_av = 1.13 and
  d_rm = 1.11 follow from the paper's formulas (eqs. 9-10) on the published SDs and r.
- Hand computation from first principles with plain Python on the same data.
- Hypothesis properties: |g_av| < |d_av|; d_rm == d_av when pre and post SDs are equal;
  swapping pre and post negates every d.
- Large-sample normal approximation of the d_z interval (Cumming, 2012).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from peerlens.instruments.effect_sizes import prepost_effect_sizes
from peerlens.instruments.reliability import (
    InsufficientDataError,
    NonNumericDataError,
    PsychometricsError,
    ZeroVarianceError,
)

MOVIE_1 = [9, 7, 8, 9, 8, 9, 9, 10, 9, 9]
MOVIE_2 = [9, 6, 7, 8, 7, 9, 8, 8, 8, 7]
# Movie 2 as "pre" and Movie 1 as "post" so that the mean difference is +1, as in the paper.
LAKENS = pd.DataFrame({"pre": MOVIE_2, "post": MOVIE_1})


def test_lakens_2013_worked_example() -> None:
    es = prepost_effect_sizes(LAKENS, n_boot=0)
    assert (round(es.mean_post, 1), round(es.sd_post, 2)) == (8.7, 0.82)
    assert (round(es.mean_pre, 1), round(es.sd_pre, 2)) == (7.7, 0.95)
    assert round(es.d_z.value * math.sqrt(es.n), 2) == 4.74  # t(9)
    assert round(es.d_z.value, 2) == 1.50
    assert round(es.r, 3) == 0.726
    assert round(es.d_av.value, 2) == 1.13
    assert round(es.d_rm.value, 2) == 1.11
    assert round(es.g_av.value, 2) == 1.03


def test_lakens_example_by_hand() -> None:
    n = len(MOVIE_1)
    diff = [a - b for a, b in zip(MOVIE_1, MOVIE_2, strict=True)]

    def mean(v: list[float]) -> float:
        return sum(v) / len(v)

    def sd(v: list[float]) -> float:
        m = mean(v)
        return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))

    m1, m2 = mean(MOVIE_1), mean(MOVIE_2)
    s1, s2 = sd(MOVIE_1), sd(MOVIE_2)
    cov = sum((a - m1) * (b - m2) for a, b in zip(MOVIE_1, MOVIE_2, strict=True)) / (n - 1)
    r = cov / (s1 * s2)
    m_diff = mean(diff)
    d_z = m_diff / sd(diff)
    d_rm = m_diff / math.sqrt(s1**2 + s2**2 - 2 * r * s1 * s2) * math.sqrt(2 * (1 - r))
    d_av = m_diff / ((s1 + s2) / 2)
    g_av = d_av * (1 - 3 / (4 * (n - 1) - 1))
    es = prepost_effect_sizes(LAKENS, n_boot=0)
    assert es.r == pytest.approx(r, abs=1e-12)
    assert es.d_z.value == pytest.approx(d_z, abs=1e-12)
    assert es.d_rm.value == pytest.approx(d_rm, abs=1e-12)
    assert es.d_av.value == pytest.approx(d_av, abs=1e-12)
    assert es.g_av.value == pytest.approx(g_av, abs=1e-12)
    assert es.mean_change == pytest.approx(m_diff)


def test_tidy_frame_and_provenance() -> None:
    es = prepost_effect_sizes(LAKENS, n_boot=400, random_state=1)
    table = es.to_frame()
    assert table["effect_size"].tolist() == ["d_z", "d_rm", "d_av", "g_av"]
    assert list(table.columns) == [
        "effect_size",
        "value",
        "ci_low",
        "ci_high",
        "ci_level",
        "n",
        "r",
        "method",
        "citation",
    ]
    assert (table["n"] == 10).all()
    assert table["r"].iloc[0] == pytest.approx(es.r)
    assert "Lakens" in es.g_av.citation and "noncentral" in es.d_z.method
    assert "bootstrap" in es.d_av.method
    for effect in (es.d_z, es.d_rm, es.d_av, es.g_av):
        assert effect.ci_low < effect.value < effect.ci_high


def test_bootstrap_intervals_are_seeded() -> None:
    a = prepost_effect_sizes(LAKENS, n_boot=300, random_state=3)
    b = prepost_effect_sizes(LAKENS, n_boot=300, random_state=3)
    assert (a.d_av.ci_low, a.d_av.ci_high) == (b.d_av.ci_low, b.d_av.ci_high)
    none = prepost_effect_sizes(LAKENS, n_boot=0)
    assert math.isnan(none.d_av.ci_low) and not math.isnan(none.d_z.ci_low)


def test_dz_interval_matches_normal_approximation_at_large_n() -> None:
    rng = np.random.default_rng(8)
    pre = rng.normal(size=4000)
    post = pre + 0.3 + rng.normal(size=4000)
    es = prepost_effect_sizes(pd.DataFrame({"pre": pre, "post": post}), n_boot=0)
    d, n = es.d_z.value, es.n
    half = 1.959964 * math.sqrt(1 / n + d**2 / (2 * n))
    assert es.d_z.ci_low == pytest.approx(d - half, abs=2e-3)
    assert es.d_z.ci_high == pytest.approx(d + half, abs=2e-3)


paired = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=40),
        st.integers(min_value=0, max_value=40),
    ),
    min_size=3,
    max_size=30,
)


def _usable(pairs: list[tuple[int, int]]) -> bool:
    pre = np.array([p[0] for p in pairs], dtype=float)
    post = np.array([p[1] for p in pairs], dtype=float)
    return bool(pre.std() > 0 and post.std() > 0 and (post - pre).std() > 0)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(pairs=paired.filter(_usable))
def test_g_av_is_smaller_than_d_av_in_magnitude(pairs: list[tuple[int, int]]) -> None:
    es = prepost_effect_sizes(pd.DataFrame(pairs, columns=["pre", "post"]), n_boot=0)
    if es.d_av.value != 0:
        assert abs(es.g_av.value) < abs(es.d_av.value)
        assert np.sign(es.g_av.value) == np.sign(es.d_av.value)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(pairs=paired.filter(_usable))
def test_swapping_pre_and_post_negates_every_d(pairs: list[tuple[int, int]]) -> None:
    data = pd.DataFrame(pairs, columns=["pre", "post"])
    forward = prepost_effect_sizes(data, n_boot=0)
    backward = prepost_effect_sizes(data, "post", "pre", n_boot=0)
    for name in ("d_z", "d_rm", "d_av", "g_av"):
        assert getattr(backward, name).value == pytest.approx(-getattr(forward, name).value)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    values=st.lists(st.integers(min_value=0, max_value=30), min_size=4, max_size=25, unique=True),
    shift=st.integers(min_value=-5, max_value=5),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_d_rm_equals_d_av_when_sds_are_equal(values: list[int], shift: int, seed: int) -> None:
    # post is a permutation of pre plus a constant, so SD_pre == SD_post exactly.
    pre = np.array(values, dtype=float)
    post = np.random.default_rng(seed).permutation(pre) + shift
    if (post - pre).std() == 0 or abs(np.corrcoef(pre, post)[0, 1]) > 1 - 1e-9:
        return
    es = prepost_effect_sizes(pd.DataFrame({"pre": pre, "post": post}), n_boot=0)
    assert es.d_rm.value == pytest.approx(es.d_av.value, abs=1e-9)


def test_long_layout_equals_wide_and_listwise_deletion() -> None:
    wide = LAKENS.assign(pid=range(10))
    extra = pd.DataFrame({"pid": [10, 11], "pre": [5.0, np.nan], "post": [np.nan, 6.0]})
    wide = pd.concat([wide, extra], ignore_index=True)
    long = wide.melt(id_vars="pid", var_name="visit", value_name="scs_total").dropna()
    from_wide = prepost_effect_sizes(wide, n_boot=0)
    from_long = prepost_effect_sizes(
        long, "pre", "post", participant="pid", timepoint="visit", score="scs_total", n_boot=0
    )
    assert from_wide.n == 10 and from_wide.n_excluded == 2
    assert from_long.n == 10 and from_long.n_excluded == 2
    assert from_long.d_av.value == pytest.approx(from_wide.d_av.value, abs=1e-12)
    assert round(from_long.d_z.value, 2) == 1.50


def test_bad_input_is_refused() -> None:
    with pytest.raises(InsufficientDataError, match="at least 3"):
        prepost_effect_sizes(pd.DataFrame({"pre": [1, 2], "post": [2, 4]}))
    with pytest.raises(ZeroVarianceError, match="change"):
        prepost_effect_sizes(pd.DataFrame({"pre": [1, 2, 3], "post": [2, 3, 4]}))
    with pytest.raises(ZeroVarianceError, match="pre"):
        prepost_effect_sizes(pd.DataFrame({"pre": [2, 2, 2], "post": [2, 3, 5]}))
    with pytest.raises(NonNumericDataError, match="'pre'"):
        prepost_effect_sizes(pd.DataFrame({"pre": ["1", "two", "3"], "post": [2, 3, 5]}))
    with pytest.raises(PsychometricsError, match="'after'"):
        prepost_effect_sizes(LAKENS, "pre", "after")
    with pytest.raises(PsychometricsError, match="ci"):
        prepost_effect_sizes(LAKENS, ci=95)
    with pytest.raises(PsychometricsError, match="no rows"):
        long = pd.DataFrame({"pid": [1, 2], "visit": ["t0", "t1"], "s": [1.0, 2.0]})
        prepost_effect_sizes(long, participant="pid", timepoint="visit", score="s")


def test_dz_interval_is_finite_for_tiny_samples() -> None:
    # Regression: scipy's nct.cdf returns NaN in the far tail for df = 2 (found by Hypothesis).
    es = prepost_effect_sizes(pd.DataFrame({"pre": [0, 1, 3], "post": [0, 0, 1]}), n_boot=0)
    assert es.d_z.value == pytest.approx(-1.0)
    assert math.isfinite(es.d_z.ci_low) and math.isfinite(es.d_z.ci_high)
    assert es.d_z.ci_low < es.d_z.value < es.d_z.ci_high


def test_perfect_correlation_gives_d_rm_zero_not_nan() -> None:
    # Regression (found by Hypothesis): r = 1 up to rounding made sqrt(2 (1 - r)) NaN.
    es = prepost_effect_sizes(pd.DataFrame({"pre": [0, 0, 3], "post": [0, 0, 5]}), n_boot=0)
    assert es.r == pytest.approx(1.0)
    assert es.d_rm.value == 0.0
    assert math.isfinite(es.d_z.value) and math.isfinite(es.d_av.value)

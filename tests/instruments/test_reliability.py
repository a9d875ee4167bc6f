"""Tests for peerlens.instruments.reliability (alpha, omega total, item-total r).

Independent references used:
- psych::alpha() output on R's ``attitude`` data (Chatterjee & Price, 1977): raw_alpha
  0.843 and alpha-if-deleted per item, as printed in a published psych tutorial.
- Hand computation from first principles with plain numpy loops on a small dataset.
- Closed form: for a one-factor covariance matrix with known loadings, omega is exactly
  (sum l)^2 / ((sum l)^2 + sum(1 - l^2)) (McDonald, 1999).
- statsmodels' maximum-likelihood factor analysis (a peer library) for the loadings.
- Coverage of Feldt's interval checked by simulation from a known population alpha.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.multivariate.factor import Factor

from peerlens import PeerlensError
from peerlens.instruments.reliability import (
    HeywoodCaseWarning,
    InsufficientDataError,
    NegativeItemTotalWarning,
    NonNumericDataError,
    PsychometricsError,
    ZeroVarianceError,
    cronbach_alpha,
    item_total_correlations,
    omega_total,
)

# R datasets::attitude (Chatterjee & Price, 1977, Regression Analysis by Example), 30 departments.
ATTITUDE = pd.DataFrame(
    {
        "rating": [43, 63, 71, 61, 81, 43, 58, 71, 72, 67, 64, 67, 69, 68, 77,
                   81, 74, 65, 65, 50, 50, 64, 53, 40, 63, 66, 78, 48, 85, 82],
        "complaints": [51, 64, 70, 63, 78, 55, 67, 75, 82, 61, 53, 60, 62, 83, 77,
                       90, 85, 60, 70, 58, 40, 61, 66, 37, 54, 77, 75, 57, 85, 82],
        "privileges": [30, 51, 68, 45, 56, 49, 42, 50, 72, 45, 53, 47, 57, 83, 54,
                       50, 64, 65, 46, 68, 33, 52, 52, 42, 42, 66, 58, 44, 71, 39],
        "learning": [39, 54, 69, 47, 66, 44, 56, 55, 67, 47, 58, 39, 42, 45, 72,
                     72, 69, 75, 57, 54, 34, 62, 50, 58, 48, 63, 74, 45, 71, 59],
        "raises": [61, 63, 76, 54, 71, 54, 66, 70, 71, 62, 58, 59, 55, 59, 79,
                   60, 79, 55, 75, 64, 43, 66, 63, 50, 66, 88, 80, 51, 77, 64],
        "critical": [92, 73, 86, 84, 83, 49, 68, 66, 83, 80, 67, 74, 63, 77, 77,
                     54, 79, 80, 85, 78, 64, 80, 80, 57, 75, 76, 78, 83, 74, 78],
        "advance": [45, 47, 48, 35, 47, 34, 35, 41, 31, 41, 34, 41, 25, 35, 46,
                    36, 63, 60, 46, 52, 33, 41, 37, 49, 33, 72, 49, 38, 55, 39],
    }
)  # fmt: skip

# psych::alpha(attitude): raw_alpha 0.843; alpha.drop raw_alpha per item (published output).
PSYCH_ALPHA = 0.843
PSYCH_ALPHA_DROP = {
    "rating": 0.810,
    "complaints": 0.797,
    "privileges": 0.828,
    "learning": 0.803,
    "raises": 0.795,
    "critical": 0.864,
    "advance": 0.840,
}

SMALL = pd.DataFrame(
    {
        "q1": [1, 2, 3, 4, 5, 3],
        "q2": [2, 2, 3, 5, 4, 3],
        "q3": [1, 3, 2, 4, 5, 4],
    }
)


def _whitened(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """n x k data whose sample covariance (n - 1) is exactly the identity."""
    z = rng.normal(size=(n, k))
    z -= z.mean(axis=0)
    chol = np.linalg.cholesky(np.cov(z, rowvar=False))
    return z @ np.linalg.inv(chol).T


def _exact_data(cov: np.ndarray, n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Data whose sample covariance equals ``cov`` exactly."""
    rng = np.random.default_rng(seed)
    k = cov.shape[0]
    x = _whitened(rng, n, k) @ np.linalg.cholesky(cov).T
    return pd.DataFrame(x, columns=[f"i{j}" for j in range(1, k + 1)])


# --- Cronbach's alpha --------------------------------------------------------------------


def test_alpha_matches_psych_on_attitude() -> None:
    est = cronbach_alpha(ATTITUDE)
    assert round(est.value, 3) == PSYCH_ALPHA
    assert (est.n, est.n_items, est.n_excluded) == (30, 7, 0)
    assert "Feldt" in est.method and "Cronbach" in est.citation


def test_alpha_if_deleted_matches_psych_on_attitude() -> None:
    table = item_total_correlations(ATTITUDE).set_index("item")
    for name, expected in PSYCH_ALPHA_DROP.items():
        assert round(table.loc[name, "alpha_if_deleted"], 3) == expected


def test_alpha_by_hand_on_small_dataset() -> None:
    rows = SMALL.to_numpy(dtype=float).tolist()
    k = 3
    n = len(rows)

    def var(values: list[float]) -> float:
        m = sum(values) / len(values)
        return sum((v - m) ** 2 for v in values) / (len(values) - 1)

    item_vars = [var([row[j] for row in rows]) for j in range(k)]
    total_var = var([sum(row) for row in rows])
    expected = k / (k - 1) * (1 - sum(item_vars) / total_var)
    est = cronbach_alpha(SMALL)
    assert est.value == pytest.approx(expected, abs=1e-12)
    assert est.n == n


def test_feldt_interval_by_hand() -> None:
    from scipy.stats import f

    est = cronbach_alpha(ATTITUDE, ci=0.90)
    a, n, k = est.value, 30, 7
    df1, df2 = n - 1, (n - 1) * (k - 1)
    assert est.ci_low == pytest.approx(1 - (1 - a) * f.ppf(0.95, df1, df2), abs=1e-12)
    assert est.ci_high == pytest.approx(1 - (1 - a) * f.ppf(0.05, df1, df2), abs=1e-12)
    assert est.ci_low < est.value < est.ci_high


def test_feldt_interval_coverage_by_simulation() -> None:
    # Parallel items with loading l: population alpha = k l^2 / (1 + (k - 1) l^2).
    rng = np.random.default_rng(2026)
    k, n, loading, reps = 5, 40, 0.6, 400
    true_alpha = k * loading**2 / (1 + (k - 1) * loading**2)
    covered = 0
    for _ in range(reps):
        trait = rng.normal(size=(n, 1))
        x = loading * trait + np.sqrt(1 - loading**2) * rng.normal(size=(n, k))
        est = cronbach_alpha(pd.DataFrame(x))
        covered += est.ci_low <= true_alpha <= est.ci_high
    assert 0.92 <= covered / reps <= 0.98


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    k=st.integers(min_value=2, max_value=8),
    values=st.lists(st.integers(min_value=1, max_value=5), min_size=3, max_size=30).filter(
        lambda v: len(set(v)) > 1
    ),
)
def test_alpha_of_identical_items_is_one(k: int, values: list[int]) -> None:
    data = pd.DataFrame({f"q{j}": values for j in range(k)})
    assert cronbach_alpha(data).value == pytest.approx(1.0, abs=1e-12)


def test_listwise_deletion_is_reported_and_equals_complete_case() -> None:
    data = ATTITUDE.astype(float).copy()
    data.loc[[2, 7], "raises"] = np.nan
    data.loc[11, "advance"] = np.nan
    est = cronbach_alpha(data)
    reference = cronbach_alpha(ATTITUDE.drop(index=[2, 7, 11]))
    assert est.n_excluded == 3
    assert est.n == 27
    assert est.value == pytest.approx(reference.value, abs=1e-12)
    with pytest.raises(PsychometricsError, match="data row 3"):
        cronbach_alpha(data, missing="raise")


def test_long_layout_equals_wide() -> None:
    long = (
        ATTITUDE.assign(participant=range(1, 31))
        .melt(id_vars="participant", var_name="item", value_name="response")
        .sample(frac=1.0, random_state=0)
    )
    wide = cronbach_alpha(ATTITUDE)
    from_long = cronbach_alpha(long, layout="long", items=list(ATTITUDE.columns))
    assert from_long.value == pytest.approx(wide.value, abs=1e-12)
    assert from_long.n == 30


def test_long_layout_duplicate_response_is_refused() -> None:
    long = pd.DataFrame({"participant": [1, 1, 1], "item": ["a", "a", "b"], "response": [1, 2, 3]})
    with pytest.raises(PsychometricsError, match="more than one response"):
        cronbach_alpha(long, layout="long")


def test_numeric_strings_and_blanks_are_read_like_numbers() -> None:
    data = SMALL.astype(str)
    data.loc[5, "q2"] = " "
    est = cronbach_alpha(data)
    assert est.n_excluded == 1
    assert est.value == pytest.approx(cronbach_alpha(SMALL.iloc[:5]).value, abs=1e-12)


def test_reverse_keying_inside_equals_reversing_before() -> None:
    flipped = SMALL.copy()
    flipped["q3"] = 6 - flipped["q3"]
    inside = cronbach_alpha(flipped, reverse_keyed=["q3"], response_range=(1, 5))
    assert inside.value == pytest.approx(cronbach_alpha(SMALL).value, abs=1e-12)
    with pytest.raises(PsychometricsError, match="response_range"):
        cronbach_alpha(flipped, reverse_keyed=["q3"])
    with pytest.raises(PsychometricsError, match="'q9'"):
        cronbach_alpha(flipped, reverse_keyed=["q9"], response_range=(1, 5))


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (SMALL[["q1"]], InsufficientDataError, "at least 2 items"),
        (SMALL.iloc[:2], InsufficientDataError, "at least 3 respondents"),
        (SMALL.assign(q2=3), ZeroVarianceError, "'q2'"),
        (SMALL.assign(q3=["1", "2", "often", "4", "5", "3"]), NonNumericDataError, "'often'"),
        (SMALL.assign(q3=[True, False, True, True, False, True]), NonNumericDataError, "boolean"),
        (SMALL.assign(q1=[1, 2, np.inf, 4, 5, 3]), NonNumericDataError, "infinite"),
    ],
)
def test_bad_input_is_refused(data: pd.DataFrame, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        cronbach_alpha(data)
    assert issubclass(error, PeerlensError)


def test_non_numeric_message_names_column_and_row() -> None:
    data = SMALL.assign(q3=["1", "2", "often", "4", "5", "3"])
    with pytest.raises(NonNumericDataError) as info:
        cronbach_alpha(data)
    assert "'q3'" in str(info.value) and "data row 3" in str(info.value)


def test_unknown_item_column_is_named() -> None:
    with pytest.raises(PsychometricsError, match="'q7'"):
        cronbach_alpha(SMALL, items=["q1", "q7"])


def test_items_that_cancel_out_are_refused() -> None:
    data = pd.DataFrame({"a": [1, 2, 3, 4], "b": [5, 4, 3, 2]})
    with pytest.raises(ZeroVarianceError, match="total score"):
        cronbach_alpha(data)


# --- Item-total correlations -------------------------------------------------------------


def test_corrected_item_total_by_hand() -> None:
    x = SMALL.to_numpy(dtype=float)
    table = item_total_correlations(SMALL).set_index("item")
    for j, name in enumerate(SMALL.columns):
        rest = x.sum(axis=1) - x[:, j]
        xm, rm = x[:, j] - x[:, j].mean(), rest - rest.mean()
        expected = (xm * rm).sum() / np.sqrt((xm**2).sum() * (rm**2).sum())
        assert table.loc[name, "corrected_item_total_r"] == pytest.approx(expected, abs=1e-12)
        assert table.loc[name, "mean"] == pytest.approx(x[:, j].mean())


def test_negative_item_total_warns_and_names_the_item() -> None:
    mis_keyed = ATTITUDE.copy()
    mis_keyed["learning"] = 100 - mis_keyed["learning"]
    with pytest.warns(NegativeItemTotalWarning, match="'learning'"):
        table = item_total_correlations(mis_keyed)
    assert table.set_index("item").loc["learning", "corrected_item_total_r"] < 0
    # Reversing it back through the API removes the warning (warnings are errors in tests).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fixed = item_total_correlations(
            mis_keyed, reverse_keyed=["learning"], response_range=(0, 100)
        )
    assert (fixed["corrected_item_total_r"] > 0).all()


# --- Omega total ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "loadings",
    [
        [0.8, 0.7, 0.6, 0.5, 0.4],
        [0.9, 0.3, 0.55, 0.75],
        [0.6, 0.6, 0.6],
    ],
)
def test_omega_closed_form_for_exact_one_factor_covariance(loadings: list[float]) -> None:
    lam = np.array(loadings)
    corr = np.outer(lam, lam)
    np.fill_diagonal(corr, 1.0)
    est = omega_total(_exact_data(corr), n_boot=0)
    expected = lam.sum() ** 2 / (lam.sum() ** 2 + (1 - lam**2).sum())
    assert est.value == pytest.approx(expected, abs=1e-7)
    assert np.allclose(est.loadings, lam, atol=1e-6)
    assert np.isnan(est.ci_low) and np.isnan(est.ci_high)


def test_omega_uses_raw_score_scale_with_unequal_item_sds() -> None:
    lam = np.array([0.8, 0.6, 0.4, 0.7])
    sd = np.array([1.0, 3.0, 0.5, 2.0])
    corr = np.outer(lam, lam)
    np.fill_diagonal(corr, 1.0)
    cov = corr * np.outer(sd, sd)
    est = omega_total(_exact_data(cov), n_boot=0)
    common = (lam * sd).sum() ** 2
    expected = common / (common + ((1 - lam**2) * sd**2).sum())
    assert est.value == pytest.approx(expected, abs=1e-7)


def test_omega_loadings_match_statsmodels_ml_factor_analysis() -> None:
    rng = np.random.default_rng(11)
    lam = np.array([0.75, 0.65, 0.55, 0.45, 0.7, 0.35])
    trait = rng.normal(size=(250, 1))
    x = trait * lam + rng.normal(size=(250, 6)) * np.sqrt(1 - lam**2)
    est = omega_total(pd.DataFrame(x), n_boot=0)
    peer = Factor(x, n_factor=1, method="ml").fit()
    peer_loadings = np.abs(np.asarray(peer.loadings).ravel())
    assert np.allclose(est.loadings, peer_loadings, atol=2e-3)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(
    k=st.integers(min_value=3, max_value=7),
    loading=st.floats(min_value=0.4, max_value=1.5),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_omega_equals_alpha_for_tau_equivalent_items(k: int, loading: float, seed: int) -> None:
    # Tau-equivalent: equal raw loadings, unequal error variances (Lord & Novick, 1968).
    error_var = np.random.default_rng(seed).uniform(0.3, 2.0, size=k)
    cov = np.full((k, k), loading**2) + np.diag(error_var)
    data = _exact_data(cov, n=300, seed=seed)
    omega = omega_total(data, n_boot=0).value
    alpha = cronbach_alpha(data).value
    assert omega == pytest.approx(alpha, abs=1e-6)


def test_omega_close_to_alpha_for_tau_equivalent_sample_at_large_n() -> None:
    rng = np.random.default_rng(5)
    n, k = 20000, 6
    x = rng.normal(size=(n, 1)) * 0.7 + rng.normal(size=(n, k)) * np.sqrt(
        rng.uniform(0.4, 1.2, size=k)
    )
    data = pd.DataFrame(x)
    assert omega_total(data, n_boot=0).value == pytest.approx(cronbach_alpha(data).value, abs=0.005)


def test_omega_exceeds_alpha_for_congeneric_items() -> None:
    lam = np.array([0.9, 0.7, 0.4, 0.3])
    corr = np.outer(lam, lam)
    np.fill_diagonal(corr, 1.0)
    data = _exact_data(corr)
    assert omega_total(data, n_boot=0).value > cronbach_alpha(data).value


def test_omega_bootstrap_interval_is_seeded_and_brackets_estimate() -> None:
    first = omega_total(ATTITUDE, n_boot=300, random_state=7)
    second = omega_total(ATTITUDE, n_boot=300, random_state=7)
    assert (first.ci_low, first.ci_high) == (second.ci_low, second.ci_high)
    assert first.ci_low < first.value < first.ci_high
    assert "bootstrap" in first.method and "McDonald" in first.citation


def test_omega_heywood_case_warns() -> None:
    data = ATTITUDE[["rating", "complaints", "learning", "raises"]].astype(float).copy()
    data["rating_copy"] = data["rating"] + np.linspace(0, 1e-6, len(data))
    with pytest.warns(HeywoodCaseWarning):
        omega_total(data, n_boot=0)


def test_omega_refuses_bad_input() -> None:
    with pytest.raises(InsufficientDataError):
        omega_total(SMALL[["q1"]], n_boot=0)
    with pytest.raises(ZeroVarianceError):
        omega_total(SMALL.assign(q1=2), n_boot=0)
    with pytest.raises(PsychometricsError, match="n_boot"):
        omega_total(SMALL, n_boot=-1)


def test_omega_matches_sklearn_factor_analysis_on_attitude() -> None:
    # scikit-learn's FactorAnalysis is a different ML algorithm (SVD-based EM) fitted here to
    # the standardised items; omega is then computed from its loadings by the formula.
    from sklearn.decomposition import FactorAnalysis

    x = ATTITUDE.to_numpy(dtype=float)
    sd = x.std(axis=0, ddof=1)
    peer = FactorAnalysis(n_components=1, tol=1e-12, max_iter=100_000, svd_method="lapack")
    peer.fit((x - x.mean(axis=0)) / sd)
    lam = np.abs(peer.components_.ravel())
    implied = lam**2 + peer.noise_variance_  # rescale to unit implied variances
    lam_std, unique_std = lam / np.sqrt(implied), peer.noise_variance_ / implied
    common = (lam_std * sd).sum() ** 2
    expected = common / (common + (unique_std * sd**2).sum())
    est = omega_total(ATTITUDE, n_boot=0)
    assert est.value == pytest.approx(expected, abs=1e-6)
    assert np.allclose(est.loadings, lam_std, atol=1e-5)


# --- Items of a scored scale from an instrument spec ---------------------------------------


def test_scale_items_follow_the_spec_keys() -> None:
    from peerlens.instruments.registry import load_spec
    from peerlens.instruments.reliability import scale_items

    spec = load_spec("scs")
    total = scale_items(spec, "scs_total")
    assert total.items == tuple(f"scs_{i}" for i in range(1, 27))
    assert set(total.reverse_keyed) == {f"scs_{i}" for i in spec.reverse_items}
    assert total.response_range == (1, 5)
    judgment = scale_items(spec, "scs_self_judgment")
    assert judgment.items == ("scs_1", "scs_8", "scs_11", "scs_16", "scs_21")
    assert judgment.reverse_keyed == ()
    with pytest.raises(PsychometricsError, match="not a sum or mean of items"):
        scale_items(spec, "scs_total_subscale_mean")
    with pytest.raises(PsychometricsError, match="no score"):
        scale_items(spec, "scs_kindness")


def test_spec_keys_recover_keyed_alpha_on_simulated_scs() -> None:
    from peerlens.instruments.registry import load_spec
    from peerlens.instruments.reliability import scale_items

    spec = load_spec("scs")
    rng = np.random.default_rng(21)
    trait = rng.normal(size=(300, 1))
    keyed = np.clip(np.round(3 + 0.9 * trait + rng.normal(size=(300, 26))), 1, 5)
    raw = keyed.copy()
    for i in spec.reverse_items:  # negatively worded items are answered the other way
        raw[:, i - 1] = 6 - keyed[:, i - 1]
    columns = [f"scs_{i}" for i in range(1, 27)]
    s = scale_items(spec, "scs_total")
    from_spec = cronbach_alpha(
        pd.DataFrame(raw, columns=columns),
        s.items,
        reverse_keyed=s.reverse_keyed,
        response_range=s.response_range,
    )
    assert from_spec.value == pytest.approx(
        cronbach_alpha(pd.DataFrame(keyed, columns=columns)).value, abs=1e-12
    )
    with pytest.warns(NegativeItemTotalWarning):
        item_total_correlations(pd.DataFrame(raw, columns=columns))


def test_omega_refuses_two_items() -> None:
    with pytest.raises(InsufficientDataError, match="at least 3 items"):
        omega_total(ATTITUDE[["rating", "complaints"]], n_boot=0)


def test_nullable_integer_columns_with_missing_answers() -> None:
    data = ATTITUDE.astype("Int64")
    data.loc[4, "critical"] = pd.NA
    est = cronbach_alpha(data)
    assert est.n_excluded == 1
    assert est.value == pytest.approx(cronbach_alpha(ATTITUDE.drop(index=4)).value, abs=1e-12)


def test_reliability_table_agrees_with_the_single_estimators() -> None:
    from peerlens.instruments.reliability import reliability_table

    scales = {"all": list(ATTITUDE.columns), "pair": ["rating", "complaints"]}
    table = reliability_table(ATTITUDE, scales, n_boot=50, random_state=2).set_index("scale")
    assert round(table.loc["all", "alpha"], 3) == PSYCH_ALPHA
    assert table.loc["all", "omega_total"] == pytest.approx(
        omega_total(ATTITUDE, n_boot=0).value, abs=1e-12
    )
    assert table.loc["all", "min_corrected_item_total_r"] == pytest.approx(
        item_total_correlations(ATTITUDE)["corrected_item_total_r"].min()
    )
    pair = table.loc["pair"]
    assert pair["n_items"] == 2 and np.isnan(pair["omega_total"])
    assert pair["alpha"] == pytest.approx(cronbach_alpha(ATTITUDE[["rating", "complaints"]]).value)


def test_reliability_table_from_a_spec() -> None:
    from peerlens.instruments.registry import load_spec
    from peerlens.instruments.reliability import reliability_table, spec_scales

    spec = load_spec("scs")
    scales = spec_scales(spec)
    assert list(scales) == [
        "scs_self_kindness",
        "scs_self_judgment",
        "scs_common_humanity",
        "scs_isolation",
        "scs_mindfulness",
        "scs_over_identification",
        "scs_total",
    ]
    rng = np.random.default_rng(9)
    trait = rng.normal(size=(200, 1))
    keyed = np.clip(np.round(3 + 0.8 * trait + rng.normal(size=(200, 26))), 1, 5)
    raw = keyed.copy()
    for i in spec.reverse_items:
        raw[:, i - 1] = 6 - keyed[:, i - 1]
    columns = [f"scs_{i}" for i in range(1, 27)]
    table = reliability_table(pd.DataFrame(raw, columns=columns), scales, n_boot=0)
    total = table.set_index("scale").loc["scs_total"]
    assert total["alpha"] == pytest.approx(
        cronbach_alpha(pd.DataFrame(keyed, columns=columns)).value, abs=1e-12
    )
    assert (table["min_corrected_item_total_r"] > 0).all()

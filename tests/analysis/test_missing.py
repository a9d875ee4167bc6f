"""Delta-adjusted multiple imputation: checked against what the model implies exactly (a
balanced, complete dataset's REML fixed effects are its cell means, so a shift of the imputed
values moves the interaction by delta times the share imputed) and against the likelihood fit."""

from __future__ import annotations

import numpy as np
import pytest

from peerlens.analysis import MixedModelError, delta_adjustment, fit_mixed_model
from peerlens.analysis._intercept_reml import intercept_design
from peerlens.analysis.missing import _refit

from .test_mixed import ARMS, TIMEPOINTS, simulate

TERM = "arm[PS]:timepoint[week24]"


@pytest.fixture(scope="module")
def fit():  # type: ignore[no-untyped-def]
    return fit_mixed_model(simulate(3, n=80), "score", arms=ARMS, timepoints=TIMEPOINTS)


def test_refit_of_complete_data_is_the_reml_fit() -> None:
    complete = fit_mixed_model(
        simulate(5, n=60, dropout=0.0), "score", arms=ARMS, timepoints=TIMEPOINTS
    )
    design = intercept_design(complete.design, complete.data["participant"].to_numpy())
    beta, cov = _refit(complete.data["score"].to_numpy(), design, (1.0, 1.0))
    np.testing.assert_allclose(beta, [fe.estimate for fe in complete.fixed], rtol=1e-8)
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), [fe.se for fe in complete.fixed], rtol=1e-6)


def test_a_shift_moves_the_effect_by_delta_times_the_share_imputed(fit) -> None:  # type: ignore[no-untyped-def]
    table = delta_adjustment(
        fit, deltas=[0.0, -2.0], shifted_arms=["PS"], terms=[TERM], n_imputations=5, seed=11
    )
    data = fit.data
    ps = set(data.loc[data["arm"] == "PS", "participant"])
    seen = set(data.loc[(data["arm"] == "PS") & (data["timepoint"] == "week24"), "participant"])
    share = (len(ps) - len(seen)) / len(ps)
    shift = table["estimate"].iloc[1] - table["estimate"].iloc[0]
    assert shift == pytest.approx(-2.0 * share, rel=1e-6)


def test_mar_imputation_agrees_with_the_likelihood_estimate(fit) -> None:  # type: ignore[no-untyped-def]
    table = delta_adjustment(
        fit, deltas=[0.0], shifted_arms=["PS"], terms=[TERM], n_imputations=20, seed=2
    )
    main = fit.effect(TERM)
    row = table.iloc[0]
    assert abs(row["estimate"] - main.estimate) < 0.25 * main.se
    assert 0.8 * main.se < row["se"] < 1.3 * main.se
    assert 0 <= row["fmi"] < 1
    assert row["ci_low"] < row["estimate"] < row["ci_high"]


def test_same_seed_same_numbers(fit) -> None:  # type: ignore[no-untyped-def]
    kw = dict(deltas=[0.0, -1.0], shifted_arms=["PS"], terms=[TERM], n_imputations=3)
    first = delta_adjustment(fit, seed=4, **kw)  # type: ignore[arg-type]
    assert first.equals(delta_adjustment(fit, seed=4, **kw))  # type: ignore[arg-type]
    assert not first.equals(delta_adjustment(fit, seed=5, **kw))  # type: ignore[arg-type]


def test_refuses_what_it_cannot_impute(fit) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MixedModelError, match="at least 2"):
        delta_adjustment(fit, deltas=[0.0], shifted_arms=["PS"], terms=[TERM], n_imputations=1)
    with pytest.raises(MixedModelError, match="no fixed effect"):
        delta_adjustment(fit, deltas=[0.0], shifted_arms=["PS"], terms=["arm[X]"])
    ancova = fit_mixed_model(
        simulate(3, n=80), "score", arms=ARMS, timepoints=TIMEPOINTS, ancova=True
    )
    with pytest.raises(MixedModelError, match="random-intercept change model"):
        delta_adjustment(ancova, deltas=[0.0], shifted_arms=["PS"], terms=[TERM])

"""The random-intercept REML fit from per-participant sums: checked against statsmodels' MixedLM
(REML, tightened) on unbalanced data and against ordinary least squares where the REML optimum
is on the boundary (tau^2 = 0). Agreement with lme4 is checked through ``fit_mixed_model``
(tests/analysis/test_mixed.py)."""

from __future__ import annotations

import warnings

import numpy as np
import statsmodels.api as sm

from peerlens.analysis._intercept_reml import fit_intercept_reml, intercept_design
from peerlens.analysis.mixed import _blocks, _cov_beta, _design

from .test_mixed import ARMS, TIMEPOINTS, simulate


def _design_of(seed: int, dropout: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = simulate(seed, n=90, dropout=dropout)
    _, x = _design(data, "arm", "timepoint", ARMS, TIMEPOINTS, False)
    return x, data["score"].to_numpy(), data["participant"].to_numpy()


def test_unbalanced_fit_agrees_with_statsmodels() -> None:
    x, y, groups = _design_of(7, dropout=0.3)
    model = sm.MixedLM(y, x, groups=groups)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = model.fit(reml=True, method=["lbfgs"])
        ref = model.fit(
            reml=True, start_params=first.params_object, method=["bfgs"], gtol=1e-10, maxiter=500
        )
    beta, cov, tau2, sigma2 = fit_intercept_reml(intercept_design(x, groups), y, (1.0, 1.0))
    np.testing.assert_allclose(beta, ref.fe_params, rtol=1e-6, atol=1e-6 * np.abs(beta).max())
    np.testing.assert_allclose(tau2, float(np.asarray(ref.cov_re)[0, 0]), rtol=1e-5)
    np.testing.assert_allclose(sigma2, ref.scale, rtol=1e-5)
    # statsmodels' own SEs come from the joint Hessian; lme4's (and ours) are (X'V^-1 X)^-1.
    psi = np.array([float(np.asarray(ref.cov_re)[0, 0]), ref.scale])
    expected = _cov_beta(_blocks(x, y, np.ones((len(y), 1)), groups), psi, 1)
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), np.sqrt(np.diag(expected)), rtol=1e-6)


def test_no_between_participant_variance_is_the_least_squares_fit() -> None:
    x, y, groups = _design_of(8, dropout=0.0)
    # Every participant's values centred on one common mean: the between-participant mean
    # square is below the within one, so REML puts tau^2 on its boundary, 0.
    means = {g: y[groups == g].mean() for g in set(groups)}
    y = y - np.array([means[g] for g in groups]) + 40.0
    beta, cov, tau2, sigma2 = fit_intercept_reml(intercept_design(x, groups), y, (1.0, 1.0))
    ols, rss, *_ = np.linalg.lstsq(x, y, rcond=None)
    s2 = float(rss[0]) / (len(y) - x.shape[1])
    assert tau2 == 0.0
    np.testing.assert_allclose(beta, ols, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(sigma2, s2, rtol=1e-10)
    np.testing.assert_allclose(cov, s2 * np.linalg.inv(x.T @ x), rtol=1e-10, atol=1e-14)

"""Missing-data sensitivity of a mixed-model effect: pattern-mixture delta adjustment by multiple
imputation.

The main analysis (:func:`~peerlens.analysis.mixed.fit_mixed_model`) is valid when outcomes are
missing at random (MAR). The sensitivity analysis asks how far the effect moves if participants
of the intervention arm(s) who were not observed did worse than MAR predicts by ``delta``
(a pattern-mixture model; Little 1993; Carpenter, Roger & Kenward 2013):

1. For each of ``M`` imputations, draw the fixed effects from their estimated sampling
   distribution, ``beta* ~ N(beta_hat, C)``, and, for every participant in the model, their
   random intercept from its conditional distribution given their observed values::

       b_i | y_o ~ N(k_i * mean(y_o - X_o beta*), k_i * sigma^2 / n_o),   k_i = n_o tau^2 /
       (sigma^2 + n_o tau^2)

   then every missing outcome as ``X beta* + b_i + e``, ``e ~ N(0, sigma^2)`` (MAR).
2. Add ``delta`` (in the outcome's worse direction) to the imputed values of the shifted arms.
3. Fit the same model (REML, the same design and REML deviance as the main fit) to each
   completed dataset.
4. Pool with Rubin's rules (Rubin 1987): ``Q = mean(Q_m)``, ``T = U + (1 + 1/M) B``, with
   Barnard & Rubin's (1999) degrees of freedom from the complete-data (Satterthwaite) df.

Every delta uses the same random draws, so that the estimates differ by the shift alone.
``delta = 0`` is MAR imputation and reproduces the likelihood estimate up to Monte-Carlo error.
Variance components are held at their REML estimates (not drawn), so the imputations are proper
for the fixed effects only. Participants with no value of the outcome are not in the model and
are not imputed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from peerlens.analysis._intercept_reml import InterceptDesign, fit_intercept_reml, intercept_design
from peerlens.analysis.mixed import MixedModelError, MixedModelFit, _design

__all__ = ["delta_adjustment"]

_SOURCES = (
    "Little, R. J. A. (1993). Pattern-mixture models for multivariate incomplete data. JASA, "
    "88, 125-134; Carpenter, J. R., Roger, J. H., & Kenward, M. G. (2013). Analysis of "
    "longitudinal trials with protocol deviation. J Biopharm Stat, 23, 1352-1371; Rubin, D. B. "
    "(1987). Multiple imputation for nonresponse in surveys. Wiley; Barnard, J., & Rubin, D. B. "
    "(1999). Small-sample degrees of freedom with multiple imputation. Biometrika, 86, 948-955"
)


def delta_adjustment(
    fit: MixedModelFit,
    *,
    deltas: Sequence[float],
    shifted_arms: Sequence[str],
    terms: Sequence[str],
    n_imputations: int = 20,
    seed: int = 0,
    participant: str = "participant",
    arm: str = "arm",
    timepoint: str = "timepoint",
    level: float = 0.95,
) -> pd.DataFrame:
    """Pooled estimates of ``terms`` when the missing outcomes of ``shifted_arms`` are shifted by
    each of ``deltas`` (see the module docstring).

    Parameters
    ----------
    fit
        A change model (random intercept, all timepoints) from
        :func:`~peerlens.analysis.mixed.fit_mixed_model`.
    deltas
        Shifts in outcome units, added to imputed values (sign included: pass negative
        values for "worse" on a scale where higher is better).
    shifted_arms
        The arms whose imputed values are shifted.
    terms
        Fixed effects to report (e.g. ``["arm[PS]:timepoint[week12]"]``).
    n_imputations
        Imputations per delta (at least 2).
    seed
        Seed of the imputations (the same seed gives the same numbers).
    participant, arm, timepoint
        Column names in ``fit.data``.
    level
        Confidence level.

    Returns
    -------
    pandas.DataFrame
        One row per delta and term: ``delta``, ``term``, ``estimate``, ``se``, ``df``,
        ``ci_low``, ``ci_high``, ``p``, ``fmi`` (fraction of missing information),
        ``n_imputed`` (values imputed per completed dataset), ``n_imputations``.

    Raises
    ------
    MixedModelError
        The fit is not a random-intercept change model, or fewer than 2 imputations.
    """
    if fit.model != "change" or set(fit.variance) != {"participant_intercept", "residual"}:
        raise MixedModelError("the delta adjustment imputes from a random-intercept change model")
    if n_imputations < 2:
        raise MixedModelError("multiple imputation needs at least 2 imputations")
    if fit.cov_beta is None:
        raise MixedModelError("the fit carries no fixed-effect covariance to draw from")
    unknown = [t for t in terms if t not in fit.terms]
    if unknown:
        raise MixedModelError(f"no fixed effect {', '.join(unknown)} in {fit.outcome}")
    data = fit.data
    arm_levels = list(dict.fromkeys(fit.means["arm"]))
    time_levels = list(dict.fromkeys(fit.means["timepoint"]))
    people = data.drop_duplicates(participant)[[participant, arm]]
    grid = people.merge(pd.DataFrame({timepoint: time_levels}), how="cross")
    grid = grid.merge(data[[participant, timepoint, fit.outcome]], how="left")
    grid["_tp"] = grid[timepoint].map({t: k for k, t in enumerate(time_levels)})
    grid = grid.sort_values([participant, "_tp"], kind="stable").reset_index(drop=True)
    names, x = _design(grid, arm, timepoint, arm_levels, time_levels, False)
    if names != list(fit.terms):  # the same parameterisation as the fit, or a bug
        raise MixedModelError("the imputation design does not match the fitted model")
    y = grid[fit.outcome].to_numpy(dtype=float)
    missing = np.isnan(y)
    codes, groups = np.unique(grid[participant].astype(str).to_numpy(), return_inverse=True)
    design = intercept_design(x, groups)
    shifted = grid[arm].isin(list(shifted_arms)).to_numpy() & missing
    beta_hat = np.array([fe.estimate for fe in fit.fixed])
    tau2 = fit.variance["participant_intercept"]
    sigma2 = fit.variance["residual"]
    idx = [list(fit.terms).index(t) for t in terms]
    complete_df = {fe.term: fe.df for fe in fit.fixed}
    rows = []
    for delta in deltas:
        # The same draws for every delta (common random numbers): the estimates differ by the
        # shift alone, not by Monte-Carlo noise.
        rng = np.random.default_rng(seed)
        estimates = np.empty((n_imputations, len(idx)))
        variances = np.empty((n_imputations, len(idx)))
        for m in range(n_imputations):
            beta = rng.multivariate_normal(beta_hat, fit.cov_beta, method="cholesky")
            mu = x @ beta
            resid = np.where(missing, 0.0, y - mu)
            n_obs = np.bincount(groups, weights=~missing, minlength=len(codes))
            sums = np.bincount(groups, weights=resid, minlength=len(codes))
            shrink = n_obs * tau2 / (sigma2 + n_obs * tau2)
            post_mean = shrink * sums / np.maximum(n_obs, 1)
            post_var = shrink * sigma2 / np.maximum(n_obs, 1)
            b = post_mean + np.sqrt(post_var) * rng.standard_normal(len(codes))
            draws = mu + b[groups] + np.sqrt(sigma2) * rng.standard_normal(len(y))
            completed = np.where(missing, draws + np.where(shifted, delta, 0.0), y)
            beta_m, cov_m = _refit(completed, design, (tau2, sigma2))
            estimates[m] = beta_m[idx]
            variances[m] = np.diag(cov_m)[idx]
        for k, term in enumerate(terms):
            rows.append(
                {
                    "delta": float(delta),
                    "term": term,
                    **_rubin(estimates[:, k], variances[:, k], complete_df[term], level),
                    "n_imputed": int(missing.sum()),
                    "n_imputations": n_imputations,
                }
            )
    columns = ["delta", "term", "estimate", "se", "df", "ci_low", "ci_high", "p", "fmi"]
    return pd.DataFrame(rows, columns=[*columns, "n_imputed", "n_imputations"])


def _refit(
    y: np.ndarray, design: InterceptDesign, start: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """REML fit of a completed dataset by the fitted model's REML deviance, from ``start``
    (tau^2, sigma^2): fixed effects and their covariance. The design's sums are shared by every
    imputation, so each refit costs a one-dimensional search over sums
    (:mod:`peerlens.analysis._intercept_reml`)."""
    beta, cov, _, _ = fit_intercept_reml(design, y, start)
    return beta, cov


def _rubin(q: np.ndarray, u: np.ndarray, df_complete: float, level: float) -> dict[str, float]:
    """Rubin's rules with Barnard & Rubin's (1999) degrees of freedom."""
    m = len(q)
    estimate = float(q.mean())
    within = float(u.mean())
    between = float(q.var(ddof=1))
    total = within + (1 + 1 / m) * between
    gamma = (1 + 1 / m) * between / total if total > 0 else 0.0
    df_rubin = (m - 1) / gamma**2 if gamma > 0 else np.inf
    df_obs = (df_complete + 1) / (df_complete + 3) * df_complete * (1 - gamma)
    df = float(1 / (1 / df_rubin + 1 / df_obs)) if np.isfinite(df_complete) else df_rubin
    se = float(np.sqrt(total))
    crit = float(stats.t.ppf(0.5 + level / 2, df))
    return {
        "estimate": estimate,
        "se": se,
        "df": df,
        "ci_low": estimate - crit * se,
        "ci_high": estimate + crit * se,
        "p": float(2 * stats.t.sf(abs(estimate / se), df)),
        "fmi": float(gamma),
    }

"""Linear mixed models of an outcome over time by arm: REML fits (statsmodels) with
Satterthwaite degrees of freedom and model-based means per arm and timepoint.

The model (Laird & Ware 1982) for participant *i* at timepoint *j*::

    y_ij = x_ij' beta + z_ij' b_i + e_ij,   b_i ~ N(0, G),   e_ij ~ N(0, sigma^2)

with fixed effects ``x`` = intercept, arm, timepoint and arm x timepoint (treatment coding: the
first arm and the first timepoint are the references), a random intercept per participant and,
optionally, a random slope over a numeric time column (``z = (1, t)``, ``G`` unstructured). In R
this is ``lmer(y ~ arm * timepoint + (1 | participant), REML = TRUE)`` (lme4; Bates et al. 2015).
The ANCOVA variant drops the baseline rows and adds the participant's baseline value (centred on
its mean) as a covariate: ``lmer(y ~ baseline_c + arm * timepoint + (1 | participant))`` over the
follow-up timepoints.

The random-intercept model is fitted by its REML deviance profiled over sigma^2 (a search over
one variance ratio, :mod:`peerlens.analysis._intercept_reml`); statsmodels fits the model with
a random slope (``MixedLM``, REML). statsmodels gives Wald tests with normal
reference distributions only; the degrees of freedom here are Satterthwaite's, as lmerTest
computes them (Kuznetsova, Brockhoff & Christensen 2017): for a contrast ``l``,

    df = 2 (l' C l)^2 / (g' A g),

where ``C(psi) = (sum_i X_i' V_i^-1 X_i)^-1`` is the covariance of the fixed effects as a function
of the variance parameters ``psi`` (the entries of ``G`` and ``sigma^2``), ``g`` its gradient
``d(l' C l)/d psi`` at the REML estimate, and ``A = 2 H^-1`` the asymptotic covariance of
``psi`` from the Hessian ``H`` of the REML deviance (-2 log-likelihood). Derivatives are central
differences (one helper, ``_gradient``; the Hessian is its Jacobian). Like lmerTest, the
derivatives are taken in lme4's parameters ``(theta, sigma)`` (``G = sigma^2 L L'``, ``theta``
the entries of ``L``): df is the same in any parameterisation except at a variance estimated at
0, where only this one gives lmerTest's df (see ``_varpar``).

Missing outcomes are dropped row by row: the estimates are valid when data are missing at random
given the observed outcomes and the covariates (the assumption the report states).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from peerlens import PeerlensError
from peerlens.analysis._intercept_reml import fit_intercept_reml, intercept_design

__all__ = ["FixedEffect", "MixedModelError", "MixedModelFit", "fit_mixed_model"]

_SOURCES = (
    "Laird, N. M., & Ware, J. H. (1982). Random-effects models for longitudinal data. "
    "Biometrics, 38, 963-974; Kuznetsova, A., Brockhoff, P. B., & Christensen, R. H. B. (2017). "
    "lmerTest package: tests in linear mixed effects models. Journal of Statistical Software, "
    "82(13), 1-26; Harville, D. A. (1977). Maximum likelihood approaches to variance component "
    "estimation and to related problems. JASA, 72, 320-338 (REML profiled over sigma^2, random "
    "intercept); statsmodels MixedLM (REML, random slope)"
)


class MixedModelError(PeerlensError):
    """The data cannot support the model asked for (what is missing is named)."""


@dataclass(frozen=True)
class FixedEffect:
    """One fixed-effect estimate with its Satterthwaite t-test and confidence interval."""

    term: str
    estimate: float
    se: float
    df: float
    t: float
    p: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class MixedModelFit:
    """A fitted mixed model: what was fitted, on how much data, and its results.

    ``terms`` are the fixed-effect design columns in order; ``design`` is the fixed-effect design
    matrix actually used (rows in the order of ``data``), so an independent fit (R's lme4) can be
    given exactly the same parameterisation. ``variance`` holds the variance components:
    ``participant_intercept``, with a random slope also ``participant_slope`` and
    ``participant_cov``, and ``residual`` (sigma^2). ``loglik`` is the REML log-likelihood with
    the same constants as lme4's ``logLik``. ``means`` are the model-based means per arm and
    timepoint (at the mean baseline in the ANCOVA variant) with SE, Satterthwaite df and 95 % CI.
    """

    outcome: str
    model: str
    formula_r: str
    n_obs: int
    n_participants: int
    terms: tuple[str, ...]
    fixed: tuple[FixedEffect, ...]
    variance: dict[str, float]
    loglik: float
    converged: bool
    means: pd.DataFrame
    data: pd.DataFrame = field(repr=False)
    design: np.ndarray = field(repr=False)
    source: str = _SOURCES
    #: Covariance of the fixed effects (order of ``terms``), e.g. for multiple imputation.
    cov_beta: np.ndarray | None = field(default=None, repr=False)

    def effect(self, term: str) -> FixedEffect:
        """The fixed effect named ``term``."""
        for fe in self.fixed:
            if fe.term == term:
                return fe
        raise KeyError(f"no fixed effect {term!r}; the model has {', '.join(self.terms)}")


def fit_mixed_model(
    data: pd.DataFrame,
    outcome: str,
    *,
    participant: str = "participant",
    arm: str = "arm",
    timepoint: str = "timepoint",
    arms: Sequence[str] | None = None,
    timepoints: Sequence[str] | None = None,
    ancova: bool = False,
    random_slope: str | None = None,
    level: float = 0.95,
) -> MixedModelFit:
    """Fit ``outcome`` ~ arm x timepoint with a random intercept per participant, by REML.

    Parameters
    ----------
    data
        Long format: one row per participant and timepoint, with the columns named below. Rows
        whose outcome is missing (NaN) are left out.
    outcome
        The outcome column (e.g. a scale score).
    participant, arm, timepoint
        Column names.
    arms, timepoints
        Level orders; the first of each is the reference (default: arms sorted, timepoints in
        order of first appearance).
    ancova
        Model the follow-up timepoints only, with the participant's value at the first timepoint
        (centred on its mean) as a covariate; participants without it are left out.
    random_slope
        A numeric column (e.g. years since baseline) to give each participant their own slope
        over, correlated with their intercept.
    level
        Confidence level of the intervals.

    Returns
    -------
    MixedModelFit

    Raises
    ------
    MixedModelError
        A column is missing, an arm or timepoint level has no data, or too few participants
        have repeated measures to separate the random effect from the residual.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> rows = [(f"P{i}", "PS" if i % 2 else "control", t, 10 + 2 * (i % 2) * (t == "post")
    ...          + rng.normal() + rng.normal(0, 0.5)) for i in range(40) for t in ("pre", "post")]
    >>> d = pd.DataFrame(rows, columns=["participant", "arm", "timepoint", "score"])
    >>> fit = fit_mixed_model(d, "score", arms=["control", "PS"], timepoints=["pre", "post"])
    >>> fit.terms[-1]
    'arm[PS]:timepoint[post]'
    """
    frame, arm_levels, time_levels = _prepare(
        data, outcome, participant, arm, timepoint, arms, timepoints, ancova, random_slope
    )
    terms, x = _design(frame, arm, timepoint, arm_levels, time_levels, ancova)
    y = frame[outcome].to_numpy(dtype=float)
    groups = frame[participant].astype(str).to_numpy()
    z = np.ones((len(frame), 1))
    if random_slope is not None:
        z = np.column_stack([z, frame[random_slope].to_numpy(dtype=float)])
    if random_slope is None:
        # One variance ratio once sigma^2 is profiled out: a one-dimensional search over sums
        # by participant, instead of statsmodels' loop over participants per evaluation.
        beta, _, tau2, scale = fit_intercept_reml(intercept_design(x, groups), y, (1.0, 1.0))
        cov_re = np.array([[tau2]])
    else:
        result = _fit(sm.MixedLM(y, x, groups=groups, exog_re=z))
        beta = np.asarray(result.fe_params, dtype=float)
        scale = float(result.scale)
        cov_re = np.asarray(result.cov_re, dtype=float)
    psi = _pack(cov_re, scale)
    blocks = _blocks(x, y, z, groups)
    q = z.shape[1]
    # The Satterthwaite gradients of every term and mean evaluate C(psi) at the same few
    # points (psi and its central-difference neighbours): computed once per point.
    cov_at: dict[bytes, np.ndarray] = {}

    def deviance(p: np.ndarray) -> float:
        return _deviance(blocks, p, q)

    def cov_beta(p: np.ndarray) -> np.ndarray:
        key = p.tobytes()
        if key not in cov_at:
            cov_at[key] = _cov_beta(blocks, p, q)
        return cov_at[key]

    # Satterthwaite's df on lmerTest's scale (theta, sigma): see _lmertest_scale.
    varpar, deviance_vp, cov_beta_vp = _lmertest_scale(cov_re, scale, deviance, cov_beta)
    a_vp = _asymptotic_cov(deviance_vp, varpar)
    fixed = []
    for k, term in enumerate(terms):
        contrast = np.zeros(len(terms))
        contrast[k] = 1.0
        fixed.append(_test(term, contrast, beta, cov_beta_vp, varpar, a_vp, level))
    means = _means(terms, beta, cov_beta_vp, varpar, a_vp, arm_levels, time_levels, level)
    variance = {"participant_intercept": float(cov_re[0, 0])}
    if random_slope is not None:
        variance["participant_slope"] = float(cov_re[1, 1])
        variance["participant_cov"] = float(cov_re[0, 1])
    variance["residual"] = scale
    return MixedModelFit(
        outcome=outcome,
        model="ancova" if ancova else "change",
        formula_r=_formula_r(outcome, ancova, random_slope),
        n_obs=len(frame),
        n_participants=int(frame[participant].nunique()),
        terms=tuple(terms),
        fixed=tuple(fixed),
        variance=variance,
        loglik=-0.5 * deviance(psi),
        converged=_at_optimum(deviance, psi),
        means=means,
        data=frame,
        design=x,
        cov_beta=cov_beta(psi),
    )


# ------------------------------------------------------------------------------ preparing


def _prepare(
    data: pd.DataFrame,
    outcome: str,
    participant: str,
    arm: str,
    timepoint: str,
    arms: Sequence[str] | None,
    timepoints: Sequence[str] | None,
    ancova: bool,
    random_slope: str | None,
) -> tuple[pd.DataFrame, list[str], list[str]]:
    needed = [participant, arm, timepoint, outcome] + ([random_slope] if random_slope else [])
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise MixedModelError(f"the data have no column {', '.join(map(repr, missing))}")
    frame = data[needed].copy()
    numbers = pd.to_numeric(frame[outcome], errors="coerce")
    bad = frame[outcome].notna() & numbers.isna()
    if bad.any():
        row = bad.idxmax()
        value = frame.at[row, outcome]
        raise MixedModelError(
            f"{outcome}: row {row} holds {value!r}, not a number (missing values are NaN)"
        )
    frame[outcome] = numbers
    frame = frame[frame[outcome].notna()]
    time_levels = list(timepoints) if timepoints else list(dict.fromkeys(frame[timepoint]))
    arm_levels = list(arms) if arms else sorted(frame[arm].dropna().unique().tolist())
    unknown = set(frame[timepoint]) - set(time_levels)
    if unknown:
        raise MixedModelError(f"timepoint(s) {sorted(map(str, unknown))} are not in the order")
    if ancova:
        base = frame[frame[timepoint] == time_levels[0]].set_index(participant)[outcome]
        if base.index.duplicated().any():
            raise MixedModelError("a participant has two rows at the baseline timepoint")
        frame = frame[frame[timepoint] != time_levels[0]].copy()
        frame["baseline"] = frame[participant].map(base)
        frame = frame[frame["baseline"].notna()].copy()
        frame["baseline"] = frame["baseline"] - frame["baseline"].mean()
        time_levels = time_levels[1:]
    for name, levels in ((arm, arm_levels), (timepoint, time_levels)):
        empty = [lv for lv in levels if not (frame[name] == lv).any()]
        if empty:
            raise MixedModelError(f"{name} level(s) {empty} have no {outcome} values")
    if frame.duplicated([participant, timepoint]).any():
        raise MixedModelError("a participant has two rows at one timepoint")
    repeated = frame.groupby(participant).size()
    if int((repeated > 1).sum()) < 2:
        raise MixedModelError(
            "fewer than two participants have repeated measures: a random intercept cannot be "
            "separated from the residual"
        )
    return frame.reset_index(drop=True), arm_levels, time_levels


def _design(
    frame: pd.DataFrame,
    arm: str,
    timepoint: str,
    arm_levels: list[str],
    time_levels: list[str],
    ancova: bool,
) -> tuple[list[str], np.ndarray]:
    """Treatment-coded design: intercept, [baseline], arms, timepoints, arm x timepoint."""
    columns: dict[str, np.ndarray] = {"(Intercept)": np.ones(len(frame))}
    if ancova:
        columns["baseline"] = frame["baseline"].to_numpy(dtype=float)
    arm_dummies = {a: (frame[arm] == a).to_numpy(dtype=float) for a in arm_levels[1:]}
    time_dummies = {t: (frame[timepoint] == t).to_numpy(dtype=float) for t in time_levels[1:]}
    for a, col in arm_dummies.items():
        columns[f"arm[{a}]"] = col
    for t, col in time_dummies.items():
        columns[f"timepoint[{t}]"] = col
    for a, acol in arm_dummies.items():
        for t, tcol in time_dummies.items():
            columns[f"arm[{a}]:timepoint[{t}]"] = acol * tcol
    return list(columns), np.column_stack(list(columns.values()))


def _formula_r(outcome: str, ancova: bool, random_slope: str | None) -> str:
    fixed = ("baseline_c + " if ancova else "") + "arm * timepoint"
    re = f"(1 + {random_slope} | participant)" if random_slope else "(1 | participant)"
    return f"lmer({outcome} ~ {fixed} + {re}, REML = TRUE)"


# ------------------------------------------------------------------------------ fitting


def _fit(model: sm.MixedLM) -> Any:
    """REML fit, tightened so that estimates agree with lme4's to about 1e-6 (the tests hold
    them to 1e-4): L-BFGS from statsmodels' start (Powell where L-BFGS meets a singular matrix),
    then BFGS from there with a small gradient tolerance."""
    import warnings

    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        # Judged afterwards: convergence by the deviance's gradient (``converged``), a variance
        # at its boundary by its value (0, lme4's "singular fit").
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="Random effects covariance is singular")
        try:
            first = model.fit(reml=True, method=["lbfgs"])
        except np.linalg.LinAlgError:
            # L-BFGS can step onto a singular covariance when a variance is at its boundary
            # (0: lme4's "singular fit"); Powell's derivative-free search gets there safely.
            first = model.fit(reml=True, method=["powell"])
        return model.fit(
            reml=True, start_params=first.params_object, method=["bfgs"], gtol=1e-10, maxiter=500
        )


def _pack(cov_re: np.ndarray, scale: float) -> np.ndarray:
    """Variance parameters as one vector: the lower triangle of G (row by row), then sigma^2."""
    rows, cols = np.tril_indices(cov_re.shape[0])
    return np.concatenate([cov_re[rows, cols], [scale]])


def _unpack(psi: np.ndarray, q: int) -> tuple[np.ndarray, float]:
    g = np.zeros((q, q))
    rows, cols = np.tril_indices(q)
    g[rows, cols] = psi[: len(rows)]
    g[cols, rows] = psi[: len(rows)]
    return g, float(psi[-1])


@dataclass(frozen=True)
class _Blocks:
    """The data split by participant, with participants of the same size stacked, so that every
    V_i of one size is built and inverted in one batched call."""

    x: list[np.ndarray]  # (m, n_i, p)
    y: list[np.ndarray]  # (m, n_i)
    z: list[np.ndarray]  # (m, n_i, q)
    n: int
    p: int


def _blocks(x: np.ndarray, y: np.ndarray, z: np.ndarray, groups: np.ndarray) -> _Blocks:
    order = np.argsort(groups, kind="stable")
    g_sorted = groups[order]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    bounds = np.r_[starts, len(g_sorted)]
    by_size: dict[int, list[np.ndarray]] = {}
    for lo, hi in itertools.pairwise(bounds):
        by_size.setdefault(int(hi - lo), []).append(order[lo:hi])
    xs, ys, zs = [], [], []
    for idx in by_size.values():
        rows = np.stack(idx)
        xs.append(x[rows])
        ys.append(y[rows])
        zs.append(z[rows])
    return _Blocks(xs, ys, zs, len(y), x.shape[1])


def _gls(blocks: _Blocks, psi: np.ndarray, q: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """For variance parameters ``psi``: X'V^-1X, X'V^-1y, y'V^-1y and log|V| summed over
    participants."""
    g, s2 = _unpack(psi, q)
    xtvx = np.zeros((blocks.p, blocks.p))
    xtvy = np.zeros(blocks.p)
    ytvy = 0.0
    logdet = 0.0
    for x, y, z in zip(blocks.x, blocks.y, blocks.z, strict=True):
        v = z @ g @ np.swapaxes(z, 1, 2) + s2 * np.eye(x.shape[1])
        sign, ld = np.linalg.slogdet(v)
        if np.any(sign <= 0):
            return xtvx, xtvy, ytvy, np.inf
        vinv_x = np.linalg.solve(v, x)
        vinv_y = np.linalg.solve(v, y[..., None])[..., 0]
        xtvx += np.einsum("mij,mik->jk", x, vinv_x)
        xtvy += np.einsum("mij,mi->j", x, vinv_y)
        ytvy += float(np.einsum("mi,mi->", y, vinv_y))
        logdet += float(ld.sum())
    return xtvx, xtvy, ytvy, logdet


def _deviance(blocks: _Blocks, psi: np.ndarray, q: int) -> float:
    """-2 REML log-likelihood at ``psi`` (fixed effects profiled out), with lme4's constants:
    log|V| + log|X'V^-1X| + r'V^-1r + (n - p) log(2 pi)."""
    return _reml_deviance(*_gls(blocks, psi, q), blocks.n)


def _reml_deviance(xtvx: np.ndarray, xtvy: np.ndarray, ytvy: float, logdet: float, n: int) -> float:
    """-2 REML log-likelihood from the GLS sums (X'V^-1X, X'V^-1y, y'V^-1y, log|V|) of ``n``
    observations, with lme4's constants."""
    if not np.isfinite(logdet):
        return np.inf
    beta = np.linalg.solve(xtvx, xtvy)
    quad = ytvy - float(xtvy @ beta)
    _, ld_x = np.linalg.slogdet(xtvx)
    return logdet + ld_x + quad + (n - xtvx.shape[0]) * np.log(2 * np.pi)


def _cov_beta(blocks: _Blocks, psi: np.ndarray, q: int) -> np.ndarray:
    xtvx, *_ = _gls(blocks, psi, q)
    return np.linalg.inv(xtvx)


def _step(psi: np.ndarray) -> np.ndarray:
    return 1e-4 * np.maximum(np.abs(psi), 1e-3 * float(np.max(np.abs(psi))))


def _gradient(f: Callable[[np.ndarray], Any], psi: np.ndarray) -> np.ndarray:
    """Central-difference gradient of ``f`` (scalar- or array-valued) at ``psi``, one step per
    parameter scaled to its size; the one numerical derivative of the module."""
    h = _step(psi)
    parts = []
    for i in range(len(psi)):
        e = np.zeros(len(psi))
        e[i] = h[i]
        parts.append((np.asarray(f(psi + e)) - np.asarray(f(psi - e))) / (2 * h[i]))
    return np.stack(parts)


def _asymptotic_cov(deviance: Callable[[np.ndarray], float], psi: np.ndarray) -> np.ndarray:
    """A = 2 H^-1, H the Hessian of the REML deviance in ``psi`` (the central-difference
    Jacobian of its central-difference gradient, symmetrised)."""
    hess = _gradient(lambda p: _gradient(deviance, p), psi)
    return 2 * np.linalg.pinv((hess + hess.T) / 2)


def _at_optimum(deviance: Callable[[np.ndarray], float], psi: np.ndarray) -> bool:
    """Whether ``psi`` is a stationary point of the REML deviance: every central-difference
    derivative, scaled by its parameter, below 1e-4 (statsmodels' own flag is set by its
    optimiser's stopping rule, which a tightened tolerance can leave False at the optimum)."""
    slope = _gradient(deviance, psi)
    return bool(np.all(np.abs(slope) * np.maximum(np.abs(psi), 1e-8) < 1e-4))


def _lmertest_scale(
    cov_re: np.ndarray,
    scale: float,
    deviance: Callable[[np.ndarray], float],
    cov_beta: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, Callable[[np.ndarray], float], Callable[[np.ndarray], np.ndarray]]:
    """The REML estimate, the deviance and the fixed effects' covariance in coordinates of
    lmerTest's ``(theta, sigma)`` (:func:`_varpar`), for Satterthwaite's df.

    The coordinates are ``u = 1 + (v - v_hat) / size`` (so the estimate is at ``u = 1``): an
    affine map, which leaves the df unchanged, chosen so that :func:`_gradient`'s step of
    ``1e-4 |u|`` is ``1e-4 sigma`` for sigma and ``1e-4 max(max |theta|, 1)`` for every theta.
    A theta is an SD relative to sigma: a step relative to its own size is too small to
    difference the deviance precisely when that SD is small (Orthodont's slope: df 31.132 for
    lmerTest's 31.154), and none at all at 0."""
    q = cov_re.shape[0]
    varpar = _varpar(cov_re, scale)
    size = np.full(len(varpar), max(float(np.max(np.abs(varpar[:-1]))), 1.0))
    size[-1] = varpar[-1]

    def psi(u: np.ndarray) -> np.ndarray:
        return _psi_of_varpar(varpar + (u - 1.0) * size, q)

    return np.ones(len(varpar)), lambda u: deviance(psi(u)), lambda u: cov_beta(psi(u))


def _varpar(cov_re: np.ndarray, scale: float) -> np.ndarray:
    """lmerTest's variance parameters: lme4's theta (the lower triangle, column by column, of the
    Cholesky factor L of G / sigma^2) followed by sigma.

    Satterthwaite's df is invariant to how the variance parameters are written only where the map
    between two parameterisations has a full-rank Jacobian. At a variance estimated at 0 it does
    not (d sigma_b^2 / d theta = 2 sigma^2 theta = 0), and lmerTest's df there (Kuznetsova et al.
    2017) is the one on this scale: the derivatives of ``C`` and of the deviance in a theta at 0
    vanish, so that parameter's uncertainty drops out of the df. A singular ``G`` is factored
    with its zero pivots' columns set to 0 (lme4's estimate can be any factor of the same ``G``;
    this one is exact for a variance at 0)."""
    q = cov_re.shape[0]
    a = cov_re / scale
    low = np.zeros((q, q))
    for j in range(q):
        pivot = a[j, j] - float(low[j, :j] @ low[j, :j])
        low[j, j] = np.sqrt(max(pivot, 0.0))
        for i in range(j + 1, q):
            rest = a[i, j] - float(low[i, :j] @ low[j, :j])
            low[i, j] = rest / low[j, j] if low[j, j] > 0 else 0.0
    cols, rows = np.triu_indices(q)  # column-major lower triangle: lme4's order of theta
    return np.concatenate([low[rows, cols], [np.sqrt(scale)]])


def _psi_of_varpar(varpar: np.ndarray, q: int) -> np.ndarray:
    """The variance parameters ``psi`` (see :func:`_pack`) of lmerTest's ``(theta, sigma)``."""
    low = np.zeros((q, q))
    cols, rows = np.triu_indices(q)
    low[rows, cols] = varpar[:-1]
    s2 = float(varpar[-1]) ** 2
    return _pack(s2 * low @ low.T, s2)


def _satterthwaite(
    contrast: np.ndarray,
    cov_beta: Callable[[np.ndarray], np.ndarray],
    psi: np.ndarray,
    a_psi: np.ndarray,
) -> tuple[float, float]:
    """(variance of l'beta, its Satterthwaite df); ``cov_beta(psi)`` is the fixed effects'
    covariance as a function of the variance parameters ``psi``, ``a_psi`` their asymptotic
    covariance (both on one scale: lmerTest's ``(theta, sigma)`` in :func:`fit_mixed_model`)."""
    var = float(contrast @ cov_beta(psi) @ contrast)
    grad = _gradient(lambda p: contrast @ cov_beta(p) @ contrast, psi)
    denom = float(grad @ a_psi @ grad)
    df = 2 * var**2 / denom if denom > 0 else np.inf
    return var, df


def _test(
    term: str,
    contrast: np.ndarray,
    beta: np.ndarray,
    cov_beta: Callable[[np.ndarray], np.ndarray],
    psi: np.ndarray,
    a_psi: np.ndarray,
    level: float,
) -> FixedEffect:
    est = float(contrast @ beta)
    var, df = _satterthwaite(contrast, cov_beta, psi, a_psi)
    se = float(np.sqrt(var))
    t = est / se
    crit = float(stats.t.ppf(0.5 + level / 2, df))
    return FixedEffect(
        term, est, se, df, t, float(2 * stats.t.sf(abs(t), df)), est - crit * se, est + crit * se
    )


def _means(
    terms: list[str],
    beta: np.ndarray,
    cov_beta: Callable[[np.ndarray], np.ndarray],
    psi: np.ndarray,
    a_psi: np.ndarray,
    arm_levels: list[str],
    time_levels: list[str],
    level: float,
) -> pd.DataFrame:
    """Model-based mean of every arm x timepoint cell (the baseline covariate at its mean, 0)."""
    rows = []
    for a in arm_levels:
        for t in time_levels:
            row = np.zeros(len(terms))
            row[0] = 1.0
            for k, name in enumerate(terms):
                if name in (f"arm[{a}]", f"timepoint[{t}]", f"arm[{a}]:timepoint[{t}]"):
                    row[k] = 1.0
            fe = _test(f"{a}@{t}", row, beta, cov_beta, psi, a_psi, level)
            rows.append((a, t, fe.estimate, fe.se, fe.df, fe.ci_low, fe.ci_high))
    return pd.DataFrame(rows, columns=["arm", "timepoint", "mean", "se", "df", "ci_low", "ci_high"])

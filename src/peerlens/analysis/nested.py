"""The partially nested design: participants of the PS arm share a PS worker, the control arm
has none (Bauer, Sterba & Hallfors 2008).

The change model of :mod:`peerlens.analysis.mixed` gains a random effect of the PS worker that
acts in the PS arm only. For participant *i* of worker *w* at timepoint *j*::

    y_ij = x_ij' beta + d_ij u_w + b_i + e_ij,
    u_w ~ N(0, tau^2),   b_i ~ N(0, sigma_b^2),   e_ij ~ N(0, sigma^2)

where ``d_ij`` is 1 on the PS arm's rows after baseline (participants meet their worker after
the baseline measure, so the worker cannot have shaped it; ``worker_at_baseline=True`` makes it
1 on every PS row) and 0 on every control row. In R this is
``lmer(y ~ arm * timepoint + (0 + d | worker) + (1 | participant), REML = TRUE)`` with ``d``
that dummy (control participants get any worker label: ``d = 0`` there).

statsmodels fits it (``MixedLM``, REML) with one group per worker in the PS arm and one per
control participant, the worker term as the group's random coefficient on ``d`` and the
participant intercept as a variance component within the group. The covariance of the fixed
effects, the REML deviance and Satterthwaite's df are computed here from the cluster
covariances ``V_c = tau^2 d d' + sigma_b^2 P P' + sigma^2 I`` (``P`` the participant
indicators of cluster *c*), through the helpers of :mod:`peerlens.analysis.mixed`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import optimize

from peerlens.analysis.mixed import (
    FixedEffect,
    MixedModelError,
    _asymptotic_cov,
    _at_optimum,
    _design,
    _fit,
    _gradient,
    _means,
    _prepare,
    _reml_deviance,
    _test,
    fit_mixed_model,
)

__all__ = ["NestedModelFit", "WorkerTermImpact", "fit_nested_model"]

_SOURCES = (
    "Bauer, D. J., Sterba, S. K., & Hallfors, D. D. (2008). Evaluating group-based interventions "
    "when control participants are ungrouped. Multivariate Behavioral Research, 43, 210-236; "
    "Kuznetsova et al. (2017) lmerTest (Satterthwaite df); statsmodels MixedLM (REML)"
)

#: What the model assumes and does not fit, stated with every result.
NESTED_NOTES = (
    "The worker effect acts on the PS arm's follow-up rows only (participants meet their worker "
    "after baseline), unless worker_at_baseline was set.",
    "Participants are assumed allocated to workers at random (or as good as): a worker "
    "variance otherwise mixes worker skill with caseload differences.",
    "One residual variance and one participant variance for both arms. Bauer et al. (2008) "
    "advise checking arm-specific residual variances; neither statsmodels MixedLM nor lme4 "
    "fits them (nlme::lme with weights = varIdent(form = ~ 1 | arm) would), so they are not "
    "fitted here.",
    "Not fitted: a worker random slope over time or a worker-by-timepoint variance (lme4 "
    "(0 + d + d:t | worker)); statsmodels could, but the few workers of a PS trial cannot "
    "carry them.",
)


class NestedModelError(MixedModelError):
    """The data cannot carry the partially nested model (what is wrong is named)."""


@dataclass(frozen=True)
class WorkerTermImpact:
    """One arm term's test with and without the worker random effect: what ignoring the
    clustering by worker would have changed."""

    term: str
    estimate: float
    se_nested: float
    df_nested: float
    p_nested: float
    se_ignoring: float
    df_ignoring: float
    p_ignoring: float

    @property
    def se_ratio(self) -> float:
        """SE with the worker term over SE without it (above 1: ignoring it overstates
        precision)."""
        return self.se_nested / self.se_ignoring


@dataclass(frozen=True)
class NestedModelFit:
    """A fitted partially nested model.

    ``variance`` holds ``worker`` (tau^2), ``participant_intercept`` and ``residual``;
    ``worker_icc`` is tau^2 over the total variance of a PS follow-up observation,
    ``tau^2 / (tau^2 + sigma_b^2 + sigma^2)``. ``ignoring`` compares every arm term's SE, df and
    p with those of the same model without the worker term (:func:`fit_mixed_model`).
    ``notes`` are the assumptions and the terms not fitted, for the report to print.
    """

    outcome: str
    model: str
    formula_r: str
    n_obs: int
    n_participants: int
    n_workers: int
    terms: tuple[str, ...]
    fixed: tuple[FixedEffect, ...]
    variance: dict[str, float]
    worker_icc: float
    loglik: float
    converged: bool
    means: pd.DataFrame
    ignoring: tuple[WorkerTermImpact, ...]
    notes: tuple[str, ...]
    data: pd.DataFrame = field(repr=False)
    design: np.ndarray = field(repr=False)
    source: str = _SOURCES

    def effect(self, term: str) -> FixedEffect:
        """The fixed effect named ``term``."""
        for fe in self.fixed:
            if fe.term == term:
                return fe
        raise KeyError(f"no fixed effect {term!r}; the model has {', '.join(self.terms)}")


@dataclass(frozen=True)
class _NestedFrame:
    frame: pd.DataFrame
    arm_levels: list[str]
    time_levels: list[str]
    worker_arm: str
    n_workers: int
    ancova: bool


def fit_nested_model(
    data: pd.DataFrame,
    outcome: str,
    *,
    participant: str = "participant",
    arm: str = "arm",
    timepoint: str = "timepoint",
    worker: str = "worker",
    arms: Sequence[str] | None = None,
    timepoints: Sequence[str] | None = None,
    ancova: bool = False,
    worker_at_baseline: bool = False,
    level: float = 0.95,
) -> NestedModelFit:
    """Fit ``outcome`` ~ arm x timepoint with a participant random intercept and a PS worker
    random effect in the PS arm only, by REML.

    Parameters
    ----------
    data
        Long format as for :func:`fit_mixed_model`, plus a ``worker`` column: the PS worker of
        each participant of the PS arm, empty (NaN) in the control arm.
    outcome, participant, arm, timepoint, arms, timepoints, ancova, level
        As for :func:`fit_mixed_model`.
    worker
        The worker column.
    worker_at_baseline
        Let the worker effect act on the PS arm's baseline rows too (default: follow-up only).

    Returns
    -------
    NestedModelFit

    Raises
    ------
    NestedModelError
        No worker column, a participant with two workers or a PS participant without one, a
        control participant with a worker, workers in more than one arm, or fewer than two
        workers.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> u, rows = rng.normal(0, 1, 6), []
    >>> for i in range(60):
    ...     w, b = ((i // 2) % 6 if i % 2 else None), rng.normal()
    ...     for k, t in enumerate(("pre", "post")):
    ...         shift = k * u[w] if w is not None else 0.0
    ...         rows.append((f"P{i}", "control" if w is None else "PS", t,
    ...                      None if w is None else f"W{w}", 10 + b + shift + rng.normal(0, 0.5)))
    >>> d = pd.DataFrame(rows, columns=["participant", "arm", "timepoint", "worker", "score"])
    >>> fit = fit_nested_model(d, "score", arms=["control", "PS"], timepoints=["pre", "post"])
    >>> fit.n_workers, sorted(fit.variance)
    (6, ['participant_intercept', 'residual', 'worker'])
    """
    nf = _prepare_nested(
        data, outcome, participant, arm, timepoint, worker, arms, timepoints, ancova
    )
    terms, x = _design(nf.frame, arm, timepoint, nf.arm_levels, nf.time_levels, ancova)
    fixed, variance, loglik, converged, means = _fit_nested(
        nf, outcome, terms, x, participant, arm, timepoint, worker, worker_at_baseline, level
    )
    plain = fit_mixed_model(
        data,
        outcome,
        participant=participant,
        arm=arm,
        timepoint=timepoint,
        arms=nf.arm_levels,
        timepoints=timepoints,
        ancova=ancova,
        level=level,
    )
    ignoring = tuple(
        WorkerTermImpact(
            fe.term,
            fe.estimate,
            fe.se,
            fe.df,
            fe.p,
            plain.effect(fe.term).se,
            plain.effect(fe.term).df,
            plain.effect(fe.term).p,
        )
        for fe in fixed
        if fe.term.startswith("arm[")
    )
    return NestedModelFit(
        outcome=outcome,
        model="ancova" if ancova else "change",
        formula_r=formula_r(outcome, ancova),
        n_obs=len(nf.frame),
        n_participants=int(nf.frame[participant].nunique()),
        n_workers=nf.n_workers,
        terms=tuple(terms),
        fixed=fixed,
        variance=variance,
        worker_icc=worker_icc(variance),
        loglik=loglik,
        converged=converged,
        means=means,
        ignoring=ignoring,
        notes=_notes(nf.n_workers),
        data=nf.frame,
        design=x,
    )


def worker_icc(variance: dict[str, float]) -> float:
    """tau^2 / (tau^2 + sigma_b^2 + sigma^2): the share of a PS follow-up observation's
    variance that lies between workers."""
    total = variance["worker"] + variance["participant_intercept"] + variance["residual"]
    return variance["worker"] / total


def formula_r(outcome: str, ancova: bool, extra: str = "") -> str:
    """The matching lme4 call (``d``: the PS arm's worker dummy)."""
    fixed = ("baseline_c + " if ancova else "") + "arm * timepoint" + extra
    return f"lmer({outcome} ~ {fixed} + (0 + d | worker) + (1 | participant), REML = TRUE)"


def _notes(n_workers: int) -> tuple[str, ...]:
    notes = list(NESTED_NOTES)
    if n_workers < 10:
        notes.append(
            f"Only {n_workers} workers: the worker variance is imprecise and the arm effect's "
            "Satterthwaite df is driven by the number of workers, not participants."
        )
    return tuple(notes)


def _prepare_nested(
    data: pd.DataFrame,
    outcome: str,
    participant: str,
    arm: str,
    timepoint: str,
    worker: str,
    arms: Sequence[str] | None,
    timepoints: Sequence[str] | None,
    ancova: bool,
) -> _NestedFrame:
    """:func:`peerlens.analysis.mixed._prepare` plus each participant's worker, checked."""
    if worker not in data.columns:
        raise NestedModelError(f"the data have no column {worker!r} (each PS participant's worker)")
    frame, arm_levels, time_levels = _prepare(
        data, outcome, participant, arm, timepoint, arms, timepoints, ancova, None
    )
    named = data[data[worker].notna()]
    per = named.groupby(participant)[worker].nunique()
    if (per > 1).any():
        raise NestedModelError(f"participant {per[per > 1].index[0]!r} has more than one worker")
    workers_of = named.groupby(participant)[worker].first().astype(str)
    frame[worker] = frame[participant].map(workers_of)
    worker_arms = sorted(frame.loc[frame[worker].notna(), arm].astype(str).unique())
    if len(worker_arms) != 1:
        found = ", ".join(worker_arms) or "none"
        raise NestedModelError(f"workers must belong to exactly one arm; found in: {found}")
    in_arm = frame[arm].astype(str) == worker_arms[0]
    lacking = frame.loc[in_arm & frame[worker].isna(), participant]
    if len(lacking):
        raise NestedModelError(
            f"participant {lacking.iloc[0]!r} of arm {worker_arms[0]!r} has no {worker}"
        )
    n_workers = int(frame.loc[in_arm, worker].nunique())
    if n_workers < 2:
        raise NestedModelError(
            f"{n_workers} worker(s) in arm {worker_arms[0]!r}: a worker variance needs two or more"
        )
    return _NestedFrame(frame, arm_levels, time_levels, worker_arms[0], n_workers, ancova)


@dataclass(frozen=True)
class _Clusters:
    """Clusters of equal size stacked: x (m, n, p), y (m, n), and the two covariance patterns
    d d' (worker) and P P' (same participant), each (m, n, n)."""

    x: list[np.ndarray]
    y: list[np.ndarray]
    s_worker: list[np.ndarray]
    s_participant: list[np.ndarray]
    n: int


def _clusters(
    x: np.ndarray, y: np.ndarray, d: np.ndarray, cluster: np.ndarray, person: np.ndarray
) -> _Clusters:
    by_size: dict[int, list[np.ndarray]] = {}
    for label in dict.fromkeys(cluster):
        rows = np.flatnonzero(cluster == label)
        by_size.setdefault(len(rows), []).append(rows)
    xs, ys, sw, sp = [], [], [], []
    for groups in by_size.values():
        rows = np.stack(groups)
        xs.append(x[rows])
        ys.append(y[rows])
        dd = d[rows]
        sw.append(dd[:, :, None] * dd[:, None, :])
        pp = person[rows]
        sp.append((pp[:, :, None] == pp[:, None, :]).astype(float))
    return _Clusters(xs, ys, sw, sp, len(y))


def _vc_gls(c: _Clusters, psi: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """X'V^-1X, X'V^-1y, y'V^-1y and log|V| for psi = (tau^2, sigma_b^2, sigma^2)."""
    p = c.x[0].shape[2]
    xtvx, xtvy, ytvy, logdet = np.zeros((p, p)), np.zeros(p), 0.0, 0.0
    for x, y, sw, sp in zip(c.x, c.y, c.s_worker, c.s_participant, strict=True):
        v = psi[0] * sw + psi[1] * sp + psi[2] * np.eye(x.shape[1])
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


def _fit_nested(
    nf: _NestedFrame,
    outcome: str,
    terms: list[str],
    x: np.ndarray,
    participant: str,
    arm: str,
    timepoint: str,
    worker: str,
    worker_at_baseline: bool,
    level: float,
) -> tuple[tuple[FixedEffect, ...], dict[str, float], float, bool, pd.DataFrame]:
    """REML fit of the nested model with fixed design ``x``: (fixed effects, variances,
    log-likelihood, converged, model-based means)."""
    frame = nf.frame
    in_arm = (frame[arm].astype(str) == nf.worker_arm).to_numpy()
    # ANCOVA rows are all follow-up; otherwise the first timepoint is the baseline.
    baseline = (frame[timepoint] == nf.time_levels[0]).to_numpy() & (not nf.ancova)
    after = ~baseline | worker_at_baseline
    d = (in_arm & after).astype(float)
    frame["d"] = d  # the dummy R's (0 + d | worker) uses; kept with the data
    person = frame[participant].astype(str).to_numpy()
    cluster = np.where(in_arm, "w:" + frame[worker].astype(str), "p:" + person)
    y = frame[outcome].to_numpy(dtype=float)
    labels = sorted(set(cluster))  # statsmodels' group order
    mats, names = [], []
    for label in labels:
        people = person[cluster == label]
        ids = np.unique(people)
        mats.append((people[:, None] == ids[None, :]).astype(float))
        names.append([str(i) for i in ids])
    vc = sm.regression.mixed_linear_model.VCSpec(["participant"], [names], [mats])
    model = sm.MixedLM(y, x, groups=cluster, exog_re=d[:, None], exog_vc=vc)
    clusters = _clusters(x, y, d, cluster, person)

    def deviance(p: np.ndarray) -> float:
        return _reml_deviance(*_vc_gls(clusters, p), clusters.n)

    try:
        result = _fit(model)
        psi = np.array([float(result.cov_re[0, 0]), float(result.vcomp[0]), float(result.scale)])
    except np.linalg.LinAlgError:
        # statsmodels' solver can meet a singular matrix when a variance sits at 0; the REML
        # deviance itself is then minimised within the bounds (variances >= 0).
        psi = _minimise(deviance, float(np.var(y)))
    # A variance estimated at 0 (lme4's singular fit) is held there for the derivatives: its
    # uncertainty does not enter Satterthwaite's df, as in lmerTest, whose parameters are the
    # standard deviations (a variance's derivative in its SD is 0 at 0).
    psi[:2] = np.where(psi[:2] < 1e-8 * psi[2], 0.0, psi[:2])
    free = np.flatnonzero(psi > 0)

    def full(q: np.ndarray) -> np.ndarray:
        p = np.zeros(3)
        p[free] = q
        return p

    def deviance_free(q: np.ndarray) -> float:
        return deviance(full(q))

    def cov_beta(q: np.ndarray) -> np.ndarray:
        return np.asarray(np.linalg.inv(_vc_gls(clusters, full(q))[0]))

    xtvx, xtvy, _, _ = _vc_gls(clusters, psi)
    beta = np.linalg.solve(xtvx, xtvy)
    q0 = psi[free]
    a_psi = _asymptotic_cov(deviance_free, q0)
    fixed = []
    for k, term in enumerate(terms):
        contrast = np.zeros(len(terms))
        contrast[k] = 1.0
        fixed.append(_test(term, contrast, beta, cov_beta, q0, a_psi, level))
    means = _means(terms, beta, cov_beta, q0, a_psi, nf.arm_levels, nf.time_levels, level)
    variance = {"worker": psi[0], "participant_intercept": psi[1], "residual": psi[2]}
    converged = _at_optimum(deviance_free, q0)
    return tuple(fixed), variance, -0.5 * deviance(psi), converged, means


def _minimise(deviance: Callable[[np.ndarray], float], total: float) -> np.ndarray:
    """REML estimate by bounded quasi-Newton search (L-BFGS-B, variances >= 0), then a few
    Newton steps on the variances off the boundary to reach lme4's precision."""
    start = np.full(3, total / 3)
    found = optimize.minimize(
        deviance,
        start,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * 2 + [(1e-12 * total, None)],
        options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000},
    )
    psi = np.asarray(found.x, dtype=float)
    free = np.flatnonzero(psi > 0)

    def on_free(q: np.ndarray) -> float:
        p = psi.copy()
        p[free] = q
        return deviance(p)

    for _ in range(3):
        grad = _gradient(on_free, psi[free])
        hess = _gradient(lambda q: _gradient(on_free, q), psi[free])
        step = np.linalg.lstsq((hess + hess.T) / 2, grad, rcond=None)[0]
        trial = psi[free] - step
        if np.all(trial > 0) and on_free(trial) <= on_free(psi[free]):
            psi[free] = trial
    return psi

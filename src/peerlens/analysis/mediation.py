"""Mediation of the arm effect through change in mediators (e.g. the Self-Compassion Scale's
common humanity and isolation subscales), with percentile bootstrap intervals.

Per participant, with ``ps`` the arm dummy, ``dM_k`` and ``dY`` the change from the baseline to
the follow-up timepoint and ``B`` the baseline values of the outcome and every mediator, the
parallel multiple-mediator model (Preacher & Hayes 2008; Hayes 2022, model 4) is three ordinary
least-squares regressions::

    dM_k = i_k + a_k ps + B' g_k + e_k                (one per mediator)
    dY   = i_y + c' ps + sum_k b_k dM_k + B' g_y + e_y
    dY   = i_c + c  ps + B' g_c + e_c                  (total effect)

The indirect effect through mediator *k* is ``a_k b_k``; with the same covariates in every
equation ``c = c' + sum_k a_k b_k`` exactly. In R: ``lm(dM ~ ps + y0 + m1_0 + m2_0)`` for each
``a_k`` and ``lm(dY ~ ps + dM1 + dM2 + y0 + m1_0 + m2_0)`` for ``b_k`` and ``c'``.

Intervals are percentile bootstrap intervals (Efron & Tibshirani 1993, ch. 13), seeded:
``n_boot`` resamples drawn within each arm (the randomised arm sizes are kept). In the control
arm participants are resampled. In the PS arm, when a worker column is given, *workers* are
resampled with all their participants: outcomes of one worker's caseload are correlated, and
resampling the top level of the hierarchy keeps that dependence in every resample (Davison &
Hinkley 1997, sec. 3.8; Field & Welsh 2007; Ren et al. 2010), whereas resampling participants
would treat them as independent and give intervals that are too narrow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from peerlens import PeerlensError

__all__ = ["MEDIATION_CAVEATS", "MediationError", "MediationFit", "PathEstimate", "fit_mediation"]

#: Printed with every mediation result (what the indirect effect needs to be causal).
MEDIATION_CAVEATS = (
    "Temporal ordering: the mediators' change and the outcome's change are measured over the "
    "same interval, so the data do not show that the mediator changed first.",
    "The mediators were not randomised: the b paths (mediator to outcome) are observational "
    "associations, biased by anything that drives both (only the arm is randomised).",
    "Sequential ignorability (Imai, Keele & Tingley 2010): the indirect effects are causal only "
    "if, given the arm and the baseline values, no unmeasured variable confounds mediator and "
    "outcome, and no confounder of them is itself affected by the arm.",
    "The model assumes no arm x mediator interaction and linear, additive paths.",
)


class MediationError(PeerlensError):
    """The data cannot carry the mediation model (what is missing is named)."""


@dataclass(frozen=True)
class PathEstimate:
    """One path or effect: estimate and percentile bootstrap interval; ``p`` is the OLS t-test
    of a single coefficient (NaN for the indirect effects, whose test is the interval)."""

    name: str
    estimate: float
    ci_low: float
    ci_high: float
    p: float


@dataclass(frozen=True)
class MediationFit:
    """A fitted parallel mediation model.

    ``paths`` holds ``a[<mediator>]``, ``b[<mediator>]``, ``indirect[<mediator>]``,
    ``indirect[total]``, ``direct`` and ``total``; ``draws`` every bootstrap resample's
    estimates (one row per resample, one column per path); ``data`` the participant-level
    table fitted (``ps``, changes ``d_<column>`` and baselines ``<column>_0``).
    """

    outcome: str
    mediators: tuple[str, ...]
    n_participants: int
    n_excluded: int
    n_boot: int
    seed: int
    level: float
    resampling: str
    paths: tuple[PathEstimate, ...]
    caveats: tuple[str, ...]
    data: pd.DataFrame = field(repr=False)
    draws: pd.DataFrame = field(repr=False)

    def path(self, name: str) -> PathEstimate:
        """The path or effect named ``name``."""
        for p in self.paths:
            if p.name == name:
                return p
        raise KeyError(f"no path {name!r}; the model has {', '.join(p.name for p in self.paths)}")

    def summary(self) -> str:
        """The estimates with their intervals, then the caveats, as plain text."""
        pct = f"{100 * self.level:g} %"
        lines = [
            f"Mediation of the arm effect on {self.outcome} through "
            f"{', '.join(self.mediators)} ({self.n_participants} participants, {self.n_boot} "
            f"bootstrap resamples, {self.resampling}; {pct} percentile intervals)"
        ]
        for p in self.paths:
            lines.append(f"  {p.name}: {p.estimate:.4g} [{p.ci_low:.4g}, {p.ci_high:.4g}]")
        lines.append("Caveats:")
        lines.extend(f"  - {c}" for c in self.caveats)
        return "\n".join(lines)


def fit_mediation(
    data: pd.DataFrame,
    outcome: str,
    mediators: Sequence[str] = ("scs_common_humanity", "scs_isolation"),
    *,
    participant: str = "participant",
    arm: str = "arm",
    timepoint: str = "timepoint",
    arms: Sequence[str] = ("control", "PS"),
    timepoints: Sequence[str] = ("baseline", "week12"),
    worker: str | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> MediationFit:
    """Fit the parallel mediation model of the arm effect on ``outcome``'s change through the
    mediators' change, with percentile bootstrap intervals.

    Parameters
    ----------
    data
        Long format: one row per participant and timepoint with the outcome and mediator
        columns (scores).
    outcome
        The outcome column.
    mediators
        The mediator columns (default: the SCS common humanity and isolation subscales).
    participant, arm, timepoint
        Column names.
    arms
        (control arm, treated arm).
    timepoints
        (baseline, follow-up): change is follow-up minus baseline.
    worker
        The PS worker column: resample workers, not participants, in the treated arm.
    n_boot, seed, level
        Bootstrap resamples, their seed and the intervals' level.

    Returns
    -------
    MediationFit

    Raises
    ------
    MediationError
        A column or level is missing, or fewer than two complete participants per arm (or two
        workers) remain.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> rows = []
    >>> for i in range(80):
    ...     ps = i % 2
    ...     m0, y0 = rng.normal(size=2)
    ...     m1 = m0 + ps + rng.normal()
    ...     rows += [(f"P{i}", ["control", "PS"][ps], "baseline", m0, y0),
    ...              (f"P{i}", ["control", "PS"][ps], "week12", m1, y0 + (m1 - m0)
    ...               + rng.normal())]
    >>> d = pd.DataFrame(rows, columns=["participant", "arm", "timepoint", "scs_ch", "score"])
    >>> fit = fit_mediation(d, "score", ["scs_ch"], n_boot=200)
    >>> [p.name for p in fit.paths]
    ['a[scs_ch]', 'b[scs_ch]', 'indirect[scs_ch]', 'indirect[total]', 'direct', 'total']
    """
    wide, clusters, n_excluded = _wide(
        data, outcome, list(mediators), participant, arm, timepoint, arms, timepoints, worker
    )
    mediators = list(mediators)
    ps, dy, dm, base = _arrays(wide, outcome, mediators)
    estimates, p_values = _estimate(ps, dy, dm, base, mediators, with_p=True)
    resamples = _resamples(clusters, n_boot, seed)
    draws = pd.DataFrame(
        [
            _estimate(ps[rows], dy[rows], dm[rows], base[rows], mediators, with_p=False)[0]
            for rows in resamples
        ],
        columns=list(estimates),
    )
    alpha = (1 - level) / 2
    paths = []
    for name, value in estimates.items():
        low, high = np.quantile(draws[name].to_numpy(), [alpha, 1 - alpha])
        paths.append(PathEstimate(name, value, float(low), float(high), p_values[name]))
    caveats = list(MEDIATION_CAVEATS)
    if worker is not None and clusters[1].n_workers < 10:
        caveats.append(
            f"Only {clusters[1].n_workers} workers are resampled in the PS arm: with few "
            "clusters, percentile intervals tend to be too narrow."
        )
    return MediationFit(
        outcome=outcome,
        mediators=tuple(mediators),
        n_participants=len(wide),
        n_excluded=n_excluded,
        n_boot=n_boot,
        seed=seed,
        level=level,
        resampling=(
            "participants within arm"
            if worker is None
            else "control participants, and PS workers with their participants"
        ),
        paths=tuple(paths),
        caveats=tuple(caveats),
        data=wide,
        draws=draws,
    )


@dataclass(frozen=True)
class _Stratum:
    """Row positions of one arm in the wide table, grouped into resampling units."""

    units: list[np.ndarray]
    n_workers: int


def _wide(
    data: pd.DataFrame,
    outcome: str,
    mediators: list[str],
    participant: str,
    arm: str,
    timepoint: str,
    arms: Sequence[str],
    timepoints: Sequence[str],
    worker: str | None,
) -> tuple[pd.DataFrame, tuple[_Stratum, _Stratum], int]:
    """One row per complete participant: ``ps``, ``d_<col>``, ``<col>_0`` (and ``worker``)."""
    values = [outcome, *mediators]
    needed = [participant, arm, timepoint, *values] + ([worker] if worker else [])
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise MediationError(f"the data have no column {', '.join(map(repr, missing))}")
    base, follow = timepoints
    control, treated = arms
    frame = data[data[timepoint].isin([base, follow]) & data[arm].isin([control, treated])]
    if frame.duplicated([participant, timepoint]).any():
        raise MediationError("a participant has two rows at one timepoint")
    numbers = frame[values].apply(pd.to_numeric, errors="coerce")
    table = numbers.assign(p=frame[participant], t=frame[timepoint]).pivot(index="p", columns="t")
    n_all = len(table)
    wide = pd.DataFrame(index=table.index)
    arm_of = frame.groupby(participant)[arm].first()
    wide["ps"] = (arm_of.reindex(wide.index) == treated).astype(float)
    for col in values:
        before = table.get((col, base))
        after = table.get((col, follow))
        if before is None or after is None:
            raise MediationError(f"{col}: no values at timepoint {base!r} or {follow!r}")
        wide[f"d_{col}"] = after - before
        wide[f"{col}_0"] = before
    if worker:
        wide["worker"] = frame.groupby(participant)[worker].first().reindex(wide.index)
        lacking = wide.index[(wide["ps"] == 1) & wide["worker"].isna()]
        if len(lacking):
            raise MediationError(f"participant {lacking[0]!r} of arm {treated!r} has no {worker}")
    wide = wide.dropna(subset=[c for c in wide.columns if c != "worker"]).sort_index()
    strata = []
    for flag, name in ((0.0, control), (1.0, treated)):
        rows = np.flatnonzero(wide["ps"].to_numpy() == flag)
        if len(rows) < 2:
            raise MediationError(f"arm {name!r}: fewer than two participants with both timepoints")
        if worker and flag == 1.0:
            labels = wide["worker"].to_numpy()[rows]
            units = [rows[labels == w] for w in sorted(set(labels))]
            if len(units) < 2:
                raise MediationError(f"arm {name!r}: fewer than two workers to resample")
            strata.append(_Stratum(units, len(units)))
        else:
            strata.append(_Stratum([np.array([r]) for r in rows], 0))
    return wide, (strata[0], strata[1]), n_all - len(wide)


def _resamples(strata: tuple[_Stratum, _Stratum], n_boot: int, seed: int) -> list[np.ndarray]:
    """``n_boot`` resamples of row positions: within each arm, its units drawn with
    replacement (as many as it has), every row of a drawn unit taken."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_boot):
        parts: list[np.ndarray] = []
        for s in strata:
            picks = rng.integers(0, len(s.units), len(s.units))
            parts.extend(s.units[k] for k in picks)
        out.append(np.concatenate(parts))
    return out


def _ols(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares coefficients and their classical standard errors."""
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    dof = len(y) - x.shape[1]
    cov = np.linalg.pinv(x.T @ x) * float(resid @ resid) / max(dof, 1)
    return beta, np.sqrt(np.diag(cov))


def _arrays(
    wide: pd.DataFrame, outcome: str, mediators: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The columns of ``wide`` the model uses, as arrays (rows then index them for each
    bootstrap resample): ``ps``, the outcome's change, the mediators' changes, the
    baselines."""
    return (
        wide["ps"].to_numpy(dtype=float),
        wide[f"d_{outcome}"].to_numpy(dtype=float),
        wide[[f"d_{m}" for m in mediators]].to_numpy(dtype=float),
        wide[[f"{c}_0" for c in (outcome, *mediators)]].to_numpy(dtype=float),
    )


def _estimate(
    ps: np.ndarray,
    dy: np.ndarray,
    dm: np.ndarray,
    base: np.ndarray,
    mediators: list[str],
    *,
    with_p: bool,
) -> tuple[dict[str, float], dict[str, float]]:
    """Every path of the model on these rows (and the OLS p of each single coefficient)."""
    ones = np.ones(len(ps))
    dof_b = len(ps) - 2 - len(mediators) - base.shape[1]
    dof_a = len(ps) - 2 - base.shape[1]
    est: dict[str, float] = {}
    pval: dict[str, float] = {}

    def p_of(b: float, se: float, dof: int) -> float:
        return float(2 * stats.t.sf(abs(b / se), dof)) if with_p and se > 0 else float("nan")

    a = {}
    for k, m in enumerate(mediators):
        beta, se = _ols(dm[:, k], np.column_stack([ones, ps, base]))
        a[m] = float(beta[1])
        est[f"a[{m}]"], pval[f"a[{m}]"] = a[m], p_of(beta[1], se[1], dof_a)
    beta, se = _ols(dy, np.column_stack([ones, ps, dm, base]))
    for k, m in enumerate(mediators):
        est[f"b[{m}]"], pval[f"b[{m}]"] = float(beta[2 + k]), p_of(beta[2 + k], se[2 + k], dof_b)
    direct, p_direct = float(beta[1]), p_of(beta[1], se[1], dof_b)
    for m in mediators:
        est[f"indirect[{m}]"], pval[f"indirect[{m}]"] = a[m] * est[f"b[{m}]"], float("nan")
    est["indirect[total]"] = sum(est[f"indirect[{m}]"] for m in mediators)
    pval["indirect[total]"] = float("nan")
    est["direct"], pval["direct"] = direct, p_direct
    beta, se = _ols(dy, np.column_stack([ones, ps, base]))
    est["total"], pval["total"] = float(beta[1]), p_of(beta[1], se[1], dof_a)
    return est, pval

"""Internal consistency of a scale: Cronbach's alpha, McDonald's omega total, item-total r.

Every estimator takes a pandas DataFrame of item responses, either *wide* (one row per
respondent, one column per item) or *long* (one row per respondent x item, with
``layout="long"``), and returns a small frozen dataclass carrying the estimate, its
confidence interval, the sample it was computed on and the method with its citation.

Missing data are handled explicitly: by default a respondent with any missing item is
dropped (listwise deletion) and the number dropped is reported in the result
(``n_excluded``); ``missing="raise"`` refuses incomplete data instead. Items that are
reverse-keyed can be reversed here (``reverse_keyed`` with ``response_range``) or before
calling; either way the estimators expect every item to be keyed in the same direction.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy import optimize, stats

from peerlens import PeerlensError, PeerlensWarning
from peerlens._blas import one_blas_thread

if TYPE_CHECKING:
    from peerlens.instruments._spec import InstrumentSpec

__all__ = [
    "HeywoodCaseWarning",
    "InsufficientDataError",
    "NegativeItemTotalWarning",
    "NonNumericDataError",
    "OmegaEstimate",
    "PsychometricsError",
    "ReliabilityEstimate",
    "ScaleItems",
    "ZeroVarianceError",
    "cronbach_alpha",
    "item_total_correlations",
    "omega_total",
    "reliability_table",
    "scale_items",
    "spec_scales",
]

Layout = Literal["wide", "long"]
MissingRule = Literal["listwise", "raise"]

_ALPHA_CITATION = (
    "Cronbach, L. J. (1951). Coefficient alpha and the internal structure of tests. "
    "Psychometrika, 16, 297-334. CI: Feldt, L. S. (1965). The approximate sampling "
    "distribution of Kuder-Richardson reliability coefficient twenty. Psychometrika, 30, "
    "357-370; Feldt, Woodruff & Salih (1987). Applied Psychological Measurement, 11, 93-103."
)
_OMEGA_CITATION = (
    "McDonald, R. P. (1999). Test theory: A unified treatment. Erlbaum (omega total, "
    "eq. 6.20b). ML factor analysis: Joreskog, K. G. (1967). Psychometrika, 32, 443-482; "
    "Lawley & Maxwell (1971). Factor analysis as a statistical method. "
    "CI: Kelley, K., & Pornprasertmanit, S. (2016). Psychological Methods, 21, 69-92."
)
_ITEM_TOTAL_CITATION = (
    "Corrected item-total correlation and alpha-if-item-deleted: Nunnally, J. C., & "
    "Bernstein, I. H. (1994). Psychometric theory (3rd ed.). McGraw-Hill."
)


class PsychometricsError(PeerlensError):
    """Bad input to a psychometric estimator (reliability, change, effect sizes)."""


class InsufficientDataError(PsychometricsError):
    """Too few items or respondents left to estimate the statistic."""


class NonNumericDataError(PsychometricsError):
    """A response is not a number (text, boolean, infinity)."""


class ZeroVarianceError(PsychometricsError):
    """An item, a score or a difference has zero variance, so the statistic is undefined."""


class NegativeItemTotalWarning(PeerlensWarning):
    """A keyed item correlates negatively with the rest of its scale (likely mis-keyed)."""


class HeywoodCaseWarning(PeerlensWarning):
    """The one-factor solution hit a uniqueness bound (an improper, Heywood, solution)."""


@dataclass(frozen=True)
class ReliabilityEstimate:
    """A reliability coefficient with its interval and provenance.

    Attributes
    ----------
    statistic : str
        ``"cronbach_alpha"`` or ``"omega_total"``.
    value : float
        The point estimate.
    ci_low, ci_high : float
        Confidence interval bounds (NaN when no interval was requested).
    ci_level : float
        Coverage of the interval, e.g. 0.95.
    n : int
        Respondents used (after listwise deletion).
    n_items : int
        Items in the scale.
    n_excluded : int
        Respondents dropped because of missing answers.
    method : str
        How the estimate and its interval were computed.
    citation : str
        Where the formulas come from.
    """

    statistic: str
    value: float
    ci_low: float
    ci_high: float
    ci_level: float
    n: int
    n_items: int
    n_excluded: int
    method: str
    citation: str


@dataclass(frozen=True)
class OmegaEstimate(ReliabilityEstimate):
    """Omega total plus the one-factor solution it came from.

    Attributes
    ----------
    items : tuple of str
        Item names, in the order of ``loadings``.
    loadings : tuple of float
        Standardised maximum-likelihood loadings of the one-factor model.
    uniquenesses : tuple of float
        Standardised uniquenesses (1 - loading**2).
    """

    items: tuple[str, ...] = ()
    loadings: tuple[float, ...] = ()
    uniquenesses: tuple[float, ...] = ()


# ----------------------------------------------------------------------------------------
# input handling (shared with change.py and effect_sizes.py)
# ----------------------------------------------------------------------------------------


def _coerce_numeric(values: pd.Series, what: str) -> pd.Series:
    """Return ``values`` as float64, refusing anything that is not a number.

    Empty or whitespace-only strings count as missing (as spreadsheet exports write them);
    any other text, booleans and infinities raise :class:`NonNumericDataError` naming
    ``what`` (the column), the 1-based data row and the value.
    """
    if pd.api.types.is_bool_dtype(values.dtype):
        raise NonNumericDataError(f"{what}: boolean values are not responses")
    if pd.api.types.is_numeric_dtype(values.dtype):
        out = values.astype("float64")
    else:
        obj = values.astype("object")
        blank = obj.map(lambda v: isinstance(v, str) and v.strip() == "")
        obj = obj.mask(blank, np.nan)
        for position, value in enumerate(obj.to_numpy()):
            if isinstance(value, bool | np.bool_):
                raise NonNumericDataError(
                    f"{what}: boolean value {value!r} at data row {position + 1} is not a number"
                )
        out = pd.to_numeric(obj, errors="coerce").astype("float64")
        bad = obj.notna().to_numpy() & out.isna().to_numpy()
        if bad.any():
            position = int(np.flatnonzero(bad)[0])
            raise NonNumericDataError(
                f"{what}: non-numeric value {obj.iloc[position]!r} at data row "
                f"{position + 1}; responses must be numbers or empty"
            )
    infinite = np.isinf(out.to_numpy())
    if infinite.any():
        position = int(np.flatnonzero(infinite)[0])
        raise NonNumericDataError(
            f"{what}: infinite value at data row {position + 1}; responses must be finite"
        )
    return out


def _require_columns(data: pd.DataFrame, columns: Sequence[str], role: str) -> None:
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise PsychometricsError(
            f"{role} column(s) not found in the data: {', '.join(map(repr, missing))}; "
            f"available columns: {', '.join(map(repr, map(str, data.columns)))}"
        )


def _wide_items(
    data: pd.DataFrame,
    items: Sequence[str] | None,
    layout: Layout,
    participant: str,
    item: str,
    response: str,
) -> pd.DataFrame:
    """Return a respondent x item float frame (missing answers as NaN)."""
    if not isinstance(data, pd.DataFrame):
        raise PsychometricsError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if layout == "wide":
        columns = list(data.columns) if items is None else list(items)
        _require_columns(data, columns, "item")
        frame = pd.DataFrame(
            {str(c): _coerce_numeric(data[c], f"item column {c!r}") for c in columns},
            index=data.index,
        )
        return frame
    if layout != "long":
        raise PsychometricsError(f"layout must be 'wide' or 'long', got {layout!r}")
    _require_columns(data, [participant, item, response], "long-format")
    values = _coerce_numeric(data[response], f"response column {response!r}")
    long = pd.DataFrame(
        {
            "participant": data[participant].to_numpy(),
            "item": data[item].astype("object").to_numpy(),
            "value": values.to_numpy(),
        }
    )
    duplicated = long.duplicated(["participant", "item"], keep="first")
    if duplicated.any():
        position = int(np.flatnonzero(duplicated.to_numpy())[0])
        raise PsychometricsError(
            f"long-format data has more than one response for participant "
            f"{long['participant'].iloc[position]!r}, item {long['item'].iloc[position]!r} "
            f"(data row {position + 1})"
        )
    wide = long.pivot(index="participant", columns="item", values="value")
    order = list(pd.unique(long["item"])) if items is None else list(items)
    absent = [i for i in order if i not in wide.columns]
    if absent:
        raise PsychometricsError(
            f"item(s) {', '.join(map(repr, absent))} do not occur in column {item!r}"
        )
    wide = wide[order]
    wide.columns = [str(c) for c in wide.columns]
    return wide.astype("float64")


def _item_matrix(
    data: pd.DataFrame,
    items: Sequence[str] | None,
    *,
    layout: Layout,
    participant: str,
    item: str,
    response: str,
    reverse_keyed: Sequence[str],
    response_range: tuple[float, float] | None,
    missing: MissingRule,
) -> tuple[pd.DataFrame, int]:
    """Validated, keyed, complete respondent x item matrix and the number dropped."""
    frame = _wide_items(data, items, layout, participant, item, response)
    if frame.shape[1] < 2:
        raise InsufficientDataError(
            f"a reliability estimate needs at least 2 items, got {frame.shape[1]}: "
            f"{list(frame.columns)}"
        )
    if reverse_keyed:
        unknown = [c for c in reverse_keyed if c not in frame.columns]
        if unknown:
            raise PsychometricsError(
                f"reverse-keyed item(s) {', '.join(map(repr, unknown))} are not among the items "
                f"{list(frame.columns)}"
            )
        if response_range is None:
            raise PsychometricsError(
                "reverse_keyed items need response_range=(lowest, highest) to be reversed "
                "as (lowest + highest) - response"
            )
        low, high = response_range
        if not low < high:
            raise PsychometricsError(
                f"response_range must be (lowest, highest), got {response_range}"
            )
        frame = frame.copy()
        for c in reverse_keyed:
            frame[c] = (low + high) - frame[c]
    incomplete = frame.isna().any(axis=1)
    n_excluded = int(incomplete.sum())
    if n_excluded and missing == "raise":
        position = int(np.flatnonzero(incomplete.to_numpy())[0])
        gaps = [c for c in frame.columns if pd.isna(frame.iloc[position][c])]
        raise PsychometricsError(
            f"{n_excluded} respondent(s) have missing answers (first: data row {position + 1}, "
            f"item(s) {', '.join(map(repr, gaps))}); use missing='listwise' to drop them"
        )
    if missing not in ("listwise", "raise"):
        raise PsychometricsError(f"missing must be 'listwise' or 'raise', got {missing!r}")
    complete = frame.loc[~incomplete]
    if complete.shape[0] < 3:
        raise InsufficientDataError(
            f"needs at least 3 respondents with complete answers, got {complete.shape[0]} "
            f"({n_excluded} dropped for missing answers)"
        )
    variances = complete.var(axis=0, ddof=1)
    flat = [c for c in complete.columns if not variances[c] > 0]
    if flat:
        raise ZeroVarianceError(
            f"item(s) {', '.join(map(repr, flat))} have zero variance across the "
            f"{complete.shape[0]} respondents; the statistic is undefined"
        )
    return complete, n_excluded


def _check_ci(ci: float) -> None:
    if not 0 < ci < 1:
        raise PsychometricsError(f"ci must be a coverage between 0 and 1, e.g. 0.95; got {ci}")


def _alpha(x: np.ndarray) -> float:
    k = x.shape[1]
    item_var = x.var(axis=0, ddof=1).sum()
    total_var = x.sum(axis=1).var(ddof=1)
    return float(k / (k - 1) * (1.0 - item_var / total_var))


# ----------------------------------------------------------------------------------------
# Cronbach's alpha
# ----------------------------------------------------------------------------------------


def cronbach_alpha(
    data: pd.DataFrame,
    items: Sequence[str] | None = None,
    *,
    ci: float = 0.95,
    layout: Layout = "wide",
    participant: str = "participant",
    item: str = "item",
    response: str = "response",
    reverse_keyed: Sequence[str] = (),
    response_range: tuple[float, float] | None = None,
    missing: MissingRule = "listwise",
) -> ReliabilityEstimate:
    """Cronbach's coefficient alpha with Feldt's F-based confidence interval.

    Parameters
    ----------
    data : pandas.DataFrame
        Wide (respondents x items) or, with ``layout="long"``, long item responses.
    items : sequence of str, optional
        Item columns (wide) or item labels (long). Default: every column (wide) or every
        item label (long).
    ci : float
        Coverage of the confidence interval.
    layout : {"wide", "long"}
        Shape of ``data``.
    participant, item, response : str
        Column names used when ``layout="long"``.
    reverse_keyed : sequence of str
        Items to reverse as ``(lowest + highest) - x`` before estimating.
    response_range : (float, float), optional
        Lowest and highest response option; required with ``reverse_keyed``.
    missing : {"listwise", "raise"}
        Drop respondents with any missing item (default, count reported in
        ``n_excluded``) or refuse incomplete data.

    Returns
    -------
    ReliabilityEstimate

    Raises
    ------
    InsufficientDataError
        Fewer than 2 items or fewer than 3 complete respondents.
    NonNumericDataError
        A response is not a number.
    ZeroVarianceError
        An item or the total score does not vary.

    Notes
    -----
    With k items, item variances s_i^2 and total-score variance s_X^2 (n - 1 denominators),

        alpha = k / (k - 1) * (1 - sum(s_i^2) / s_X^2)          (Cronbach, 1951).

    Interval (Feldt, 1965; Feldt, Woodruff & Salih, 1987): (1 - alpha) / (1 - alpha_hat)
    follows an F distribution with df1 = n - 1 and df2 = (n - 1)(k - 1), so for coverage
    1 - g the bounds are ``1 - (1 - alpha_hat) * F(1 - g/2; df1, df2)`` and
    ``1 - (1 - alpha_hat) * F(g/2; df1, df2)``. Alpha estimates reliability only for
    essentially tau-equivalent items; see :func:`omega_total` for congeneric items.

    References
    ----------
    Cronbach, L. J. (1951). Coefficient alpha and the internal structure of tests.
    Psychometrika, 16, 297-334.
    Feldt, L. S. (1965). Psychometrika, 30, 357-370.
    Feldt, L. S., Woodruff, D. J., & Salih, F. A. (1987). Statistical inference for
    coefficient alpha. Applied Psychological Measurement, 11, 93-103.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> trait = rng.normal(size=200)
    >>> answers = pd.DataFrame(
    ...     {f"q{i}": np.clip(np.round(3 + trait + rng.normal(size=200)), 1, 5)
    ...      for i in range(1, 6)}
    ... )
    >>> est = cronbach_alpha(answers)
    >>> est.n, est.n_items
    (200, 5)
    >>> bool(est.ci_low < est.value < est.ci_high)
    True
    """
    _check_ci(ci)
    complete, n_excluded = _item_matrix(
        data,
        items,
        layout=layout,
        participant=participant,
        item=item,
        response=response,
        reverse_keyed=reverse_keyed,
        response_range=response_range,
        missing=missing,
    )
    x = complete.to_numpy()
    n, k = x.shape
    if not x.sum(axis=1).var(ddof=1) > 0:
        raise ZeroVarianceError(
            "the total score has zero variance (items cancel out); check the reverse keying"
        )
    value = _alpha(x)
    df1, df2 = n - 1, (n - 1) * (k - 1)
    tail = (1.0 - ci) / 2.0
    ci_low = 1.0 - (1.0 - value) * float(stats.f.ppf(1.0 - tail, df1, df2))
    ci_high = 1.0 - (1.0 - value) * float(stats.f.ppf(tail, df1, df2))
    return ReliabilityEstimate(
        statistic="cronbach_alpha",
        value=value,
        ci_low=ci_low,
        ci_high=ci_high,
        ci_level=ci,
        n=n,
        n_items=k,
        n_excluded=n_excluded,
        method=(
            "Cronbach's alpha from item and total-score variances (n - 1); "
            f"Feldt (1965) F-based {ci:.0%} CI with df = ({df1}, {df2}); "
            f"listwise deletion ({n_excluded} excluded)"
        ),
        citation=_ALPHA_CITATION,
    )


# ----------------------------------------------------------------------------------------
# McDonald's omega total from a one-factor maximum-likelihood model
# ----------------------------------------------------------------------------------------

_PSI_LOWER = 0.005  # uniqueness lower bound, as in common ML factor-analysis practice


def _one_factor_ml(
    corr: np.ndarray, start: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood one-factor solution of a correlation matrix.

    Minimises the ML discrepancy over the uniquenesses psi with the loadings concentrated
    out (Joreskog, 1967): for fixed psi, with S* = psi^-1/2 R psi^-1/2 and eigenvalues
    e_1 >= ... >= e_p, the discrepancy is sum_{j>1} (e_j - log e_j) - (p - 1) and the
    loadings are psi^1/2 v_1 sqrt(max(e_1 - 1, 0)). The gradient with respect to psi_i is
    (lambda lambda' + psi - R)_ii / psi_i^2 (Lawley & Maxwell, 1971).
    """
    p = corr.shape[0]

    def solve(psi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scale = 1.0 / np.sqrt(psi)
        s_star = corr * scale[:, None] * scale[None, :]
        eigval, eigvec = np.linalg.eigh(s_star)
        return eigval, eigvec

    def objective(psi: np.ndarray) -> tuple[float, np.ndarray]:
        eigval, eigvec = solve(psi)
        rest = np.clip(eigval[:-1], 1e-300, None)
        value = float(np.sum(rest - np.log(rest)) - (p - 1))
        loading = np.sqrt(psi) * eigvec[:, -1] * math.sqrt(max(eigval[-1] - 1.0, 0.0))
        implied_diag = loading**2 + psi
        grad = (implied_diag - np.diag(corr)) / psi**2
        return value, grad

    if start is None:
        try:
            start = np.clip(0.5 / np.diag(np.linalg.inv(corr)), _PSI_LOWER, 1.0)
        except np.linalg.LinAlgError:
            start = np.full(p, 0.5)
    result = optimize.minimize(
        objective,
        np.clip(start, _PSI_LOWER, 1.0),
        jac=True,
        method="L-BFGS-B",
        bounds=[(_PSI_LOWER, 1.0)] * p,
        options={"maxiter": 1000, "ftol": 1e-14, "gtol": 1e-10},
    )
    psi = np.asarray(result.x, dtype=float)
    eigval, eigvec = solve(psi)
    loading = np.sqrt(psi) * eigvec[:, -1] * math.sqrt(max(eigval[-1] - 1.0, 0.0))
    if loading.sum() < 0:
        loading = -loading
    return loading, psi


def _omega_from_cov(
    cov: np.ndarray, start: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    loading, psi = _one_factor_ml(corr, start)
    raw_loading = loading * sd
    raw_unique = psi * sd**2
    common = raw_loading.sum() ** 2
    return float(common / (common + raw_unique.sum())), loading, psi


def _bootstrap_omega(
    x: np.ndarray, n_boot: int, rng: np.random.Generator, start: np.ndarray
) -> list[float]:
    """Omega of ``n_boot`` resamples of the respondents (rows), skipping degenerate ones.

    Each fit starts from the full-sample uniquenesses ``start`` (a warm start).
    """
    n = x.shape[0]
    draws: list[float] = []
    for _ in range(n_boot):
        sample = x[rng.integers(0, n, size=n)]
        boot_cov = np.cov(sample, rowvar=False, ddof=1)
        if not np.all(np.diag(boot_cov) > 0):
            continue
        try:
            draws.append(_omega_from_cov(boot_cov, start)[0])
        except (np.linalg.LinAlgError, ValueError):
            continue
    return draws


def omega_total(
    data: pd.DataFrame,
    items: Sequence[str] | None = None,
    *,
    ci: float = 0.95,
    n_boot: int = 1000,
    random_state: int | None = 0,
    layout: Layout = "wide",
    participant: str = "participant",
    item: str = "item",
    response: str = "response",
    reverse_keyed: Sequence[str] = (),
    response_range: tuple[float, float] | None = None,
    missing: MissingRule = "listwise",
) -> OmegaEstimate:
    """McDonald's omega total of the unit-weighted sum score, from a one-factor ML model.

    Parameters
    ----------
    data : pandas.DataFrame
        Wide (respondents x items) or, with ``layout="long"``, long item responses.
    items : sequence of str, optional
        Item columns (wide) or labels (long); default all.
    ci : float
        Coverage of the bootstrap confidence interval.
    n_boot : int
        Bootstrap resamples of respondents for the interval; 0 gives no interval (NaN).
    random_state : int, optional
        Seed of the bootstrap, so that results are reproducible.
    layout, participant, item, response, reverse_keyed, response_range, missing
        As in :func:`cronbach_alpha`.

    Returns
    -------
    OmegaEstimate
        Omega total, percentile-bootstrap interval and the standardised loadings.

    Raises
    ------
    InsufficientDataError
        Fewer than 3 items (a one-factor model on 2 items is not identified) or fewer
        than 3 complete respondents.
    NonNumericDataError, ZeroVarianceError
        As in :func:`cronbach_alpha`.

    Warns
    -----
    HeywoodCaseWarning
        When an item's uniqueness sits at the lower bound (0.005), i.e. the one-factor
        solution is improper and omega should not be trusted.

    Notes
    -----
    This is omega *total* for a single common factor (McDonald, 1999, eq. 6.20b), also
    called omega_u or congeneric reliability, for the sum of the raw (unstandardised)
    items. A one-factor model is fitted by maximum likelihood to the item correlation
    matrix (Pearson, items treated as continuous; Joreskog, 1967), and the standardised
    loadings l_i and uniquenesses u_i = 1 - l_i^2 are rescaled by the item SDs s_i:

        omega = (sum l_i s_i)^2 / ((sum l_i s_i)^2 + sum u_i s_i^2).

    The denominator is the model-implied variance of the sum score. ML is scale invariant,
    so this equals the ML fit to the covariance matrix. For tau-equivalent items omega
    equals alpha in the population. The interval is a percentile bootstrap over
    respondents (Kelley & Pornprasertmanit, 2016). Not implemented: hierarchical omega,
    and omega from polychoric correlations for ordinal items.

    References
    ----------
    McDonald, R. P. (1999). Test theory: A unified treatment. Mahwah, NJ: Erlbaum.
    Joreskog, K. G. (1967). Some contributions to maximum likelihood factor analysis.
    Psychometrika, 32, 443-482.
    Kelley, K., & Pornprasertmanit, S. (2016). Confidence intervals for population
    reliability coefficients. Psychological Methods, 21, 69-92.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(2)
    >>> trait = rng.normal(size=300)
    >>> loadings = [0.8, 0.7, 0.6, 0.5]
    >>> answers = pd.DataFrame(
    ...     {f"q{i}": l * trait + np.sqrt(1 - l**2) * rng.normal(size=300)
    ...      for i, l in enumerate(loadings, 1)}
    ... )
    >>> est = omega_total(answers, n_boot=200)
    >>> [round(v, 1) for v in est.loadings]
    [0.8, 0.7, 0.6, 0.4]
    >>> bool(est.ci_low < est.value < est.ci_high)
    True
    """
    _check_ci(ci)
    if n_boot < 0:
        raise PsychometricsError(f"n_boot must be >= 0, got {n_boot}")
    complete, n_excluded = _item_matrix(
        data,
        items,
        layout=layout,
        participant=participant,
        item=item,
        response=response,
        reverse_keyed=reverse_keyed,
        response_range=response_range,
        missing=missing,
    )
    x = complete.to_numpy()
    n, k = x.shape
    if k < 3:
        raise InsufficientDataError(
            f"omega needs at least 3 items for an identified one-factor model, got {k}: "
            f"{list(complete.columns)}; report alpha (or the Spearman-Brown coefficient) instead"
        )
    cov = np.cov(x, rowvar=False, ddof=1)
    if np.linalg.matrix_rank(cov) < k and k > n:
        raise InsufficientDataError(
            f"{k} items but only {n} respondents: the covariance matrix is singular"
        )
    with one_blas_thread():
        value, loading, psi = _omega_from_cov(cov)
    at_bound = [
        str(c) for c, u in zip(complete.columns, psi, strict=True) if u <= _PSI_LOWER * 1.01
    ]
    if at_bound:
        warnings.warn(
            f"improper (Heywood) one-factor solution: uniqueness of item(s) "
            f"{', '.join(map(repr, at_bound))} is at its lower bound; omega is unreliable",
            HeywoodCaseWarning,
            stacklevel=2,
        )
    ci_low = ci_high = float("nan")
    used = 0
    if n_boot > 0:
        rng = np.random.default_rng(random_state)
        with one_blas_thread():
            draws = _bootstrap_omega(x, n_boot, rng, psi)
        used = len(draws)
        if used >= max(10, n_boot // 2):
            tail = (1.0 - ci) / 2.0
            ci_low, ci_high = (float(q) for q in np.quantile(draws, [tail, 1.0 - tail]))
    interval = (
        f"percentile bootstrap {ci:.0%} CI ({used} of {n_boot} resamples usable, "
        f"seed {random_state})"
        if n_boot > 0
        else "no CI requested"
    )
    return OmegaEstimate(
        statistic="omega_total",
        value=value,
        ci_low=ci_low,
        ci_high=ci_high,
        ci_level=ci,
        n=n,
        n_items=k,
        n_excluded=n_excluded,
        method=(
            "McDonald's omega total (single factor) of the raw sum score; one-factor "
            "maximum-likelihood fit to the Pearson item correlations, rescaled by item SDs, "
            f"model-implied total variance; {interval}; listwise deletion "
            f"({n_excluded} excluded)"
        ),
        citation=_OMEGA_CITATION,
        items=tuple(str(c) for c in complete.columns),
        loadings=tuple(float(v) for v in loading),
        uniquenesses=tuple(float(v) for v in psi),
    )


# ----------------------------------------------------------------------------------------
# Item-total correlations
# ----------------------------------------------------------------------------------------


def item_total_correlations(
    data: pd.DataFrame,
    items: Sequence[str] | None = None,
    *,
    layout: Layout = "wide",
    participant: str = "participant",
    item: str = "item",
    response: str = "response",
    reverse_keyed: Sequence[str] = (),
    response_range: tuple[float, float] | None = None,
    missing: MissingRule = "listwise",
) -> pd.DataFrame:
    """Corrected item-total correlations and alpha if the item is deleted.

    Parameters
    ----------
    data, items, layout, participant, item, response, reverse_keyed, response_range, missing
        As in :func:`cronbach_alpha`. Items must be keyed in one direction (reverse the
        reverse-keyed items here or before).

    Returns
    -------
    pandas.DataFrame
        One row per item: ``item``, ``n``, ``mean``, ``sd``, ``corrected_item_total_r``
        (Pearson r of the item with the sum of the *other* items) and
        ``alpha_if_deleted``.

    Warns
    -----
    NegativeItemTotalWarning
        When a keyed item correlates negatively with the sum of the others: the item is
        probably mis-keyed (a reverse-keyed item not reversed, or reversed twice).

    Notes
    -----
    The corrected item-total correlation removes the item from the total so that it is
    not correlated with itself: r(x_i, X - x_i) (Nunnally & Bernstein, 1994). Alpha if
    deleted is Cronbach's (1951) alpha of the remaining k - 1 items (NaN when only one
    item would remain).

    References
    ----------
    Nunnally, J. C., & Bernstein, I. H. (1994). Psychometric theory (3rd ed.).
    Cronbach, L. J. (1951). Psychometrika, 16, 297-334.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(3)
    >>> trait = rng.normal(size=150)
    >>> answers = pd.DataFrame({f"q{i}": trait + rng.normal(size=150) for i in range(1, 5)})
    >>> table = item_total_correlations(answers)
    >>> list(table.columns)
    ['item', 'n', 'mean', 'sd', 'corrected_item_total_r', 'alpha_if_deleted']
    >>> bool((table["corrected_item_total_r"] > 0.4).all())
    True
    """
    complete, n_excluded = _item_matrix(
        data,
        items,
        layout=layout,
        participant=participant,
        item=item,
        response=response,
        reverse_keyed=reverse_keyed,
        response_range=response_range,
        missing=missing,
    )
    x = complete.to_numpy()
    n, k = x.shape
    total = x.sum(axis=1)
    rows = []
    for j, name in enumerate(complete.columns):
        rest = total - x[:, j]
        r = float(np.corrcoef(x[:, j], rest)[0, 1]) if rest.std(ddof=1) > 0 else float("nan")
        remaining = np.delete(x, j, axis=1)
        if k > 2 and remaining.sum(axis=1).var(ddof=1) > 0:
            alpha_deleted = _alpha(remaining)
        else:
            alpha_deleted = float("nan")
        rows.append(
            {
                "item": str(name),
                "n": n,
                "mean": float(x[:, j].mean()),
                "sd": float(x[:, j].std(ddof=1)),
                "corrected_item_total_r": r,
                "alpha_if_deleted": alpha_deleted,
            }
        )
    table = pd.DataFrame(rows)
    negative = table.loc[table["corrected_item_total_r"] < 0]
    if len(negative):
        listed = ", ".join(
            f"{row.item!r} (r = {row.corrected_item_total_r:.2f})"
            for row in negative.itertuples(index=False)
        )
        warnings.warn(
            f"item(s) {listed} correlate negatively with the sum of the other items; "
            "check whether they are reverse-keyed and not reversed (or reversed twice)",
            NegativeItemTotalWarning,
            stacklevel=2,
        )
    table.attrs["n_excluded"] = n_excluded
    table.attrs["citation"] = _ITEM_TOTAL_CITATION
    return table


# ----------------------------------------------------------------------------------------
# Items of a scored scale, from an instrument spec
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScaleItems:
    """The item columns of one scored scale and how to key them.

    Pass the fields to :func:`cronbach_alpha`, :func:`omega_total` or
    :func:`item_total_correlations` (``items``, ``reverse_keyed``, ``response_range``).
    """

    instrument: str
    score: str
    items: tuple[str, ...]
    reverse_keyed: tuple[str, ...]
    response_range: tuple[int, int]


def scale_items(spec: InstrumentSpec, score: str) -> ScaleItems:
    """Item columns, reverse keys and response range of an item-based score in a spec.

    Parameters
    ----------
    spec : InstrumentSpec
        A loaded instrument spec (``peerlens.instruments.load_spec("scs")``).
    score : str
        Name of a sum or mean score over items, e.g. ``"scs_total"`` or
        ``"scs_self_kindness"``.

    Returns
    -------
    ScaleItems
        The reverse keys are those of the spec's ``reverse_items`` inside the score, and
        only when the score is ``keyed`` (a subscale scored on raw items, such as the SCS
        self-judgment mean, is analysed unreversed, like its score).

    Raises
    ------
    PsychometricsError
        Unknown score, or a score that is not a sum or mean of items (bands, flags,
        composites of other scores, conversions).

    Examples
    --------
    >>> from peerlens.instruments.registry import load_spec
    >>> s = scale_items(load_spec("scs"), "scs_self_judgment")
    >>> s.items, s.reverse_keyed, s.response_range
    (('scs_1', 'scs_8', 'scs_11', 'scs_16', 'scs_21'), (), (1, 5))
    >>> len(scale_items(load_spec("scs"), "scs_total").reverse_keyed)
    13
    """
    try:
        definition = spec.score(score)
    except KeyError:
        raise PsychometricsError(
            f"{spec.id} has no score {score!r}; scores: {', '.join(s.name for s in spec.scores)}"
        ) from None
    from peerlens.instruments._spec import ItemScore

    if not isinstance(definition, ItemScore):
        raise PsychometricsError(
            f"{score!r} is a {getattr(definition, 'kind', 'derived')} score, not a sum or mean "
            "of items; internal consistency applies to item-based scores only"
        )
    numbers = (
        list(range(1, spec.n_items + 1)) if definition.items == "all" else list(definition.items)
    )
    reversed_numbers = set(spec.reverse_items) if definition.keyed else set()
    return ScaleItems(
        instrument=spec.id,
        score=score,
        items=tuple(f"{spec.id}_{n}" for n in numbers),
        reverse_keyed=tuple(f"{spec.id}_{n}" for n in numbers if n in reversed_numbers),
        response_range=(spec.response_min, spec.response_max),
    )


def spec_scales(spec: InstrumentSpec, *, min_items: int = 2) -> dict[str, ScaleItems]:
    """Every item-based score of a spec with at least ``min_items`` items, as ScaleItems.

    Parameters
    ----------
    spec : InstrumentSpec
        A loaded instrument spec.
    min_items : int
        Skip scores with fewer items (a single item has no internal consistency).

    Returns
    -------
    dict of str to ScaleItems
        In the spec's score order, keyed by score name; for :func:`reliability_table`.

    Examples
    --------
    >>> from peerlens.instruments.registry import load_spec
    >>> list(spec_scales(load_spec("incom")))
    ['incom_ability', 'incom_opinion', 'incom_total']
    """
    from peerlens.instruments._spec import ItemScore

    scales: dict[str, ScaleItems] = {}
    for definition in spec.scores:
        if isinstance(definition, ItemScore):
            found = scale_items(spec, definition.name)
            if len(found.items) >= min_items:
                scales[definition.name] = found
    return scales


def reliability_table(
    data: pd.DataFrame,
    scales: Mapping[str, ScaleItems | Sequence[str]],
    *,
    ci: float = 0.95,
    n_boot: int = 1000,
    random_state: int | None = 0,
    missing: MissingRule = "listwise",
) -> pd.DataFrame:
    """Alpha, omega total and the weakest item-total r for several scales, as one table.

    Parameters
    ----------
    data : pandas.DataFrame
        Wide item responses (one row per respondent, one column per item).
    scales : mapping of str to ScaleItems or sequence of str
        Scale name to its items: :class:`ScaleItems` (from :func:`spec_scales` or
        :func:`scale_items`, which also carry reverse keys) or plain item column lists
        (items already keyed).
    ci, n_boot, random_state, missing
        As in :func:`cronbach_alpha` and :func:`omega_total`.

    Returns
    -------
    pandas.DataFrame
        One row per scale: ``scale``, ``n_items``, ``n``, ``n_excluded``, ``alpha``,
        ``alpha_ci_low``, ``alpha_ci_high``, ``omega_total``, ``omega_ci_low``,
        ``omega_ci_high`` (NaN for 2-item scales, where omega is not identified) and
        ``min_corrected_item_total_r``. Listwise deletion is per scale.

    Warns
    -----
    NegativeItemTotalWarning
        As in :func:`item_total_correlations`, for every scale with a mis-keyed item.

    Notes
    -----
    Each column is computed by :func:`cronbach_alpha` (Cronbach, 1951; Feldt, 1965
    interval), :func:`omega_total` (McDonald, 1999; one-factor ML; bootstrap interval)
    and :func:`item_total_correlations`; see those functions for formulas.

    References
    ----------
    Cronbach, L. J. (1951). Psychometrika, 16, 297-334.
    McDonald, R. P. (1999). Test theory: A unified treatment. Erlbaum.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(6)
    >>> trait = rng.normal(size=(120, 1))
    >>> answers = pd.DataFrame(trait + rng.normal(size=(120, 6)),
    ...                        columns=[f"q{i}" for i in range(1, 7)])
    >>> table = reliability_table(answers, {"a": ["q1", "q2", "q3"], "b": ["q4", "q5"]},
    ...                           n_boot=0)
    >>> table["scale"].tolist(), table["n_items"].tolist()
    (['a', 'b'], [3, 2])
    >>> bool(np.isnan(table.loc[1, "omega_total"]))
    True
    """
    rows = []
    for name, spec_items in scales.items():
        reverse_keyed: Sequence[str] = ()
        response_range: tuple[float, float] | None = None
        if isinstance(spec_items, ScaleItems):
            columns: Sequence[str] = spec_items.items
            reverse_keyed = spec_items.reverse_keyed
            response_range = spec_items.response_range
        else:
            columns = list(spec_items)
        alpha = cronbach_alpha(
            data,
            columns,
            ci=ci,
            missing=missing,
            reverse_keyed=reverse_keyed,
            response_range=response_range,
        )
        omega_values = (float("nan"),) * 3
        if alpha.n_items >= 3:
            omega = omega_total(
                data,
                columns,
                ci=ci,
                n_boot=n_boot,
                random_state=random_state,
                missing=missing,
                reverse_keyed=reverse_keyed,
                response_range=response_range,
            )
            omega_values = (omega.value, omega.ci_low, omega.ci_high)
        items_table = item_total_correlations(
            data,
            columns,
            missing=missing,
            reverse_keyed=reverse_keyed,
            response_range=response_range,
        )
        rows.append(
            {
                "scale": name,
                "n_items": alpha.n_items,
                "n": alpha.n,
                "n_excluded": alpha.n_excluded,
                "alpha": alpha.value,
                "alpha_ci_low": alpha.ci_low,
                "alpha_ci_high": alpha.ci_high,
                "omega_total": omega_values[0],
                "omega_ci_low": omega_values[1],
                "omega_ci_high": omega_values[2],
                "min_corrected_item_total_r": float(items_table["corrected_item_total_r"].min()),
            }
        )
    return pd.DataFrame(rows)

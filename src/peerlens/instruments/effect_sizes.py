"""Standardised pre-post effect sizes for within-participant designs (Lakens, 2013).

:func:`prepost_effect_sizes` returns Cohen's d_z, d_rm, d_av and Hedges' g_av for one
pre-post comparison, each as an :class:`EffectSize` with its confidence interval and
provenance, together with the pre-post correlation every repeated-measures d depends on.
The sign follows the change post - pre: positive when scores rise. Whether a rise is an
improvement depends on the measure (compare :func:`peerlens.instruments.change.reliable_change`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
from scipy import optimize, stats

from peerlens.instruments.change import _paired_scores
from peerlens.instruments.reliability import (
    InsufficientDataError,
    PsychometricsError,
    ZeroVarianceError,
)

__all__ = ["EffectSize", "PrePostEffectSizes", "prepost_effect_sizes"]

_LAKENS = (
    "Lakens, D. (2013). Calculating and reporting effect sizes to facilitate cumulative "
    "science: a practical primer for t-tests and ANOVAs. Frontiers in Psychology, 4, 863. "
    "doi:10.3389/fpsyg.2013.00863"
)
_CITATIONS = {
    "d_z": _LAKENS + "; Cohen, J. (1988). Statistical power analysis for the behavioral "
    "sciences (2nd ed.). CI: Cumming, G. (2012). Understanding the new statistics.",
    "d_rm": _LAKENS + "; Morris, S. B., & DeShon, R. P. (2002). Psychological Methods, 7, 105-125.",
    "d_av": _LAKENS + "; Cumming, G. (2012). Understanding the new statistics. Routledge.",
    "g_av": _LAKENS + "; Hedges, L. V. (1981). Journal of Educational Statistics, 6, 107-128; "
    "Borenstein, M., et al. (2009). Introduction to meta-analysis. Wiley (J with df = n - 1).",
}


@dataclass(frozen=True)
class EffectSize:
    """One standardised effect size with its interval and provenance.

    Attributes
    ----------
    name : str
        ``"d_z"``, ``"d_rm"``, ``"d_av"`` or ``"g_av"``.
    value : float
        Point estimate (sign of post - pre).
    ci_low, ci_high : float
        Confidence interval (NaN when not computed).
    ci_level : float
        Coverage of the interval.
    n : int
        Participants with both scores.
    method : str
        Formula and interval method.
    citation : str
        Sources of the formula and interval.
    """

    name: str
    value: float
    ci_low: float
    ci_high: float
    ci_level: float
    n: int
    method: str
    citation: str


@dataclass(frozen=True)
class PrePostEffectSizes:
    """The four Lakens (2013) within-participant effect sizes and their inputs.

    Attributes
    ----------
    d_z, d_rm, d_av, g_av : EffectSize
        The effect sizes.
    r : float
        Pearson correlation between pre and post scores (used by d_rm).
    n, n_excluded : int
        Complete pairs used, and participants dropped for a missing score.
    mean_pre, mean_post, sd_pre, sd_post : float
        Descriptives of the complete pairs (SDs with n - 1).
    mean_change, sd_change : float
        Mean and SD of post - pre.
    """

    d_z: EffectSize
    d_rm: EffectSize
    d_av: EffectSize
    g_av: EffectSize
    r: float
    n: int
    n_excluded: int
    mean_pre: float
    mean_post: float
    sd_pre: float
    sd_post: float
    mean_change: float
    sd_change: float

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: one row per effect size, with r and n on every row.

        Examples
        --------
        >>> import pandas as pd
        >>> es = prepost_effect_sizes(pd.DataFrame({"pre": [1, 2, 3, 5], "post": [2, 4, 4, 7]}),
        ...                           n_boot=0)
        >>> es.to_frame()["effect_size"].tolist()
        ['d_z', 'd_rm', 'd_av', 'g_av']
        """
        rows = []
        for effect in (self.d_z, self.d_rm, self.d_av, self.g_av):
            row = {f.name: getattr(effect, f.name) for f in fields(effect)}
            row["effect_size"] = row.pop("name")
            row["r"] = self.r
            rows.append(row)
        columns = ["effect_size", "value", "ci_low", "ci_high", "ci_level", "n", "r"]
        table = pd.DataFrame(rows)
        return table[[*columns, "method", "citation"]]


def _hedges_j(df: float) -> float:
    # Small-sample correction J = 1 - 3 / (4 df - 1) (Hedges, 1981; Borenstein et al., 2009)
    return 1.0 - 3.0 / (4.0 * df - 1.0)


def _dz_interval(d_z: float, n: int, ci: float) -> tuple[float, float]:
    """Exact interval for d_z by inverting the noncentral t distribution (Cumming, 2012)."""
    df = n - 1
    t_obs = d_z * math.sqrt(n)
    tail = (1.0 - ci) / 2.0

    def cdf(ncp: float) -> float:
        # scipy's nct.cdf can return NaN far in the lower tail for small df; fall back on
        # the reflection P(T <= t | ncp) = P(T >= -t | -ncp), then on the limiting value.
        value = float(stats.nct.cdf(t_obs, df, ncp))
        if not math.isfinite(value):
            value = float(stats.nct.sf(-t_obs, df, -ncp))
        if not math.isfinite(value):
            value = 1.0 if t_obs > ncp else 0.0
        return value

    def solve(target: float) -> float:
        def gap(ncp: float) -> float:
            return cdf(ncp) - target

        width = 10.0 + 2.0 * abs(t_obs)
        low, high = t_obs - width, t_obs + width
        for _ in range(50):
            if gap(low) > 0 > gap(high):
                break
            width *= 2.0
            low, high = t_obs - width, t_obs + width
        return float(optimize.brentq(gap, low, high, xtol=1e-12))

    return solve(1.0 - tail) / math.sqrt(n), solve(tail) / math.sqrt(n)


def _estimates(pre: np.ndarray, post: np.ndarray) -> np.ndarray:
    """d_z, d_rm, d_av, g_av for arrays of shape (..., n); NaN where undefined."""
    n = pre.shape[-1]
    diff = post - pre
    mean_diff = diff.mean(axis=-1)
    sd_diff = diff.std(axis=-1, ddof=1)
    sd1 = pre.std(axis=-1, ddof=1)
    sd2 = post.std(axis=-1, ddof=1)
    cov = (
        (pre - pre.mean(axis=-1, keepdims=True)) * (post - post.mean(axis=-1, keepdims=True))
    ).sum(axis=-1) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        # Rounding can put a perfect correlation a hair above 1; clip before the root.
        r = np.clip(cov / (sd1 * sd2), -1.0, 1.0)
        d_z = mean_diff / sd_diff
        d_rm = d_z * np.sqrt(2.0 * (1.0 - r))
        d_av = mean_diff / ((sd1 + sd2) / 2.0)
    g_av = d_av * _hedges_j(n - 1)
    return np.stack([d_z, d_rm, d_av, g_av], axis=-1)


def prepost_effect_sizes(
    data: pd.DataFrame,
    pre: str = "pre",
    post: str = "post",
    *,
    participant: str | None = None,
    timepoint: str | None = None,
    score: str | None = None,
    ci: float = 0.95,
    n_boot: int = 2000,
    random_state: int | None = 0,
) -> PrePostEffectSizes:
    """Cohen's d_z, d_rm, d_av and Hedges' g_av for a pre-post (paired) comparison.

    Parameters
    ----------
    data : pandas.DataFrame
        Wide: one row per participant with ``pre`` and ``post`` columns. Long: one row per
        participant x timepoint; ``timepoint`` and ``score`` name the columns and
        ``pre``/``post`` are the timepoint labels (``participant`` required).
    pre, post : str
        Column names (wide) or timepoint labels (long).
    participant, timepoint, score : str, optional
        Long-format column names.
    ci : float
        Coverage of the intervals.
    n_boot : int
        Bootstrap resamples of participants for the d_rm, d_av and g_av intervals; 0
        leaves those intervals NaN (d_z's exact interval is always given).
    random_state : int, optional
        Bootstrap seed.

    Returns
    -------
    PrePostEffectSizes
        Use ``.to_frame()`` for a tidy table.

    Raises
    ------
    InsufficientDataError
        Fewer than 3 complete pairs.
    NonNumericDataError
        A score is not a number.
    ZeroVarianceError
        Pre or post scores, or the changes, do not vary (the d's are undefined).

    Notes
    -----
    With M_diff and SD_diff the mean and SD of post - pre, SD_1 and SD_2 the pre and post
    SDs and r their Pearson correlation (Lakens, 2013, eqs. 6-10):

        d_z  = M_diff / SD_diff
        d_rm = M_diff / sqrt(SD_1^2 + SD_2^2 - 2 r SD_1 SD_2) * sqrt(2 (1 - r))
             = d_z * sqrt(2 (1 - r))
        d_av = M_diff / ((SD_1 + SD_2) / 2)
        g_av = d_av * (1 - 3 / (4 (n - 1) - 1))

    d_rm and d_av are comparable with between-group d; d_z is the standardised change
    used in power analysis for paired t-tests. g_av applies Hedges' small-sample
    correction with df = n - 1, as in Lakens' (2013) companion spreadsheet.
    Intervals: d_z exact, by inverting the noncentral t with df = n - 1 (Cumming, 2012);
    d_rm, d_av and g_av percentile bootstrap over participants.

    References
    ----------
    Lakens, D. (2013). Calculating and reporting effect sizes to facilitate cumulative
    science: a practical primer for t-tests and ANOVAs. Frontiers in Psychology, 4, 863.
    Cumming, G. (2012). Understanding the new statistics. New York: Routledge.
    Morris, S. B., & DeShon, R. P. (2002). Combining effect size estimates in
    meta-analysis with repeated measures and independent-groups designs. Psychological
    Methods, 7, 105-125.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(4)
    >>> baseline = rng.normal(3.0, 0.6, size=40)
    >>> scores = pd.DataFrame({"pre": baseline, "post": baseline + 0.4 + rng.normal(0, 0.4, 40)})
    >>> es = prepost_effect_sizes(scores, n_boot=500)
    >>> es.n, round(es.r, 2)
    (40, 0.87)
    >>> bool(abs(es.g_av.value) < abs(es.d_av.value))
    True
    >>> bool(es.d_z.ci_low < es.d_z.value < es.d_z.ci_high)
    True
    """
    if not 0 < ci < 1:
        raise PsychometricsError(f"ci must be a coverage between 0 and 1, e.g. 0.95; got {ci}")
    if n_boot < 0:
        raise PsychometricsError(f"n_boot must be >= 0, got {n_boot}")
    frame, n_excluded = _paired_scores(
        data, pre, post, participant=participant, timepoint=timepoint, score=score
    )
    n = len(frame)
    if n < 3:
        raise InsufficientDataError(
            f"pre-post effect sizes need at least 3 participants with both scores, got {n} "
            f"({n_excluded} dropped for a missing score)"
        )
    x1 = frame["pre"].to_numpy(dtype=float)
    x2 = frame["post"].to_numpy(dtype=float)
    diff = x2 - x1
    for name, values in (("pre", x1), ("post", x2), ("post - pre change", diff)):
        if not values.std(ddof=1) > 0:
            raise ZeroVarianceError(
                f"the {name} scores have zero variance across the {n} participants; "
                "standardised effect sizes are undefined"
            )
    d_z, d_rm, d_av, g_av = (float(v) for v in _estimates(x1, x2))
    r = float(np.clip(np.corrcoef(x1, x2)[0, 1], -1.0, 1.0))

    boot_low = np.full(4, np.nan)
    boot_high = np.full(4, np.nan)
    used = 0
    if n_boot > 0:
        rng = np.random.default_rng(random_state)
        index = rng.integers(0, n, size=(n_boot, n))
        draws = _estimates(x1[index], x2[index])
        finite = np.isfinite(draws).all(axis=1)
        used = int(finite.sum())
        if used >= max(10, n_boot // 2):
            tail = (1.0 - ci) / 2.0
            boot_low, boot_high = np.quantile(draws[finite], [tail, 1.0 - tail], axis=0)
    dz_low, dz_high = _dz_interval(d_z, n, ci)
    boot_text = (
        f"percentile bootstrap {ci:.0%} CI over participants ({used} of {n_boot} resamples "
        f"usable, seed {random_state})"
        if n_boot > 0
        else "no CI requested (n_boot=0)"
    )
    listwise = f"listwise deletion ({n_excluded} excluded)"

    def make(name: str, value: float, low: float, high: float, formula: str) -> EffectSize:
        return EffectSize(
            name=name,
            value=value,
            ci_low=float(low),
            ci_high=float(high),
            ci_level=ci,
            n=n,
            method=formula,
            citation=_CITATIONS[name],
        )

    return PrePostEffectSizes(
        d_z=make(
            "d_z",
            d_z,
            dz_low,
            dz_high,
            "Cohen's d_z = M_diff / SD_diff (post - pre); exact noncentral-t "
            f"{ci:.0%} CI with df = {n - 1}; {listwise}",
        ),
        d_rm=make(
            "d_rm",
            d_rm,
            boot_low[1],
            boot_high[1],
            f"Cohen's d_rm = d_z * sqrt(2 (1 - r)), r = {r:.4f}; {boot_text}; {listwise}",
        ),
        d_av=make(
            "d_av",
            d_av,
            boot_low[2],
            boot_high[2],
            f"Cohen's d_av = M_diff / ((SD_pre + SD_post) / 2); {boot_text}; {listwise}",
        ),
        g_av=make(
            "g_av",
            g_av,
            boot_low[3],
            boot_high[3],
            f"Hedges' g_av = d_av * (1 - 3 / (4 (n - 1) - 1)), J = {_hedges_j(n - 1):.4f}; "
            f"{boot_text}; {listwise}",
        ),
        r=r,
        n=n,
        n_excluded=n_excluded,
        mean_pre=float(x1.mean()),
        mean_post=float(x2.mean()),
        sd_pre=float(x1.std(ddof=1)),
        sd_post=float(x2.std(ddof=1)),
        mean_change=float(diff.mean()),
        sd_change=float(diff.std(ddof=1)),
    )

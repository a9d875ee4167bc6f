"""Nonlinear HRV: Poincare SD1/SD2, sample entropy (KD-tree), DFA alpha1/alpha2 (vectorised)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from sklearn.neighbors import KDTree

#: DFA scale ranges in beats: short-term 4-16, long-term 16-64 (Peng et al. 1995;
#: Tarvainen et al. 2014).
DFA_SHORT = (4, 16)
DFA_LONG = (16, 64)


def poincare(nn_ms: NDArray[np.float64]) -> dict[str, float]:
    """SD1, SD2 and their ratio from the Poincare plot of NN(n+1) against NN(n).

    SD1 and SD2 are the sample SDs of the points projected on the axes perpendicular to and
    along the line of identity, (NN(n+1) - NN(n)) / sqrt(2) and (NN(n+1) + NN(n)) / sqrt(2)
    (Tulppo et al. 1996; Brennan et al. 2001, who show SD1^2 = SDSD^2 / 2 and, for long series,
    SD2^2 ~ 2 SDNN^2 - SDSD^2 / 2).
    """
    x = np.asarray(nn_ms, dtype=np.float64)
    sd1 = float(np.std((x[1:] - x[:-1]) / np.sqrt(2.0), ddof=1))
    sd2 = float(np.std((x[1:] + x[:-1]) / np.sqrt(2.0), ddof=1))
    return {"sd1_ms": sd1, "sd2_ms": sd2, "sd1_sd2": sd1 / sd2 if sd2 > 0 else np.nan}


def sample_entropy(x: NDArray[np.float64], m: int = 2, r: float | None = None) -> float:
    """Sample entropy SampEn(m, r) = -ln(A / B) (Richman & Moorman 2000).

    B counts pairs of distinct templates of length m, A of length m + 1, within Chebyshev
    distance r (<= r); the same N - m templates are used for both lengths. ``r`` defaults to
    0.2 * SD (sample SD), the usual choice (Richman & Moorman 2000). Pair counts use a KD-tree
    dual-tree two-point count (scikit-learn; Gray & Moore 2001), never the O(N^2) pair loop:
    about 1 ms for a 5-minute window, about 6 s for 24 hours (~10^5 beats) on 2 cores.
    Returns NaN when no template pair matches at length m + 1 (entropy undefined).
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    if n <= m + 2:
        return float("nan")
    tol = 0.2 * float(np.std(x, ddof=1)) if r is None else r
    count = n - m
    emb = np.lib.stride_tricks.sliding_window_view(x, m + 1)[:count]

    def pairs(dim: int) -> int:
        pts = np.ascontiguousarray(emb[:, :dim])
        tree = KDTree(pts, leaf_size=40, metric="chebyshev")
        total = int(tree.two_point_correlation(pts, [tol], dualtree=True)[0])
        return (total - count) // 2  # drop self-matches, count each pair once

    b = pairs(m)
    a = pairs(m + 1)
    if a == 0 or b == 0:
        return float("nan")
    return float(-np.log(a / b))


def _dfa_fluctuation(profile: NDArray[np.float64], scales: NDArray[np.intp]) -> NDArray[np.float64]:
    """F(n) for each scale n: RMS residual of a least-squares line in each window of n beats.

    Windows tile the profile from the start and from the end (Peng et al. 1995; Kantelhardt et
    al. 2001 use both directions so no sample is dropped). Residual variance per window is
    computed in closed form from sums, vectorised over windows.
    """
    out = np.empty(scales.size)
    n_total = profile.size
    for k, n in enumerate(scales):
        w = n_total // n
        segs = np.concatenate(
            (profile[: w * n].reshape(w, n), profile[n_total - w * n :].reshape(w, n))
        )
        t = np.arange(n, dtype=np.float64)
        t_c = t - t.mean()
        y_mean = segs.mean(axis=1, keepdims=True)
        y_c = segs - y_mean
        slope = (y_c @ t_c) / (t_c @ t_c)
        resid_var = np.mean(y_c**2, axis=1) - slope**2 * np.mean(t_c**2)
        out[k] = np.sqrt(np.mean(np.maximum(resid_var, 0.0)))
    return out


def dfa(nn_ms: NDArray[np.float64]) -> dict[str, float]:
    """DFA scaling exponents alpha1 (4-16 beats) and alpha2 (16-64 beats) (Peng et al. 1995).

    The profile is the cumulative sum of NN minus its mean; alpha is the slope of log F(n)
    against log n over each range. O(N) per scale. An exponent is NaN when the series has fewer
    than two windows at the largest scale of its range.
    """
    x = np.asarray(nn_ms, dtype=np.float64)
    profile = np.cumsum(x - x.mean())
    res: dict[str, float] = {}
    for name, (lo, hi) in (("dfa_alpha1", DFA_SHORT), ("dfa_alpha2", DFA_LONG)):
        if x.size < 2 * hi:
            res[name] = float("nan")
            continue
        scales = np.arange(lo, hi + 1)
        f = _dfa_fluctuation(profile, scales)
        res[name] = float(np.polyfit(np.log(scales), np.log(f), 1)[0])
    return res

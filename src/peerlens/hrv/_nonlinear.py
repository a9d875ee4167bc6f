"""Nonlinear HRV: Poincare SD1/SD2, sample entropy (KD-tree), DFA alpha1/alpha2 (vectorised)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: DFA scale ranges in beats: short-term 4-16, long-term 16-64 (Peng et al. 1995;
#: Tarvainen et al. 2014).
DFA_SHORT = (4, 16)
DFA_LONG = (16, 64)


def poincare(nn_ms: NDArray[np.float64], segments: ArrayLike | None = None) -> dict[str, float]:
    """SD1, SD2 and their ratio from the Poincare plot of NN(n+1) against NN(n).

    SD1 and SD2 are the sample SDs of the points projected on the axes perpendicular to and
    along the line of identity, (NN(n+1) - NN(n)) / sqrt(2) and (NN(n+1) + NN(n)) / sqrt(2)
    (Tulppo et al. 1996; Brennan et al. 2001, who show SD1^2 = SDSD^2 / 2 and, for long series,
    SD2^2 ~ 2 SDNN^2 - SDSD^2 / 2). With ``segments`` (a label per interval), only pairs of
    intervals in the same continuous run are points of the plot.
    """
    x = np.asarray(nn_ms, dtype=np.float64)
    a, b = x[:-1], x[1:]
    if segments is not None:
        seg = np.asarray(segments).ravel()
        same = seg[1:] == seg[:-1]
        a, b = a[same], b[same]
    if a.size < 2:
        return {"sd1_ms": np.nan, "sd2_ms": np.nan, "sd1_sd2": np.nan}
    sd1 = float(np.std((b - a) / np.sqrt(2.0), ddof=1))
    sd2 = float(np.std((b + a) / np.sqrt(2.0), ddof=1))
    return {"sd1_ms": sd1, "sd2_ms": sd2, "sd1_sd2": sd1 / sd2 if sd2 > 0 else np.nan}


#: Series at most this long use the KD-tree path of :func:`sample_entropy`.
GRID_MIN_N = 2000
#: Largest number of grid levels for the exact counting path of :func:`sample_entropy`.
MAX_GRID_LEVELS = 1024


def _grid(x: NDArray[np.float64]) -> tuple[NDArray[np.intp], float, int] | None:
    """Integer levels of ``x`` when it lies on a regular grid (quantised RR), else None.

    NN series from an ECG are multiples of 1/fs (half of that after beat correction), RR files
    of 1 ms or 1/1024 s: the grid step is the smallest gap between distinct values, accepted when
    every value is an integer number of steps from the minimum.
    """
    u = np.unique(x)
    if u.size < 2:
        return None
    q = float(np.min(np.diff(u)))
    steps = (u - u[0]) / q
    if np.max(np.abs(steps - np.round(steps))) > 1e-6:
        return None
    levels = int(np.round(steps[-1])) + 1
    if levels > MAX_GRID_LEVELS:
        return None
    return np.round((x - u[0]) / q).astype(np.intp), q, levels


def _box_counts_2d(
    a: NDArray[np.intp], b: NDArray[np.intp], k: int, half: int
) -> NDArray[np.int64]:
    """For each point, how many points (itself included) lie within +/- half levels in a and b."""
    hist = np.bincount(a * k + b, minlength=k * k).reshape(k, k)
    sat = np.zeros((k + 1, k + 1), dtype=np.int64)
    np.cumsum(np.cumsum(hist, axis=0), axis=1, out=sat[1:, 1:])
    a_lo, a_hi = np.maximum(a - half, 0), np.minimum(a + half, k - 1) + 1
    b_lo, b_hi = np.maximum(b - half, 0), np.minimum(b + half, k - 1) + 1
    return sat[a_hi, b_hi] - sat[a_lo, b_hi] - sat[a_hi, b_lo] + sat[a_lo, b_lo]


def _grid_pairs(levels: NDArray[np.intp], k: int, half: int, dim: int, count: int) -> int:
    """Exact number of template pairs within Chebyshev ``half`` levels (dim 2 or 3).

    Two dimensions: one summed-area table of the 2-D histogram. Three dimensions: the points are
    swept in order of their first coordinate while a 2-D histogram holds the points whose first
    coordinate is within ``half`` levels; its summed-area table answers the box counts of the
    points at the current level. O(N + K^2) and O(N log N + K^3) respectively, K <= 1024 levels.
    """
    cols = [levels[i : i + count] for i in range(dim)]
    if dim == 2:
        total = int(_box_counts_2d(cols[0], cols[1], k, half).sum())
        return (total - count) // 2
    a, b, c = cols
    order = np.argsort(a, kind="stable")
    a_s, b_s, c_s = a[order], b[order], c[order]
    starts = np.searchsorted(a_s, np.arange(k + 1))
    window = np.zeros(k * k, dtype=np.int64)
    total = 0
    added = removed = 0
    for lev in np.unique(a_s):
        hi = starts[min(lev + half + 1, k)]
        lo = starts[max(lev - half, 0)]
        if hi > added:
            np.add.at(window, b_s[added:hi] * k + c_s[added:hi], 1)
            added = hi
        if lo > removed:
            np.subtract.at(window, b_s[removed:lo] * k + c_s[removed:lo], 1)
            removed = lo
        sl = slice(starts[lev], starts[lev + 1])
        bb, cc = b_s[sl], c_s[sl]
        # only the rows (second coordinate) these points' boxes reach are summed
        r0 = max(int(bb.min()) - half, 0)
        r1 = min(int(bb.max()) + half, k - 1) + 1
        sat = np.zeros((r1 - r0 + 1, k + 1), dtype=np.int64)
        np.cumsum(np.cumsum(window.reshape(k, k)[r0:r1], axis=0), axis=1, out=sat[1:, 1:])
        b_lo, b_hi = np.maximum(bb - half, r0) - r0, np.minimum(bb + half, k - 1) + 1 - r0
        c_lo, c_hi = np.maximum(cc - half, 0), np.minimum(cc + half, k - 1) + 1
        total += int((sat[b_hi, c_hi] - sat[b_lo, c_hi] - sat[b_hi, c_lo] + sat[b_lo, c_lo]).sum())
    return (total - count) // 2


def sample_entropy(x: NDArray[np.float64], m: int = 2, r: float | None = None) -> float:
    """Sample entropy SampEn(m, r) = -ln(A / B) (Richman & Moorman 2000).

    B counts pairs of distinct templates of length m, A of length m + 1, within Chebyshev
    distance r (<= r); the same N - m templates are used for both lengths. ``r`` defaults to
    0.2 * SD (sample SD), the usual choice (Richman & Moorman 2000). Pairs are counted, never
    enumerated: for quantised series (every NN series from an ECG or an RR file is an integer
    number of sampling steps) by exact histogram box counts (:func:`_grid_pairs`); otherwise by a
    KD-tree dual-tree two-point count (scikit-learn; Gray & Moore 2001), O(N log N) for typical r.
    Returns NaN when no template pair matches at length m + 1 (entropy undefined).
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    if n <= m + 2:
        return float("nan")
    tol = 0.2 * float(np.std(x, ddof=1)) if r is None else r
    count = n - m
    # short series: the KD-tree is already instant and the grid sweep has a K^2 setup cost
    grid = _grid(x) if m == 2 and n > GRID_MIN_N else None
    if grid is not None:
        levels, q, k = grid
        half = int(np.floor(tol / q * (1 + 1e-12)))
        b_grid = _grid_pairs(levels, k, half, 2, count)
        a_grid = _grid_pairs(levels, k, half, 3, count)
        if a_grid == 0 or b_grid == 0:
            return float("nan")
        return float(-np.log(a_grid / b_grid))
    from sklearn.neighbors import KDTree  # heavy import, only needed off the grid path

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
        t_c = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
        var_t = float(np.dot(t_c, t_c)) / n
        total = 0.0
        # the two tilings are reshaped views (no copy); per window: mean, centred values, slope
        # against centred time, residual variance = var(y) - slope^2 var(t)
        for segs in (profile[: w * n].reshape(w, n), profile[n_total - w * n :].reshape(w, n)):
            y_c = segs - segs.mean(axis=1, keepdims=True)
            slope = (y_c @ t_c) / (n * var_t)
            resid_var = np.einsum("ij,ij->i", y_c, y_c) / n - slope**2 * var_t
            total += float(np.sum(np.maximum(resid_var, 0.0)))
        out[k] = np.sqrt(total / (2 * w))
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

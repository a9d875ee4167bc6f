"""REML fit of the random-intercept model from per-participant sums, for many refits of one
design with different outcomes (the imputations of :mod:`peerlens.analysis.missing`).

For the model of :mod:`peerlens.analysis.mixed` with a random intercept only,
``V_i = sigma^2 (I + gamma J)`` with ``gamma = tau^2 / sigma^2`` and ``J`` the matrix of ones, so
that ``W_i^-1 = I - w_i J`` with ``w_i = gamma / (1 + n_i gamma)`` and
``log|W_i| = log(1 + n_i gamma)``. Every GLS sum is then the ordinary sum minus a correction from
the participants' column sums ``s_i = X_i' 1`` and outcome sums ``1' y_i``; participants of the
same size share ``w_i``, so the corrections are summed by size once and the cost of a deviance
evaluation does not grow with the number of participants.

``sigma^2`` is profiled out (Harville 1977): at given ``gamma`` the REML deviance is smallest at
``sigma^2 = Q / (n - p)``, ``Q = y'W^-1 y - y'W^-1 X beta``, leaving the one-dimensional profiled
deviance

    (n - p) (1 + log(2 pi Q / (n - p))) + sum_i log(1 + n_i gamma) + log|X'W^-1 X|,

which is minimised over ``log gamma`` by bounded Brent search around a starting ratio, and
compared with ``gamma = 0`` (the boundary, which a search on the log scale cannot reach). Its
minimum is the REML deviance of :func:`peerlens.analysis.mixed._deviance` at its optimum
(lme4's constants).

References
----------
Harville, D. A. (1977). Maximum likelihood approaches to variance component estimation and to
related problems. JASA, 72, 320-338.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

#: Half-width, in log gamma, of the search interval around the starting ratio (e^20 ~ 5e8).
_SPAN = 20.0


@dataclass(frozen=True)
class InterceptDesign:
    """The outcome-free sums of one design: ``X'X``, each participant's column sums, and the
    sums of their outer products by participant size."""

    x: np.ndarray  # (n, p)
    groups: np.ndarray  # (n,) participant codes 0 .. m-1
    sizes: np.ndarray  # (k,) the distinct participant sizes
    size_of: np.ndarray  # (m,) index into ``sizes`` of each participant
    counts: np.ndarray  # (k,) participants of each size
    xtx: np.ndarray  # (p, p)
    colsums: np.ndarray  # (m, p) s_i = X_i' 1
    outer: np.ndarray  # (k, p, p) sum of s_i s_i' over the participants of each size


def intercept_design(x: np.ndarray, groups: np.ndarray) -> InterceptDesign:
    """Sums of the design ``x`` (rows by observation) with participants ``groups`` (labels)."""
    _, codes = np.unique(groups, return_inverse=True)
    m = int(codes.max()) + 1
    n_i = np.bincount(codes, minlength=m)
    sizes, size_of, counts = np.unique(n_i, return_inverse=True, return_counts=True)
    colsums = np.zeros((m, x.shape[1]))
    np.add.at(colsums, codes, x)
    outer = np.zeros((len(sizes), x.shape[1], x.shape[1]))
    np.add.at(outer, size_of, colsums[:, :, None] * colsums[:, None, :])
    return InterceptDesign(x, codes, sizes, size_of, counts, x.T @ x, colsums, outer)


def fit_intercept_reml(
    design: InterceptDesign, y: np.ndarray, start: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """REML fit of outcome ``y`` on ``design`` from the variance components ``start``
    (tau^2, sigma^2).

    Returns
    -------
    tuple
        Fixed effects, their covariance ``(X'V^-1 X)^-1``, tau^2 and sigma^2 at the optimum.
    """
    x = design.x
    n, p = x.shape
    ysums = np.bincount(design.groups, weights=y, minlength=len(design.colsums))
    xty = x.T @ y
    yty = float(y @ y)
    cross = np.zeros((len(design.sizes), p))
    np.add.at(cross, design.size_of, design.colsums * ysums[:, None])
    squares = np.bincount(design.size_of, weights=ysums**2, minlength=len(design.sizes))

    def sums(gamma: float) -> tuple[np.ndarray, np.ndarray, float]:
        w = gamma / (1 + design.sizes * gamma)
        xtwx = design.xtx - np.einsum("k,kij->ij", w, design.outer)
        xtwy = xty - w @ cross
        beta = np.linalg.solve(xtwx, xtwy)
        return xtwx, beta, yty - float(w @ squares) - float(xtwy @ beta)

    def profiled(gamma: float) -> float:
        xtwx, _, quad = sums(gamma)
        _, ld_x = np.linalg.slogdet(xtwx)
        return float(
            (n - p) * (1 + np.log(2 * np.pi * quad / (n - p)))
            + design.counts @ np.log1p(design.sizes * gamma)
            + ld_x
        )

    tau2, sigma2 = start
    centre = float(np.log(max(tau2, 1e-8 * sigma2) / sigma2))
    best = optimize.minimize_scalar(
        lambda log_gamma: profiled(float(np.exp(log_gamma))),
        bounds=(centre - _SPAN, centre + _SPAN),
        method="bounded",
        options={"xatol": 1e-10, "maxiter": 500},
    )
    gamma = float(np.exp(best.x))
    if profiled(0.0) <= profiled(gamma):
        gamma = 0.0  # the optimum is on the boundary (tau^2 = 0: lme4's "singular fit")
    xtwx, beta, quad = sums(gamma)
    sigma2_hat = quad / (n - p)
    return beta, sigma2_hat * np.linalg.inv(xtwx), gamma * sigma2_hat, sigma2_hat

"""HRV metrics from an NN series: Task Force (1996) time domain, frequency domain, nonlinear.

Column names carry their unit (``rmssd_ms``, ``hf_ms2``); unitless indices have no suffix.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from peerlens.hrv._blas import single_blas_thread
from peerlens.hrv._errors import HrvInputError, RecordingTooShortError
from peerlens.hrv._frequency import BANDS_HZ, METHODS, Spectrum, frequency_metrics
from peerlens.hrv._nonlinear import dfa, poincare, sample_entropy

__all__ = [
    "BANDS_HZ",
    "FREQUENCY_COLUMNS",
    "METRIC_COLUMNS",
    "NONLINEAR_COLUMNS",
    "TIME_COLUMNS",
    "hrv_metrics",
    "nn_spectrum",
    "time_domain",
]

TIME_COLUMNS = (
    "mean_nn_ms",
    "mean_hr_bpm",
    "sdnn_ms",
    "rmssd_ms",
    "sdsd_ms",
    "pnn50_pct",
    "pnn20_pct",
    "hrv_triangular_index",
    "tinn_ms",
)
FREQUENCY_COLUMNS = (
    "vlf_ms2",
    "lf_ms2",
    "hf_ms2",
    "lf_hf",
    "lf_nu",
    "hf_nu",
    "ln_hf",
    "peak_hf_hz",
)
NONLINEAR_COLUMNS = ("sd1_ms", "sd2_ms", "sd1_sd2", "sampen", "dfa_alpha1", "dfa_alpha2")
METRIC_COLUMNS = TIME_COLUMNS + FREQUENCY_COLUMNS + NONLINEAR_COLUMNS

#: Histogram bin width for the geometric measures: 1/128 s = 7.8125 ms (Task Force 1996,
#: "Geometrical methods").
HIST_BIN_MS = 1000.0 / 128.0
#: Fewest NN intervals for which metrics are computed.
MIN_NN = 3


def _tinn(counts: NDArray[np.float64], x: NDArray[np.float64], lo_bin: int, hi_bin: int) -> float:
    """TINN: base M - N of the least-squares triangle fitted to the NN histogram.

    Task Force (1996): q(t) = 0 for t <= N and t >= M, q(X) = Y (the histogram mode), linear
    in between; N and M minimise the integral of (D(t) - q(t))^2 over all t. With the apex fixed
    at the mode the error splits into a left part depending only on N and a right part depending
    only on M, so each side is minimised on its own over the histogram grid (O(B^2) for B bins
    instead of O(B^4)). N runs over the grid points from the first one above the shortest NN to
    the mode, M over those from one bin above the mode to the last one below the longest NN.
    """
    mode = int(np.argmax(counts))
    xm, ym = x[mode], counts[mode]
    best_left, n_best = np.inf, xm
    for i in range(lo_bin, mode):
        xs = x[: mode + 1]
        q = np.where(xs <= x[i], 0.0, ym * (xs - x[i]) / (xm - x[i]))
        err = float(np.sum((counts[: mode + 1] - q) ** 2))
        if err < best_left:
            best_left, n_best = err, x[i]
    best_right, m_best = np.inf, xm
    for j in range(mode + 1, hi_bin + 1):
        xs = x[mode:]
        q = np.where(xs >= x[j], 0.0, ym * (x[j] - xs) / (x[j] - xm))
        err = float(np.sum((counts[mode:] - q) ** 2))
        if err < best_right:
            best_right, m_best = err, x[j]
    return float(m_best - n_best)


def _successive(nn: NDArray[np.float64], segments: ArrayLike | None) -> NDArray[np.float64]:
    """Successive differences of ``nn``, only between intervals of the same segment."""
    d = np.diff(nn)
    if segments is None:
        return d
    seg = np.asarray(segments).ravel()
    if seg.size != nn.size:
        raise HrvInputError(f"segments has {seg.size} values for {nn.size} NN intervals")
    return d[seg[1:] == seg[:-1]]


def time_domain(nn_ms: ArrayLike, *, segments: ArrayLike | None = None) -> dict[str, float]:
    """Task Force (1996) time-domain and geometric measures of an NN series.

    ``segments`` (one label per interval, equal labels = one continuous run of beats) keeps
    successive differences (RMSSD, SDSD, pNNx) from being taken across a gap in the series;
    they are NaN when fewer than one (RMSSD, pNNx) or two (SDSD) differences remain.

    Notes
    -----
    - ``mean_nn_ms``: mean NN; ``mean_hr_bpm``: 60000 / mean NN.
    - ``sdnn_ms``: sample SD of NN (n - 1); ``sdsd_ms``: sample SD of successive differences;
      ``rmssd_ms``: sqrt(mean(successive difference^2)).
    - ``pnn50_pct`` / ``pnn20_pct``: count of |successive differences| > 50 ms / > 20 ms divided
      by the total number of NN intervals, x 100 (Task Force 1996, table 1; pNN20 Mietus et al.
      2002).
    - ``hrv_triangular_index``: number of NN / height of the NN histogram with 1/128 s bins
      (bins start at 0 ms).
    - ``tinn_ms``: see :func:`_tinn` (same histogram).
    """
    nn = np.asarray(nn_ms, dtype=np.float64)
    d = _successive(nn, segments)
    mean_nn = float(nn.mean())
    edges = np.arange(0.0, nn.max() + HIST_BIN_MS, HIST_BIN_MS)
    counts, _ = np.histogram(nn, bins=edges)
    x = edges[:-1]
    above = np.flatnonzero(x - nn.min() > 0)
    lo_bin = int(above[0]) if above.size else 0
    below = np.flatnonzero(x < nn.max())
    hi_bin = int(below[-1]) if below.size else x.size - 1
    return {
        "mean_nn_ms": mean_nn,
        "mean_hr_bpm": 60000.0 / mean_nn,
        "sdnn_ms": float(np.std(nn, ddof=1)),
        "rmssd_ms": float(np.sqrt(np.mean(d**2))) if d.size else np.nan,
        "sdsd_ms": float(np.std(d, ddof=1)) if d.size > 1 else np.nan,
        "pnn50_pct": float(np.sum(np.abs(d) > 50) / nn.size * 100.0) if d.size else np.nan,
        "pnn20_pct": float(np.sum(np.abs(d) > 20) / nn.size * 100.0) if d.size else np.nan,
        "hrv_triangular_index": float(nn.size / counts.max()),
        "tinn_ms": _tinn(counts.astype(np.float64), x, lo_bin, hi_bin),
    }


def _prepare(
    nn_ms: ArrayLike, beat_times_ms: ArrayLike | None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    nn = np.asarray(nn_ms, dtype=np.float64).ravel()
    if nn.size < MIN_NN:
        raise RecordingTooShortError(f"{nn.size} NN intervals; HRV metrics need at least {MIN_NN}")
    bad = ~np.isfinite(nn) | (nn <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise HrvInputError(f"NN interval {i + 1} is {float(nn[i]):g}; intervals must be positive")
    if beat_times_ms is None:
        t = np.cumsum(nn) / 1000.0
    else:
        t = np.asarray(beat_times_ms, dtype=np.float64).ravel() / 1000.0
        if t.size == nn.size + 1:
            t = t[1:]
        if t.size != nn.size:
            raise HrvInputError(
                f"beat_times_ms has {t.size} values for {nn.size} NN intervals (need n or n + 1)"
            )
    return nn, t


def nn_spectrum(
    nn_ms: ArrayLike, *, beat_times_ms: ArrayLike | None = None, method: str = "welch"
) -> Spectrum:
    """The PSD used by :func:`hrv_metrics` (for plots and checks)."""
    nn, t = _prepare(nn_ms, beat_times_ms)
    return frequency_metrics(t, nn, method)[1]


@single_blas_thread
def hrv_metrics(
    nn_ms: ArrayLike,
    *,
    beat_times_ms: ArrayLike | None = None,
    method: str = "welch",
    nonlinear: bool = True,
    segments: ArrayLike | None = None,
) -> dict[str, float]:
    """All HRV metrics of an NN series, keyed by unit-suffixed column names.

    Parameters
    ----------
    nn_ms
        NN intervals in ms (artifact-corrected, e.g. :attr:`ArtifactCorrection.nn_ms`).
    beat_times_ms
        Times of the beats in ms (n + 1 values including the first beat, or n values at the end
        of each interval); default: the cumulative sum of ``nn_ms``.
    method
        ``"welch"`` (default) or ``"lomb"`` for the spectrum; recorded by callers in provenance.
    nonlinear
        Compute SD1/SD2, sample entropy and DFA (default True).
    segments
        Optional label per NN interval; equal labels form one continuous run of beats (e.g.
        :attr:`ArtifactCorrection.nn_segment`). Successive differences (RMSSD, SDSD, pNNx, SD1,
        SD2) are then taken only within a run, never across a gap; give ``beat_times_ms`` as
        the n closing-beat times (:attr:`ArtifactCorrection.nn_end_ms`) so the spectrum sees
        the gaps in time.

    Returns
    -------
    dict
        :data:`TIME_COLUMNS`, :data:`FREQUENCY_COLUMNS` and, if requested,
        :data:`NONLINEAR_COLUMNS`, in that order.

    Notes
    -----
    Time domain: :func:`time_domain` (Task Force 1996). Frequency domain: the NN series (each
    interval placed at its closing beat) is resampled at 4 Hz by cubic spline, linearly detrended
    and its PSD estimated by Welch's method (Hann window, 256 s segments, 50 % overlap), or by the
    Lomb-Scargle periodogram on the unevenly sampled, detrended series (Lomb 1976; Scargle 1982;
    Clifford & Tarassenko 2005 recommend it for series with gaps). Band powers (ms^2) integrate the
    PSD over the Task Force bands VLF 0.0033-0.04, LF 0.04-0.15, HF 0.15-0.4 Hz; ``lf_nu`` and
    ``hf_nu`` are 100 * LF / (LF + HF) and 100 * HF / (LF + HF) (Task Force: total power minus
    VLF); ``ln_hf`` is ln(HF / 1 ms^2); ``peak_hf_hz`` the frequency of the PSD maximum in HF.
    Linear (not smoothness-priors) detrending is used so that VLF is not removed. Across a gap
    in the beat series the Welch resampling interpolates the tachogram (as for any missing
    beats); Lomb-Scargle uses only the measured intervals. Nonlinear:
    :func:`peerlens.hrv._nonlinear.poincare` (Brennan et al. 2001), ``sampen`` with m = 2,
    r = 0.2 SD (Richman & Moorman 2000), DFA alpha1 (4-16 beats) and alpha2 (16-64 beats)
    (Peng et al. 1995); sample entropy and DFA treat the runs of a gapped series as one series
    (a gap joins two runs like one more successive difference).

    References
    ----------
    Task Force of the ESC and NASPE (1996). Heart rate variability: standards of measurement,
    physiological interpretation and clinical use. Circulation 93(5): 1043-1065.
    Tarvainen MP et al. (2014). Kubios HRV: heart rate variability analysis software.
    Comput Methods Programs Biomed 113(1): 210-220.

    Examples
    --------
    >>> m = hrv_metrics([800, 810, 790, 805, 795, 800], nonlinear=False)
    >>> round(m["rmssd_ms"], 3), round(m["mean_hr_bpm"], 1)
    (13.038, 75.0)
    """
    if method not in METHODS:
        raise HrvInputError(f"spectral method must be one of {METHODS}, not {method!r}")
    nn, t = _prepare(nn_ms, beat_times_ms)
    out = time_domain(nn, segments=segments)
    if t[-1] - t[0] >= 2.0 and nn.size >= 4:
        freq, _ = frequency_metrics(t, nn, method)
    else:
        freq = dict.fromkeys(FREQUENCY_COLUMNS, float("nan"))
    out.update(freq)
    if nonlinear:
        out.update(poincare(nn, segments=segments))
        out["sampen"] = sample_entropy(nn)
        out.update(dfa(nn))
    return out

"""Simulated single-lead ECG with realistic HRV and exactly known R peaks (benchmarks, tests and
the simulated demo trial).

RR model: mean 850 ms with respiratory sinus arrhythmia (HF, 0.25 Hz, drifting 0.2-0.3 Hz),
Mayer waves (LF, 0.1 Hz), a 1/f-like component (an AR(1) random walk with decay) and, for long
records, a circadian swing of +/- 120 ms (night slower). The waveform is a sum of Gaussian
P, Q, R, S and T waves per beat (McSharry et al. 2003 use the same wave set in ECGSYN), shifted so
each R apex falls on an integer sample. Noise follows the MIT-BIH Noise Stress Test kinds
(Moody et al. 1984): baseline wander (0.15-0.35 Hz drifts), electrode motion (bursts of low
frequency steps and spikes) and muscle noise (band-limited 20-100 Hz EMG); synthesised here,
scaled to a requested SNR with the Noise Stress Test's definition (signal power = QRS
peak-to-peak amplitude squared / 8).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.signal import butter, sosfilt

__all__ = ["ecg_from_rr", "noise", "noisy_ecg", "simulate_ecg", "simulate_rr"]

WAVES = (  # (offset s, amplitude mV, width s)
    (-0.20, 0.12, 0.025),
    (-0.03, -0.10, 0.010),
    (0.0, 1.20, 0.011),
    (0.03, -0.25, 0.010),
    (0.26, 0.30, 0.045),
)


def simulate_rr(duration_s: float, seed: int = 0) -> NDArray[np.float64]:
    """RR intervals (ms) covering ``duration_s`` seconds."""
    rng = np.random.default_rng(seed)
    n = int(duration_s / 0.6) + 10
    k = np.arange(n)
    t = np.cumsum(np.full(n, 0.85))
    resp_f = 0.25 + 0.05 * np.sin(2 * np.pi * t / 900.0)
    resp = 35.0 * np.sin(2 * np.pi * np.cumsum(resp_f * 0.85))
    mayer = 25.0 * np.sin(2 * np.pi * 0.1 * t + rng.uniform(0, 6.28))
    walk = np.zeros(n)
    e = rng.normal(0, 6.0, n)
    for i in range(1, n):  # AR(1), phi = 0.995: slow VLF wander
        walk[i] = 0.995 * walk[i - 1] + e[i]
    circ = 120.0 * np.cos(2 * np.pi * (t / 86400.0)) if duration_s > 6 * 3600 else 0.0
    rr = 850.0 + resp + mayer + walk + circ + rng.normal(0, 8.0, n)
    rr = np.clip(rr, 400.0, 1600.0)
    stop = int(np.searchsorted(np.cumsum(rr), duration_s * 1000.0 - 1500.0))
    del k
    return rr[:stop]


def ecg_from_rr(
    rr_ms: NDArray[np.float64], duration_s: float, fs: float = 250.0, first_s: float = 0.6
) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Clean ECG (mV) whose R apexes follow ``rr_ms``, and the R-peak sample indices.

    Parameters
    ----------
    rr_ms
        Intervals between successive R peaks in ms; the first R peak is at ``first_s``.
    duration_s
        Length of the signal; beats later than 0.5 s before its end are left out.
    fs
        Sampling rate (Hz). Each R apex is rounded to the nearest sample, so the realised
        intervals are ``np.diff(r_samples) * 1000 / fs``.

    Returns
    -------
    ecg, r_samples
        The signal and the sample index of every R apex in it.

    Examples
    --------
    >>> ecg, r = ecg_from_rr(np.full(10, 800.0), 8.0)
    >>> np.diff(r).tolist()[:3], round(float(ecg[r[0]]), 2)
    ([200, 200, 200], 1.2)
    """
    beats = np.round((first_s + np.concatenate(([0.0], np.cumsum(rr_ms))) / 1000.0) * fs)
    r_samples: NDArray[np.intp] = beats.astype(np.intp)
    n = int(duration_s * fs)
    r_samples = r_samples[r_samples < n - int(0.5 * fs)]
    half = int(0.45 * fs)
    tt = np.arange(-half, half + 1) / fs
    template = np.zeros(tt.size)
    for dt, amp, width in WAVES:
        template += amp * np.exp(-((tt - dt) ** 2) / (2 * width**2))
    ecg = np.zeros(n)
    for off in range(tt.size):  # vectorised over beats, one template sample at a time
        idx = r_samples + off - half
        ok = (idx >= 0) & (idx < n)
        np.add.at(ecg, idx[ok], template[off])
    return ecg, r_samples


def simulate_ecg(
    duration_s: float, fs: float = 250.0, seed: int = 0
) -> tuple[NDArray[np.float64], NDArray[np.intp], NDArray[np.float64]]:
    """Clean ECG (mV), the R-peak sample indices and the RR intervals (ms)."""
    ecg, r_samples = ecg_from_rr(simulate_rr(duration_s, seed), duration_s, fs)
    return ecg, r_samples, np.diff(r_samples) * 1000.0 / fs


def _scale_to_snr(
    clean: NDArray[np.float64], noise: NDArray[np.float64], snr_db: float
) -> NDArray[np.float64]:
    # MIT-BIH Noise Stress Test convention (Moody et al. 1984): signal power S = (QRS
    # peak-to-peak amplitude)^2 / 8, noise power N = mean square of the noise.
    p_sig = float(np.ptp(clean)) ** 2 / 8.0
    p_noise = float(np.mean(noise**2))
    return noise * np.sqrt(p_sig / (p_noise * 10 ** (snr_db / 10.0)))


def noise(kind: str, n: int, fs: float, seed: int = 0) -> NDArray[np.float64]:
    """Unit-free noise of one kind: ``"bw"`` baseline wander, ``"em"`` electrode motion,
    ``"ma"`` muscle artifact."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs
    if kind == "bw":
        out = np.zeros(n)
        for f in rng.uniform(0.15, 0.35, 3):
            out += np.sin(2 * np.pi * f * t + rng.uniform(0, 6.28))
        out += np.cumsum(rng.normal(0, 1, n)) / np.sqrt(fs) * 0.3
        return out
    if kind == "ma":
        sos = butter(4, [20, min(100, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
        return sosfilt(sos, rng.normal(0, 1, n))
    if kind == "em":
        # electrode motion: random steps and 1-3 Hz bursts in the QRS band's neighbourhood
        steps = np.cumsum(rng.normal(0, 1, n) * (rng.random(n) < 2.0 / fs))
        sos = butter(2, [1, 15], btype="bandpass", fs=fs, output="sos")
        bursts = (
            sosfilt(sos, rng.normal(0, 1, n))
            * (np.repeat(rng.random(n // int(fs) + 1) < 0.3, int(fs))[:n])
        )
        return steps + 3 * bursts
    raise ValueError(kind)


def noisy_ecg(
    clean: NDArray[np.float64], fs: float, snr_db: float, kind: str, seed: int = 0
) -> NDArray[np.float64]:
    """``clean`` plus noise of ``kind`` at ``snr_db`` (Noise Stress Test SNR definition)."""
    return clean + _scale_to_snr(clean, noise(kind, clean.size, fs, seed), snr_db)

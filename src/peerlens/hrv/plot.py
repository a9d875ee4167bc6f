"""One PNG per recording: ECG with detected and corrected beats, tachogram, and the NN PSD."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from peerlens.hrv._frequency import BANDS_HZ
from peerlens.hrv.analysis import HrvResult
from peerlens.hrv.metrics import nn_spectrum
from peerlens.hrv.readers import Recording

__all__ = ["plot_result"]

#: Seconds of ECG shown in the top panel (around the first artifact, if any).
ECG_SPAN_S = 20.0


def plot_result(result: HrvResult, recording: Recording | None, path: str | Path) -> Path:
    """Write the diagnostic figure of ``result`` as a PNG (matplotlib, Agg backend).

    The ECG panel (omitted for RR-only input) shows 20 s around the first artifact (or the start)
    with detected R peaks (x) and corrected beats (o); the tachogram shows detected RR and
    corrected NN over the whole recording with artifact intervals marked and unusable ECG
    shaded; the PSD panel shows the spectrum used for the metrics with the Task Force bands
    shaded.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    out = Path(path)
    has_ecg = recording is not None and recording.signal is not None and result.fs
    fig, axes = plt.subplots(3 if has_ecg else 2, 1, figsize=(11, 8 if has_ecg else 6))
    ax_iter = iter(np.atleast_1d(axes))
    det = result.artifacts.detection
    rr_t = np.cumsum(result.rr_ms) / 1000.0
    t0 = float(result.beats["time_s"].iloc[0])
    if has_ecg:
        assert recording is not None and recording.signal is not None and result.fs
        fs = float(result.fs)
        ax = next(ax_iter)
        flagged = np.flatnonzero(det["artifact"].to_numpy())
        centre = (t0 + rr_t[flagged[0]]) if flagged.size else ECG_SPAN_S / 2
        lo = max(0.0, centre - ECG_SPAN_S / 2)
        hi = min(recording.signal.size / fs, lo + ECG_SPAN_S)
        a, b = int(lo * fs), int(hi * fs)
        t = np.arange(a, b) / fs
        ax.plot(t, recording.signal[a:b], lw=0.7, color="0.2")
        pk = result.rpeaks[(result.rpeaks >= a) & (result.rpeaks < b)]
        ax.plot(pk / fs, recording.signal[pk], "x", color="tab:red", label="detected R")
        bt = result.beats["time_s"].to_numpy()
        src = result.beats["source"].to_numpy()
        sel = (bt >= lo) & (bt < hi) & (src != "original")
        smp = np.clip(np.round(bt[sel] * fs).astype(int), 0, recording.signal.size - 1)
        ax.plot(
            bt[sel],
            recording.signal[smp],
            "o",
            mfc="none",
            color="tab:blue",
            ms=9,
            label="corrected beat",
        )
        ax.set_xlabel("time (s)")
        ax.set_ylabel(f"ECG {recording.channel or ''}")
        ax.legend(loc="upper right", fontsize=8)
        ax.set_title(
            f"{result.provenance.source}: {result.rpeaks.size} R peaks, "
            f"artifact rate {100 * result.artifacts.artifact_rate:.1f} %"
        )
    ax = next(ax_iter)
    ax.plot(t0 + rr_t, result.rr_ms, lw=0.6, color="0.6", label="RR (detected)")
    nn_t = result.artifacts.nn_end_ms / 1000.0 + t0
    nn = result.artifacts.nn_ms.copy()
    seg = result.artifacts.nn_segment
    nn[1:][seg[1:] != seg[:-1]] = np.nan  # break the line at gaps
    ax.plot(nn_t, nn, lw=0.8, color="tab:blue", label="NN (corrected)")
    if result.quality is not None and not result.quality.unusable.empty:
        spans = _merged(result.quality.unusable["start_s"], result.quality.unusable["end_s"])
        for k, (a_s, b_s) in enumerate(spans):
            ax.axvspan(a_s, b_s, color="tab:red", alpha=0.12, label=None if k else "unusable ECG")
    art = det["artifact"].to_numpy()
    ax.plot(t0 + rr_t[art], result.rr_ms[art], ".", color="tab:red", label="artifact")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("interval (ms)")
    ax.legend(loc="upper right", fontsize=8)
    ax = next(ax_iter)
    spec = nn_spectrum(
        result.artifacts.nn_ms,
        beat_times_ms=result.artifacts.nn_end_ms,
        method=result.provenance.spectral_method,
    )
    sel = spec.freq_hz <= 0.5
    ax.plot(spec.freq_hz[sel], spec.psd_ms2_hz[sel], color="0.2", lw=0.9)
    for (name, (f_lo, f_hi)), colour in zip(
        BANDS_HZ.items(), ("tab:gray", "tab:orange", "tab:green"), strict=True
    ):
        ax.axvspan(f_lo, f_hi, alpha=0.15, color=colour, label=name.upper())
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("PSD (ms²/Hz)")
    ax.set_title(f"{spec.method} PSD of NN")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _merged(starts: Any, ends: Any) -> list[tuple[float, float]]:
    """Union of intervals, sorted (for shading)."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(zip(map(float, starts), map(float, ends), strict=True)):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out

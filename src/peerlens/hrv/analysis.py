"""End-to-end HRV analysis of one recording: peaks, artifacts, metrics, windows, provenance."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from peerlens.hrv._errors import HrvInputError, RecordingTooShortError
from peerlens.hrv.artifacts import ArtifactCorrection, correct_artifacts
from peerlens.hrv.metrics import METRIC_COLUMNS, hrv_metrics
from peerlens.hrv.peaks import DetectorSettings, detect_rpeaks
from peerlens.hrv.readers import Recording, read_ecg
from peerlens.hrv.windows import MIN_DURATION_S, consecutive_windows, read_events

__all__ = ["HrvProvenance", "HrvResult", "analyze"]

#: Default ceiling on the share of artifact intervals in a valid window (5 %; e.g. Peltola 2012
#: and Lipponen & Tarvainen 2019 discuss how a few percent of artifacts bias short-term HRV).
MAX_ARTIFACT_RATE = 0.05


@dataclass(frozen=True)
class HrvProvenance:
    """How a result was produced: input, detector and its parameters, methods, version."""

    source: str
    format: str
    fs: float | None
    channel: str | None
    rr_unit: str | None
    detector: dict[str, Any] | None
    artifact_method: str
    spectral_method: str
    resample_hz: float
    max_artifact_rate: float
    artifact_rate: float
    peerlens_version: str

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return asdict(self)


@dataclass(frozen=True)
class HrvResult:
    """Result of :func:`analyze`.

    Attributes
    ----------
    rpeaks
        Detected R-peak sample indices of the input ECG (empty for RR-only input).
    rr_ms
        RR intervals as detected (or read), before correction.
    artifacts
        Detection labels and the corrected beat series (:class:`ArtifactCorrection`).
    beats
        Tidy frame of corrected beats: ``beat``, ``time_s``, ``sample`` (nearest sample, ECG
        only), ``source`` (original / moved / inserted).
    metrics
        One-row frame of whole-recording metrics (unit-suffixed columns) with ``n_beats``,
        ``artifact_rate`` and ``duration_s``.
    windows
        One row per window: ``label``, ``start_s``, ``end_s``, ``duration_s``, ``n_beats``,
        ``n_nn``, ``artifact_rate``, ``valid``, ``valid_hf``, ``valid_lf``, ``valid_vlf``,
        ``reason`` and the metric columns (empty frame when no windows were asked for).
    provenance
        :class:`HrvProvenance`.
    """

    fs: float | None
    rpeaks: NDArray[np.intp] = field(repr=False)
    rr_ms: NDArray[np.float64] = field(repr=False)
    artifacts: ArtifactCorrection = field(repr=False)
    beats: pd.DataFrame = field(repr=False)
    metrics: pd.DataFrame = field(repr=False)
    windows: pd.DataFrame = field(repr=False)
    provenance: HrvProvenance

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: fs, rpeaks, rr_ms, artifacts, metrics, windows, provenance."""
        det = self.artifacts.detection
        flagged = det[det["artifact"]]
        windows = []
        for row in self.windows.to_dict(orient="records"):
            windows.append(
                {
                    "label": str(row["label"]),
                    "start_s": float(row["start_s"]),
                    "end_s": float(row["end_s"]),
                    "n_beats": int(row["n_beats"]),
                    "artifact_rate": _num(row["artifact_rate"]),
                    "valid": bool(row["valid"]),
                    "reason": str(row["reason"]),
                    "metrics": {c: _num(row[c]) for c in METRIC_COLUMNS},
                }
            )
        whole = self.metrics.iloc[0].to_dict()
        return {
            "fs": self.fs,
            "rpeaks": [int(p) for p in self.rpeaks],
            "rr_ms": [float(v) for v in self.rr_ms],
            "artifacts": {
                "rate": self.artifacts.artifact_rate,
                "counts": self.artifacts.counts,
                "flagged": [
                    {"interval": int(i), "type": str(t)}
                    for i, t in zip(flagged["interval"], flagged["type"], strict=True)
                ],
                "nn_ms": [float(v) for v in self.artifacts.nn_ms],
            },
            "metrics": {c: _num(whole[c]) for c in METRIC_COLUMNS},
            "windows": windows,
            "provenance": self.provenance.as_dict(),
        }


def _num(value: Any) -> float | None:
    v = float(np.asarray(value, dtype=np.float64))
    return v if np.isfinite(v) else None


def _window_rows(
    frames: pd.DataFrame,
    beat_t: NDArray[np.float64],
    orig_t: NDArray[np.float64],
    artifact: NDArray[np.bool_],
    span: tuple[float, float],
    method: str,
    nonlinear: bool,
    max_rate: float,
) -> pd.DataFrame:
    rows = []
    for label, w_start, w_end in zip(
        frames["label"], frames["start_s"], frames["end_s"], strict=True
    ):
        start, end = float(w_start), float(w_end)
        covered = max(0.0, min(end, span[1]) - max(start, span[0]))
        inside = (beat_t >= start) & (beat_t <= end)
        idx = np.flatnonzero(inside)
        o_in = (orig_t[:-1] >= start) & (orig_t[1:] <= end)
        n_int = int(o_in.sum())
        rate = float(artifact[o_in].mean()) if n_int else float("nan")
        row: dict[str, Any] = {
            "label": str(label),
            "start_s": start,
            "end_s": end,
            "duration_s": covered,
            "n_beats": int(((orig_t >= start) & (orig_t <= end)).sum()),
            "n_nn": max(idx.size - 1, 0),
            "artifact_rate": rate,
        }
        reasons = []
        values = dict.fromkeys(METRIC_COLUMNS, float("nan"))
        if idx.size - 1 >= 3:
            times = beat_t[idx] * 1000.0
            values.update(
                hrv_metrics(np.diff(times), beat_times_ms=times, method=method, nonlinear=nonlinear)
            )
        else:
            reasons.append(f"only {max(idx.size - 1, 0)} NN intervals")
        for band in ("hf", "lf", "vlf"):
            row[f"valid_{band}"] = covered >= MIN_DURATION_S[band] and idx.size - 1 >= 3
        if covered < MIN_DURATION_S["lf"]:
            reasons.append(
                f"{covered:.0f} s of recording < {MIN_DURATION_S['lf']:.0f} s Task Force minimum "
                "for LF"
            )
        if not np.isfinite(rate) or rate > max_rate:
            shown = "no intervals" if not np.isfinite(rate) else f"{100 * rate:.1f} %"
            reasons.append(f"artifact rate {shown} > {100 * max_rate:g} %")
        row["valid"] = not reasons
        row["reason"] = "; ".join(reasons)
        row.update(values)
        rows.append(row)
    out = pd.DataFrame(rows)
    if not rows:
        return out
    out["label"] = out["label"].astype("string")
    out["reason"] = out["reason"].astype("string")
    return out


def analyze(
    recording: Recording | str | Path,
    events: pd.DataFrame | str | Path | None = None,
    window: float | None = None,
    *,
    method: str = "welch",
    nonlinear: bool = True,
    max_artifact_rate: float = MAX_ARTIFACT_RATE,
    detector: DetectorSettings | None = None,
    fs: float | None = None,
    channel: str | int | None = None,
    kind: str | None = None,
    rr_unit: str | None = None,
    start_time: datetime | None = None,
) -> HrvResult:
    """Analyse one recording: R peaks, artifact correction, metrics, optional windows.

    Parameters
    ----------
    recording
        A :class:`Recording` or a path for :func:`read_ecg` (with ``fs`` and ``channel``).
    events
        Events file path or a frame with ``label``, ``start_s``, ``end_s`` (seconds from the
        recording start; the first beat for RR-only input).
    window
        Length in seconds of consecutive windows (e.g. 300), used when ``events`` is None.
    method
        Spectral method, ``"welch"`` or ``"lomb"``.
    nonlinear
        Compute SD1/SD2, sample entropy and DFA.
    max_artifact_rate
        Windows with a larger share of artifact intervals are not ``valid`` (default 0.05).
    detector
        R-peak detector settings (default :class:`DetectorSettings`).
    fs, channel, kind, rr_unit
        Passed to :func:`read_ecg` when ``recording`` is a path.
    start_time
        Recording start, to place ISO-timestamped events (default: as stated by the file).

    Returns
    -------
    HrvResult

    Examples
    --------
    >>> import numpy as np
    >>> from peerlens.hrv.readers import Recording
    >>> rr = 800 + 40 * np.sin(np.arange(400) / 2.0)
    >>> res = analyze(Recording(source="demo", format="rr", rr_ms=rr, rr_unit="ms"), window=120)
    >>> res.windows[["label", "n_beats", "valid"]].head(2).values.tolist()
    [['w001', 150, True], ['w002', 150, True]]
    """
    from peerlens import __version__

    rec = (
        recording
        if isinstance(recording, Recording)
        else read_ecg(recording, fs=fs, channel=channel, kind=kind, rr_unit=rr_unit)
    )
    if not 0 <= max_artifact_rate <= 1:
        raise HrvInputError(f"max_artifact_rate must be in [0, 1], not {max_artifact_rate!r}")
    settings = detector or DetectorSettings()
    if rec.is_rr:
        assert rec.rr_ms is not None
        rr = np.asarray(rec.rr_ms, dtype=np.float64)
        rpeaks = np.zeros(0, dtype=np.intp)
        t0_ms = 0.0
        total_s = float(rr.sum() / 1000.0)
        detector_info = None
    else:
        assert rec.signal is not None and rec.fs is not None
        rpeaks = detect_rpeaks(rec.signal, rec.fs, settings=settings)
        if rpeaks.size < 5:
            raise RecordingTooShortError(
                f"{rec.source}: only {rpeaks.size} R peaks detected in {rec.duration_s:.1f} s; "
                "is this an ECG channel?"
            )
        rr = np.diff(rpeaks) * (1000.0 / rec.fs)
        t0_ms = rpeaks[0] * 1000.0 / rec.fs
        total_s = rec.duration_s
        detector_info = settings.as_dict()
    corr = correct_artifacts(rr)
    beat_t = (corr.beat_times_ms + t0_ms) / 1000.0
    orig_t = np.concatenate(([0.0], np.cumsum(rr))) / 1000.0 + t0_ms / 1000.0
    whole = hrv_metrics(
        corr.nn_ms, beat_times_ms=beat_t * 1000.0, method=method, nonlinear=nonlinear
    )
    metrics = pd.DataFrame(
        [
            {
                **whole,
                "n_beats": int(orig_t.size),
                "artifact_rate": corr.artifact_rate,
                "duration_s": total_s,
            }
        ]
    )
    beats = pd.DataFrame(
        {
            "beat": np.arange(beat_t.size),
            "time_s": beat_t,
            "sample": (
                np.round(beat_t * rec.fs).astype(np.int64)
                if rec.fs
                else np.full(beat_t.size, -1, dtype=np.int64)
            ),
            "source": pd.Series(corr.beat_source, dtype="string"),
        }
    )
    if events is not None:
        frames = (
            events
            if isinstance(events, pd.DataFrame)
            else read_events(events, start_time=start_time or rec.start_time)
        )
    elif window is not None:
        frames = consecutive_windows(total_s, float(window))
    else:
        frames = pd.DataFrame(columns=["label", "start_s", "end_s"])
    span = (0.0, total_s)
    windows = _window_rows(
        frames,
        beat_t,
        orig_t,
        corr.detection["artifact"].to_numpy(),
        span,
        method,
        nonlinear,
        max_artifact_rate,
    )
    prov = HrvProvenance(
        source=rec.source,
        format=rec.format,
        fs=rec.fs,
        channel=rec.channel,
        rr_unit=rec.rr_unit,
        detector=detector_info,
        artifact_method="lipponen-tarvainen-2019",
        spectral_method=method,
        resample_hz=4.0,
        max_artifact_rate=max_artifact_rate,
        artifact_rate=corr.artifact_rate,
        peerlens_version=__version__,
    )
    return HrvResult(
        fs=rec.fs,
        rpeaks=rpeaks,
        rr_ms=rr,
        artifacts=corr,
        beats=beats,
        metrics=metrics,
        windows=windows,
        provenance=prov,
    )

"""End-to-end HRV analysis of one recording: quality, peaks, artifacts, metrics, windows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from peerlens.hrv._errors import HrvInputError, RecordingTooShortError, SignalQualityError
from peerlens.hrv.artifacts import ArtifactCorrection, correct_artifacts
from peerlens.hrv.metrics import METRIC_COLUMNS, hrv_metrics
from peerlens.hrv.peaks import DetectorSettings
from peerlens.hrv.quality import (
    KIND_NAMES,
    QUALITY_COLUMNS,
    QUALITY_KINDS,
    QualitySettings,
    SignalQuality,
    assess_quality,
)
from peerlens.hrv.readers import Recording, read_ecg
from peerlens.hrv.windows import MIN_DURATION_S, consecutive_windows, read_events

__all__ = ["GAP_COLUMNS", "HrvProvenance", "HrvResult", "analyze"]

#: Per-window columns on the recording's own gaps (:attr:`peerlens.hrv.Recording.gaps`: null
#: or channel-less segments of a multi-segment record, the time between the records of an
#: EDF+D file, runs of missing samples): how many overlap the window and for how many seconds.
GAP_COLUMNS = ("n_gaps", "gap_s")

#: Default ceiling on the share of artifact intervals in a valid window (5 %; e.g. Peltola 2012
#: and Lipponen & Tarvainen 2019 discuss how a few percent of artifacts bias short-term HRV).
MAX_ARTIFACT_RATE = 0.05
#: Default ceiling on the unusable share of a valid window (20 %). Unusable signal becomes gaps
#: in the NN series; with up to 20 % of a window in gaps, the RMSSD of MIT-BIH 100 and of
#: simulated ECG stays within a few percent of the clean value (benchmarks/hrv_quality.py), and
#: a 5-minute window keeps 4 minutes of beats, twice the Task Force minimum for LF.
MAX_UNUSABLE = 0.2


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
    quality: dict[str, Any] | None = None
    max_unusable: float = MAX_UNUSABLE

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
        ``reason``, the metric columns and the quality columns
        (:data:`peerlens.hrv.quality.QUALITY_COLUMNS`; NaN for RR-only input) (empty frame
        when no windows were asked for).
    provenance
        :class:`HrvProvenance`.
    quality
        :class:`peerlens.hrv.SignalQuality` of the ECG (None for RR-only input).
    gaps
        The recording's gaps (:attr:`peerlens.hrv.Recording.gaps`: ``start_s``, ``end_s``,
        ``kind``, ``detail``); None for RR-only input.
    """

    fs: float | None
    rpeaks: NDArray[np.intp] = field(repr=False)
    rr_ms: NDArray[np.float64] = field(repr=False)
    artifacts: ArtifactCorrection = field(repr=False)
    beats: pd.DataFrame = field(repr=False)
    metrics: pd.DataFrame = field(repr=False)
    windows: pd.DataFrame = field(repr=False)
    provenance: HrvProvenance
    quality: SignalQuality | None = field(default=None, repr=False)
    gaps: pd.DataFrame | None = field(default=None, repr=False)

    def whole_validity(self) -> tuple[bool, str]:
        """Whether the whole recording passes the limits the windows use, and why not.

        The artifact rate must be at most ``provenance.max_artifact_rate`` and the unusable
        share of the ECG at most ``provenance.max_unusable`` (the duration minimums of the
        windows are not applied: a whole recording is whatever length it is).
        """
        whole = self.metrics.iloc[0]
        reasons = []
        rate, limit = float(whole["artifact_rate"]), self.provenance.max_artifact_rate
        if not rate <= limit:
            reasons.append(f"artifact rate {100 * rate:.1f} % > {100 * limit:g} %")
        quality = _quality_reason(
            {c: float(whole[c]) for c in QUALITY_COLUMNS},
            float(whole["duration_s"]),
            self.provenance.max_unusable,
        ).replace("of the window", "of the recording")
        if quality:
            reasons.append(quality)
        if reasons:
            gap_why = _gap_reason(self.gaps, 0.0, float(whole["duration_s"]))
            if gap_why:
                reasons.append(gap_why)
        return not reasons, "; ".join(reasons)

    def gaps_between(self, start_s: float, end_s: float) -> list[dict[str, Any]]:
        """The recording's gaps overlapping ``[start_s, end_s)``, each as ``kind``, ``start_s``,
        ``end_s`` (on the recording's time line, not clipped) and ``detail``; empty for an
        RR-only recording."""
        return _gap_list(self.gaps, start_s, end_s)

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
                    "quality": {c: _num(row[c]) for c in QUALITY_COLUMNS},
                    "gaps": self.gaps_between(float(row["start_s"]), float(row["end_s"])),
                }
            )
        whole = self.metrics.iloc[0].to_dict()
        stretches = []
        if self.quality is not None:
            st = self.quality.stretches
            stretches = [
                {"kind": str(k), "start_s": float(a), "end_s": float(b)}
                for k, a, b in zip(st["kind"], st["start_s"], st["end_s"], strict=True)
            ]
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
            "quality": {
                **{c: _num(whole[c]) for c in QUALITY_COLUMNS},
                "stretches": stretches,
            },
            "gaps": self.gaps_between(0.0, float("inf")),
            "windows": windows,
            "provenance": self.provenance.as_dict(),
        }


def _num(value: Any) -> float | None:
    v = float(np.asarray(value, dtype=np.float64))
    return v if np.isfinite(v) else None


def _gap_list(gaps: pd.DataFrame | None, start: float, end: float) -> list[dict[str, Any]]:
    if gaps is None or gaps.empty:
        return []
    hit = (gaps["start_s"] < end) & (gaps["end_s"] > start)
    return [
        {"kind": str(k), "start_s": float(a), "end_s": float(b), "detail": str(d)}
        for k, a, b, d in zip(
            gaps["kind"][hit],
            gaps["start_s"][hit],
            gaps["end_s"][hit],
            gaps["detail"][hit],
            strict=True,
        )
    ]


def _gap_values(gaps: pd.DataFrame | None, start: float, end: float) -> dict[str, float]:
    """``n_gaps`` and ``gap_s`` of the window [start, end] (NaN for RR-only input)."""
    if gaps is None:
        return dict.fromkeys(GAP_COLUMNS, float("nan"))
    a = np.maximum(gaps["start_s"].to_numpy(dtype=np.float64), start)
    b = np.minimum(gaps["end_s"].to_numpy(dtype=np.float64), end)
    hit = b > a
    return {"n_gaps": float(hit.sum()), "gap_s": float(np.sum(b[hit] - a[hit]))}


def _gap_reason(gaps: pd.DataFrame | None, start: float, end: float) -> str:
    """'gaps in the recording 206.0 s: segment (null segment ...)' for a window's reason."""
    found = _gap_list(gaps, start, end)
    if not found:
        return ""
    total = sum(min(g["end_s"], end) - max(g["start_s"], start) for g in found)
    kinds = dict.fromkeys(f"{g['kind']}: {g['detail']}" for g in found)
    shown = "; ".join(list(kinds)[:3]) + ("; ..." if len(kinds) > 3 else "")
    return f"{len(found)} gap(s) in the recording, {total:.1f} s ({shown})"


def _quality_values(quality: SignalQuality | None, start: float, end: float) -> dict[str, float]:
    if quality is None:
        return dict.fromkeys(QUALITY_COLUMNS, float("nan"))
    return quality.summary(start, end)


def _quality_reason(values: dict[str, float], covered: float, max_unusable: float) -> str:
    """Why a window fails the signal-quality criterion, or "" when it passes."""
    unusable = values["unusable_s"]
    if not (covered > 0 and np.isfinite(unusable)) or unusable <= max_unusable * covered:
        return ""
    parts = [
        f"{KIND_NAMES[k]} {values[f'{k}_s']:.1f} s" for k in QUALITY_KINDS if values[f"{k}_s"] > 0
    ]
    return (
        f"signal quality: {100 * unusable / covered:.0f} % of the window is unusable "
        f"({', '.join(parts)}; limit {100 * max_unusable:g} %)"
    )


def _window_rows(
    frames: pd.DataFrame,
    corr: ArtifactCorrection,
    t0_s: float,
    orig_t: NDArray[np.float64],
    span: tuple[float, float],
    method: str,
    nonlinear: bool,
    max_rate: float,
    quality: SignalQuality | None,
    max_unusable: float,
    gaps: pd.DataFrame | None = None,
) -> pd.DataFrame:
    det = corr.detection
    artifact = det["artifact"].to_numpy()
    measured = (det["type"] != "gap").to_numpy()
    nn = corr.nn_ms
    nn_end = corr.nn_end_ms / 1000.0 + t0_s
    nn_start = nn_end - nn / 1000.0
    rows = []
    for label, w_start, w_end in zip(
        frames["label"], frames["start_s"], frames["end_s"], strict=True
    ):
        start, end = float(w_start), float(w_end)
        covered = max(0.0, min(end, span[1]) - max(start, span[0]))
        inside = (nn_start >= start) & (nn_end <= end)
        n_nn = int(inside.sum())
        o_in = (orig_t[:-1] >= start) & (orig_t[1:] <= end) & measured
        n_int = int(o_in.sum())
        rate = float(artifact[o_in].mean()) if n_int else float("nan")
        row: dict[str, Any] = {
            "label": str(label),
            "start_s": start,
            "end_s": end,
            "duration_s": covered,
            "n_beats": int(((orig_t >= start) & (orig_t <= end)).sum()),
            "n_nn": n_nn,
            "artifact_rate": rate,
        }
        reasons = []
        values = dict.fromkeys(METRIC_COLUMNS, float("nan"))
        if n_nn >= 3:
            values.update(
                hrv_metrics(
                    nn[inside],
                    beat_times_ms=nn_end[inside] * 1000.0,
                    method=method,
                    nonlinear=nonlinear,
                    segments=corr.nn_segment[inside],
                )
            )
        else:
            reasons.append(f"only {n_nn} NN intervals")
        for band in ("hf", "lf", "vlf"):
            row[f"valid_{band}"] = covered >= MIN_DURATION_S[band] and n_nn >= 3
        if covered < MIN_DURATION_S["lf"]:
            reasons.append(
                f"{covered:.0f} s of recording < {MIN_DURATION_S['lf']:.0f} s Task Force minimum "
                "for LF"
            )
        if not np.isfinite(rate) or rate > max_rate:
            shown = "no intervals" if not np.isfinite(rate) else f"{100 * rate:.1f} %"
            reasons.append(f"artifact rate {shown} > {100 * max_rate:g} %")
        qual = _quality_values(quality, start, end)
        why = _quality_reason(qual, covered, max_unusable)
        if why:
            reasons.append(why)
        if reasons:  # a window the recording's gaps helped make unusable says so
            gap_why = _gap_reason(gaps, start, end)
            if gap_why:
                reasons.append(gap_why)
        row["valid"] = not reasons
        row["reason"] = "; ".join(reasons)
        row.update(values)
        row.update(qual)
        row.update(_gap_values(gaps, start, end))
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
    max_unusable: float = MAX_UNUSABLE,
    detector: DetectorSettings | None = None,
    quality: QualitySettings | None = None,
    fs: float | None = None,
    channel: str | int | None = None,
    kind: str | None = None,
    rr_unit: str | None = None,
    start_time: datetime | None = None,
) -> HrvResult:
    """Analyse one recording: signal quality, R peaks, artifact correction, metrics, windows.

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
    max_unusable
        Windows with a larger share of unusable ECG (spikes, clipping, flat line, lead-off,
        low-SQI beats; see :func:`peerlens.hrv.assess_quality`) are not ``valid``
        (default 0.2).
    detector
        R-peak detector settings (default :class:`DetectorSettings`).
    quality
        Signal-quality thresholds (default :class:`peerlens.hrv.QualitySettings`).
    fs, channel, kind, rr_unit
        Passed to :func:`read_ecg` when ``recording`` is a path.
    start_time
        Recording start, to place ISO-timestamped events (default: as stated by the file).

    Returns
    -------
    HrvResult

    Raises
    ------
    SignalQualityError
        Fewer than four RR intervals of the ECG are usable (e.g. noise or a flat channel).

    Notes
    -----
    For an ECG, :func:`peerlens.hrv.assess_quality` finds bad stretches, repairs them for
    R-peak detection and marks which beats are usable; the RR intervals that touch an unusable
    beat or span a bad stretch are gaps for :func:`peerlens.hrv.correct_artifacts` (removed,
    never interpolated across), and successive differences are only taken between intervals
    on the same side of a gap.

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
    for name, value in (("max_artifact_rate", max_artifact_rate), ("max_unusable", max_unusable)):
        if not 0 <= value <= 1:
            raise HrvInputError(f"{name} must be in [0, 1], not {value!r}")
    settings = detector or DetectorSettings()
    q_settings = quality or QualitySettings()
    sq: SignalQuality | None = None
    gaps = None
    if rec.is_rr:
        assert rec.rr_ms is not None
        rr = np.asarray(rec.rr_ms, dtype=np.float64)
        rpeaks = np.zeros(0, dtype=np.intp)
        t0_ms = 0.0
        total_s = float(rr.sum() / 1000.0)
        detector_info = None
        if rec.rr_flagged is not None and rec.rr_flagged.any():
            gaps = rec.rr_flagged  # intervals the device marks invalid are never used
    else:
        assert rec.signal is not None and rec.fs is not None
        sq = assess_quality(rec.signal, rec.fs, settings=q_settings, detector=settings)
        rpeaks = sq.rpeaks
        if rpeaks.size < 5:
            raise RecordingTooShortError(
                f"{rec.source}: only {rpeaks.size} R peaks detected in {rec.duration_s:.1f} s; "
                "is this an ECG channel?"
            )
        rr = np.diff(rpeaks) * (1000.0 / rec.fs)
        t0_ms = rpeaks[0] * 1000.0 / rec.fs
        total_s = rec.duration_s
        detector_info = settings.as_dict()
        gaps = sq.gaps if sq.gaps.any() else None
        usable = int((~sq.gaps).sum())
        if usable < 4:
            raise SignalQualityError(
                f"{rec.source}: signal quality: only {usable} usable RR intervals in "
                f"{total_s:.0f} s ({_describe(sq.summary(), total_s)})"
            )
    corr = correct_artifacts(rr, gaps=gaps)
    if corr.nn_ms.size < 3:
        assert sq is not None  # without gaps there are as many NN intervals as RR intervals
        raise SignalQualityError(
            f"{rec.source}: signal quality: only {corr.nn_ms.size} NN intervals between "
            f"unusable stretches ({_describe(sq.summary(), total_s)})"
        )
    beat_t = (corr.beat_times_ms + t0_ms) / 1000.0
    orig_t = np.concatenate(([0.0], np.cumsum(rr))) / 1000.0 + t0_ms / 1000.0
    whole = hrv_metrics(
        corr.nn_ms,
        beat_times_ms=corr.nn_end_ms + t0_ms,
        method=method,
        nonlinear=nonlinear,
        segments=corr.nn_segment,
    )
    metrics = pd.DataFrame(
        [
            {
                **whole,
                "n_beats": int(orig_t.size),
                "artifact_rate": corr.artifact_rate,
                "duration_s": total_s,
                **_quality_values(sq, 0.0, total_s),
                **_gap_values(None if rec.is_rr else rec.gaps, 0.0, total_s),
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
        corr,
        t0_ms / 1000.0,
        orig_t,
        span,
        method,
        nonlinear,
        max_artifact_rate,
        sq,
        max_unusable,
        None if rec.is_rr else rec.gaps,
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
        quality=q_settings.as_dict() if sq is not None else None,
        max_unusable=max_unusable,
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
        quality=sq,
        gaps=None if rec.is_rr else rec.gaps,
    )


def _describe(values: dict[str, float], total_s: float) -> str:
    """'97 % unusable: low-SQI beats 290.1 s, ...' for error messages."""
    parts = [
        f"{KIND_NAMES[k]} {values[f'{k}_s']:.1f} s" for k in QUALITY_KINDS if values[f"{k}_s"] > 0
    ]
    pct = 100 * values["unusable_s"] / total_s if total_s > 0 else 100.0
    return f"{pct:.0f} % unusable" + (f": {', '.join(parts)}" if parts else "")

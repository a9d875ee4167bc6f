"""ECG signal quality: spikes, clipping, flat lines, lead-off, the beat SQI, and their effect on
per-window HRV (real MIT-BIH and MIMIC records from ../shared, and simulated ECG)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from peerlens import PeerlensError
from peerlens.hrv import (
    QUALITY_COLUMNS,
    EmptyRecordingError,
    FlatSignalError,
    Recording,
    SignalQualityError,
    analyze,
    assess_quality,
    beat_sqi,
    correct_artifacts,
    detect_rpeaks,
    detect_signal_problems,
)
from peerlens.hrv.quality import _rows, _sqi_half_width, _template, _windows

FS = 250.0
TOLERANCE = 0.10  # RMSSD within 10 % of the clean recording's, or the window is not valid


def _rr(seconds: float, seed: int) -> np.ndarray:
    """RR intervals (s) with respiratory sinus arrhythmia, Mayer waves and beat noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds / 0.8)
    t = np.cumsum(np.full(n, 0.85))
    rr = (
        0.85
        + 0.035 * np.sin(2 * np.pi * 0.25 * t)
        + 0.02 * np.sin(2 * np.pi * 0.1 * t + 1.0)
        + rng.normal(0, 0.008, n)
    )
    return rr[: int(np.searchsorted(np.cumsum(rr), seconds - 2.0))]


@pytest.fixture(scope="module")
def simulated(make_ecg) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A 10-minute 250 Hz ECG with realistic HRV, mild noise and baseline wander."""
    ecg, _ = make_ecg(FS, _rr(600.0, seed=5), noise=0.015, seed=6)
    t = np.arange(ecg.size) / FS
    return ecg + 0.1 * np.sin(2 * np.pi * 0.15 * t)


def _events(total_s: float, window_s: float = 300.0) -> pd.DataFrame:
    starts = np.arange(0.0, total_s - window_s + 1e-9, window_s)
    return pd.DataFrame(
        {
            "label": [f"w{i + 1}" for i in range(starts.size)],
            "start_s": starts,
            "end_s": starts + window_s,
        }
    )


def _windows_of(x: np.ndarray, fs: float, events: pd.DataFrame) -> pd.DataFrame:
    rec = Recording(source="test", format="array", fs=fs, signal=x)
    return analyze(rec, events=events, nonlinear=False).windows


def _check_windows(clean: pd.DataFrame, corrupted: pd.DataFrame) -> list[str]:
    """Every window: RMSSD within 10 % of the clean one, or not valid for signal quality.

    Returns the labels of the windows that were flagged.
    """
    flagged = []
    for (_, c), (_, w) in zip(clean.iterrows(), corrupted.iterrows(), strict=True):
        err = abs(w["rmssd_ms"] - c["rmssd_ms"]) / c["rmssd_ms"]
        if w["valid"] or "signal quality" not in str(w["reason"]):
            assert err <= TOLERANCE, (w["label"], err, w["reason"], w["unusable_s"])
        else:
            flagged.append(str(w["label"]))
    return flagged


# --------------------------------------------------------------------------- artefacts


def _spikes(x: np.ndarray, fs: float, scale: float, seed: int = 1) -> tuple[np.ndarray, list[int]]:
    """A few short transients of 10 to 100 times the QRS amplitude, either sign."""
    y = x.copy()
    rng = np.random.default_rng(seed)
    where = []
    for amp in (10, -10, 30, -30, 100, 100):
        at = int(rng.integers(int(5 * fs), x.size - int(5 * fs)))
        y[at : at + int(rng.integers(1, 6))] += amp * scale
        where.append(at)
    return y, where


def _saturation(x: np.ndarray, fs: float) -> np.ndarray:
    """Pinned at the rail for 6 s and 20 s, and QRS tops cut at 60 % for 40 s."""
    y = x.copy()
    rail = float(np.max(x)) + 1.5 * float(np.ptp(x[: int(10 * fs)]))
    y[int(100 * fs) : int(106 * fs)] = rail
    y[int(400 * fs) : int(420 * fs)] = rail
    seg = y[int(200 * fs) : int(240 * fs)]
    top = np.median(seg) + 0.6 * (np.percentile(seg, 99.9) - np.median(seg))
    y[int(200 * fs) : int(240 * fs)] = np.minimum(seg, top)
    return y


def _lead_off(x: np.ndarray, fs: float) -> np.ndarray:
    """Flat 1.5 s at the last value, 15 s missing (NaN), 30 s flat at zero."""
    y = x.copy()
    y[int(50 * fs) : int(51.5 * fs)] = y[int(50 * fs) - 1]
    y[int(150 * fs) : int(165 * fs)] = np.nan
    y[int(350 * fs) : int(380 * fs)] = 0.0
    return y


# --------------------------------------------------------------------------- unit tests


def _small_ecg(seconds: float = 30.0, fs: float = FS, noise: float = 0.01) -> np.ndarray:
    t = np.arange(0, seconds, 1 / fs)
    ecg = sum(np.exp(-((t - b) ** 2) / (2 * 0.012**2)) for b in np.arange(0.5, seconds - 0.5, 0.8))
    return np.asarray(ecg) + np.random.default_rng(0).normal(0, noise, t.size)


def test_spike_is_located_and_bridged() -> None:
    x = _small_ecg()
    y = x.copy()
    y[2000:2003] += 40.0
    found = detect_signal_problems(y, FS)
    st = found.stretches
    assert st["kind"].tolist() == ["spike"]
    start, end = int(st["start"].iloc[0]), int(st["end"].iloc[0])
    assert start <= 2000 and end >= 2003 and end - start < 0.05 * FS
    # bridged by a straight line: nothing left of the excursion, the rest untouched
    assert found.repaired[start:end].max() < x.max()
    assert np.array_equal(found.repaired[:start], y[:start])
    assert np.array_equal(found.repaired[end:], y[end:])
    assert found.repaired is not y  # the input is never modified
    assert y[2001] > 30


def test_flat_missing_and_pinned_stretches_by_kind_and_duration() -> None:
    x = _small_ecg(40.0)
    y = x.copy()
    y[1000:1200] = 0.05  # 0.8 s flat inside the range
    y[3000:3750] = -0.05  # 3 s flat: lead-off
    y[5000:5050] = np.nan  # 0.2 s missing: lead-off
    y[7000:7200] = 25.0  # 0.8 s pinned far beyond the signal: clipping (saturation)
    found = detect_signal_problems(y, FS)
    got = found.stretches[["kind", "start", "end"]].values.tolist()
    assert got == [
        ["flat", 1000, 1200],
        ["lead_off", 3000, 3750],
        ["lead_off", 5000, 5050],
        ["clipping", 7000, 7200],
    ]
    assert np.isfinite(found.repaired).all()
    # no steps: the repaired signal at each end of a bridge meets its neighbours
    for a, b in ((5000, 5050), (7000, 7200)):
        assert abs(found.repaired[a] - y[a - 1]) < 0.05 and abs(found.repaired[b - 1] - y[b]) < 0.05


def test_clean_noise_free_and_noisy_ecg_have_no_problems() -> None:
    for noise in (0.01, 0.1):
        assert detect_signal_problems(_small_ecg(noise=noise), FS).stretches.empty, noise
    # without noise the baseline between beats is exactly constant: candidates for flat lines,
    # none of which hides a beat
    noise_free = _small_ecg(noise=0.0)
    assert (detect_signal_problems(noise_free, FS).stretches["kind"] == "flat").all()
    assert assess_quality(noise_free, FS).stretches.empty


def test_clipped_qrs_tops_are_found_beat_by_beat() -> None:
    x = _small_ecg(60.0)
    y = x.copy()
    seg = slice(int(20 * FS), int(40 * FS))
    y[seg] = np.minimum(y[seg], 0.6)  # QRS tops cut at 60 % for 20 s: 25 beats
    q = assess_quality(y, FS)
    st = q.stretches
    clip = st[st["kind"] == "clipping"]
    inside = (q.rpeaks >= seg.start) & (q.rpeaks < seg.stop)
    assert len(clip) == inside.sum() >= 24
    assert (clip["start_s"] >= 19.9).all() and (clip["end_s"] <= 40.1).all()
    assert not q.beat_usable[inside].any() and q.beat_usable[~inside][1:-1].all()
    # the same signal, unclipped: nothing
    assert assess_quality(x, FS).stretches.empty


def test_coarse_adc_steps_are_not_flat_lines_or_clipping() -> None:
    # MIMIC-like: 125 Hz, an ADC step of 10 % of the QRS, slow heart rate: the isoelectric
    # line sits on one code for most of each RR interval and R apexes on 2-3 equal samples
    fs = 125.0
    t = np.arange(0, 120, 1 / fs)
    beats = np.arange(0.5, 119.0, 1.15)
    ecg = sum(
        1.0 * np.exp(-((t - b) ** 2) / (2 * 0.015**2))
        + 0.25 * np.exp(-((t - b - 0.3) ** 2) / (2 * 0.05**2))
        for b in beats
    )
    coarse = np.round(np.asarray(ecg) / 0.1) * 0.1
    problems = detect_signal_problems(coarse, fs)
    assert (problems.stretches["kind"] == "flat").any()  # candidates, each shorter than an RR
    q = assess_quality(coarse, fs)
    assert q.stretches.empty, q.stretches
    assert q.summary()["unusable_s"] == 0.0


def test_beat_sqi_equals_the_direct_correlation() -> None:
    # the block algebra of the implementation against a plain detrend + corrcoef per beat
    rng = np.random.default_rng(3)
    x = _small_ecg(120.0, noise=0.05) + 0.3 * rng.standard_normal(int(120 * FS)) * (
        np.arange(int(120 * FS)) > 60 * FS
    )
    peaks = detect_rpeaks(x, FS)
    got = beat_sqi(x, FS, peaks)
    kq = 5
    means = x[: x.size // kq * kq].reshape(-1, kq).mean(axis=1).astype(np.float32)
    nb = _sqi_half_width(FS, kq, peaks)
    windows = _windows(*_rows(means, kq, peaks, nb))
    pick = np.unique(np.linspace(0, peaks.size - 1, 63).astype(int))
    template = _template(windows[pick].copy())
    ramp = np.arange(windows.shape[1]) - (windows.shape[1] - 1) / 2
    for i in range(2, peaks.size - 2):
        w = windows[i] - windows[i].mean()
        w -= ramp * (w @ ramp) / (ramp @ ramp)
        assert got[i] == pytest.approx(np.corrcoef(w, template)[0, 1], abs=1e-4)
    assert np.median(got[peaks < 60 * FS]) > 0.95 > np.median(got[peaks > 60 * FS])


def test_unusable_time_is_the_gap_around_a_lead_off() -> None:
    x = _small_ecg(60.0)
    y = x.copy()
    y[int(20 * FS) : int(25 * FS)] = np.nan
    q = assess_quality(y, FS)
    t = q.rpeaks / FS
    before, after = t[t < 20.0].max(), t[t > 25.0].min()
    summary = q.summary()
    # the RR interval across the lead-off is removed: from the last beat before it to the first
    # beat after it (the 0.1 s margins lie inside that interval)
    assert summary["lead_off_s"] == pytest.approx(after - before)
    assert summary["unusable_s"] == pytest.approx(after - before)
    assert q.gaps.sum() == 1 and summary["spike_s"] == summary["low_sqi_s"] == 0.0
    window = q.summary(0.0, 22.0)
    assert window["lead_off_s"] == pytest.approx(22.0 - before)


def test_noise_flat_and_missing_recordings_give_clear_errors() -> None:
    rng = np.random.default_rng(0)

    def run(signal: np.ndarray) -> None:
        analyze(Recording(source="x.csv", format="csv", fs=FS, signal=signal), window=60)

    with pytest.raises(SignalQualityError, match=r"x.csv: signal quality: .*low-SQI beats"):
        run(rng.standard_normal(int(300 * FS)))
    with pytest.raises(FlatSignalError, match="flat"):
        run(np.full(int(300 * FS), 1.25))
    with pytest.raises(EmptyRecordingError, match="missing"):
        run(np.full(int(300 * FS), np.nan))
    flat_then_noise = np.concatenate((np.zeros(int(200 * FS)), rng.standard_normal(int(100 * FS))))
    with pytest.raises(PeerlensError):
        run(flat_then_noise)


def test_mostly_lead_off_recording_gives_invalid_windows_not_a_traceback() -> None:
    x = _small_ecg(300.0)
    y = x.copy()
    y[int(40 * FS) : int(290 * FS)] = np.nan  # electrode off after 40 s
    res = analyze(Recording(source="x", format="array", fs=FS, signal=y), window=60)
    w = res.windows
    assert not w["valid"].any() and w["reason"].str.contains("signal quality").all()
    assert w["reason"].iloc[2].startswith("only 0 NN intervals")
    assert "signal quality: 100 % of the window is unusable (lead-off 60.0 s" in w["reason"].iloc[2]
    assert w["n_nn"].iloc[0] >= 45 and w["lead_off_s"].iloc[0] == pytest.approx(20.3, abs=0.5)


# --------------------------------------------------------------------------- simulated ECG


@pytest.mark.parametrize("artefact", ["spikes", "saturation", "lead-off"])
def test_simulated_ecg_windows_survive_artefacts(simulated: np.ndarray, artefact: str) -> None:
    events = _events(simulated.size / FS)
    clean = _windows_of(simulated, FS, events)
    assert clean["valid"].all() and (clean["unusable_s"] == 0).all()
    inject: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "spikes": lambda x: _spikes(x, FS, float(np.ptp(x[: int(10 * FS)])))[0],
        "saturation": lambda x: _saturation(x, FS),
        "lead-off": lambda x: _lead_off(x, FS),
    }
    corrupted = _windows_of(inject[artefact](simulated), FS, events)
    _check_windows(clean, corrupted)
    kind = {"spikes": "spike_s", "saturation": "clipping_s", "lead-off": "lead_off_s"}[artefact]
    assert corrupted[kind].sum() > 0


# --------------------------------------------------------------------------- real ECG


@pytest.fixture(scope="module")
def mitdb_100(shared_data: Path) -> tuple[np.ndarray, float]:
    """MIT-BIH Arrhythmia record 100, lead MLII (360 Hz, 30 min)."""
    import wfdb

    rec = wfdb.rdrecord(str(shared_data / "mitdb" / "100"), channels=[0])
    return np.ascontiguousarray(rec.p_signal[:, 0]), float(rec.fs)


def test_clean_mitdb_100_raises_no_quality_alarm(
    shared_data: Path, mitdb_100: tuple[np.ndarray, float]
) -> None:
    import wfdb

    x, fs = mitdb_100
    res = analyze(Recording(source="100", format="wfdb", fs=fs, signal=x), window=300)
    q = res.quality
    assert q is not None and q.stretches.empty
    assert not res.windows["reason"].str.contains("signal quality").any()
    assert (res.windows[["spike_s", "clipping_s", "flat_s", "lead_off_s"]] == 0).all().all()
    assert (res.windows["unusable_s"] <= 2.0).all() and (res.windows["sqi"] > 0.95).all()
    # the only beats below the Orphanidou threshold are ones the cardiologists annotated as
    # not normal (record 100 has one premature ventricular beat)
    ann = wfdb.rdann(str(shared_data / "mitdb" / "100"), "atr")
    low = q.rpeaks[q.beat_sqi < 0.66]
    assert low.size >= 1
    for peak in low:
        nearest = int(np.argmin(np.abs(ann.sample - peak)))
        assert abs(int(ann.sample[nearest]) - int(peak)) < 0.15 * fs
        assert ann.symbol[nearest] == "V"


def test_coarse_mimic_record_raises_no_false_alarm(shared_data: Path) -> None:
    from peerlens.hrv import read_ecg

    # MIMIC lead V at 125 Hz with 0.09 mV steps for a 0.9 mV QRS (the isoelectric line is
    # constant between beats): must not be read as flat lines
    rec = read_ecg(shared_data / "wfdb-sample-data" / "multi-segment" / "s00001" / "3975656_0005")
    res = analyze(rec, window=300)
    assert not res.windows["reason"].str.contains("signal quality").any()
    whole = res.metrics.iloc[0]
    assert whole["unusable_s"] < 0.05 * whole["duration_s"]
    assert whole["flat_s"] < 0.01 * whole["duration_s"]


@pytest.mark.parametrize("artefact", ["spikes", "saturation", "lead-off"])
def test_mitdb_100_windows_survive_artefacts(
    mitdb_100: tuple[np.ndarray, float], artefact: str
) -> None:
    x, fs = mitdb_100
    x = x[: int(1805 * fs)]
    events = _events(1800.0)
    clean = _windows_of(x, fs, events)
    if artefact == "spikes":
        y, where = _spikes(x, fs, 1.0)
    else:
        y = _saturation(x, fs) if artefact == "saturation" else _lead_off(x, fs)
    corrupted = _windows_of(y, fs, events)
    _check_windows(clean, corrupted)
    kind = {"spikes": "spike_s", "saturation": "clipping_s", "lead-off": "lead_off_s"}[artefact]
    assert corrupted[kind].sum() > 0
    if artefact == "spikes":  # the 30 and 100 mV spikes are each found where they are
        st = detect_signal_problems(y, fs).stretches
        for at in where[2:]:
            assert ((st["kind"] == "spike") & (st["start"] <= at) & (st["end"] > at)).any(), at
    # without the quality step (R peaks, artifact correction, RMSSD per window), the same
    # corrupted signal gives some window an RMSSD more than 10 % off: the injection matters
    peaks = detect_rpeaks(np.nan_to_num(y), fs)
    fixed = correct_artifacts(np.diff(peaks) * 1000.0 / fs)
    beats = fixed.beat_times_ms / 1000.0 + peaks[0] / fs
    errors = []
    for (_, c), (a, b) in zip(
        clean.iterrows(), zip(events["start_s"], events["end_s"], strict=True), strict=True
    ):
        sel = (beats[:-1] >= a) & (beats[1:] <= b)
        d = np.diff(fixed.nn_ms[sel])
        errors.append(abs(np.sqrt(np.mean(d**2)) - c["rmssd_ms"]) / c["rmssd_ms"])
    assert max(errors) > TOLERANCE


def test_quality_columns_and_json(mitdb_100: tuple[np.ndarray, float]) -> None:
    x, fs = mitdb_100
    y = x[: int(600 * fs)].copy()
    y[int(100 * fs) : int(110 * fs)] = np.nan
    res = analyze(Recording(source="100", format="wfdb", fs=fs, signal=y), window=300)
    assert set(QUALITY_COLUMNS) <= set(res.windows.columns) and set(QUALITY_COLUMNS) <= set(
        res.metrics.columns
    )
    payload = res.to_dict()
    assert payload["windows"][0]["quality"]["lead_off_s"] == pytest.approx(
        res.windows["lead_off_s"].iloc[0]
    )
    kinds = [s["kind"] for s in payload["quality"]["stretches"]]
    assert kinds == ["lead_off"]
    assert res.provenance.quality is not None and res.provenance.max_unusable == 0.2

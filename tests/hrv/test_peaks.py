"""R-peak detection against reference annotations and synthetic ground truth."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import wfdb

from peerlens.hrv import FlatSignalError, HrvInputError, RecordingTooShortError, detect_rpeaks

BEAT_SYMBOLS = set("NLRBAaJSVrFejnE/fQ?")


def _match(det: np.ndarray, ref: np.ndarray, tol: int) -> tuple[int, int, int]:
    """Greedy one-to-one matching within ``tol`` samples: (TP, FP, FN)."""
    used = np.zeros(ref.size, dtype=bool)
    tp = 0
    for d in det:
        k = int(np.searchsorted(ref, d))
        best = -1
        for c in (k - 1, k):
            near = 0 <= c < ref.size and not used[c] and abs(int(ref[c]) - int(d)) <= tol
            if near and (best < 0 or abs(int(ref[c]) - int(d)) < abs(int(ref[best]) - int(d))):
                best = c
        if best >= 0:
            used[best] = True
            tp += 1
    return tp, det.size - tp, ref.size - tp


def test_mitdb_100_against_reference_annotations(data_dir: Path) -> None:
    base = str(data_dir / "mitdb" / "100")
    rec = wfdb.rdrecord(base, channels=[0])
    ann = wfdb.rdann(base, "atr")
    ref = np.array(
        [s for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym in BEAT_SYMBOLS]
    )
    assert ref.size == 2273
    peaks = detect_rpeaks(rec.p_signal[:, 0], rec.fs)
    tp, fp, fn = _match(peaks, ref, round(0.150 * rec.fs))  # ANSI/AAMI EC57 window
    assert (fp, fn) == (0, 0)
    tp, fp, fn = _match(peaks, ref, 1)  # exact timing, +/- 1 sample
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert f1 >= 0.999


@pytest.mark.parametrize("fs", [130.0, 250.0, 500.0])
def test_synthetic_ecg_exact_positions(make_ecg: Callable, fs: float) -> None:
    rng = np.random.default_rng(1)
    rr = 0.8 + 0.05 * np.sin(np.arange(80) / 3) + rng.normal(0, 0.02, 80)
    ecg, truth = make_ecg(fs, rr, noise=0.02, seed=2)
    peaks = detect_rpeaks(ecg, fs)
    np.testing.assert_array_equal(peaks, truth)


def test_inverted_lead_is_detected_at_the_negative_apex(make_ecg: Callable) -> None:
    rr = np.full(30, 0.75) + np.linspace(0, 0.1, 30)
    ecg, truth = make_ecg(250.0, rr)
    np.testing.assert_array_equal(detect_rpeaks(-ecg + 3.0, 250.0), truth)


def test_scale_free(make_ecg: Callable) -> None:
    ecg, _ = make_ecg(250.0, np.full(20, 0.9), noise=0.01)
    np.testing.assert_array_equal(detect_rpeaks(ecg, 250), detect_rpeaks(1000 * ecg, 250))


def test_bad_input() -> None:
    with pytest.raises(FlatSignalError):
        detect_rpeaks(np.ones(5000), 250)
    with pytest.raises(RecordingTooShortError, match=r"2.00 s"):
        detect_rpeaks(np.random.default_rng(0).normal(size=500), 250)
    x = np.random.default_rng(0).normal(size=5000)
    x[100] = np.nan
    with pytest.raises(HrvInputError, match="first at sample 100"):
        detect_rpeaks(x, 250)
    with pytest.raises(HrvInputError, match="too low"):
        detect_rpeaks(x, 50)
    with pytest.raises(HrvInputError, match="1-D"):
        detect_rpeaks(np.zeros((10, 10)), 250)

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


@pytest.mark.parametrize("fs", [130.0, 250.0, 360.0, 500.0, 1000.0])
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


def _muscle_noise(n: int, fs: float, snr_db: float, ecg: np.ndarray, seed: int) -> np.ndarray:
    """Band-limited 20-100 Hz noise (EMG-like) at ``snr_db`` with the MIT-BIH Noise Stress Test
    SNR definition (QRS peak-to-peak^2 / 8 over the noise power; Moody et al. 1984)."""
    from scipy.signal import butter, sosfilt

    sos = butter(4, [20, min(100, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    noise = sosfilt(sos, np.random.default_rng(seed).normal(0, 1, n))
    p_sig = float(np.ptp(ecg)) ** 2 / 8.0
    return noise * np.sqrt(p_sig / (np.mean(noise**2) * 10 ** (snr_db / 10.0)))


def test_apex_within_one_sample_under_heavy_muscle_noise(make_ecg: Callable) -> None:
    # at 3 dB EMG the 0.5-40 Hz refinement band put 13 of 301 apexes 2+ samples off; 0.5-20 Hz
    # keeps every beat within one sample (the noise lies mostly above 20 Hz)
    rng = np.random.default_rng(5)
    rr = 0.8 + 0.05 * np.sin(np.arange(300) / 3) + rng.normal(0, 0.02, 300)
    clean, truth = make_ecg(250.0, rr)
    ecg = clean + _muscle_noise(clean.size, 250.0, 3.0, clean, seed=6)
    peaks = detect_rpeaks(ecg, 250.0)
    tp, _, fn = _match(peaks, truth, 1)
    assert fn == 0
    assert tp == truth.size


def test_long_record_runs_in_chunks_with_the_same_peaks(make_ecg: Callable) -> None:
    # 25 minutes: longer than one 10-minute chunk plus margins, so the chunked path runs; every
    # beat (also those near chunk boundaries at 600 s and 1200 s) is found at its exact sample
    rng = np.random.default_rng(3)
    rr = 0.85 + 0.06 * np.sin(np.arange(1780) / 4) + rng.normal(0, 0.02, 1780)
    ecg, truth = make_ecg(250.0, rr, noise=0.02, seed=4)
    assert ecg.size > (600 + 40) * 250
    peaks = detect_rpeaks(ecg, 250.0)
    np.testing.assert_array_equal(peaks, truth)
    # the apex of a beat depends only on the ECG near it: detecting the last 5 minutes alone
    # gives the same peaks there (away from the new start)
    tail = ecg.size - 300 * 250
    alone = detect_rpeaks(ecg[tail:], 250.0) + tail
    np.testing.assert_array_equal(alone[alone > tail + 5 * 250], peaks[peaks > tail + 5 * 250])


@pytest.mark.parametrize("k", [2, 3, 5])
def test_decimation_is_the_boxcar_power_average(k: int) -> None:
    from peerlens.hrv.peaks import _decimate

    w = np.ones(k)
    for _ in range(3):  # four boxcars of k samples
        w = np.convolve(w, np.ones(k))
    w /= w.sum()
    if k == 2:
        np.testing.assert_allclose(w, np.array([1, 4, 6, 4, 1]) / 16)
    for n in (1003, 1004, 1005):
        x = np.random.default_rng(k + n).normal(size=n)
        padded = np.pad(x, w.size // 2, mode="edge")
        expected = np.convolve(padded, w, mode="valid")[::k]
        np.testing.assert_allclose(_decimate(x, k), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("fs", [130.0, 250.0, 360.0, 1000.0])
def test_refinement_lowpass_equals_forward_backward_filtering(fs: float) -> None:
    # the per-beat matrix applies the same zero-phase 2nd-order Butterworth low-pass as scipy's
    # sosfiltfilt does away from the record's edges (to the 1e-6 kernel truncation)
    from scipy.signal import butter, sosfiltfilt

    from peerlens.hrv.peaks import _refine_matrix

    half = round(0.075 * fs)
    matrix, t = _refine_matrix(20.0, fs, half)
    x = np.random.default_rng(int(fs)).normal(size=20_000)
    y = sosfiltfilt(butter(2, 20.0, fs=fs, output="sos"), x)
    c = 10_000
    ours = x[c - half - t : c + half + t + 1] @ matrix
    np.testing.assert_allclose(ours, y[c - half : c + half + 1], rtol=0, atol=1e-5 * np.std(y))


def test_blas_limited_to_one_thread_inside_and_restored_after() -> None:
    from threadpoolctl import threadpool_info, threadpool_limits

    from peerlens.hrv._blas import single_blas_thread

    def blas_threads() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    # start from two threads whatever the machine or the test run gives (the suite's workers
    # run with one), so that "restored" is seen
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        inside = single_blas_thread(blas_threads)()
        after = blas_threads()
    assert before and all(n == 2 for n in before)
    assert inside and all(n == 1 for n in inside)
    assert after == before


def test_bad_values_in_a_long_record_are_reported_like_in_a_short_one() -> None:
    # long records are checked chunk by chunk: the error still names the first bad sample of
    # the whole record and counts all of them
    fs, n = 250.0, 25 * 60 * 250
    x = np.sin(np.arange(n) / 20.0)
    x[[300_000, 300_001, 370_000]] = [np.nan, np.inf, np.nan]
    with pytest.raises(
        HrvInputError, match=r"3 missing or non-finite samples \(first at sample 300000\)"
    ):
        detect_rpeaks(x, fs)
    with pytest.raises(FlatSignalError):
        detect_rpeaks(np.full(n, 2.5), fs)

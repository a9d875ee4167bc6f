"""The simulated ECG: its R apexes are where the intervals put them, and the detector finds them."""

from __future__ import annotations

import numpy as np

from peerlens.hrv import detect_rpeaks
from peerlens.hrv.simulation import ecg_from_rr, noisy_ecg, simulate_ecg


def test_r_apexes_follow_the_intervals_and_are_detected() -> None:
    rng = np.random.default_rng(0)
    rr = 800.0 + 40.0 * np.sin(np.arange(150) / 3.0) + rng.normal(0.0, 10.0, 150)
    ecg, peaks = ecg_from_rr(rr, 100.0, fs=250.0, first_s=0.5)
    expected = np.round((0.5 + np.concatenate(([0.0], np.cumsum(rr))) / 1000.0) * 250.0)
    assert np.array_equal(peaks, expected[expected < 100.0 * 250.0 - 125].astype(np.intp))
    # Every R apex is the local maximum of its beat.
    assert all(ecg[p] == ecg[max(p - 20, 0) : p + 20].max() for p in peaks)
    noisy = noisy_ecg(ecg, 250.0, 20.0, "bw", seed=1)
    found = detect_rpeaks(noisy, 250.0)
    assert len(found) == len(peaks)
    assert np.abs(found - peaks).max() <= 1


def test_simulate_ecg_reports_the_realised_intervals() -> None:
    ecg, peaks, rr = simulate_ecg(60.0, seed=3)
    assert np.allclose(rr, np.diff(peaks) * 4.0) and ecg.size == 60 * 250

"""Shared fixtures for the HRV tests: paths to the shared real recordings and a synthetic ECG."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

#: ``../shared/data/ecg``; ``PEERLENS_ECG_DATA`` points elsewhere (a local copy with fixtures not
#: yet in shared/).
DATA = Path(
    os.environ.get(
        "PEERLENS_ECG_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ecg"
    )
)
#: Recordings of portable devices, one folder per source with its README (licence, provenance).
PORTABLE = DATA / "portable"
MITDB_100 = DATA / "mitdb" / "100"
V102S = DATA / "other" / "v102s"
GUDB = DATA / "gudb_chest_strap_annotations"


def _synthetic_ecg(
    fs: float, rr_s: np.ndarray, *, noise: float = 0.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A simple ECG: Gaussian Q, R, S and T waves at known beat times; returns (ecg, r_samples).

    R apexes fall exactly on integer samples so the ground truth is unambiguous.
    """
    r_samples = np.round(np.concatenate(([0.6], 0.6 + np.cumsum(rr_s))) * fs).astype(int)
    n = int(r_samples[-1] + fs)
    t = np.arange(n) / fs
    ecg = np.zeros(n)
    waves = ((-0.03, -0.12, 0.010), (0.0, 1.0, 0.010), (0.03, -0.2, 0.010), (0.25, 0.3, 0.04))
    for r in r_samples:
        tr = r / fs
        lo, hi = max(0, r - int(0.5 * fs)), min(n, r + int(0.5 * fs))
        seg = t[lo:hi]
        for dt, amp, width in waves:
            ecg[lo:hi] += amp * np.exp(-((seg - tr - dt) ** 2) / (2 * width**2))
    if noise:
        ecg += np.random.default_rng(seed).normal(0, noise, n)
    return ecg, r_samples


@pytest.fixture
def gudb_rr() -> np.ndarray:
    """RR intervals (ms) of one real chest-strap recording (GUDB subject 00, sitting)."""
    peaks = np.loadtxt(GUDB / "subject_00_sitting.tsv")
    return np.diff(peaks) / 250.0 * 1000.0


@pytest.fixture(scope="session")
def make_ecg():  # type: ignore[no-untyped-def]
    """The synthetic ECG generator (see ``_synthetic_ecg``)."""
    return _synthetic_ecg


@pytest.fixture
def data_dir() -> Path:
    """``../shared/data/ecg`` (real recordings; never copied into the repository)."""
    return DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data/ecg``, or skip when it is absent locally (a failure when ``CI`` is set:
    the evidence must run there)."""
    if not DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"shared ECG data missing at {DATA} (required in CI)")
        pytest.skip(f"shared ECG data not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def portable():  # type: ignore[no-untyped-def]
    """``portable(name)``: the folder ``<shared ECG data>/portable/<name>``, or skip naming what
    is missing (the recordings land in shared/ separately from the code that reads them)."""

    def folder(name: str) -> Path:
        path = PORTABLE / name
        if not path.is_dir():
            pytest.skip(f"portable-device fixture {name!r} not found at {path}")
        return path

    return folder

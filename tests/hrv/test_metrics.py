"""HRV metrics: time domain against NeuroKit2 on real chest-strap NN series; frequency domain
against analytic sinusoid power; nonlinear against NeuroKit2 and theory."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from peerlens.hrv import HrvInputError, correct_artifacts, hrv_metrics
from peerlens.hrv._nonlinear import dfa, sample_entropy
from peerlens.hrv.metrics import time_domain

NK_TIME = {
    "mean_nn_ms": "HRV_MeanNN",
    "sdnn_ms": "HRV_SDNN",
    "rmssd_ms": "HRV_RMSSD",
    "sdsd_ms": "HRV_SDSD",
    "pnn50_pct": "HRV_pNN50",
    "pnn20_pct": "HRV_pNN20",
    "hrv_triangular_index": "HRV_HTI",
}
RECORDS = ["subject_00_sitting", "subject_05_maths", "subject_12_walking", "subject_20_jogging"]


@pytest.mark.parametrize("name", RECORDS)
def test_time_domain_matches_neurokit2(data_dir: Path, name: str) -> None:
    nk = pytest.importorskip("neurokit2")
    peaks = np.loadtxt(data_dir / "gudb_chest_strap_annotations" / f"{name}.tsv")
    nn = correct_artifacts(np.diff(peaks) * 4.0).nn_ms
    ours = hrv_metrics(nn, nonlinear=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = nk.hrv_time({"RRI": nn, "RRI_Time": np.cumsum(nn) / 1000.0})
    for col, nk_col in NK_TIME.items():
        assert ours[col] == pytest.approx(float(ref[nk_col].iloc[0]), rel=1e-3), col
    assert ours["mean_hr_bpm"] == pytest.approx(60000.0 / float(ref["HRV_MeanNN"].iloc[0]))


def test_tinn_hand_computed() -> None:
    # NN values placed in bins of 1000/128 ms: histogram counts 1, 2, 4, 2, 1 on bins 100-104.
    b = 1000.0 / 128.0
    counts = [1, 2, 4, 2, 1]
    nn = np.concatenate([np.full(c, (100 + i + 0.5) * b) for i, c in enumerate(counts)])
    # Apex at bin 102 (count 4). Left candidates N in {bin 101} (first edge above min NN is
    # bin 101): q = [0, 0, 4] on bins 100-102 -> error 1 + 4 = 5. Right candidates M in
    # {bin 103, bin 104}: M = 103 -> q = [4, 0, 0] error 4 + 1 = 5; M = 104 -> q = [4, 2, 0]
    # error 0 + 1 = 1 -> M = 104. TINN = (104 - 101) * b.
    assert time_domain(nn)["tinn_ms"] == pytest.approx(3 * b)
    assert time_domain(nn)["hrv_triangular_index"] == pytest.approx(10 / 4)


def _sinusoidal_nn(duration_s: float, lf_amp: float, hf_amp: float) -> np.ndarray:
    t, nn = 0.0, []
    while t < duration_s:
        v = 850 + lf_amp * np.sin(2 * np.pi * 0.1 * t) + hf_amp * np.sin(2 * np.pi * 0.25 * t)
        nn.append(v)
        t += v / 1000
    return np.asarray(nn)


@pytest.mark.parametrize("method", ["welch", "lomb"])
def test_band_power_of_known_sinusoids(method: str) -> None:
    # a sinusoid of amplitude A has power A^2 / 2 (ms^2) in its band
    nn = _sinusoidal_nn(300, lf_amp=40, hf_amp=30)
    m = hrv_metrics(nn, method=method, nonlinear=False)
    assert m["lf_ms2"] == pytest.approx(40**2 / 2, rel=0.02)
    assert m["hf_ms2"] == pytest.approx(30**2 / 2, rel=0.02)
    assert m["vlf_ms2"] < 0.01 * m["lf_ms2"]
    assert m["peak_hf_hz"] == pytest.approx(0.25, abs=0.005)
    assert m["lf_hf"] == pytest.approx(m["lf_ms2"] / m["hf_ms2"])
    assert m["lf_nu"] + m["hf_nu"] == pytest.approx(100)
    assert m["ln_hf"] == pytest.approx(np.log(m["hf_ms2"]))


def test_poincare_and_sampen_match_neurokit2(data_dir: Path) -> None:
    nk = pytest.importorskip("neurokit2")
    peaks = np.loadtxt(data_dir / "gudb_chest_strap_annotations" / "subject_03_maths.tsv")
    nn = correct_artifacts(np.diff(peaks) * 4.0).nn_ms
    ours = hrv_metrics(nn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = nk.hrv_nonlinear({"RRI": nn, "RRI_Time": np.cumsum(nn) / 1000.0})
        sampen_ref = nk.entropy_sample(nn, dimension=2, tolerance=0.2 * np.std(nn, ddof=1))[0]
    assert ours["sd1_ms"] == pytest.approx(float(ref["HRV_SD1"].iloc[0]), rel=1e-3)
    assert ours["sd2_ms"] == pytest.approx(float(ref["HRV_SD2"].iloc[0]), rel=1e-3)
    assert ours["sampen"] == pytest.approx(sampen_ref, rel=1e-9)


def test_sample_entropy_large_series_matches_neurokit2() -> None:
    nk = pytest.importorskip("neurokit2")
    x = np.round(np.random.default_rng(5).normal(800, 50, 3000))  # > GRID_MIN_N: grid path
    ref = nk.entropy_sample(x, dimension=2, tolerance=0.2 * np.std(x, ddof=1))[0]
    assert sample_entropy(x) == pytest.approx(ref, rel=1e-12)


def _dfa_loop(x: np.ndarray, scales: np.ndarray) -> float:
    """Plain DFA by the definition: per-window polyfit, windows from both ends."""
    y = np.cumsum(x - x.mean())
    f = []
    for n in scales:
        w = y.size // n
        segs = [y[i * n : (i + 1) * n] for i in range(w)]
        segs += [y[y.size - (i + 1) * n : y.size - i * n] for i in range(w)]
        t = np.arange(n)
        res = [np.mean((s - np.polyval(np.polyfit(t, s, 1), t)) ** 2) for s in segs]
        f.append(np.sqrt(np.mean(res)))
    return float(np.polyfit(np.log(scales), np.log(f), 1)[0])


def test_dfa_matches_definition_and_theory() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(800, 40, 1500)
    ours = dfa(x)
    assert ours["dfa_alpha1"] == pytest.approx(_dfa_loop(x, np.arange(4, 17)), rel=1e-9)
    assert ours["dfa_alpha2"] == pytest.approx(_dfa_loop(x, np.arange(16, 65)), rel=1e-9)
    white = rng.normal(size=20000)
    brown = np.cumsum(rng.normal(size=20000))
    # white noise alpha = 0.5, integrated white noise (Brownian) alpha = 1.5 (Peng et al. 1995);
    # at 4-16 beats DFA1 reads high for white noise (about 0.58; Kantelhardt et al. 2001)
    assert dfa(white)["dfa_alpha1"] == pytest.approx(0.5, abs=0.1)
    assert dfa(white)["dfa_alpha2"] == pytest.approx(0.5, abs=0.05)
    assert dfa(brown)["dfa_alpha2"] == pytest.approx(1.5, abs=0.07)
    assert np.isnan(dfa(white[:100])["dfa_alpha2"])


def test_bad_input() -> None:
    with pytest.raises(HrvInputError, match="at least 3"):
        hrv_metrics([800, 810])
    with pytest.raises(HrvInputError, match="NN interval 2 is -1"):
        hrv_metrics([800, -1, 810, 790])
    with pytest.raises(HrvInputError, match="spectral method"):
        hrv_metrics([800, 810, 790, 805], method="fft")


def test_sample_entropy_grid_and_kdtree_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    from peerlens.hrv import _nonlinear

    x = np.round(np.random.default_rng(9).normal(800, 45, 3000) / 4) * 4  # 250 Hz quantisation
    assert _nonlinear._grid(x) is not None
    fast = sample_entropy(x)
    monkeypatch.setattr(_nonlinear, "MAX_GRID_LEVELS", 0)  # force the KD-tree path
    assert _nonlinear._grid(x) is None
    assert sample_entropy(x) == fast


@pytest.mark.parametrize(("n", "nper"), [(20_000, 1024), (1500, 1024), (777, 777), (64, 63)])
def test_vectorised_welch_equals_scipy(n: int, nper: int) -> None:
    from scipy.signal import detrend, welch

    from peerlens.hrv._frequency import _detrend_linear, _welch

    rng = np.random.default_rng(n)
    x = rng.normal(size=n) + np.linspace(0.0, 5.0, n)
    d = _detrend_linear(x)
    np.testing.assert_allclose(d, detrend(x, type="linear"), rtol=0, atol=1e-12)
    f, p = _welch(d, 4.0, nper)
    f_ref, p_ref = welch(d, fs=4.0, window="hann", nperseg=nper, noverlap=nper // 2, detrend=False)
    np.testing.assert_array_equal(f, f_ref)
    np.testing.assert_allclose(p, p_ref, rtol=1e-12, atol=1e-14 * p_ref.max())


def test_successive_differences_stop_at_gaps_like_neurokit2(data_dir: Path) -> None:
    # A real NN series cut into three runs: successive differences across a cut must not
    # count. NeuroKit2's hrv_time drops them too when RRI_Time shows the gap.
    nk = pytest.importorskip("neurokit2")
    peaks = np.loadtxt(data_dir / "gudb_chest_strap_annotations" / "subject_00_sitting.tsv")
    rr = np.diff(peaks) * 4.0
    times = np.cumsum(rr)
    keep = np.ones(rr.size, dtype=bool)
    keep[[40, 41, 42, 90]] = False  # two gaps
    nn, t = rr[keep], times[keep]
    segments = np.cumsum(~keep)[keep]
    ours = hrv_metrics(nn, beat_times_ms=t, segments=segments)
    d = np.diff(nn)[segments[1:] == segments[:-1]]
    assert d.size == nn.size - 3
    assert ours["rmssd_ms"] == pytest.approx(np.sqrt(np.mean(d**2)), rel=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = nk.hrv_time({"RRI": nn, "RRI_Time": t / 1000.0})
    assert ours["rmssd_ms"] == pytest.approx(float(ref["HRV_RMSSD"].iloc[0]), rel=1e-9)
    assert ours["sdsd_ms"] == pytest.approx(float(ref["HRV_SDSD"].iloc[0]), rel=1e-9)
    # SD1^2 = SDSD^2 / 2 (Brennan et al. 2001) holds on the same within-run pairs
    assert ours["sd1_ms"] == pytest.approx(ours["sdsd_ms"] / np.sqrt(2), rel=1e-12)
    # without the segments the differences across the gaps change RMSSD
    joined = hrv_metrics(nn, beat_times_ms=t)
    assert joined["rmssd_ms"] != pytest.approx(ours["rmssd_ms"], rel=1e-6)
    assert ours["mean_nn_ms"] == joined["mean_nn_ms"] and ours["sdnn_ms"] == joined["sdnn_ms"]


def test_segments_without_any_successive_pair() -> None:
    out = hrv_metrics([800.0, 820.0, 790.0, 810.0], segments=[0, 1, 2, 3], nonlinear=True)
    assert np.isnan(out["rmssd_ms"]) and np.isnan(out["sd1_ms"])
    assert out["mean_nn_ms"] == pytest.approx(805.0)
    with pytest.raises(HrvInputError, match="segments has 2 values for 4"):
        hrv_metrics([800.0, 820.0, 790.0, 810.0], segments=[0, 1])

"""Regenerate ``src/peerlens/examples/responses.csv``: a simulated two-arm peer-support study.

Simulated, not real: 40 pseudonymous participants, arms ``peer_support`` and ``usual_care``,
timepoints ``baseline`` and ``week12``. Item answers come from one latent wellbeing value per
participant and timepoint (the peer-support arm improves more), passed through each instrument's
keying so that scores move in the expected directions. A few answers are left empty or coded -9
(declared missing), so the demo shows prorating and missing-data rules at work.

It also writes ``session_ecg.edf`` and ``session_events.csv``: a simulated 20-minute single-lead
ECG (250 Hz, EDF) worn around one peer-support session (5 min baseline, 10 min session, 5 min
recovery). Heart rate rises while talking and falls in recovery; respiratory sinus arrhythmia (the
vagally mediated HF component) is largest in recovery. The waveform is a sum of Gaussian P, Q, R,
S, T waves per beat (the wave set of McSharry et al. 2003, IEEE TBME 50(3):289-294), with baseline
wander, mains hum, sensor noise and one premature beat, so the demo shows artifact handling.

Run: ``.venv/bin/python tools/make_example_data.py`` (deterministic; the test suite checks the
committed files are what this script writes).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from peerlens.instruments import load_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "src/peerlens/examples"
OUT = EXAMPLES / "responses.csv"
ECG_OUT = EXAMPLES / "session_ecg.edf"
EVENTS_OUT = EXAMPLES / "session_events.csv"
ECG_FS = 250
#: (label, start s, end s, mean RR ms, RSA amplitude ms) of the simulated session recording.
PHASES = (
    ("baseline", 0, 300, 790.0, 22.0),
    ("session", 300, 900, 735.0, 16.0),
    ("recovery", 900, 1200, 830.0, 34.0),
)
#: Gaussian waves of one beat: (offset s from R, amplitude mV, width s).
WAVES = ((-0.19, 0.11, 0.024), (-0.028, -0.09, 0.009), (0.0, 1.1, 0.010), (0.03, -0.22, 0.010))
INSTRUMENTS = ("scs", "fscrs", "phq9", "gad7", "swemwbs", "qpr15")
# +1 when a higher answer means better wellbeing (before reverse keys), -1 when worse.
ITEM_DIRECTION = {"scs": 1, "fscrs": -1, "phq9": -1, "gad7": -1, "swemwbs": 1, "qpr15": 1}
FSCRS_REASSURED = {3, 5, 8, 11, 13, 16, 19, 21}


def build(seed: int = 20261126) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 40
    ids = [f"P{i:03d}" for i in range(1, n + 1)]
    arms = np.array(["peer_support", "usual_care"] * (n // 2))
    base = rng.normal(-0.5, 0.8, n)
    gain = np.where(arms == "peer_support", 0.7, 0.2) + rng.normal(0, 0.35, n)
    rows = []
    for t, timepoint in enumerate(("baseline", "week12")):
        latent = base + t * gain
        frame = pd.DataFrame({"participant": ids, "arm": arms, "timepoint": timepoint})
        for inst in INSTRUMENTS:
            spec = load_spec(inst)
            lo, hi = spec.response_min, spec.response_max
            for item in range(1, spec.n_items + 1):
                sign = ITEM_DIRECTION[inst]
                if item in spec.reverse_items or (inst == "fscrs" and item in FSCRS_REASSURED):
                    sign = -sign
                centre = (lo + hi) / 2 + sign * latent * (hi - lo) / 4
                if inst == "phq9" and item == 9:
                    centre -= 2.0  # thoughts of self-harm: endorsed by few, as in real samples
                answer = np.clip(np.rint(centre + rng.normal(0, 0.8, n)), lo, hi).astype(int)
                frame[f"{inst}_{item}"] = answer.astype(str)
        rows.append(frame)
    data = pd.concat(rows, ignore_index=True)
    # A little missingness: empty cells and the declared code -9.
    for row, col, value in [
        (2, "scs_5", ""),
        (7, "phq9_3", ""),
        (7, "phq9_6", "-9"),
        (11, "gad7_2", "-9"),
        (15, "fscrs_9", ""),
        (23, "qpr15_4", ""),
        (31, "swemwbs_7", ""),
        (44, "scs_12", "-9"),
        (44, "scs_19", ""),
        (52, "phq9_1", ""),
    ]:
        data.loc[row, col] = value
    return data


def beat_times(seed: int = 7) -> np.ndarray:
    """Beat times (s) by integral pulse frequency modulation of a phase-dependent RR model."""
    rng = np.random.default_rng(seed)
    end = PHASES[-1][2]
    grid = np.arange(0.0, end + 5.0, 0.05)
    nodes = [x for p in PHASES for x in (p[1] + 20, p[2] - 20)]  # 40 s ramps between phases
    mean_rr = np.interp(grid, nodes, [p[3] for p in PHASES for _ in range(2)])
    rsa = np.interp(grid, nodes, [p[4] for p in PHASES for _ in range(2)])
    resp_hz = 0.24 + 0.02 * np.sin(2 * np.pi * grid / 410.0)
    drift = np.cumsum(rng.normal(0.0, 0.9, grid.size))
    drift -= np.convolve(drift, np.ones(600) / 600, mode="same")
    rr = (
        mean_rr
        + rsa * np.sin(2 * np.pi * np.cumsum(resp_hz) * 0.05)
        + 14.0 * np.sin(2 * np.pi * 0.095 * grid + 1.3)
        + drift
    )
    times = [0.6]
    while times[-1] < end - 1.0:
        times.append(times[-1] + float(np.interp(times[-1], grid, rr)) / 1000.0)
    out = np.asarray(times[:-1])
    k = int(np.searchsorted(out, 610.0))  # one premature beat with a compensatory pause
    out[k] = out[k - 1] + 0.62 * (out[k + 1] - out[k - 1]) / 2
    return out


def build_ecg(seed: int = 11) -> np.ndarray:
    """The simulated session ECG in mV at :data:`ECG_FS` Hz."""
    rng = np.random.default_rng(seed)
    beats = beat_times()
    n = int(PHASES[-1][2] * ECG_FS)
    t = np.arange(n) / ECG_FS
    ecg = np.zeros(n)
    half = int(0.35 * ECG_FS)
    rr = np.diff(beats, prepend=beats[0] - 0.8)
    for b, interval in zip(beats, rr, strict=True):
        lo, hi = max(int(b * ECG_FS) - half, 0), min(int(b * ECG_FS) + 2 * half, n)
        seg = t[lo:hi] - b
        for offset, amp, width in WAVES:
            ecg[lo:hi] += amp * np.exp(-0.5 * ((seg - offset) / width) ** 2)
        t_off = 0.26 * np.sqrt(interval / 0.8)  # QT shortens as heart rate rises (Bazett)
        ecg[lo:hi] += 0.28 * np.exp(-0.5 * ((seg - t_off) / 0.045) ** 2)
    ecg += 0.12 * np.sin(2 * np.pi * 0.24 * t) + 0.05 * np.sin(2 * np.pi * 0.05 * t + 0.4)
    ecg += 0.01 * np.sin(2 * np.pi * 50.0 * t) + rng.normal(0.0, 0.012, n)
    return np.round(ecg, 3)


def write_ecg(path: Path) -> None:
    """Write the session ECG as a one-channel EDF with a fixed header (reproducible bytes)."""
    from datetime import datetime

    from pyedflib import highlevel

    header = highlevel.make_header(
        technician="",
        recording_additional="peerlens simulated example",
        patientname="X",
        patientcode="EXAMPLE",
        equipment="simulated",
        startdate=datetime(2026, 1, 15, 10, 0, 0),
    )
    signal = highlevel.make_signal_header(
        "ECG", dimension="mV", sample_frequency=ECG_FS, physical_min=-5.0, physical_max=5.0
    )
    highlevel.write_edf(str(path), [build_ecg()], [signal], header)


def events_text() -> str:
    rows = ["label,start,end"] + [f"{label},{start},{end}" for label, start, end, *_ in PHASES]
    return "\n".join(rows) + "\n"


def main() -> int:
    data = build()
    text = data.to_csv(index=False, lineterminator="\n")
    if "--check" in sys.argv:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / ECG_OUT.name
            write_ecg(fresh)
            same_ecg = fresh.read_bytes() == ECG_OUT.read_bytes()
        same = OUT.read_text() == text and EVENTS_OUT.read_text() == events_text() and same_ecg
        return 0 if same else 1
    OUT.write_text(text)
    write_ecg(ECG_OUT)
    EVENTS_OUT.write_text(events_text())
    print(f"wrote {OUT} ({len(data)} rows), {ECG_OUT.name}, {EVENTS_OUT.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

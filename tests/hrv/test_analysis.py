"""End-to-end analysis: windows, validity flags, provenance, JSON layout."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from peerlens.hrv import HrvInputError, Recording, analyze, hrv_metrics


def _rr_recording(seconds: float = 900, seed: int = 0) -> Recording:
    rng = np.random.default_rng(seed)
    n = int(seconds / 0.85)
    k = np.arange(n)
    rr = 850 + 40 * np.sin(2 * np.pi * k / 4.5) + rng.normal(0, 10, n)
    return Recording(source="synthetic.txt", format="rr", rr_ms=rr, rr_unit="ms")


def test_rr_only_whole_and_windows() -> None:
    rec = _rr_recording()
    assert rec.rr_ms is not None
    res = analyze(rec, window=300)
    assert res.rpeaks.size == 0 and res.fs is None
    whole = hrv_metrics(res.artifacts.nn_ms, beat_times_ms=res.artifacts.beat_times_ms)
    assert res.metrics["rmssd_ms"].iloc[0] == pytest.approx(whole["rmssd_ms"])
    assert res.windows["label"].tolist() == ["w001", "w002", "w003"]
    assert res.windows["valid"].all()
    # window 1 metrics equal metrics of the beats inside [0, 300] s
    t = np.concatenate(([0.0], np.cumsum(rec.rr_ms))) / 1000
    inside = t[t <= 300] * 1000
    first = hrv_metrics(np.diff(inside), beat_times_ms=inside)
    assert res.windows["rmssd_ms"].iloc[0] == pytest.approx(first["rmssd_ms"])
    assert res.windows["n_beats"].iloc[0] == inside.size


def test_validity_flags_short_window_and_artifacts() -> None:
    rec = _rr_recording(600, seed=1)
    assert rec.rr_ms is not None
    rr = rec.rr_ms.copy()
    rr[50:70:2] *= 0.5  # ten split-like short intervals in the first minute
    bad = dataclasses.replace(rec, rr_ms=rr)
    events = pd.DataFrame(
        {"label": ["early", "short"], "start_s": [0.0, 400.0], "end_s": [150.0, 460.0]}
    )
    res = analyze(bad, events=events)
    early, short = res.windows.iloc[0], res.windows.iloc[1]
    assert early["artifact_rate"] > 0.05 and not early["valid"]
    assert "artifact rate" in early["reason"]
    assert not short["valid"] and short["valid_hf"] and not short["valid_lf"]
    assert "Task Force minimum for LF" in short["reason"]
    strict = analyze(bad, events=events, max_artifact_rate=1.0)
    assert strict.windows["valid"].iloc[0]


def test_ecg_end_to_end_json_layout(data_dir: Path, tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_text("label,start,end\nbaseline,0,600\nsession,600,1200\n")
    res = analyze(data_dir / "mitdb" / "100.hea", events=events)
    assert res.fs == 360.0 and res.provenance.detector is not None
    assert res.provenance.spectral_method == "welch" and res.provenance.source == "100"
    payload = json.loads(json.dumps(res.to_dict()))
    assert {"fs", "rpeaks", "rr_ms", "artifacts", "metrics", "windows"} <= set(payload)
    assert payload["rpeaks"] == res.rpeaks.tolist()
    assert len(payload["rr_ms"]) == len(payload["rpeaks"]) - 1
    assert [w["label"] for w in payload["windows"]] == ["baseline", "session"]
    assert set(payload["windows"][0]) >= {"label", "start_s", "end_s", "metrics", "valid"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.fs = 1.0  # type: ignore[misc]


def test_lomb_method_recorded() -> None:
    res = analyze(_rr_recording(400), method="lomb")
    assert res.provenance.spectral_method == "lomb"
    with pytest.raises(HrvInputError):
        analyze(_rr_recording(400), max_artifact_rate=2.0)

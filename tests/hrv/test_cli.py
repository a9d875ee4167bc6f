"""``peerlens hrv`` CLI: analyze (ECG and RR-only), JSON layout, CSV, plot, errors, batch."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from peerlens.cli import app

runner = CliRunner()


def test_analyze_rr_file_json_csv_plot(tmp_path: Path, gudb_rr: np.ndarray) -> None:
    rr = tmp_path / "rr.txt"
    rr.write_text("\n".join(f"{v / 1000:.3f}" for v in gudb_rr))
    out_json, out_csv, out_png = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "r.png"
    res = runner.invoke(
        app,
        [
            "hrv",
            "analyze",
            str(rr),
            "--window",
            "60",
            "--json",
            str(out_json),
            "--csv",
            str(out_csv),
            "--plot",
            str(out_png),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "RR unit s" in res.output
    payload = json.loads(out_json.read_text())
    assert payload["fs"] is None and payload["rpeaks"] == []
    np.testing.assert_allclose(payload["rr_ms"], np.round(gudb_rr / 1000, 3) * 1000)
    assert [w["label"] for w in payload["windows"]] == ["w001", "w002"]
    assert {"label", "start_s", "end_s", "metrics", "valid"} <= set(payload["windows"][0])
    table = pd.read_csv(out_csv)
    assert table["label"].tolist() == ["whole", "w001", "w002"]
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_analyze_ecg_with_channel(data_dir: Path, tmp_path: Path) -> None:
    out_json = tmp_path / "v.json"
    res = runner.invoke(
        app,
        [
            "hrv",
            "analyze",
            str(data_dir / "other" / "v102s.hea"),
            "--channel",
            "V",
            "--json",
            str(out_json),
        ],
    )
    assert res.exit_code == 0, res.output
    payload = json.loads(out_json.read_text())
    assert payload["fs"] == 250.0 and payload["provenance"]["channel"] == "V"
    assert len(payload["rr_ms"]) == len(payload["rpeaks"]) - 1


def test_analyze_bad_input_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("800\n")
    res = runner.invoke(app, ["hrv", "analyze", str(bad)])
    assert res.exit_code == 2
    assert "bad.txt" in res.output


def test_batch_sequential(tmp_path: Path, gudb_rr: np.ndarray) -> None:
    a = tmp_path / "a.txt"
    a.write_text("\n".join(f"{v:.0f}" for v in gudb_rr))
    missing = tmp_path / "missing.txt"
    out = tmp_path / "results.csv"
    res = runner.invoke(
        app, ["hrv", "batch", str(a), str(missing), "--out", str(out), "--sequential"]
    )
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    assert table["status"].tolist() == ["ok", "error"]
    assert "missing.txt: file not found" in table["error"].iloc[1]


def test_analyze_rr_unit_declared(tmp_path: Path, gudb_rr: np.ndarray) -> None:
    # 1/1024 s counts look like ms, so the unit must be declared; without it they are read as ms
    units = np.round(gudb_rr * 1.024).astype(int)
    path = tmp_path / "rr_1024.txt"
    path.write_text("\n".join(map(str, units)) + "\n")
    out = tmp_path / "r.json"
    res = runner.invoke(
        app, ["hrv", "analyze", str(path), "--rr-unit", "1/1024 s", "--json", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "RR unit 1/1024 s" in res.output
    np.testing.assert_allclose(json.loads(out.read_text())["rr_ms"], units * 1000 / 1024)
    res = runner.invoke(app, ["hrv", "analyze", str(path), "--json", str(out)])
    assert res.exit_code == 0, res.output
    np.testing.assert_allclose(json.loads(out.read_text())["rr_ms"], units)
    res = runner.invoke(app, ["hrv", "analyze", str(path), "--rr-unit", "furlongs"])
    assert res.exit_code == 2
    assert "furlongs" in res.output


def _ecg_csv(path: Path, signal: np.ndarray, fs: float = 250.0) -> Path:
    cells = ["" if not np.isfinite(v) else f"{v:.5f}" for v in signal]
    path.write_text("time,ecg\n" + "\n".join(f"{i / fs:.4f},{c}" for i, c in enumerate(cells)))
    return path


def test_analyze_reports_signal_quality(tmp_path: Path, make_ecg) -> None:  # type: ignore[no-untyped-def]
    rr = 0.82 + 0.04 * np.sin(np.arange(400) / 2.0)
    ecg, _ = make_ecg(250.0, rr, noise=0.01, seed=2)
    ecg[100 * 250 : 160 * 250] = np.nan  # 60 s lead-off: 50 s in the first window
    path = _ecg_csv(tmp_path / "ecg.csv", ecg)
    out_csv = tmp_path / "r.csv"
    res = runner.invoke(
        app, ["hrv", "analyze", str(path), "--window", "150", "--csv", str(out_csv)]
    )
    assert res.exit_code == 0, res.output
    assert "unusable_s" in res.output
    assert re.search(
        r"window w001: not valid \(signal quality: 3\d % of the window is unusable "
        r"\(lead-off 5\d\.\d s; limit 20 %\); 1 gap\(s\) in the recording, 50\.0 s "
        r"\(missing: 15000 missing samples\)\)",
        res.output,
    ), res.output
    assert "window w002: not valid" not in res.output
    table = pd.read_csv(out_csv)
    assert {"sqi", "unusable_s", "lead_off_s", "low_sqi_beats"} <= set(table.columns)
    whole = table.iloc[0]
    assert whole["label"] == "whole" and 60 < whole["lead_off_s"] < 62
    assert whole["n_gaps"] == 1 and whole["gap_s"] == pytest.approx(60.0)
    assert bool(whole["valid"])  # 61 s of 330 s: under the 20 % limit
    res = runner.invoke(
        app,
        ["hrv", "analyze", str(path), "--csv", str(out_csv), "--max-unusable", "0.1"],
    )
    assert res.exit_code == 0, res.output
    whole = pd.read_csv(out_csv).iloc[0]
    assert not whole["valid"] and "signal quality" in whole["reason"]
    assert "of the recording is unusable" in whole["reason"]


def test_analyze_noise_exits_2_with_the_reason(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).standard_normal(250 * 120)
    path = _ecg_csv(tmp_path / "noise.csv", noise)
    res = runner.invoke(app, ["hrv", "analyze", str(path)])
    assert res.exit_code == 2
    assert "noise.csv: signal quality" in res.output
    assert "Traceback" not in res.output

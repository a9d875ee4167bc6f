"""Polar PPI exports (Polar Sensor Logger, optical sensor): a real 8.5-minute Polar Verity Sense
recording (``portable/polar-verity-sense-ppi``, see its README). The intervals read are the
file's own, those the device flags (blocker) are gaps the analysis never uses, and the heart
rate found agrees with the heart rate the device reported in the same file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from peerlens import PeerlensError
from peerlens.hrv import analyze, read_ecg, read_rr

SOURCE = "polar-verity-sense-ppi"


@pytest.fixture(scope="module")
def ppi(portable: Any) -> Path:
    path: Path = portable(SOURCE) / "Polar_Sense_PPI.txt"
    return path


def _as_written(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, sep=";")
    frame.columns = ["phone", "pp_ms", "error_ms", "blocker", "contact", "supported", "hr"]
    return frame


def test_reads_every_interval_and_the_device_flags(ppi: Path) -> None:
    written = _as_written(ppi)
    rec = read_rr(ppi)
    assert rec.format == "polar-ppi" and rec.rr_unit == "ms"
    assert rec.rr_ms is not None and rec.rr_ms.tolist() == written["pp_ms"].astype(float).tolist()
    assert rec.rr_flagged is not None
    expected = (written["blocker"] == 1) | ((written["supported"] == 1) & (written["contact"] == 0))
    assert rec.rr_flagged.tolist() == expected.tolist()
    assert int(rec.rr_flagged.sum()) == 21
    assert rec.duration_s == pytest.approx(written["pp_ms"].sum() / 1000)  # 510 s


def test_flagged_intervals_are_gaps_and_heart_rate_matches_the_device(
    ppi: Path, tmp_path: Path
) -> None:
    res = analyze(read_ecg(ppi), window=120)
    written = _as_written(ppi)
    mean_hr = float(res.metrics["mean_hr_bpm"].iloc[0])
    device_hr = written["hr"][written["hr"] > 0]  # 0 until the device has a first estimate
    assert abs(mean_hr - device_hr.mean()) < 3  # the device's own HR column, in bpm
    used = int(res.windows["n_nn"].sum())
    assert used <= len(written) - 21
    # the same file with every blocker cleared: those intervals are now used
    cleared = tmp_path / "cleared.txt"
    lines = ppi.read_text().splitlines()
    body = [";".join([*c[:3], "0", *c[4:]]) for c in (ln.split(";") for ln in lines[1:])]
    cleared.write_text("\n".join([lines[0], *body]) + "\n")
    res_cleared = analyze(read_ecg(cleared), window=120)
    assert int(res_cleared.windows["n_nn"].sum()) > used
    valid = res.windows[res.windows["valid"]]
    assert len(valid) == 4 and valid["mean_hr_bpm"].between(45, 60).all()


def test_a_flag_that_is_not_0_or_1_is_refused_by_row_and_column(ppi: Path, tmp_path: Path) -> None:
    lines = ppi.read_text().splitlines()
    cells = lines[5].split(";")
    cells[3] = "7"
    spoilt = tmp_path / "spoilt.txt"
    spoilt.write_text("\n".join([*lines[:5], ";".join(cells), *lines[6:]]) + "\n")
    with pytest.raises(PeerlensError, match=r"spoilt\.txt: row 6, column 'blocker': 7"):
        read_ecg(spoilt)


def test_a_heart_rate_only_export_is_refused_by_name(portable: Any) -> None:
    hr = portable(SOURCE) / "Polar_Sense_HR.txt"
    with pytest.raises(PeerlensError, match=r"Polar_Sense_HR\.txt: holds heart rate only"):
        read_ecg(hr)
    assert np.isfinite(pd.read_csv(hr, sep=";")["HR [bpm]"]).all()  # a real, readable export

"""Empatica E4 ``IBI.csv`` (``peerlens.hrv._empatica``), on a real 2.5-hour E4 session
(``portable/empatica-e4-ibi``, see its README): the intervals are the file's, the stretches
where the E4 detected no interval are gaps the analysis never bridges, and the time line is the
session's."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from peerlens import PeerlensError
from peerlens.cli import app
from peerlens.hrv import analyze, read_rr

SOURCE = "empatica-e4-ibi"


@pytest.fixture(scope="module")
def ibi(portable: Any) -> Path:
    path: Path = portable(SOURCE) / "IBI.csv"
    return path


def _as_written(path: Path) -> tuple[float, pd.DataFrame]:
    start = float(path.read_text(encoding="ascii").split(",", 1)[0])
    rows = pd.read_csv(path, skiprows=1, header=None, names=["t_s", "ibi_s"])
    return start, rows


def test_reads_every_interval_and_the_stretches_without_any(ibi: Path) -> None:
    start, rows = _as_written(ibi)
    rec = read_rr(ibi)
    assert rec.format == "empatica-ibi" and rec.rr_unit == "s"
    assert rec.rr_ms is not None and rec.rr_flagged is not None
    # The file's intervals, in order, are the unflagged ones.
    assert np.allclose(rec.rr_ms[~rec.rr_flagged], rows["ibi_s"].to_numpy() * 1000, atol=1e-6)
    # A stretch without intervals lies between a beat and the start of the next interval
    # (Empatica's info.txt: each interval ends at its time; it may not start at the last one).
    begins = rows["t_s"].to_numpy() - rows["ibi_s"].to_numpy()
    missing = begins[1:] - rows["t_s"].to_numpy()[:-1]
    assert int(rec.rr_flagged.sum()) == int((missing > 0.002).sum()) == 202
    assert rec.rr_ms[rec.rr_flagged].sum() / 1000 == pytest.approx(missing[missing > 0.002].sum())
    assert len(rec.gaps) == 202 and set(rec.gaps["kind"]) == {"missing"}
    # The time line is the session's: from the first interval's start to the last beat.
    assert rec.duration_s == pytest.approx(rows["t_s"].iloc[-1] - begins[0], abs=1e-3)
    assert rec.start_time == dt.datetime.fromtimestamp(start + begins[0], dt.UTC)


def test_analysis_uses_only_the_files_intervals(ibi: Path) -> None:
    _start, rows = _as_written(ibi)
    result = analyze(read_rr(ibi))
    mean_hr = float(result.metrics["mean_hr_bpm"].iloc[0])
    assert mean_hr == pytest.approx(60 / rows["ibi_s"].mean(), rel=0.05)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1560279825.000000, IBI\n83.5,0.6\n84.0,0.6\n", "line 3"),  # overlaps the one before
        ("1560279825.000000, IBI\n83.5,0.6\n83.4,0.5\n", "line 3"),  # time goes back
        ("1560279825.000000, IBI\n83.5,0.6\n84.5,abc\n", "line 3"),
        ("1560279825.000000, IBI\n83.5,0.6\n84.5,-0.6\n", "line 3"),
        ("1560279825.000000, IBI\n", "no intervals"),
    ],
)
def test_a_line_it_cannot_take_exactly_is_refused_by_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "IBI.csv"
    path.write_text(text, encoding="ascii")
    with pytest.raises(PeerlensError) as info:
        read_rr(path)
    assert "IBI.csv" in str(info.value) and message in str(info.value)
    res = CliRunner().invoke(app, ["hrv", "analyze", str(path)])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output

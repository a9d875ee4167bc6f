"""VU-AMS R-peak exports (``peerlens.hrv._vuams``), on a real 48-minute recording of the VU-AMS
ambulatory ECG recorder (``portable/vu-ams``, see its README): every interval is the file's own,
the time line is the file's, and any line the reader cannot take exactly is refused by line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from peerlens import PeerlensError
from peerlens.cli import app
from peerlens.hrv import analyze, read_ecg, read_rr

SOURCE = "vu-ams"


@pytest.fixture(scope="module")
def vu(portable: Any) -> Path:
    path: Path = portable(SOURCE) / "test_vu.txt"
    return path


def _as_written(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", skiprows=1, dtype=str)


def test_reads_every_interval_as_written(vu: Path) -> None:
    written = _as_written(vu)
    rec = read_rr(vu)
    assert rec.format == "vu-ams" and rec.rr_unit == "ms"
    # The first R peak has no interval (written 0); every other line's interval, in order.
    assert rec.rr_ms is not None
    assert rec.rr_ms.tolist() == written["ibi"].astype(float).tolist()[1:]
    assert rec.rr_flagged is not None and not rec.rr_flagged.any()
    # The time line is the file's: the intervals add up to its last cumulative time.
    assert rec.duration_s == pytest.approx(float(written["ibi_cumulative"].iloc[-1]) / 1000)
    assert read_ecg(vu).format == "vu-ams"


def test_the_heart_rate_found_is_the_files(vu: Path) -> None:
    written = _as_written(vu)
    ibi = written["ibi"].astype(float).to_numpy()[1:]
    result = analyze(read_rr(vu))
    mean_hr = float(result.metrics["mean_hr_bpm"].iloc[0])
    assert mean_hr == pytest.approx(60000 / ibi.mean(), rel=0.02)


def _edited(vu: Path, tmp_path: Path, line: int, column: int, value: str) -> Path:
    lines = vu.read_text(encoding="ascii").splitlines(keepends=True)
    cells = lines[line - 1].split("\t")
    cells[column] = value
    lines[line - 1] = "\t".join(cells)
    out = tmp_path / "edited_vu.txt"
    out.write_text("".join(lines), encoding="ascii")
    return out


@pytest.mark.parametrize(
    ("line", "column", "value", "message"),
    [
        (10, 2, "abc", "line 10"),  # an interval that is not a number
        (10, 3, "X", "line 10"),  # an interpolation flag this reader does not know
        (10, 1, "1", "line 10"),  # a cumulative time that does not follow the intervals
        (10, 0, "30-06-23/14:09:99.000", "line 10"),  # an impossible clock time
    ],
)
def test_a_line_it_cannot_take_exactly_is_refused_by_line(
    vu: Path, tmp_path: Path, line: int, column: int, value: str, message: str
) -> None:
    bad = _edited(vu, tmp_path, line, column, value)
    with pytest.raises(PeerlensError) as info:
        read_rr(bad)
    assert "edited_vu.txt" in str(info.value) and message in str(info.value)
    res = CliRunner().invoke(app, ["hrv", "analyze", str(bad)])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output


def test_a_cumulative_jump_is_a_gap_never_bridged(vu: Path, tmp_path: Path) -> None:
    # Lines 300-319 removed: the cumulative time jumps past them, so that time is a gap.
    lines = vu.read_text(encoding="ascii").splitlines(keepends=True)
    cut = lines[:299] + lines[319:]
    path = tmp_path / "cut_vu.txt"
    path.write_text("".join(cut), encoding="ascii")
    written = _as_written(vu)
    rec = read_rr(path)
    assert rec.rr_ms is not None and rec.rr_flagged is not None
    assert int(rec.rr_flagged.sum()) == 1
    (i,) = np.flatnonzero(rec.rr_flagged)
    cum = written["ibi_cumulative"].astype(float).to_numpy()
    ibi = written["ibi"].astype(float).to_numpy()
    # Line n of the file is row n - 3; the gap runs from peak 298's row to the start of line
    # 320's interval.
    assert rec.rr_ms[i] == pytest.approx(cum[317] - ibi[317] - cum[296])
    assert rec.duration_s == pytest.approx(cum[-1] / 1000)
    assert len(rec.gaps) == 1 and rec.gaps.iloc[0]["kind"] == "missing"

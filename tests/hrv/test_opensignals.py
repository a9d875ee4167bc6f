"""OpenSignals text files (``peerlens.hrv._opensignals`` through ``read_ecg``): a real BITalino
ECG (``portable/bitalino-opensignals``, see its README) read as its JSON header declares it, its
beats checked against NeuroKit2's detector, and damaged copies refused naming line and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from peerlens import PeerlensError
from peerlens.hrv import analyze, read_ecg

SOURCE = "bitalino-opensignals"


@pytest.fixture(scope="module")
def sample(portable: Any) -> Path:
    path: Path = portable(SOURCE) / "SampleECG.txt"
    return path


def _header(path: Path) -> dict[str, Any]:
    device: dict[str, Any] = next(iter(json.loads(path.read_text().splitlines()[1][2:]).values()))
    return device


def test_reads_the_ecg_channel_at_the_header_rate(sample: Path) -> None:
    head = _header(sample)
    rec = read_ecg(sample)
    assert rec.format == "opensignals"
    assert head["sensor"] == ["ECG"] and rec.channel == head["label"][0] == "A2"
    assert rec.fs == head["sampling rate"] == 1000
    rows = [ln for ln in sample.read_text().splitlines() if not ln.startswith("#")]
    assert rec.signal is not None and rec.signal.size == len(rows)
    assert rec.duration_s == pytest.approx(len(rows) / 1000)  # 22.35 s
    column = head["column"].index("A2")
    assert rec.signal[:100].tolist() == [float(r.split("\t")[column]) for r in rows[:100]]
    assert rec.start_time is not None and rec.start_time.isoformat().startswith("2016-06-11T07:03")
    assert read_ecg(sample, channel="ECG").channel == "A2"


def test_beats_agree_with_neurokit2(sample: Path) -> None:
    nk = pytest.importorskip("neurokit2")
    rec = read_ecg(sample)
    res = analyze(rec, window=20)
    assert rec.signal is not None and rec.fs is not None
    _, info = nk.ecg_peaks(nk.ecg_clean(rec.signal, sampling_rate=rec.fs), sampling_rate=rec.fs)
    theirs = np.asarray(info["ECG_R_Peaks"])
    ours = res.rpeaks
    near = np.abs(theirs[:, None] - ours[None, :]).min(axis=1)
    assert np.mean(near <= 0.05 * rec.fs) > 0.95  # the same beats, within 50 ms
    assert abs(ours.size - theirs.size) <= 1
    assert 600 < np.median(res.rr_ms) < 1000  # a resting heart rate, 60-100 bpm
    assert np.median(res.rr_ms) == pytest.approx(np.median(np.diff(theirs)), rel=0.02)


def _copy_with(sample: Path, tmp_path: Path, edit: Any) -> Path:
    lines = sample.read_text().splitlines()
    out = tmp_path / "edited.txt"
    out.write_text("\n".join(edit(lines)) + "\n")
    return out


def test_lost_samples_are_refused_naming_the_line(sample: Path, tmp_path: Path) -> None:
    # file lines 501-503 dropped: the old line 504 is now line 501, where the counter jumps
    path = _copy_with(sample, tmp_path, lambda ls: ls[:500] + ls[503:])
    with pytest.raises(PeerlensError, match=r"edited\.txt: line 501: the sample counter nSeq"):
        read_ecg(path)


def test_text_in_a_sample_is_refused_naming_line_and_column(sample: Path, tmp_path: Path) -> None:
    def spoil(lines: list[str]) -> list[str]:
        cells = lines[9].split("\t")
        cells[5] = "n/a"
        return [*lines[:9], "\t".join(cells), *lines[10:]]

    path = _copy_with(sample, tmp_path, spoil)
    with pytest.raises(PeerlensError, match=r"edited\.txt: line 10, column 6: 'n/a'"):
        read_ecg(path)


def test_a_channel_without_an_ecg_sensor_must_be_named(sample: Path, tmp_path: Path) -> None:
    path = _copy_with(
        sample, tmp_path, lambda ls: [ls[0], ls[1].replace('"ECG"', '"EDA"'), *ls[2:]]
    )
    with pytest.raises(PeerlensError, match=r"edited\.txt: no ECG sensor .*A2 \(EDA\)"):
        read_ecg(path)
    assert read_ecg(path, channel="A2").fs == 1000

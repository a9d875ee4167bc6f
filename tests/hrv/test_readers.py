"""Readers: one reader test and one malformed-file test per format."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pyedflib
import pytest
import wfdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peerlens import PeerlensError
from peerlens.hrv import (
    ChannelNotFoundError,
    EmptyRecordingError,
    FlatSignalError,
    HrvInputError,
    RecordingTooShortError,
    UnreadableRecordingError,
    read_ecg,
    read_rr,
)

# ----------------------------------------------------------------------------- WFDB


def test_wfdb_mitdb_100_matches_wfdb(data_dir: Path) -> None:
    rec = read_ecg(data_dir / "mitdb" / "100.hea")
    ref = wfdb.rdrecord(str(data_dir / "mitdb" / "100"))
    assert rec.format == "wfdb" and rec.fs == 360.0 and rec.channel == "MLII"
    assert rec.signal is not None
    np.testing.assert_array_equal(rec.signal, ref.p_signal[:, 0])
    assert rec.source == "100"  # names only, no directories


def test_wfdb_channel_by_name_and_index(data_dir: Path) -> None:
    by_name = read_ecg(data_dir / "mitdb" / "100", channel="v5")
    by_index = read_ecg(data_dir / "mitdb" / "100", channel=1)
    assert by_name.channel == by_index.channel == "V5"
    assert by_name.signal is not None and by_index.signal is not None
    np.testing.assert_array_equal(by_name.signal, by_index.signal)


def test_wfdb_v102s_picks_ecg_lead_and_bridges_short_gaps(data_dir: Path) -> None:
    rec = read_ecg(data_dir / "other" / "v102s")
    ref = wfdb.rdrecord(str(data_dir / "other" / "v102s"), channels=[0])
    assert rec.channel == "II" and rec.fs == 250.0
    n_missing = int(np.isnan(ref.p_signal[:, 0]).sum())
    assert rec.filled_samples == n_missing > 0
    assert rec.signal is not None and np.isfinite(rec.signal).all()
    pleth = read_ecg(data_dir / "other" / "v102s", channel="PLETH")
    assert pleth.channel == "PLETH"


def test_wfdb_unknown_channel_lists_channels(data_dir: Path) -> None:
    with pytest.raises(ChannelNotFoundError, match=r"v102s.*'aVR'.*II, V, PLETH, RESP"):
        read_ecg(data_dir / "other" / "v102s", channel="aVR")
    with pytest.raises(ChannelNotFoundError, match="index 7 out of range"):
        read_ecg(data_dir / "other" / "v102s", channel=7)


def test_wfdb_malformed_header(tmp_path: Path) -> None:
    (tmp_path / "bad.hea").write_text("this is not a header\n")
    with pytest.raises(UnreadableRecordingError, match="bad"):
        read_ecg(tmp_path / "bad.hea")


def test_wfdb_missing_signal_file(tmp_path: Path) -> None:
    (tmp_path / "rec.hea").write_text("rec 1 250 1000\nrec.dat 16 200 16 0 0 0 0 ECG\n")
    with pytest.raises(PeerlensError, match="rec"):
        read_ecg(tmp_path / "rec")


# ----------------------------------------------------------------------------- EDF / BDF


def _ecg_like(fs: float, seconds: float) -> np.ndarray:
    t = np.arange(int(fs * seconds)) / fs
    return 0.2 * np.sin(2 * np.pi * 1.1 * t) + np.exp(-(((t % 0.8) - 0.4) ** 2) / 2e-4)


@pytest.mark.parametrize(
    ("suffix", "file_type", "bits"),
    [
        (".edf", pyedflib.FILETYPE_EDF, 16),
        (".edf", pyedflib.FILETYPE_EDFPLUS, 16),
        (".bdf", pyedflib.FILETYPE_BDF, 24),
        (".bdf", pyedflib.FILETYPE_BDFPLUS, 24),
    ],
    ids=["edf", "edf+", "bdf", "bdf+"],
)
def test_edf_bdf_round_trip(tmp_path: Path, suffix: str, file_type: int, bits: int) -> None:
    fs = 256
    ecg = _ecg_like(fs, 20)
    resp = np.sin(np.arange(ecg.size) / 50)
    path = tmp_path / f"rec{suffix}"
    headers = [
        pyedflib.highlevel.make_signal_header(
            "Resp", sample_frequency=fs, physical_min=-2, physical_max=2
        ),
        pyedflib.highlevel.make_signal_header(
            "ECG", sample_frequency=fs, physical_min=-2, physical_max=2
        ),
    ]
    for h in headers:  # the digital range of the format (16-bit EDF, 24-bit BDF)
        h["digital_min"], h["digital_max"] = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    start = datetime(2024, 3, 5, 9, 30, 15)
    header = pyedflib.highlevel.make_header(startdate=start)
    pyedflib.highlevel.write_edf(str(path), [resp, ecg], headers, header, file_type=file_type)
    with pyedflib.EdfReader(str(path)) as check:  # the file really is of the intended type
        assert check.filetype == file_type
    rec = read_ecg(path)
    assert rec.format == suffix[1:] and rec.channel == "ECG" and rec.fs == fs
    assert rec.start_time == start
    assert rec.signal is not None
    step = 4.0 / (2**bits - 1)  # physical range / digital range
    np.testing.assert_allclose(rec.signal, ecg, atol=step)
    assert read_ecg(path, channel=0).channel == "Resp"
    assert read_ecg(path, channel="resp").channel == "Resp"


def test_edf_malformed(tmp_path: Path) -> None:
    path = tmp_path / "broken.edf"
    path.write_bytes(b"0       garbage" * 20)
    with pytest.raises(UnreadableRecordingError, match=r"broken.edf"):
        read_ecg(path)


def test_edf_flat_channel(tmp_path: Path) -> None:
    path = tmp_path / "flat.edf"
    header = pyedflib.highlevel.make_signal_header(
        "ECG", sample_frequency=128, physical_min=-1, physical_max=1
    )
    pyedflib.highlevel.write_edf(str(path), [np.zeros(128 * 10)], [header])
    with pytest.raises(FlatSignalError, match=r"flat.edf channel ECG.*flat"):
        read_ecg(path)


# ----------------------------------------------------------------------------- CSV / TSV


def test_csv_with_time_column(tmp_path: Path) -> None:
    fs = 200.0
    ecg = _ecg_like(fs, 10)
    t = np.arange(ecg.size) / fs
    path = tmp_path / "ecg.csv"
    lines = ["time,ecg_mV"] + [f"{a:.6f},{b:.6f}" for a, b in zip(t, ecg, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    rec = read_ecg(path)
    assert rec.format == "csv" and rec.channel == "ecg_mV"
    assert rec.fs == pytest.approx(fs)
    assert rec.signal is not None
    np.testing.assert_allclose(rec.signal, ecg, atol=1e-6)


def test_tsv_without_time_needs_fs(tmp_path: Path) -> None:
    ecg = _ecg_like(250, 8)
    path = tmp_path / "ecg.tsv"
    path.write_text("\n".join(f"{v:.5f}\t{-v:.5f}" for v in ecg))
    with pytest.raises(HrvInputError, match=r"ecg.tsv.*--fs"):
        read_ecg(path)
    rec = read_ecg(path, fs=250, channel=1)
    assert rec.fs == 250 and rec.channel == "#1"
    assert rec.signal is not None
    np.testing.assert_allclose(rec.signal, -ecg, atol=1e-5)


def test_csv_bad_cell_names_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "ecg.csv"
    rows = ["time,ecg"] + [f"{i / 100},{np.sin(i / 5):.4f}" for i in range(1000)]
    rows[42] = "0.41,oops"  # line 43 of the file (line 1 is the header)
    path.write_text("\n".join(rows))
    with pytest.raises(UnreadableRecordingError, match=r"ecg.csv: row 43, column 'ecg': 'oops'"):
        read_ecg(path)


def test_empty_and_too_short_text(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(EmptyRecordingError, match=r"empty.csv"):
        read_ecg(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("time,ecg\n")
    with pytest.raises(EmptyRecordingError, match="no data rows"):
        read_ecg(header_only)
    short = tmp_path / "short.csv"
    short.write_text("time,ecg\n" + "\n".join(f"{i / 100},{i % 7}" for i in range(100)))
    with pytest.raises(RecordingTooShortError, match=r"short.csv.*1.00 s long"):
        read_ecg(short)


def test_missing_file() -> None:
    with pytest.raises(UnreadableRecordingError, match=r"nope.csv: file not found"):
        read_ecg("/nonexistent/nope.csv")


# ----------------------------------------------------------------------------- Polar H10


def test_polar_h10_ecg_export(tmp_path: Path) -> None:
    ecg = (1000 * _ecg_like(130, 10)).round()
    ns = (np.arange(ecg.size) * 1e9 / 130).astype(np.int64) + 599_000_000_000
    path = tmp_path / "Polar_H10_ABCD1234_20240101_101010_ECG.txt"
    lines = ["Phone timestamp;sensor timestamp [ns];timestamp [ms];ecg [uV]"] + [
        f"2024-01-01T10:10:{10 + i / 130:06.3f};{n};{n / 1e6:.3f};{int(v)}"
        for i, (n, v) in enumerate(zip(ns, ecg, strict=True))
    ]
    path.write_text("\n".join(lines) + "\n")
    rec = read_ecg(path)
    assert rec.format == "polar-ecg" and rec.fs == 130.0 and rec.channel == "ecg [uV]"
    assert rec.signal is not None
    np.testing.assert_array_equal(rec.signal, ecg)


def test_polar_h10_ecg_malformed(tmp_path: Path) -> None:
    header = "Phone timestamp;sensor timestamp [ns];timestamp [ms];ecg [uV]"
    rows = [
        f"2024-01-01T10:10:10.000;{i * 7692307};{i * 7.692307:.3f};{i % 50}" for i in range(800)
    ]
    rows[99] = "2024-01-01T10:10:10.000;761538393;761.538;--"  # a dropped sample written as --
    bad = tmp_path / "Polar_H10_bad_ECG.txt"
    bad.write_text("\n".join([header, *rows]) + "\n")
    with pytest.raises(
        UnreadableRecordingError, match=r"Polar_H10_bad_ECG.txt: row 101.*ecg \[uV\]"
    ):
        read_ecg(bad)
    short = tmp_path / "Polar_H10_short_ECG.txt"
    short.write_text("\n".join([header, *[r for r in rows[:260] if "--" not in r]]) + "\n")
    with pytest.raises(RecordingTooShortError, match=r"Polar_H10_short_ECG.txt"):
        read_ecg(short)
    flat = tmp_path / "Polar_H10_flat_ECG.txt"
    flat.write_text("\n".join([header, *[r.rsplit(";", 1)[0] + ";0" for r in rows[:700]]]) + "\n")
    with pytest.raises(FlatSignalError, match=r"Polar_H10_flat_ECG.txt"):
        read_ecg(flat)


def test_polar_rr_ms_and_1024_units(tmp_path: Path, gudb_rr: np.ndarray) -> None:
    ms = np.round(gudb_rr).astype(int)
    path = tmp_path / "Polar_H10_RR.txt"
    path.write_text(
        "Phone timestamp;RR-interval [ms]\n"
        + "\n".join(f"2024-01-01T10:00:{i % 60:02d}.000;{v}" for i, v in enumerate(ms))
    )
    rec = read_rr(path)
    assert rec.format == "polar-rr" and rec.rr_unit == "ms"
    assert rec.rr_ms is not None
    np.testing.assert_array_equal(rec.rr_ms, ms)
    units = np.round(gudb_rr * 1.024).astype(int)
    path2 = tmp_path / "rr_1024.csv"
    path2.write_text("rr [1/1024 s]\n" + "\n".join(map(str, units)))
    rec2 = read_ecg(path2)
    assert rec2.rr_unit == "1/1024 s"
    assert rec2.rr_ms is not None
    np.testing.assert_allclose(rec2.rr_ms, units * 1000 / 1024)


def test_polar_rr_malformed(tmp_path: Path) -> None:
    path = tmp_path / "Polar_RR.txt"
    path.write_text("Phone timestamp;RR-interval [ms]\n2024-01-01T10:00:00;812\nx;-5\ny;800\n")
    with pytest.raises(HrvInputError, match=r"Polar_RR.txt: RR interval 2 is -5"):
        read_ecg(path)


# ----------------------------------------------------------------------------- plain RR


@pytest.mark.parametrize(("scale", "unit"), [(1.0, "ms"), (0.001, "s")])
def test_plain_rr_unit_detected(
    tmp_path: Path, gudb_rr: np.ndarray, scale: float, unit: str
) -> None:
    path = tmp_path / "rr.txt"
    path.write_text("\n".join(f"{v * scale:.6f}" for v in gudb_rr) + "\n")
    rec = read_ecg(path)
    assert rec.is_rr and rec.format == "rr" and rec.rr_unit == unit
    assert rec.rr_ms is not None
    np.testing.assert_allclose(rec.rr_ms, gudb_rr, rtol=1e-9, atol=1e-6)


def test_plain_rr_malformed(tmp_path: Path) -> None:
    path = tmp_path / "rr.txt"
    path.write_text("812\n790\nabc\n801\n")
    with pytest.raises(UnreadableRecordingError, match=r"rr.txt: row 3.*'abc'"):
        read_rr(path)
    weird = tmp_path / "weird.txt"
    weird.write_text("\n".join(["50"] * 20))
    with pytest.raises(HrvInputError, match="neither seconds"):
        read_rr(weird)
    few = tmp_path / "few.txt"
    few.write_text("800\n810\n")
    with pytest.raises(RecordingTooShortError, match=r"few.txt: 2 RR intervals"):
        read_rr(few)
    flat = tmp_path / "flat.txt"
    flat.write_text("\n".join(["800"] * 30))
    with pytest.raises(FlatSignalError, match=r"flat.txt"):
        read_rr(flat)


# ----------------------------------------------------------------------------- R-peak indices


def test_peak_index_file_gudb(data_dir: Path, gudb_rr: np.ndarray) -> None:
    path = data_dir / "gudb_chest_strap_annotations" / "subject_00_sitting.tsv"
    rec = read_ecg(path, kind="peaks", fs=250)
    assert rec.format == "peaks" and rec.rr_unit == "samples at 250 Hz"
    assert rec.rr_ms is not None
    np.testing.assert_allclose(rec.rr_ms, gudb_rr)


def test_peak_index_file_malformed(tmp_path: Path) -> None:
    path = tmp_path / "peaks.txt"
    path.write_text("100\n350\n340\n600\n")
    with pytest.raises(HrvInputError, match=r"peaks.txt: R-peak indices must increase; line 3"):
        read_ecg(path, kind="peaks", fs=250)
    with pytest.raises(HrvInputError, match="need the sampling rate"):
        read_ecg(path, kind="peaks")


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rr=st.lists(st.integers(min_value=300, max_value=1800), min_size=3, max_size=60),
    seconds=st.booleans(),
)
def test_rr_file_round_trip_property(tmp_path: Path, rr: list[int], seconds: bool) -> None:
    if len(set(rr)) == 1:
        rr = [*rr[:-1], rr[-1] + 1]
    path = tmp_path / "rr_prop.txt"
    path.write_text("\n".join(f"{v / 1000:.3f}" if seconds else str(v) for v in rr))
    rec = read_rr(path)
    assert rec.rr_unit == ("s" if seconds else "ms")
    assert rec.rr_ms is not None
    np.testing.assert_allclose(rec.rr_ms, rr, atol=1e-9)


def test_long_gaps_stay_missing_and_are_analysed_as_lead_off(tmp_path: Path, make_ecg) -> None:  # type: ignore[no-untyped-def]
    # A CSV export with empty cells: 2 samples (8 ms) are bridged, 2 s (a lead-off) and the
    # last 0.4 s stay missing; the analysis treats them as unusable, not as an error.
    rr = np.full(150, 0.8) + 0.03 * np.sin(np.arange(150) / 2.0)
    ecg, _ = make_ecg(250.0, rr, noise=0.01, seed=1)
    cells = [f"{v:.5f}" for v in ecg]
    for i in (*range(5000, 5002), *range(10_000, 10_500), *range(ecg.size - 100, ecg.size)):
        cells[i] = ""
    path = tmp_path / "ecg.csv"
    path.write_text("time,ecg\n" + "\n".join(f"{i / 250:.4f},{c}" for i, c in enumerate(cells)))
    rec = read_ecg(path)
    assert rec.filled_samples == 2 and rec.missing_samples == 600
    assert rec.signal is not None and np.isnan(rec.signal).sum() == 600
    from peerlens.hrv import analyze

    res = analyze(rec, window=60)
    assert res.quality is not None
    st = res.quality.stretches
    assert st[["kind", "start", "end"]].values.tolist() == [
        ["lead_off", 10_000, 10_500],
        ["lead_off", ecg.size - 100, ecg.size],
    ]
    assert res.windows["lead_off_s"].iloc[0] >= 2.0

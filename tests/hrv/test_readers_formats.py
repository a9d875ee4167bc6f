"""Readers on the record layouts recorders write: multi-segment and multi-frequency WFDB
records, headers without signal names, gaps, EDF+D / BDF+D, and refusals that name the record
and the feature. Each case is a real file of the WFDB sample data (``../shared/data/ecg``)
where one exists; EDF+D / BDF+D files are written here with pyedflib (no real discontinuous
file is available) and made discontinuous as the EDF+ specification describes."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pyedflib
import pytest
import wfdb

from peerlens import PeerlensError
from peerlens.hrv import (
    ChannelNotFoundError,
    EmptyRecordingError,
    HrvInputError,
    UnreadableRecordingError,
    read_ecg,
)


@pytest.fixture
def sample(shared_data: Path) -> Path:
    return shared_data / "wfdb-sample-data"


# ----------------------------------------------------------------------------- multi-segment


def test_fixed_layout_multi_segment_is_one_recording(sample: Path) -> None:
    base = sample / "multi-segment" / "fixed1"
    rec = read_ecg(base / "v102s.hea")
    parts = [
        wfdb.rdrecord(str(base / f"v102s_{i}"), channels=[0]).p_signal[:, 0] for i in (1, 2, 3)
    ]
    whole = np.concatenate(parts)
    assert rec.channel == "II" and rec.fs == 250.0 and rec.duration_s == 900.0
    assert rec.signal is not None
    finite = np.isfinite(whole)
    np.testing.assert_array_equal(rec.signal[finite], whole[finite])


def test_variable_layout_null_segments_are_gaps(sample: Path) -> None:
    base = sample / "multi-segment" / "s25047" / "s25047-2704-05-04-10-44"
    rec = read_ecg(base)
    header = wfdb.rdheader(str(base))
    assert rec.fs == 125.0 and rec.signal is not None
    assert rec.signal.size == header.sig_len  # one time line, nothing stitched together
    # the first segment is null: 25,740 frames (205.92 s) without signal
    first = rec.gaps.iloc[0]
    assert first["kind"] == "segment" and first["start_s"] == 0.0
    assert first["end_s"] == pytest.approx(25740 / 125)
    assert "null segment" in first["detail"]
    assert np.isnan(rec.signal[:25740]).all()
    # every gap is a NaN run on the time line, never bridged
    for a, b in zip(rec.gaps["start_s"], rec.gaps["end_s"], strict=True):
        assert np.isnan(rec.signal[round(a * 125) : round(b * 125)]).all()
    ref = wfdb.rdrecord(str(base), channel_names=["II"]).p_signal[:, 0]
    np.testing.assert_array_equal(np.isnan(rec.signal), np.isnan(ref) & ~_short_runs(ref, 125))


def _short_runs(x: np.ndarray, fs: float) -> np.ndarray:
    """NaN runs the reader bridges (inner, <= 50 ms)."""
    bad = np.isnan(x)
    out = np.zeros_like(bad)
    d = np.diff(bad.astype(np.int8), prepend=0, append=0)
    for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True):
        if b - a <= 0.05 * fs and a > 0 and b < x.size:
            out[a:b] = True
    return out


def test_multi_segment_all_null_and_layout_headers_are_refused_by_name(sample: Path) -> None:
    ms = sample / "multi-segment"
    with pytest.raises(EmptyRecordingError, match=r"s00001-2896-10-09-01-56 .*null segment"):
        read_ecg(ms / "s00001" / "s00001-2896-10-09-01-56")
    with pytest.raises(EmptyRecordingError, match=r"3234460_layout: a layout header"):
        read_ecg(ms / "s25047" / "3234460_layout")


def test_absent_segment_files_are_named_gaps(sample: Path) -> None:
    """The sample data lacks 3975656_0009..0011.dat (s00001) and most segment headers of
    p000878: the master header gives their lengths, so they are gaps naming the file."""
    ms = sample / "multi-segment"
    rec = read_ecg(ms / "s00001" / "s00001-2896-10-10-00-31")
    head = wfdb.rdheader(str(ms / "s00001" / "s00001-2896-10-10-00-31"))
    assert rec.signal is not None and rec.signal.size == sum(head.seg_len)  # the whole time line
    details = " ".join(rec.gaps["detail"])
    for seg in ("3975656_0010", "3975656_0011"):  # 0009 (also absent) holds no II anyway
        assert f"segment {seg}: signal file {seg}.dat missing" in details
    assert "segment 3975656_0009 has no II" in details
    rec = read_ecg(ms / "p000878" / "p000878-2137-10-26-16-57")
    assert "segment 3269321_0003: header 3269321_0003.hea missing" in " ".join(rec.gaps["detail"])


def test_withheld_segment_is_a_gap_and_the_rest_reads_as_before(
    sample: Path, tmp_path: Path
) -> None:
    from peerlens.hrv import analyze

    src = sample / "multi-segment" / "s25047"
    shutil.copytree(src, tmp_path / "s25047")
    (tmp_path / "s25047" / "3234460_0015.dat").unlink()
    name = "s25047-2704-05-04-10-44"
    full = read_ecg(src / name)
    rec = read_ecg(tmp_path / "s25047" / name)
    head = wfdb.rdheader(str(src / name))
    first = sum(head.seg_len[: head.seg_name.index("3234460_0015")])
    length = head.seg_len[head.seg_name.index("3234460_0015")]
    a, b = first, first + length  # frames = samples (II at the frame rate, 125 Hz)
    assert rec.signal is not None and full.signal is not None
    assert rec.signal.size == full.signal.size
    assert np.isnan(rec.signal[a:b]).all() and np.isfinite(full.signal[a:b]).any()
    outside = np.r_[0:a, b : rec.signal.size]
    np.testing.assert_array_equal(rec.signal[outside], full.signal[outside])
    gap = rec.gaps[rec.gaps["detail"].str.contains("3234460_0015.dat missing")]
    assert len(gap) == 1
    assert gap["start_s"].iloc[0] <= a / 125 and gap["end_s"].iloc[0] >= b / 125
    res = analyze(rec, window=300)
    nn_end = res.artifacts.nn_end_ms / 1000 + res.rpeaks[0] / 125
    nn_start = nn_end - res.artifacts.nn_ms / 1000
    assert not ((nn_start < b / 125) & (nn_end > a / 125)).any()  # no NN interval spans it
    hit = (res.windows["start_s"] < b / 125) & (res.windows["end_s"] > a / 125)
    assert (res.windows.loc[hit, "gap_s"] > 0).all()


def test_multi_segment_analysis_never_bridges_a_segment_gap(sample: Path) -> None:
    from peerlens.hrv import analyze

    rec = read_ecg(sample / "multi-segment" / "s25047" / "s25047-2704-05-04-10-44")
    res = analyze(rec, window=300)
    assert res.quality is not None
    gap_end = float(rec.gaps["end_s"].iloc[0])
    assert float(res.rpeaks[0]) / 125 > gap_end  # no beat in the null segment
    first = res.windows.iloc[0]  # 0-300 s: 206 s of null segment
    assert not first["valid"] and "gap" in first["reason"]
    assert first["gap_s"] == pytest.approx(gap_end)
    assert first["n_gaps"] >= 1
    # windows after the gap hold beats and are analysed
    assert res.windows["valid"].iloc[1:].any()


# ----------------------------------------------------------------------------- multi-frequency


@pytest.mark.parametrize(
    ("record", "channel", "fs"),
    [
        ("03700181", "MCL1", 500.0),  # 125 Hz frames, ECG at 4 samples per frame
        ("test01_00s_frame", "ECG_2", 1000.0),
        ("mixedsignals", "II", 4 * 62.4725),
        ("test_generator_2", "ECG", 200.0),  # 1 Hz frames, 200 samples per frame
    ],
)
def test_each_channel_at_its_own_rate(sample: Path, record: str, channel: str, fs: float) -> None:
    rec = read_ecg(sample / record, channel=channel)
    ref = wfdb.rdrecord(str(sample / record), channel_names=[channel], smooth_frames=False)
    assert rec.fs == pytest.approx(fs) and rec.channel_fs[channel] == pytest.approx(fs)
    assert rec.signal is not None
    expected = ref.e_p_signal[0]
    ok = np.isfinite(expected)
    np.testing.assert_array_equal(rec.signal[ok], expected[ok])
    assert rec.duration_s == pytest.approx(ref.sig_len / ref.fs)


def test_multi_frequency_channels_keep_their_rates(sample: Path) -> None:
    rec = read_ecg(sample / "03700181")
    assert rec.channel == "MCL1" and rec.fs == 500.0
    assert rec.channel_fs == {"MCL1": 500.0, "ABP": 125.0, "RESP": 125.0}


# ----------------------------------------------------------------------------- no signal names


def test_header_without_signal_names_reads_by_index(sample: Path, tmp_path: Path) -> None:
    # the real header without names: its data file is absent from the sample data
    with pytest.raises(UnreadableRecordingError, match=r"n8_evoked_raw_95_F1_R9: channel #0"):
        read_ecg(sample / "n8_evoked_raw_95_F1_R9")
    # real MIT-BIH data under a header whose signal lines stop before the (optional) name
    shutil.copy(sample / "100.dat", tmp_path / "100.dat")
    lines = (sample / "100.hea").read_text().splitlines()
    lines = [" ".join(ln.split()[:8]) if ln.startswith("100.dat") else ln for ln in lines]
    (tmp_path / "100.hea").write_text("\n".join(lines) + "\n")
    assert wfdb.rdheader(str(tmp_path / "100")).sig_name in (None, [None, None])
    first = read_ecg(tmp_path / "100")
    second = read_ecg(tmp_path / "100", channel=1)
    ref = wfdb.rdrecord(str(sample / "100"))
    assert first.channel == "#0" and second.channel == "#1" and first.fs == 360.0
    assert first.signal is not None and second.signal is not None
    np.testing.assert_array_equal(first.signal, ref.p_signal[:, 0])
    np.testing.assert_array_equal(second.signal, ref.p_signal[:, 1])
    with pytest.raises(ChannelNotFoundError, match="index 2 out of range"):
        read_ecg(tmp_path / "100", channel=2)


# ----------------------------------------------------------------------------- refusals


def test_refusals_name_record_and_feature(sample: Path) -> None:
    ms = sample / "multi-segment"
    with pytest.raises(ChannelNotFoundError, match=r"56n: no ECG channel \(channels: HR"):
        read_ecg(ms / "s00001" / "s00001-2896-10-09-01-56n")
    with pytest.raises(HrvInputError, match=r"56n channel HR: sampled at 0.0166667 Hz"):
        read_ecg(ms / "s00001" / "s00001-2896-10-09-01-56n", channel="HR")
    with pytest.raises(UnreadableRecordingError, match=r"12726: channel ECG: .*12726.dat"):
        read_ecg(sample / "12726")
    with pytest.raises(EmptyRecordingError, match=r"test_edfann.edf: .*no signal"):
        read_ecg(sample / "test_edfann.edf")


def test_no_input_of_the_sample_data_leaks_a_python_error(sample: Path) -> None:
    paths = sorted(p for p in sample.rglob("*") if p.suffix in {".hea", ".edf"})
    assert len(paths) >= 80
    for path in paths:
        try:
            rec = read_ecg(path)
        except PeerlensError as exc:
            assert path.stem in str(exc) or path.name in str(exc), str(exc)
        else:
            assert rec.fs is not None and rec.fs >= 100


# ----------------------------------------------------------------------------- EDF+D / BDF+D


def _discontinuous(path: Path, onsets: list[float], bdf: bool) -> None:
    """Turn a pyedflib-written EDF+/BDF+ file (1 s records) into EDF+D / BDF+D: the reserved
    field says so and each record's time-keeping annotation gets its new onset."""
    raw = bytearray(path.read_bytes())
    ns = int(raw[252:256])
    raw[192:197] = b"BDF+D" if bdf else b"EDF+D"
    base = 256 + ns * (16 + 80 + 8 + 4 * 8 + 80)  # up to "samples per record"
    spr = [int(raw[base + 8 * i : base + 8 * i + 8]) for i in range(ns)]
    width = 3 if bdf else 2
    rec_bytes = sum(spr) * width
    ann_at = sum(spr[:-1]) * width  # pyedflib writes the annotation signal last
    for k, onset in enumerate(onsets):
        at = 256 * (ns + 1) + k * rec_bytes + ann_at
        tal = f"+{onset:g}\x14\x14\x00".encode()
        raw[at : at + spr[-1] * width] = tal + bytes(spr[-1] * width - len(tal))
    path.write_bytes(bytes(raw))


def _write_edf_d(tmp_path: Path, ecg: np.ndarray, fs: int, onsets: list[float], bdf: bool) -> Path:
    path = tmp_path / ("rec.bdf" if bdf else "rec.edf")
    bits = 24 if bdf else 16
    head = pyedflib.highlevel.make_signal_header(
        "ECG", sample_frequency=fs, physical_min=-2, physical_max=2
    )
    head["digital_min"], head["digital_max"] = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    pyedflib.highlevel.write_edf(
        str(path),
        [ecg],
        [head],
        pyedflib.highlevel.make_header(startdate=datetime(2024, 3, 5, 9, 30, 15)),
        file_type=pyedflib.FILETYPE_BDFPLUS if bdf else pyedflib.FILETYPE_EDFPLUS,
    )
    _discontinuous(path, onsets, bdf)
    return path


@pytest.mark.parametrize(
    ("onsets", "message"),
    [
        ([0.0, 1.0, 1.5, 3.0], r"rec.edf: data record 3 starts at 1.5 s, before record 2 ends"),
        ([0.0, 1.0, 2.0, 3e7], r"rec.edf: signal ECG: its data records span 30000000 s"),
    ],
    ids=["overlap", "gap-of-a-year"],
)
def test_edf_plus_d_refusals(tmp_path: Path, make_ecg, onsets: list[float], message: str) -> None:  # type: ignore[no-untyped-def]
    ecg, _ = make_ecg(256, np.full(6, 0.8))
    path = _write_edf_d(tmp_path, ecg[: 4 * 256], 256, onsets, bdf=False)
    with pytest.raises(UnreadableRecordingError, match=message):
        read_ecg(path)


def test_edf_channels_at_their_own_rates(tmp_path: Path, make_ecg) -> None:  # type: ignore[no-untyped-def]
    ecg, _ = make_ecg(512, np.full(25, 0.8))
    ecg = ecg[: 20 * 512]
    resp = np.sin(np.arange(20 * 32) / 10)
    make = pyedflib.highlevel.make_signal_header
    heads = [
        make("Resp", sample_frequency=32, physical_min=-2, physical_max=2),
        make("ECG", sample_frequency=512, physical_min=-2, physical_max=2),
    ]
    path = tmp_path / "two_rates.edf"
    pyedflib.highlevel.write_edf(str(path), [resp, ecg], heads)
    rec = read_ecg(path)
    assert rec.channel == "ECG" and rec.fs == 512.0 and rec.duration_s == 20.0
    assert rec.channel_fs == {"Resp": 32.0, "ECG": 512.0}


@pytest.mark.parametrize("bdf", [False, True], ids=["edf+d", "bdf+d"])
def test_edf_plus_d_gaps_between_records(tmp_path: Path, make_ecg, bdf: bool) -> None:  # type: ignore[no-untyped-def]
    fs = 256
    ecg, _ = make_ecg(fs, np.full(40, 0.8))
    ecg = ecg[: 30 * fs]
    bits = 24 if bdf else 16
    start = datetime(2024, 3, 5, 9, 30, 15)
    # records 0-9 at 0-9 s, 10-29 resume at 25 s: a 15 s gap
    onsets = [float(k) if k < 10 else float(k + 15) for k in range(30)]
    path = _write_edf_d(tmp_path, ecg, fs, onsets, bdf)
    with pytest.raises(OSError, match="discontinuous"):
        pyedflib.EdfReader(str(path))  # what pyedflib does with it
    rec = read_ecg(path)
    assert rec.format == ("bdf" if bdf else "edf") and rec.fs == fs and rec.start_time == start
    assert rec.duration_s == 45.0
    assert rec.gaps[["start_s", "end_s"]].values.tolist() == [[10.0, 25.0]]
    assert rec.gaps["kind"].tolist() == ["discontinuity"]
    assert rec.signal is not None
    step = 4.0 / (2**bits - 1)
    np.testing.assert_allclose(rec.signal[: 10 * fs], ecg[: 10 * fs], atol=step)
    np.testing.assert_allclose(rec.signal[25 * fs :], ecg[10 * fs :], atol=step)
    assert np.isnan(rec.signal[10 * fs : 25 * fs]).all()
    from peerlens.hrv import analyze

    res = analyze(rec)  # the beats on both sides are analysed, none bridges the gap
    nn_end = res.artifacts.nn_end_ms / 1000 + res.rpeaks[0] / fs
    nn_start = nn_end - res.artifacts.nn_ms / 1000
    assert (nn_end <= 10).any() and (nn_start >= 25).any()
    assert not ((nn_start < 25) & (nn_end > 10)).any()
    assert (
        res.metrics["gap_s"].iloc[0] == 15.0 and res.to_dict()["gaps"][0]["kind"] == "discontinuity"
    )


# ----------------------------------------------------------------------------- gaps of any length


def test_long_gap_in_a_real_record_is_analysed_around(shared_data: Path, tmp_path: Path) -> None:
    """MIT-BIH 100 written back as a WFDB record with 7 minutes of invalid samples (the
    format's missing-value code): read, analysed around the gap, windows report it."""
    from peerlens.hrv import analyze

    src = wfdb.rdrecord(str(shared_data / "mitdb" / "100"), channels=[0])
    x = src.p_signal[:, 0].copy()
    fs = float(src.fs)
    clean = analyze(read_ecg(shared_data / "mitdb" / "100"), window=300)
    x[int(300 * fs) : int(720 * fs)] = np.nan
    wfdb.wrsamp(
        "gap100", fs=fs, units=["mV"], sig_name=["MLII"], p_signal=x[:, None], fmt=["16"],
        adc_gain=[200.0], baseline=[0], write_dir=str(tmp_path),
    )  # fmt: skip
    rec = read_ecg(tmp_path / "gap100")
    assert rec.gaps[["start_s", "end_s"]].values.tolist() == [[300.0, 720.0]]
    assert rec.gaps["kind"].tolist() == ["missing"]
    res = analyze(rec, window=300)
    w = res.windows.set_index("label")
    assert w.loc["w001", "valid"] and w.loc["w001", "n_gaps"] == 0
    assert w.loc["w001", "rmssd_ms"] == pytest.approx(clean.windows["rmssd_ms"].iloc[0], rel=0.02)
    assert not w.loc["w002", "valid"] and w.loc["w002", "gap_s"] == pytest.approx(300.0)
    assert "1 gap(s) in the recording, 300.0 s (missing" in w.loc["w002", "reason"]
    assert not w.loc["w003", "valid"] and w.loc["w003", "gap_s"] == pytest.approx(120.0)
    # windows after the gap: as valid as without it
    after = ["w004", "w005", "w006", "w007"]
    c = clean.windows.set_index("label")
    assert w.loc[after, "valid"].tolist() == c.loc[after, "valid"].tolist()
    np.testing.assert_allclose(w.loc[after, "rmssd_ms"], c.loc[after, "rmssd_ms"], rtol=1e-9)
    # no NN interval spans the gap
    nn_end = res.artifacts.nn_end_ms / 1000 + res.rpeaks[0] / fs
    nn_start = nn_end - res.artifacts.nn_ms / 1000
    assert not ((nn_start < 720) & (nn_end > 300)).any()


def test_cli_refusal_exits_2_naming_record_and_feature(sample: Path) -> None:
    from typer.testing import CliRunner

    from peerlens.cli import app

    runner = CliRunner()
    ms = sample / "multi-segment" / "s00001"
    res = runner.invoke(app, ["hrv", "analyze", str(ms / "s00001-2896-10-09-01-56.hea")])
    assert res.exit_code == 2
    assert "s00001-2896-10-09-01-56" in res.output and "null segment" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(app, ["hrv", "analyze", str(ms / "3975656_layout.hea")])
    assert res.exit_code == 2 and "layout header" in res.output

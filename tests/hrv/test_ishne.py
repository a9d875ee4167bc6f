"""ISHNE Holter files (``peerlens.hrv._ishne`` through ``read_ecg``): a real 78-minute, 3-lead
recording of a Lifecard CF Holter recorder (``portable/ishne-lifecard-cf``, see its README), read
against the header as an independent parser decodes it, its beats checked against the beat
labels exported with it, and damaged copies refused by name."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from peerlens import PeerlensError
from peerlens.hrv import analyze, read_ecg

SOURCE = "ishne-lifecard-cf"


@pytest.fixture(scope="module")
def holter(portable: Any) -> Path:
    path: Path = portable(SOURCE) / "holter.ecg"
    return path


def _header_fields(path: Path) -> dict[str, Any]:
    """The fields a reader needs, decoded here by offset from the standard's table 1."""
    raw = path.read_bytes()
    h = raw[10:522]
    n_samples, ecg_offset = struct.unpack_from("<i", h, 4)[0], struct.unpack_from("<i", h, 12)[0]
    n_leads = struct.unpack_from("<h", h, 146)[0]
    return {
        "n_samples": n_samples,
        "ecg_offset": ecg_offset,
        "n_leads": n_leads,
        "resolution": struct.unpack_from("<12h", h, 196)[:n_leads],
        "fs": struct.unpack_from("<h", h, 262)[0],
        "raw": raw,
    }


def test_reads_rate_leads_duration_and_units_from_the_header(holter: Path) -> None:
    f = _header_fields(holter)
    rec = read_ecg(holter)
    assert rec.format == "ishne"
    assert rec.fs == f["fs"] == 128
    assert len(rec.channel_fs) == f["n_leads"] == 3
    assert set(rec.channel_fs.values()) == {128.0}
    assert rec.signal is not None and rec.signal.size == f["n_samples"]
    assert rec.duration_s == pytest.approx(f["n_samples"] / f["fs"])  # 77.8 min
    assert rec.start_time is not None and rec.start_time.year == 2019
    # lead 2 in mV: the interleaved int16 samples times its resolution (nV per unit)
    second = read_ecg(holter, channel=1)
    samples = np.frombuffer(f["raw"], dtype="<i2", offset=f["ecg_offset"])
    lead2 = (
        samples[: f["n_samples"] * 3].reshape(-1, 3)[:, 1].astype(float) * f["resolution"][1] * 1e-6
    )
    assert second.channel != rec.channel
    np.testing.assert_allclose(second.signal, lead2)


def test_detected_beats_match_the_exported_beat_labels(holter: Path) -> None:
    """Beats found by ``analyze`` against the Holter software's own beat list (``holter.txt``:
    seconds and label; ``X`` marks unreadable stretches, left out here)."""
    rows = [ln.split() for ln in (holter.parent / "holter.txt").read_text().splitlines()[1:]]
    ref_s = np.array([float(t) for t, label in rows if label in {"N", "S"}])
    res = analyze(read_ecg(holter), window=300)
    found_s = res.rpeaks / res.fs
    found_s = found_s[(found_s > ref_s[0] - 1) & (found_s < ref_s[-1] + 1)]
    # matched within 150 ms (ANSI/AAMI EC57), each reference beat to its nearest detection
    nearest = np.abs(found_s[np.searchsorted(found_s, ref_s).clip(1, found_s.size - 1) - 1] - ref_s)
    after = np.abs(found_s[np.searchsorted(found_s, ref_s).clip(0, found_s.size - 1)] - ref_s)
    sensitivity = np.mean(np.minimum(nearest, after) <= 0.150)
    assert sensitivity > 0.99
    assert found_s.size <= ref_s.size * 1.01  # few beats beyond the reference
    valid = res.windows[res.windows["valid"]]
    assert len(valid) >= 12  # 16 five-minute windows; the first starts with 98 s unreadable
    assert valid["mean_hr_bpm"].between(50, 80).all()
    ref_rr_ms = np.diff(ref_s) * 1000
    assert np.median(res.rr_ms) == pytest.approx(np.median(ref_rr_ms), rel=0.02)


def _damaged(src: Path, tmp_path: Path, at: int, value: bytes) -> Path:
    raw = bytearray(src.read_bytes()[:200_000])
    raw[at : at + len(value)] = value
    out = tmp_path / "damaged.ecg"
    out.write_bytes(bytes(raw))
    return out


def test_damaged_header_is_refused_naming_the_checksum(holter: Path, tmp_path: Path) -> None:
    path = _damaged(holter, tmp_path, 10 + 262, struct.pack("<h", 250))  # rate 128 -> 250 Hz
    with pytest.raises(PeerlensError, match=r"damaged\.ecg: ISHNE header checksum"):
        read_ecg(path)


def test_truncated_file_is_refused_naming_the_sample_counts(holter: Path, tmp_path: Path) -> None:
    path = tmp_path / "short.ecg"
    path.write_bytes(holter.read_bytes()[:100_000])
    with pytest.raises(PeerlensError, match=r"short\.ecg: .*597376 samples per lead.*truncated"):
        read_ecg(path)


def test_named_lead_out_of_range_is_refused(holter: Path) -> None:
    with pytest.raises(PeerlensError, match=r"holter\.ecg: channel index 5 out of range"):
        read_ecg(holter, channel=5)

"""Mutated recordings through every reader: each is read or refused with a clear error
(:class:`peerlens.PeerlensError`, which names the file and the feature), never a Python
exception. The unmutated files are checked to read first, so the mutations start from valid
input of each format."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peerlens import PeerlensError
from peerlens.hrv import read_ecg, read_rr

from .._mutation import mutate

FS = 250
T = np.arange(0, 8, 1 / FS)
ECG = 0.05 * np.sin(2 * np.pi * 1.1 * T) + np.where((T % 0.8) < 0.02, 1.0, 0.0)


def _csv(folder: Path) -> Path:
    path = folder / "ecg.csv"
    rows = "\n".join(f"{t:.3f},{v:.5f}" for t, v in zip(T, ECG, strict=True))
    path.write_text(f"time_s,ECG\n{rows}\n", encoding="utf-8")
    return path


def _rr(folder: Path) -> Path:
    path = folder / "rr.txt"
    path.write_text("rr_ms\n" + "\n".join(str(800 + (i % 7) * 10) for i in range(60)) + "\n")
    return path


def _edf(folder: Path) -> Path:
    import pyedflib

    path = folder / "ecg.edf"
    header = pyedflib.highlevel.make_signal_headers(["ECG"], sample_frequency=FS)
    header[0].update({"physical_min": -2.0, "physical_max": 2.0, "dimension": "mV"})
    pyedflib.highlevel.write_edf(str(path), [ECG], header)
    return path


def _wfdb(folder: Path) -> Path:
    import wfdb

    wfdb.wrsamp(
        "rec", fs=FS, units=["mV"], sig_name=["MLII"], p_signal=ECG[:, None], fmt=["16"],
        adc_gain=[1000.0], baseline=[0], write_dir=str(folder),
    )  # fmt: skip
    return folder / "rec.hea"


def _opensignals(folder: Path) -> Path:
    device = {
        "sensor": ["ECG"], "device name": "00:07:80:0F:30:2D", "column": ["nSeq", "I1", "A2"],
        "sync interval": 2, "time": "10:00:00.000", "comments": "", "device connection": "",
        "channels": [2], "date": "2024-01-02", "mode": 0, "digital IO": [0, 1],
        "firmware version": 1281, "device": "bitalino_rev", "position": 0,
        "sampling rate": FS, "label": ["A2"], "resolution": [4, 1, 10], "special": [{}],
    }  # fmt: skip
    head = ["# OpenSignals Text File Format", "# " + json.dumps({"00:07:80:0F:30:2D": device})]
    lines = [f"{i % 16}\t0\t{int(512 + 400 * v)}" for i, v in enumerate(ECG)]
    path = folder / "opensignals.txt"
    path.write_text("\n".join([*head, "# EndOfHeader", *lines]) + "\n", encoding="utf-8")
    return path


def _polar_ppi(folder: Path) -> Path:
    """The columns of a Polar Sensor Logger PPI export (header as the app writes it)."""
    head = "Phone timestamp;PP-interval [ms];error estimate [ms];blocker;contact;contact;hr [bpm]"
    lines = [f"2024-01-02T10:00:{i:02d}.000;{800 + i % 5 * 10};10;0;1;1;75" for i in range(50)]
    path = folder / "Polar_PPI.txt"
    path.write_text("\n".join([head, *lines]) + "\n", encoding="utf-8")
    return path


def _ishne(folder: Path) -> Path:
    """A two-lead ISHNE Holter file laid out as the standard gives it (no variable block)."""
    import struct

    from peerlens.hrv._ishne import MAGIC

    fixed = bytearray(512)
    units = np.round(ECG * 1e6 / 2500).astype("<i2")  # 2,500 nV per unit
    struct.pack_into("<4i", fixed, 0, 0, len(units), 522, 522)
    struct.pack_into("<3h3h", fixed, 128, 2, 1, 2024, 10, 0, 0)
    struct.pack_into("<h", fixed, 146, 2)
    struct.pack_into("<12h", fixed, 148, 6, 15, *[0] * 10)
    struct.pack_into("<12h", fixed, 196, 2500, 2500, *[0] * 10)
    struct.pack_into("<h", fixed, 262, FS)
    data = np.column_stack([units, units]).tobytes()
    path = folder / "holter.ecg"
    path.write_bytes(MAGIC + bytes(2) + bytes(fixed) + data)
    _seal_ishne(path)
    return path


def _seal_ishne(path: Path) -> None:
    """Write the header checksum a recorder would write for the (mutated) header, so that the
    mutations reach the fields behind it."""
    import struct

    from peerlens.hrv._ishne import _crc_ccitt

    raw = bytearray(path.read_bytes())
    if len(raw) < 522:
        return
    end = struct.unpack_from("<i", raw, 10 + 12)[0]
    if 522 <= end <= len(raw):
        struct.pack_into("<H", raw, 8, _crc_ccitt(bytes(raw[10:end])))
        path.write_bytes(bytes(raw))


FORMATS: dict[str, tuple[Callable[[Path], Path], Callable[[Path], object]]] = {
    "csv": (_csv, read_ecg),
    "rr": (_rr, read_rr),
    "edf": (_edf, read_ecg),
    "wfdb-header": (_wfdb, read_ecg),
    "wfdb-signal": (_wfdb, read_ecg),
    "opensignals": (_opensignals, read_ecg),
    "polar-ppi": (_polar_ppi, read_ecg),
    "ishne": (_ishne, read_ecg),
}

EDITS = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.integers(0, 10**7),
        st.one_of(
            st.binary(min_size=1, max_size=8),
            st.sampled_from([b",", b"\t", b"\n", b"\r", b"-", b".", b"nan", b"#", b"\0", b"9e9"]),
        ),
    ),
    min_size=1,
    max_size=4,
)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_unmutated_files_read(name: str, tmp_path: Path) -> None:
    make, read = FORMATS[name]
    read(make(tmp_path))


@pytest.mark.parametrize("name", sorted(FORMATS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=EDITS)
def test_mutated_files_are_read_or_refused_clearly(
    name: str, edits: list[tuple[int, int, bytes]]
) -> None:
    make, read = FORMATS[name]
    with tempfile.TemporaryDirectory() as tmp:
        path = make(Path(tmp))
        target = path.with_suffix(".dat") if name == "wfdb-signal" else path
        raw = target.read_bytes()
        if name == "ishne":  # the header is where the reader has to decide: mutate it
            target.write_bytes(mutate(raw[:522], edits) + raw[522:])
            _seal_ishne(target)
        else:
            target.write_bytes(mutate(raw, edits))
        try:
            read(path)
        except PeerlensError as exc:
            assert str(exc).strip()

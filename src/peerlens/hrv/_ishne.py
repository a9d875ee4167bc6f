"""ISHNE Holter files (``.ecg``): the exchange format that Holter recorders and their analysis
software write (Badilini F, for the ISHNE Standard Output Format Task Force. The ISHNE Holter
standard output file format. Ann Noninvasive Electrocardiol 1998;3(3):263-266).

Layout: the 8-byte magic ``ISHNE1.0``; a CRC-16 (CCITT, initial value 0xFFFF) of everything from
the fixed header to the start of the ECG block; a 512-byte fixed header (little-endian): sizes
and offsets, patient and recording fields, the number of leads, each lead's specification code,
quality and amplitude resolution (nV per unit), the recorder type and the sampling rate (Hz); an
optional variable-length block; then the ECG as 16-bit signed samples, the leads interleaved.

This module reads the header, checks it (magic, checksum, lead count, rate, resolution, that the
file holds every sample the header declares) and returns one lead in mV; every refusal names the
file and the field.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from peerlens.hrv._errors import EmptyRecordingError, UnreadableRecordingError

MAGIC = b"ISHNE1.0"
_PREAMBLE = len(MAGIC) + 2  # magic, then the CRC
_FIXED = 512
#: Lead specification codes of the standard (table 2); codes not listed keep their number.
_LEADS = {
    0: "unknown",
    1: "bipolar",
    2: "X",
    3: "Y",
    4: "Z",
    5: "I",
    6: "II",
    7: "III",
    8: "aVR",
    9: "aVL",
    10: "aVF",
    11: "V1",
    12: "V2",
    13: "V3",
    14: "V4",
    15: "V5",
    16: "V6",
}


@dataclass(frozen=True)
class IshneHeader:
    """What the fixed header says about the recording."""

    n_samples: int
    ecg_offset: int
    leads: list[str]
    resolution_nv: list[int]
    fs: float
    recorder: str
    start: datetime | None


def is_ishne(path: Path) -> bool:
    """True when the file starts with the ISHNE magic."""
    try:
        with path.open("rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def _crc_ccitt(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _lead_names(codes: list[int]) -> list[str]:
    names = [_LEADS.get(c, f"lead code {c}") for c in codes]
    return [f"{n} {i + 1}" if names.count(n) > 1 else n for i, n in enumerate(names)]


def _start(date: tuple[int, ...], time: tuple[int, ...]) -> datetime | None:
    day, month, year = date
    hour, minute, second = time
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError:  # unset fields are -9 in the standard
        return None


def read_header(path: Path) -> IshneHeader:
    """The checked fixed header of an ISHNE file.

    Raises
    ------
    UnreadableRecordingError
        Not an ISHNE file, a checksum that does not match, or a field out of range (named).
    """
    where = path.name
    try:
        with path.open("rb") as f:
            head = f.read(_PREAMBLE + _FIXED)
            size = path.stat().st_size
    except OSError as exc:
        raise UnreadableRecordingError(f"{where}: cannot open ({exc.strerror})") from exc
    if head[: len(MAGIC)] != MAGIC:
        raise UnreadableRecordingError(f"{where}: not an ISHNE Holter file (no ISHNE1.0 magic)")
    if len(head) < _PREAMBLE + _FIXED:
        raise UnreadableRecordingError(
            f"{where}: ISHNE header truncated ({len(head)} of {_PREAMBLE + _FIXED} bytes)"
        )
    h = head[_PREAMBLE:]
    n_samples = struct.unpack_from("<i", h, 4)[0]
    ecg_offset = struct.unpack_from("<i", h, 12)[0]
    if not _PREAMBLE + _FIXED <= ecg_offset <= size:
        raise UnreadableRecordingError(
            f"{where}: ISHNE header field 'ECG block offset' is {ecg_offset}, outside the file "
            f"({size} bytes)"
        )
    with path.open("rb") as f:
        f.seek(_PREAMBLE)
        checked = f.read(ecg_offset - _PREAMBLE)
    stored = struct.unpack_from("<H", head, len(MAGIC))[0]
    if _crc_ccitt(checked) != stored:
        raise UnreadableRecordingError(
            f"{where}: ISHNE header checksum does not match (stored {stored:#06x}, computed "
            f"{_crc_ccitt(checked):#06x}): the header is damaged"
        )
    date = struct.unpack_from("<3h", h, 128)
    time = struct.unpack_from("<3h", h, 140)
    n_leads = struct.unpack_from("<h", h, 146)[0]
    if not 1 <= n_leads <= 12:
        raise UnreadableRecordingError(
            f"{where}: ISHNE header field 'number of leads' is {n_leads} (1 to 12 allowed)"
        )
    codes = list(struct.unpack_from("<12h", h, 148))[:n_leads]
    resolution = list(struct.unpack_from("<12h", h, 196))[:n_leads]
    recorder = h[222:262].split(b"\x00")[0].decode("latin-1").strip()
    fs = struct.unpack_from("<h", h, 262)[0]
    if fs <= 0:
        raise UnreadableRecordingError(
            f"{where}: ISHNE header field 'sampling rate' is {fs} Hz (must be positive)"
        )
    bad = [i for i, r in enumerate(resolution) if r <= 0]
    if bad:
        raise UnreadableRecordingError(
            f"{where}: ISHNE header field 'amplitude resolution' of lead {bad[0] + 1} is "
            f"{resolution[bad[0]]} nV (must be positive)"
        )
    if n_samples <= 0:
        raise EmptyRecordingError(f"{where}: the ISHNE header declares {n_samples} samples")
    held = (size - ecg_offset) // (2 * n_leads)
    if held < n_samples:
        raise UnreadableRecordingError(
            f"{where}: the ISHNE header declares {n_samples} samples per lead but the file "
            f"holds {held} (truncated)"
        )
    return IshneHeader(
        n_samples=n_samples,
        ecg_offset=ecg_offset,
        leads=_lead_names(codes),
        resolution_nv=resolution,
        fs=float(fs),
        recorder=recorder,
        start=_start(date, time),
    )


def read_lead(path: Path, header: IshneHeader, index: int) -> NDArray[np.float64]:
    """One lead's samples in mV (the raw units times the lead's resolution in nV)."""
    n_leads = len(header.leads)
    raw = np.fromfile(
        path, dtype="<i2", count=header.n_samples * n_leads, offset=header.ecg_offset
    ).reshape(header.n_samples, n_leads)[:, index]
    return raw.astype(np.float64) * (header.resolution_nv[index] * 1e-6)

"""EDF+D and BDF+D (discontinuous) files, which pyedflib refuses to open.

pyedflib wraps EDFlib, which opens only continuous files ("The file is discontinuous and cannot
be read"; pyedflib issue #19: no plan to support EDF+D). A discontinuous file is an EDF+ / BDF+
file whose data records need not follow each other in time: the first 'EDF Annotations' signal
of every data record starts with a time-keeping annotation, ``+<onset>`` followed by two 0x14
bytes, giving the record's start in seconds after the header's start time (EDF+ specification,
sections 2.1.3 and 2.2.4, https://www.edfplus.info/specs/edfplus.html). This module reads only
what that needs and pyedflib cannot give: the header fields, one channel's samples (16-bit
little-endian in EDF, 24-bit in BDF, scaled from the digital to the physical range as the header
says), and each record's onset. Each record's samples are placed at ``round(onset * fs)`` on
the recording's time line and the time between records is left missing (NaN), a gap that the
analysis never bridges.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from peerlens.hrv._errors import UnreadableRecordingError

_ANNOTATIONS = "EDF Annotations"
_BDF_ANNOTATIONS = "BDF Annotations"
#: Per-signal header fields and their widths (EDF specification, in this order).
_FIELDS = (
    ("label", 16),
    ("transducer", 80),
    ("dimension", 8),
    ("pmin", 8),
    ("pmax", 8),
    ("dmin", 8),
    ("dmax", 8),
    ("prefilter", 80),
    ("samples", 8),
    ("reserved", 32),
)


def is_discontinuous(path: Path) -> bool:
    """True when the header's reserved field starts with ``EDF+D`` or ``BDF+D``."""
    try:
        with path.open("rb") as f:
            head = f.read(256)
    except OSError:
        return False
    return len(head) == 256 and head[192:197] in (b"EDF+D", b"BDF+D")


def _text(raw: bytes) -> str:
    return raw.decode("latin-1").strip()


def _header(path: Path) -> dict[str, object]:
    where = path.name
    try:
        with path.open("rb") as f:
            head = f.read(256)
            ns = int(_text(head[252:256]))
            raw = f.read(256 * ns)
    except (OSError, ValueError) as exc:
        raise UnreadableRecordingError(
            f"{where}: not a readable EDF+D/BDF+D header ({exc})"
        ) from None
    if len(raw) < 256 * ns or ns < 1:
        raise UnreadableRecordingError(f"{where}: the EDF+D header is truncated")
    sig: dict[str, list[str]] = {}
    pos = 0
    for name, width in _FIELDS:
        sig[name] = [_text(raw[pos + i * width : pos + (i + 1) * width]) for i in range(ns)]
        pos += width * ns
    try:
        duration = float(_text(head[244:252]))
        n_records = int(_text(head[236:244]))
        spr = [int(v) for v in sig["samples"]]
        numbers = {k: [float(v) for v in sig[k]] for k in ("pmin", "pmax", "dmin", "dmax")}
    except ValueError as exc:
        raise UnreadableRecordingError(f"{where}: a header field is not a number ({exc})") from None
    return {
        "bdf": head[:1] == b"\xff",
        "start": _text(head[168:176]) + " " + _text(head[176:184]),
        "header_bytes": 256 * (ns + 1),
        "n_records": n_records,
        "duration": duration,
        "labels": sig["label"],
        "spr": spr,
        **numbers,
    }


def _is_annotation(label: str) -> bool:
    return label in (_ANNOTATIONS, _BDF_ANNOTATIONS)


def channels(path: Path) -> tuple[list[str], dict[str, float]]:
    """Names of the ordinary signals and each one's sampling rate in Hz."""
    h = _header(path)
    labels, spr, duration = h["labels"], h["spr"], h["duration"]
    assert isinstance(labels, list) and isinstance(spr, list) and isinstance(duration, float)
    if duration <= 0:
        raise UnreadableRecordingError(f"{path.name}: data record duration {duration:g} s")
    names = [lab for lab in labels if not _is_annotation(lab)]
    rates = {
        lab: n / duration for lab, n in zip(labels, spr, strict=True) if not _is_annotation(lab)
    }
    return names, rates


def _start(text: str) -> datetime | None:
    try:
        date, time = text.split(" ")
        d, m, y = (int(v) for v in date.split("."))
        hh, mm, ss = (int(v) for v in time.split("."))
        return datetime(1900 + y if y >= 85 else 2000 + y, m, d, hh, mm, ss)  # EDF: yy 85-99
    except ValueError:
        return None


def read_channel(
    path: Path, index: int, max_samples: int
) -> tuple[NDArray[np.float64], list[tuple[int, int, str, str]], datetime | None]:
    """Ordinary signal ``index`` on the time line, the gaps between records, the start time.

    Returns the samples (NaN between records), the gaps as (first sample, end sample,
    ``"discontinuity"``, detail), and the start of the first record. A time line longer than
    ``max_samples`` is refused.
    """
    where = path.name
    h = _header(path)
    labels, spr = h["labels"], h["spr"]
    assert isinstance(labels, list) and isinstance(spr, list)
    duration, bdf = float(h["duration"]), bool(h["bdf"])  # type: ignore[arg-type]
    width = 3 if bdf else 2
    ordinary = [i for i, lab in enumerate(labels) if not _is_annotation(lab)]
    ann = [i for i, lab in enumerate(labels) if _is_annotation(lab)]
    if not ann:
        raise UnreadableRecordingError(
            f"{where}: an EDF+D file without an 'EDF Annotations' signal: the record onsets "
            "(discontinuity) cannot be known"
        )
    sig = ordinary[index]
    offsets = np.concatenate(([0], np.cumsum(spr))) * width
    rec_bytes = int(offsets[-1])
    start_byte = int(h["header_bytes"])  # type: ignore[call-overload]
    size = path.stat().st_size - start_byte
    n_rec = size // rec_bytes if rec_bytes else 0
    declared = int(h["n_records"])  # type: ignore[call-overload]
    if declared >= 0:
        n_rec = min(n_rec, declared)
    if n_rec <= 0:
        raise UnreadableRecordingError(f"{where}: no complete data record")
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=start_byte, shape=(n_rec, rec_bytes))
    block = np.asarray(data[:, offsets[sig] : offsets[sig + 1]])
    if bdf:
        b3 = block.reshape(n_rec, -1, 3).astype(np.int32)
        digital = b3[..., 0] | (b3[..., 1] << 8) | (b3[..., 2] << 16)
        digital = np.where(digital >= 1 << 23, digital - (1 << 24), digital)
    else:
        digital = block.copy().view("<i2").astype(np.int32)
    pmin, pmax = h["pmin"][sig], h["pmax"][sig]  # type: ignore[index]
    dmin, dmax = h["dmin"][sig], h["dmax"][sig]  # type: ignore[index]
    if dmax == dmin:
        raise UnreadableRecordingError(f"{where}: signal {labels[sig]}: digital range is empty")
    values = pmin + (digital.astype(np.float64) - dmin) * ((pmax - pmin) / (dmax - dmin))
    tal = np.asarray(data[:, offsets[ann[0]] : offsets[ann[0] + 1]])
    onsets = np.empty(n_rec)
    for k in range(n_rec):
        text = bytes(tal[k]).split(b"\x14", 1)[0].decode("latin-1")
        try:
            onsets[k] = float(text)
        except ValueError:
            raise UnreadableRecordingError(
                f"{where}: data record {k + 1} has no time-keeping annotation (its onset is "
                f"{text[:20]!r}), so the discontinuity cannot be placed"
            ) from None
    if np.any(np.diff(onsets) < duration - 1e-9):
        k = int(np.flatnonzero(np.diff(onsets) < duration - 1e-9)[0])
        raise UnreadableRecordingError(
            f"{where}: data record {k + 2} starts at {onsets[k + 1]:g} s, before record {k + 1} "
            f"ends ({onsets[k] + duration:g} s): records overlap or are out of order"
        )
    n = spr[sig]
    fs = n / duration
    span = (onsets[-1] - onsets[0]) * fs + n
    if not span <= max_samples:
        raise UnreadableRecordingError(
            f"{where}: signal {labels[sig]}: its data records span {onsets[-1] - onsets[0]:.0f} s "
            f"({span:.0f} samples at {fs:g} Hz, gaps included), more than the {max_samples} "
            "samples one recording may hold; split the file at its longest gap"
        )
    pos = np.round((onsets - onsets[0]) * fs).astype(np.int64)
    signal = np.full(int(pos[-1]) + n, np.nan)
    for k in range(n_rec):
        signal[pos[k] : pos[k] + n] = values[k]
    gaps: list[tuple[int, int, str, str]] = []
    for k in np.flatnonzero(pos[1:] > pos[:-1] + n).tolist():
        gaps.append(
            (
                int(pos[k] + n),
                int(pos[k + 1]),
                "discontinuity",
                f"no data between records {k + 1} and {k + 2} "
                f"({onsets[k] + duration:g}-{onsets[k + 1]:g} s after the header start)",
            )
        )
    start = _start(str(h["start"]))
    if start is not None:
        start += timedelta(seconds=float(onsets[0]))
    return signal, gaps, start

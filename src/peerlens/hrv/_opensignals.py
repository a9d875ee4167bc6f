"""OpenSignals text files: what PLUX's OpenSignals software writes for BITalino and biosignalsplux
recordings (``.txt``).

Layout (OpenSignals "Text File Format"): a first line ``# OpenSignals Text File Format``; a
second line ``# `` followed by a JSON object with one entry per device (keyed by its MAC
address), each giving ``sampling rate``, ``column`` (the names of its data columns, e.g.
``nSeq``, digital ``I1``/``O1``..., analog ``A1``...), ``label`` and ``sensor`` (the analog
channels recorded and what sensor each is, e.g. ``ECG``), ``resolution`` (bits per column),
``position`` (the device's place in the data columns), ``date`` and ``time``; a line
``# EndOfHeader``; then one tab-separated line per sample with every device's columns side by
side. Samples are the sensor's raw ADC values, kept as they are.

``nSeq`` is the device's sample counter, modulo ``2 ** resolution`` (4 bits on BITalino): a step
other than one means samples were lost in transmission, and the file is refused naming the line,
since how many were lost is ambiguous by multiples of the modulus.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from peerlens.hrv._errors import (
    ChannelNotFoundError,
    EmptyRecordingError,
    UnreadableRecordingError,
)

MAGIC = "# OpenSignals Text File Format"
_END = "# EndOfHeader"


@dataclass(frozen=True)
class OpenSignalsChannel:
    """One analog channel read from an OpenSignals file."""

    label: str
    sensor: str
    signal: NDArray[np.float64]
    fs: float
    start: datetime | None
    channel_fs: dict[str, float]


def is_opensignals(text: str) -> bool:
    """True when the text starts with the OpenSignals magic line."""
    return text.lstrip("\ufeff").startswith(MAGIC)


def _start(device: dict[str, Any]) -> datetime | None:
    try:
        return datetime.strptime(f"{device['date']} {device['time']}", "%Y-%m-%d %H:%M:%S.%f")
    except (KeyError, TypeError, ValueError):
        return None


def _devices(lines: list[str], where: str) -> tuple[list[dict[str, Any]], int]:
    """The header's devices in data-column order, and the index of the first data line."""
    try:
        end = next(i for i, ln in enumerate(lines) if ln.strip() == _END)
    except StopIteration:
        raise UnreadableRecordingError(
            f"{where}: OpenSignals header without '{_END}' line"
        ) from None
    if end < 2:
        raise UnreadableRecordingError(f"{where}: OpenSignals header without its JSON line 2")
    try:
        meta = json.loads(lines[1].lstrip("#").strip())
    except json.JSONDecodeError as exc:
        raise UnreadableRecordingError(
            f"{where}: line 2: OpenSignals header is not valid JSON ({exc.msg})"
        ) from None
    if not isinstance(meta, dict) or not meta:
        raise UnreadableRecordingError(f"{where}: line 2: OpenSignals header lists no device")
    devices = []
    for mac, dev in meta.items():
        if not isinstance(dev, dict):
            raise UnreadableRecordingError(f"{where}: line 2: device {mac}: not a JSON object")
        for key in ("sampling rate", "column", "label", "sensor"):
            if key not in dev:
                raise UnreadableRecordingError(
                    f"{where}: line 2: device {mac}: header field {key!r} missing"
                )
        devices.append({"mac": mac, **dev})
    devices.sort(key=lambda d: int(d.get("position", 0)))
    return devices, end + 1


def read_channel(text: str, where: str, channel: str | int | None) -> OpenSignalsChannel:
    """One analog channel: by label (``A2``), by sensor (``ECG``), by 0-based index among the
    analog channels, or by default the first channel whose sensor is an ECG.

    Raises
    ------
    UnreadableRecordingError, EmptyRecordingError, ChannelNotFoundError
        Naming the file, and the line, column or header field.
    """
    lines = text.lstrip("\ufeff").splitlines()
    devices, first = _devices(lines, where)
    analog: list[tuple[dict[str, Any], int, str, str]] = []  # device, data column, label, sensor
    offset = 0
    for dev in devices:
        columns = [str(c) for c in dev["column"]]
        for label, sensor in zip(dev["label"], dev["sensor"], strict=False):
            if str(label) not in columns:
                raise UnreadableRecordingError(
                    f"{where}: line 2: device {dev['mac']}: label {label!r} is not one of its "
                    f"columns ({', '.join(columns)})"
                )
            analog.append((dev, offset + columns.index(str(label)), str(label), str(sensor)))
        offset += len(columns)
    if not analog:
        raise EmptyRecordingError(f"{where}: the OpenSignals header lists no analog channel")
    shown = ", ".join(f"{label} ({sensor})" for _, _, label, sensor in analog)
    if channel is None:
        ecg = [i for i, a in enumerate(analog) if a[3].upper().startswith("ECG")]
        if not ecg:
            raise ChannelNotFoundError(
                f"{where}: no ECG sensor among the channels ({shown}); name one with channel= "
                "(CLI: --channel)"
            )
        pick = ecg[0]
    elif isinstance(channel, int) or str(channel).strip().isdigit():
        pick = int(channel)
        if not 0 <= pick < len(analog):
            raise ChannelNotFoundError(
                f"{where}: channel index {pick} out of range (channels: {shown})"
            )
    else:
        key = str(channel).strip().lower()
        hits = [i for i, a in enumerate(analog) if key in (a[2].lower(), a[3].lower())]
        if not hits:
            raise ChannelNotFoundError(f"{where}: no channel named {channel!r} ({shown})")
        pick = hits[0]
    dev, col, label, sensor = analog[pick]
    fs = float(dev["sampling rate"])
    if not np.isfinite(fs) or fs <= 0:
        raise UnreadableRecordingError(
            f"{where}: line 2: device {dev['mac']}: sampling rate {dev['sampling rate']!r}"
        )
    body = "\n".join(lines[first:])
    if not body.strip():
        raise EmptyRecordingError(f"{where}: an OpenSignals header but no samples")
    data = _table(body, where, first, offset)
    _check_sequence(data, dev, devices, where, first)
    return OpenSignalsChannel(
        label=label,
        sensor=sensor,
        signal=np.ascontiguousarray(data[:, col]),
        fs=fs,
        start=_start(dev),
        channel_fs={a[2]: float(a[0]["sampling rate"]) for a in analog},
    )


def _table(body: str, where: str, first: int, width: int) -> NDArray[np.float64]:
    try:
        frame = pd.read_csv(
            io.StringIO(body), sep="\t", header=None, dtype=str, keep_default_na=False
        )
    except pd.errors.EmptyDataError as exc:
        raise EmptyRecordingError(f"{where}: no sample lines after the header") from exc
    except pd.errors.ParserError as exc:
        # pandas counts lines from the first sample line; the file's numbering is given here.
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if found is None:
            raise UnreadableRecordingError(f"{where}: sample lines unreadable ({exc})") from exc
        want, line, saw = (int(g) for g in found.groups())
        raise UnreadableRecordingError(
            f"{where}: line {first + line}: {saw} columns where the lines before have {want}"
        ) from exc
    if frame.shape[1] > width and (frame.iloc[:, width:] == "").all().all():
        frame = frame.iloc[:, :width]  # the trailing tab OpenSignals writes on each line
    if frame.shape[1] != width:
        raise UnreadableRecordingError(
            f"{where}: the header declares {width} data columns but lines have {frame.shape[1]}"
        )
    values = frame.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(values)
    if bad.any():
        row, col = (int(v[0]) for v in np.nonzero(bad))
        raise UnreadableRecordingError(
            f"{where}: line {first + row + 1}, column {col + 1}: {frame.iat[row, col]!r} is not "
            "a number"
        )
    return values


def _check_sequence(
    data: NDArray[np.float64],
    dev: dict[str, Any],
    devices: list[dict[str, Any]],
    where: str,
    first: int,
) -> None:
    columns = [str(c) for c in dev["column"]]
    if "nSeq" not in columns:
        return
    offset = 0
    for d in devices:
        if d is dev:
            break
        offset += len(d["column"])
    j = columns.index("nSeq")
    bits = int((dev.get("resolution") or [0] * len(columns))[j] or 0)
    seq = data[:, offset + j].astype(np.int64)
    step = np.diff(seq)
    if bits:
        step %= 2**bits
    lost = np.flatnonzero(step != 1)
    if lost.size:
        i = int(lost[0])
        raise UnreadableRecordingError(
            f"{where}: line {first + i + 2}: the sample counter nSeq goes from {seq[i]} to "
            f"{seq[i + 1]}: samples were lost in transmission ({lost.size} breaks); the gap's "
            "length cannot be known from the counter"
        )

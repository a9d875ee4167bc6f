"""Readers for portable-ECG recordings and RR-interval files.

Every reader returns a :class:`Recording` holding either an ECG channel (``signal`` and ``fs``)
or an RR series (``rr_ms``), plus where it came from. Bad files raise a subclass of
:class:`peerlens.hrv.HrvInputError` naming the file and the problem.

Supported inputs
----------------
- WFDB records (``.hea`` + signal files), read with ``wfdb``: single- and multi-segment
  records (fixed and variable layout, null segments), each channel at its own rate (samples per
  frame times the frame rate, never averaged down to the frame rate), headers with or without
  signal names.
- EDF, EDF+ and BDF, read with ``pyedflib`` (or ``wfdb``'s EDF reader when ``pyedflib``
  refuses a header); EDF+D / BDF+D (discontinuous), which ``pyedflib`` refuses, placed on the
  time line by the onsets of their data records (:mod:`peerlens.hrv._edfplus_d`).
- ISHNE Holter files (``.ecg``, the Holter exchange format), each lead at the header's rate in
  mV (:mod:`peerlens.hrv._ishne`).
- OpenSignals text files (BITalino, biosignalsplux): the channel's rate from the header, raw
  ADC values, lost samples refused (:mod:`peerlens.hrv._opensignals`).
- CSV/TSV ECG with a time column (seconds, or milliseconds / nanoseconds when the header says
  so) or a sampling rate given by the caller.
- Polar H10 exports (Polar Sensor Logger style): ECG at 130 Hz in microvolts
  (``...;ecg [uV]``) and RR files with an ``RR-interval [ms]`` column, or RR in 1/1024 s units
  (the Bluetooth Heart Rate Measurement unit) when the header names ``1/1024``.
- Polar PPI exports (Polar Sensor Logger, optical sensors such as Verity Sense and OH1):
  pulse-to-pulse intervals in ms, with the intervals the device flags invalid kept as gaps.
- Plain RR/NN files: one interval per line, in ms or s; the unit is detected from the median and
  reported in :attr:`Recording.rr_unit`.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from peerlens.hrv._beat_series import BeatSeries
from peerlens.hrv._errors import (
    ChannelNotFoundError,
    EmptyRecordingError,
    FlatSignalError,
    HrvInputError,
    RecordingTooShortError,
    UnreadableRecordingError,
)

__all__ = ["Recording", "read_ecg", "read_rr"]

#: Shortest ECG accepted by the readers, in seconds.
MIN_ECG_S = 4.0
#: Longest run of missing ECG samples bridged by linear interpolation, in seconds.
MAX_GAP_S = 0.05
#: Fewest RR intervals accepted by the readers.
MIN_RR = 3
#: Polar H10 ECG sampling rate (Polar H10 technical specification; Polar Sensor Logger exports).
POLAR_H10_ECG_HZ = 130.0
#: Lowest ECG sampling rate accepted (the R-peak detector needs 100 Hz).
MIN_ECG_FS = 100.0
#: Longest time line accepted, in samples (gaps included): 2**28, 2 GB as float64, e.g. 7 days
#: at 400 Hz. A record whose segments or data records spread further (a gap of months between
#: two sessions in one file) is refused naming the span rather than exhausting memory.
MAX_TIMELINE_SAMPLES = 2**28
#: Channel names that are certainly not an ECG: never chosen when no channel is requested.
_NOT_ECG = re.compile(
    r"^(pleth|ppg|n?abp|nbp|art|ap|cvp|pap|icp|resp|rr|hr|pulse|spo2|sao2|st|temp|co2|etco2|edr|"
    r"eeg|eog|emg)"
    r"(sys|dias|mean|[ _-]|\b)",
    re.IGNORECASE,
)
#: Gap kinds in :attr:`Recording.gaps`.
GAP_KINDS = ("segment", "discontinuity", "missing")
#: Names tried, in order, when no ECG channel is requested (case-insensitive).
_PREFERRED_CHANNELS = ("ecg", "mlii", "ii", "i", "v5", "v2", "v1", "v", "lead ii", "ecg1")

_TIME_NAMES = re.compile(r"^(time|t|timestamp|seconds|sec|time_s|t_s|elapsed)(\b|_|\s|\[|\(|$)")


@dataclass(frozen=True)
class Recording:
    """One recording: an ECG channel or an RR-interval series, with its origin.

    Attributes
    ----------
    source
        The file name it was read from (name only, so results carry no directory paths).
    format
        ``"wfdb"``, ``"edf"``, ``"bdf"``, ``"ishne"``, ``"opensignals"``, ``"csv"``,
        ``"polar-ecg"``, ``"polar-rr"``, ``"polar-ppi"``, ``"vu-ams"`` (VU-AMS R-peak export),
        ``"empatica-ibi"`` (Empatica E4 ``IBI.csv``), ``"rr"`` or ``"peaks"`` (R-peak sample
        indices, turned into RR intervals).
    fs
        ECG sampling rate in Hz, or ``None`` for RR-only recordings.
    signal
        The ECG channel (float64), or ``None`` for RR-only recordings.
    channel
        Name of the channel read (or ``"#<index>"`` when unnamed).
    rr_ms
        RR intervals in ms for RR-only recordings, else ``None``.
    rr_unit
        Unit the RR file was written in (``"ms"``, ``"s"``, ``"1/1024 s"``), detected or declared.
    start_time
        Recording start when the file states it, else ``None``.
    filled_samples
        Missing ECG samples bridged by linear interpolation (inner gaps up to 50 ms).
    missing_samples
        Missing ECG samples left as NaN (longer gaps, or gaps at an edge): lead-off, which
        :func:`peerlens.hrv.analyze` treats as unusable signal.
    gaps
        Each run of missing samples left as NaN, on the recording's time line: ``start_s``,
        ``end_s``, ``kind`` (``segment``: a null segment of a multi-segment record, or a segment
        without this channel; ``discontinuity``: time between the data records of an EDF+D /
        BDF+D file; ``missing``: missing samples in the data) and ``detail`` (which segment,
        which records). :func:`peerlens.hrv.analyze` never bridges them: the RR intervals across
        a gap are left out and each window reports the gaps it holds.
    channel_fs
        Every channel of the file with its own sampling rate in Hz (``"#<index>"`` when
        unnamed).
    rr_flagged
        For RR-only recordings, the intervals the device itself marks as invalid (Polar PPI:
        movement blocker set, or skin contact lost where the device reports it), and the
        stand-ins over stretches where a device that times its intervals wrote none (VU-AMS,
        Empatica E4; also listed in ``gaps``), else ``None``. They stay on the time line;
        :func:`peerlens.hrv.analyze` treats them as gaps.
    """

    source: str
    format: str
    fs: float | None = None
    signal: NDArray[np.float64] | None = field(default=None, repr=False)
    channel: str | None = None
    rr_ms: NDArray[np.float64] | None = field(default=None, repr=False)
    rr_unit: str | None = None
    start_time: datetime | None = None
    filled_samples: int = 0
    missing_samples: int = 0
    gaps: pd.DataFrame = field(default_factory=lambda: _gap_frame([]), repr=False)
    channel_fs: dict[str, float] = field(default_factory=dict)
    rr_flagged: NDArray[np.bool_] | None = field(default=None, repr=False)

    @property
    def is_rr(self) -> bool:
        """True when the recording holds RR intervals rather than an ECG."""
        return self.signal is None

    @property
    def duration_s(self) -> float:
        """Length of the recording in seconds."""
        if self.signal is not None and self.fs:
            return float(self.signal.size / self.fs)
        assert self.rr_ms is not None
        return float(np.sum(self.rr_ms) / 1000.0)


# --------------------------------------------------------------------------- helpers


def _pick_channel(names: list[str], channel: str | int | None, where: str) -> int:
    """Index of the requested channel (name, index, or a preferred ECG name)."""
    if channel is None:
        lowered = [n.strip().lower() for n in names]
        for pref in _PREFERRED_CHANNELS:
            if pref in lowered:
                return lowered.index(pref)
        for i, n in enumerate(lowered):
            if "ecg" in n or "ekg" in n:
                return i
        for i, n in enumerate(lowered):
            if not _NOT_ECG.match(n):
                return i
        raise ChannelNotFoundError(
            f"{where}: no ECG channel (channels: {', '.join(names)}); name one with channel= "
            "(CLI: --channel)"
        )
    if isinstance(channel, int) or (isinstance(channel, str) and channel.strip().isdigit()):
        i = int(channel)
        if not 0 <= i < len(names):
            raise ChannelNotFoundError(
                f"{where}: channel index {i} out of range (the file has {len(names)} channels: "
                f"{', '.join(names)})"
            )
        return i
    lowered = [n.strip().lower() for n in names]
    key = channel.strip().lower()
    if key not in lowered:
        raise ChannelNotFoundError(
            f"{where}: no channel named {channel!r} (channels: {', '.join(names)})"
        )
    return lowered.index(key)


def _fill_gaps(signal: NDArray[np.float64], fs: float) -> tuple[int, int]:
    """Linearly interpolate short inner runs of missing samples in place.

    Runs up to :data:`MAX_GAP_S` (shorter than a QRS complex, so no beat can hide in them) are
    bridged; longer runs, and runs at either end, stay missing (NaN): a lead-off that the
    analysis reports as unusable signal. Returns (samples filled, samples left missing).
    """
    bad = ~np.isfinite(signal)
    if not bad.any():
        return 0, 0
    signal[bad] = np.nan  # +/-inf are missing values too
    d = np.diff(bad.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    short = ((ends - starts) <= MAX_GAP_S * fs) & (starts > 0) & (ends < signal.size)
    fill = np.zeros(signal.size, dtype=bool)
    for a, b in zip(starts[short], ends[short], strict=True):
        fill[a:b] = True
    if fill.any():
        good = np.flatnonzero(~bad)
        signal[fill] = np.interp(np.flatnonzero(fill), good, signal[good])
    n_fill = int(fill.sum())
    return n_fill, int(bad.sum()) - n_fill


#: A span of the time line known to hold no data: (first sample, end sample, kind, detail).
_Known = tuple[int, int, str, str]


def _gap_frame(rows: list[tuple[float, float, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "start_s": pd.Series([r[0] for r in rows], dtype="float64"),
            "end_s": pd.Series([r[1] for r in rows], dtype="float64"),
            "kind": pd.Series([r[2] for r in rows], dtype="string"),
            "detail": pd.Series([r[3] for r in rows], dtype="string"),
        }
    )


def _gap_table(signal: NDArray[np.float64], fs: float, known: list[_Known]) -> pd.DataFrame:
    """Each run of NaN left in ``signal``, labelled by the container spans it overlaps."""
    bad = np.isnan(signal)
    if not bad.any():
        return _gap_frame([])
    d = np.diff(bad.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    rows = []
    for a, b in zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True):
        hits = [k for k in known if k[0] < b and k[1] > a]
        if hits:
            kind = hits[0][2]
            detail = "; ".join(dict.fromkeys(k[3] for k in hits))
        else:
            kind, detail = "missing", f"{b - a} missing samples"
        rows.append((a / fs, b / fs, kind, detail))
    return _gap_frame(rows)


def _check_ecg(
    signal: NDArray[np.float64], fs: float, where: str, known: list[_Known] | None = None
) -> tuple[int, int, pd.DataFrame]:
    """Validate an ECG channel (filling short gaps in place); return (filled, still missing,
    the gaps left as NaN)."""
    if not np.isfinite(fs) or fs <= 0:
        raise HrvInputError(f"{where}: sampling rate {fs!r} Hz is not a positive number")
    if fs < MIN_ECG_FS * (1 - 1e-6):  # a rate from time stamps may be off by rounding
        raise HrvInputError(
            f"{where}: sampled at {fs:g} Hz; R-peak detection needs an ECG of at least "
            f"{MIN_ECG_FS:g} Hz (is this an ECG channel?)"
        )
    if signal.size == 0:
        raise EmptyRecordingError(f"{where}: the ECG channel holds no samples")
    if not np.isfinite(signal).any():
        spans = "; ".join(dict.fromkeys(k[3] for k in known or []))
        raise EmptyRecordingError(
            f"{where}: every ECG sample is missing" + (f" ({spans})" if spans else "")
        )
    filled, missing = _fill_gaps(signal, fs)
    finite = signal[np.isfinite(signal)] if missing else signal
    if np.ptp(finite) == 0:
        raise FlatSignalError(f"{where}: the ECG channel is flat (all {signal.size} samples equal)")
    if signal.size < MIN_ECG_S * fs:
        raise RecordingTooShortError(
            f"{where}: the ECG is {signal.size / fs:.2f} s long; at least {MIN_ECG_S:g} s needed"
        )
    gaps = _gap_table(signal, fs, known or []) if missing else _gap_frame([])
    return filled, missing, gaps


def _check_rr(rr_ms: NDArray[np.float64], where: str) -> None:
    if rr_ms.size == 0:
        raise EmptyRecordingError(f"{where}: no RR intervals found")
    bad = ~np.isfinite(rr_ms) | (rr_ms <= 0)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise HrvInputError(
            f"{where}: RR interval {first + 1} is {float(rr_ms[first]):g}; "
            "intervals must be positive"
        )
    if rr_ms.size < MIN_RR:
        raise RecordingTooShortError(
            f"{where}: {rr_ms.size} RR intervals; at least {MIN_RR} needed"
        )
    if np.ptp(rr_ms) == 0 and rr_ms.size > 10:
        raise FlatSignalError(
            f"{where}: all {rr_ms.size} RR intervals are equal ({rr_ms[0]:g} ms): not a heart "
            "rhythm (a paced or synthetic series?)"
        )


def _rr_unit_from_values(values: NDArray[np.float64], where: str) -> tuple[str, float]:
    """Detect ms or s from the median interval (human RR spans 0.25-3 s)."""
    med = float(np.median(values))
    if 0.2 <= med <= 3.0:
        return "s", 1000.0
    if 200.0 <= med <= 3000.0:
        return "ms", 1.0
    raise HrvInputError(
        f"{where}: median interval {med:g} fits neither seconds (0.2-3) nor milliseconds "
        "(200-3000); is this an RR file?"
    )


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UnreadableRecordingError(f"{path.name}: cannot open ({exc.strerror})") from exc
    if b"\x00" in raw[:4096]:
        raise UnreadableRecordingError(f"{path.name}: binary content, not a text ECG/RR file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


# --------------------------------------------------------------------------- binary formats


def _wfdb_names(header: Any) -> list[str]:
    """Channel names of a single-segment header, ``#<index>`` for unnamed channels."""
    names = list(header.sig_name or [])
    n = int(header.n_sig or 0)
    names += [None] * (n - len(names))
    return [str(x) if x not in (None, "") else f"#{i}" for i, x in enumerate(names)]


def _wfdb_rates(header: Any, names: list[str]) -> dict[str, float]:
    spf = list(header.samps_per_frame or [])
    spf += [1] * (len(names) - len(spf))
    return {n: float(header.fs) * int(k or 1) for n, k in zip(names, spf, strict=False)}


def _wfdb_header(base: Path, where: str) -> Any:
    import wfdb

    try:
        return wfdb.rdheader(str(base))
    except Exception as exc:  # wfdb raises many types for a bad header
        raise UnreadableRecordingError(
            f"{where}: not a readable WFDB header ({type(exc).__name__}: {exc})"
        ) from None


def _data_file(folder: Path, name: str, where: str, what: str) -> None:
    if name and name != "~" and not (folder / name).is_file():
        raise UnreadableRecordingError(f"{where}: {what}: signal file {name} is missing")


def _read_wfdb(path: Path, channel: str | int | None) -> Recording:
    import wfdb

    base = path.with_suffix("") if path.suffix in {".hea", ".dat", ".atr"} else path
    where = base.name
    if not Path(str(base) + ".hea").exists():
        raise UnreadableRecordingError(f"{where}: WFDB header {base.name}.hea not found")
    header = _wfdb_header(base, where)
    if isinstance(header, wfdb.MultiRecord):
        return _read_wfdb_segments(base, header, channel)
    names = _wfdb_names(header)
    if not names:
        raise EmptyRecordingError(f"{where}: the WFDB header lists no signals")
    if not header.sig_len and all(f == "~" for f in header.file_name or []):
        raise EmptyRecordingError(
            f"{where}: a layout header of a multi-segment record (segment: no samples); "
            "read the record's master header"
        )
    idx = _pick_channel(names, channel, where)
    what = f"channel {names[idx]}"
    files = list(header.file_name or [])
    if idx >= len(files) or not files[idx]:
        raise UnreadableRecordingError(f"{where}: {what}: the header names no signal file")
    _data_file(base.parent, files[idx], where, what)
    try:
        rec = wfdb.rdrecord(str(base), channels=[idx], smooth_frames=False)
    except Exception as exc:
        raise UnreadableRecordingError(
            f"{where}: {what}: not a readable WFDB record ({type(exc).__name__}: {exc})"
        ) from None
    if rec.e_p_signal is None or not len(rec.e_p_signal) or not rec.sig_len:
        raise EmptyRecordingError(f"{where}: the WFDB record holds no samples")
    signal = np.ascontiguousarray(rec.e_p_signal[0], dtype=np.float64)
    rates = _wfdb_rates(header, names)
    fs = rates[names[idx]]  # the channel's own rate: frame rate x its samples per frame
    filled, missing, gaps = _check_ecg(signal, fs, f"{where} {what}")
    return Recording(
        filled_samples=filled,
        missing_samples=missing,
        source=where,
        format="wfdb",
        fs=fs,
        signal=signal,
        channel=names[idx],
        start_time=header.base_datetime,
        gaps=gaps,
        channel_fs=rates,
    )


def _read_wfdb_segments(base: Path, header: Any, channel: str | int | None) -> Recording:
    """A multi-segment record as one recording, assembled segment by segment on the time line
    the master header lays out (each segment's length in frames).

    Gaps (NaN, kind ``segment``) are null segments, segments without the channel (variable
    layout), and segments whose header or signal file is absent: the master header gives their
    length, so the samples around them keep their place, and each gap's detail names the
    segment and the missing file.
    """
    import wfdb

    where, folder = base.name, base.parent
    segments = list(zip(header.seg_name, (int(n) for n in header.seg_len), strict=True))
    seg_headers: dict[str, Any] = {}
    absent: dict[str, str] = {}
    for name, _length in segments:
        if name == "~" or name in seg_headers or name in absent:
            continue
        if (folder / f"{name}.hea").is_file():
            seg_headers[name] = _wfdb_header(folder / name, f"{where} segment {name}")
        else:
            absent[name] = f"header {name}.hea missing"
    if header.layout == "variable":
        first = segments[0][0]
        if first not in seg_headers:
            raise UnreadableRecordingError(
                f"{where}: layout segment {first}: header {first}.hea is missing (it names the "
                "record's signals)"
            )
        names = _wfdb_names(seg_headers[first])
    else:
        real = [h for h in seg_headers.values() if h.sig_len]
        if not real:
            what = "absent" if absent else "null"
            raise EmptyRecordingError(
                f"{where}: every segment is {what} (no signal recorded)"
                + (
                    f" ({'; '.join(f'segment {n}: {w}' for n, w in absent.items())})"
                    if absent
                    else ""
                )
            )
        names = _wfdb_names(real[0])
    if not names:
        raise EmptyRecordingError(f"{where}: the WFDB record lists no signals")
    idx = _pick_channel(names, channel, where)
    name = names[idx]
    known: list[_Known] = []
    reads: list[tuple[str, int, int, int]] = []  # segment, first frame, frames, channel index
    spf: set[int] = set()
    frame = 0
    for seg, length in segments:
        h = seg_headers.get(seg)
        if seg == "~":
            known.append((frame, frame + length, "segment", f"null segment of {length} frames"))
        elif seg in absent:
            known.append((frame, frame + length, "segment", f"segment {seg}: {absent[seg]}"))
        elif h is not None and length and h.sig_len:
            seg_names = _wfdb_names(h)
            if header.layout == "variable" and name not in seg_names:
                known.append((frame, frame + length, "segment", f"segment {seg} has no {name}"))
            else:
                j = seg_names.index(name) if name in seg_names else idx
                data = h.file_name[j]
                if data and data != "~" and not (folder / data).is_file():
                    detail = f"segment {seg}: signal file {data} missing"
                    known.append((frame, frame + length, "segment", detail))
                else:
                    reads.append((seg, frame, length, j))
                    spf.add(int((h.samps_per_frame or [1] * (j + 1))[j] or 1))
        frame += length
    if len(spf) > 1:
        raise UnreadableRecordingError(
            f"{where}: channel {name}: segments sample it at different rates "
            f"({', '.join(f'{float(header.fs) * k:g}' for k in sorted(spf))} Hz)"
        )
    k = spf.pop() if spf else 1
    fs = float(header.fs) * k
    if frame * k > MAX_TIMELINE_SAMPLES:
        raise UnreadableRecordingError(
            f"{where}: channel {name}: the segments span {frame / header.fs:.0f} s "
            f"({frame * k} samples at {fs:g} Hz), more than the "
            f"{MAX_TIMELINE_SAMPLES} samples one recording may hold; read the segments "
            "separately"
        )
    signal = np.full(frame * k, np.nan)
    for seg, first_frame, length, j in reads:
        try:
            rec = wfdb.rdrecord(str(folder / seg), channels=[j], smooth_frames=False)
        except Exception as exc:
            raise UnreadableRecordingError(
                f"{where}: segment {seg}, channel {name}: not a readable WFDB segment "
                f"({type(exc).__name__}: {exc})"
            ) from None
        x = np.asarray(rec.e_p_signal[0], dtype=np.float64) if rec.e_p_signal else np.zeros(0)
        if x.size != length * k:
            raise UnreadableRecordingError(
                f"{where}: segment {seg}: the master header gives it {length} frames, its own "
                f"signal holds {x.size / k:g}"
            )
        signal[first_frame * k : (first_frame + length) * k] = x
    known = [
        (a * k, b * k, kind, f"{detail} ({(b - a) / header.fs:g} s)")
        for a, b, kind, detail in known
    ]
    filled, missing, gaps = _check_ecg(signal, fs, f"{where} channel {name}", known)
    return Recording(
        filled_samples=filled,
        missing_samples=missing,
        source=where,
        format="wfdb",
        fs=fs,
        signal=signal,
        channel=name,
        start_time=header.base_datetime,
        gaps=gaps,
        channel_fs={n: fs if n == name else float(header.fs) for n in names},
    )


def _read_edf(path: Path, channel: str | int | None) -> Recording:
    import pyedflib

    from peerlens.hrv import _edfplus_d

    where = path.name
    if _edfplus_d.is_discontinuous(path):
        return _read_edf_d(path, channel)
    try:
        reader = pyedflib.EdfReader(str(path))
    except OSError as exc:
        return _read_edf_wfdb(path, channel, str(exc).replace(str(path), path.name))
    try:
        names = list(reader.getSignalLabels())
        if not names:
            raise EmptyRecordingError(f"{where}: the EDF file holds no signal (annotations only?)")
        idx = _pick_channel(names, channel, where)
        rates = {n: float(reader.getSampleFrequency(i)) for i, n in enumerate(names)}
        fs = rates[names[idx]]
        signal = np.asarray(reader.readSignal(idx), dtype=np.float64)
        start = reader.getStartdatetime()
    finally:
        reader.close()
    return _edf_recording(path, signal, fs, names[idx], start, rates)


def _edf_recording(
    path: Path,
    signal: NDArray[np.float64],
    fs: float,
    channel: str,
    start: Any,
    rates: dict[str, float],
    known: list[_Known] | None = None,
) -> Recording:
    """The :class:`Recording` of one EDF/BDF channel, its signal checked as an ECG."""
    where = path.name
    filled, missing, gaps = _check_ecg(signal, fs, f"{where} channel {channel}", known)
    return Recording(
        source=where,
        format="bdf" if path.suffix.lower() == ".bdf" else "edf",
        fs=fs,
        signal=signal,
        channel=channel,
        start_time=start,
        filled_samples=filled,
        missing_samples=missing,
        gaps=gaps,
        channel_fs=rates,
    )


def _read_edf_wfdb(path: Path, channel: str | int | None, why: str) -> Recording:
    """An EDF file that pyedflib refuses (e.g. a non-standard label or header field), read by
    wfdb's EDF reader, which accepts more; both refusals are named when it fails too."""
    import wfdb

    where = path.name
    try:
        rec = wfdb.rdrecord(str(path), smooth_frames=False)
    except Exception:  # the first refusal is the informative one
        raise UnreadableRecordingError(
            f"{where}: not a readable EDF/EDF+/BDF file ({why}; wfdb's EDF reader cannot read "
            "it either)"
        ) from None
    names = _wfdb_names(rec)
    keep = [i for i, n in enumerate(names) if n.strip().lower() != "edf annotations"]
    if not keep:
        raise EmptyRecordingError(f"{where}: the EDF file holds no signal (annotations only?)")
    shown = [names[i] for i in keep]
    idx = keep[_pick_channel(shown, channel, where)]
    rates = {names[i]: float(rec.fs) * int(rec.samps_per_frame[i]) for i in keep}
    fs = rates[names[idx]]
    signal = np.ascontiguousarray(rec.e_p_signal[idx], dtype=np.float64)
    return _edf_recording(path, signal, fs, names[idx], rec.base_datetime, rates)


def _read_edf_d(path: Path, channel: str | int | None) -> Recording:
    from peerlens.hrv import _edfplus_d

    where = path.name
    names, rates = _edfplus_d.channels(path)
    if not names:
        raise EmptyRecordingError(f"{where}: the EDF file holds no signal (annotations only?)")
    idx = _pick_channel(names, channel, where)
    fs = rates[names[idx]]
    signal, known, start = _edfplus_d.read_channel(path, idx, MAX_TIMELINE_SAMPLES)
    return _edf_recording(path, signal, fs, names[idx], start, rates, known)


def _read_ishne(path: Path, channel: str | int | None) -> Recording:
    from peerlens.hrv import _ishne

    where = path.name
    header = _ishne.read_header(path)
    idx = _pick_channel(header.leads, channel, where)
    signal = _ishne.read_lead(path, header, idx)
    name = header.leads[idx]
    filled, missing, gaps = _check_ecg(signal, header.fs, f"{where} lead {name}")
    return Recording(
        source=where,
        format="ishne",
        fs=header.fs,
        signal=signal,
        channel=name,
        start_time=header.start,
        filled_samples=filled,
        missing_samples=missing,
        gaps=gaps,
        channel_fs={n: header.fs for n in header.leads},
    )


# --------------------------------------------------------------------------- text formats


def _read_opensignals(text: str, where: str, channel: str | int | None) -> Recording:
    from peerlens.hrv import _opensignals

    found = _opensignals.read_channel(text, where, channel)
    name = f"{found.label} ({found.sensor})"
    filled, missing, gaps = _check_ecg(found.signal, found.fs, f"{where} channel {name}")
    return Recording(
        source=where,
        format="opensignals",
        fs=found.fs,
        signal=found.signal,
        channel=found.label,
        start_time=found.start,
        filled_samples=filled,
        missing_samples=missing,
        gaps=gaps,
        channel_fs=found.channel_fs,
    )


@dataclass
class _Table:
    header: list[str] | None
    columns: list[NDArray[np.float64]]


def _is_number(cell: str) -> bool:
    try:
        float(cell.strip())
    except ValueError:
        return False
    return True


def _parse_table(text: str, where: str) -> _Table:
    """Parse a delimited numeric table; text-only columns (e.g. phone timestamps) are dropped."""
    import pandas as pd

    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise EmptyRecordingError(f"{where}: the file is empty")
    sample = "\n".join(lines[:20])
    try:
        delim = csv.Sniffer().sniff(sample, delimiters=",;\t ").delimiter
    except csv.Error:
        delim = ","
    first = next(csv.reader([lines[0]], delimiter=delim, skipinitialspace=True))
    first = [c for c in first if c.strip()] if delim == " " else first
    has_header = not all(_is_number(c) for c in first)
    body = "\n".join(lines[1:] if has_header else lines)
    if not body.strip():
        raise EmptyRecordingError(f"{where}: a header but no data rows")
    try:
        frame = pd.read_csv(
            io.StringIO(body),
            sep=r"\s+" if delim == " " else delim,
            header=None,
            dtype=str,
            keep_default_na=False,
            engine="c" if delim != " " else "python",
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise UnreadableRecordingError(f"{where}: cannot parse as a table ({exc})") from exc
    header = [c.strip() for c in first] if has_header else None
    width = len(header) if header else frame.shape[1]
    if frame.shape[1] < width:
        raise UnreadableRecordingError(
            f"{where}: the header names {width} columns but rows have {frame.shape[1]}"
        )
    first_row = 2 if has_header else 1
    names: list[str] = []
    columns: list[NDArray[np.float64]] = []
    for j in range(width):
        raw = frame.iloc[:, j].astype(str).str.strip()
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(values) & (raw.to_numpy() != "")
        if bad.all():
            continue  # a text column (timestamps as dates, notes): not signal
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            col = header[j] if header else str(j)
            raise UnreadableRecordingError(
                f"{where}: row {i + first_row}, column {col!r}: {raw.iloc[i]!r} is not a number"
            )
        names.append(header[j] if header else f"#{j}")
        columns.append(values)
    if not columns:
        raise UnreadableRecordingError(f"{where}: no numeric column")
    return _Table(header=names if header else None, columns=columns)


def _time_scale(name: str) -> float | None:
    """Seconds per unit of a time column from its header, or None if it is not a time column."""
    low = name.strip().lower()
    if "[ns]" in low or "(ns)" in low or low.endswith("_ns"):
        return 1e-9
    if "[ms]" in low or "(ms)" in low or low.endswith("_ms"):
        return 1e-3
    if _TIME_NAMES.match(low):
        return 1.0
    return None


def _fs_from_time(t: NDArray[np.float64], where: str) -> float:
    dt = np.diff(t)
    if dt.size == 0 or not np.all(np.isfinite(dt)) or np.any(dt <= 0):
        raise UnreadableRecordingError(f"{where}: the time column is not strictly increasing")
    step = float(np.median(dt))
    if np.max(np.abs(dt - step)) > 0.5 * step and np.mean(np.abs(dt - step) > 0.1 * step) > 0.01:
        raise UnreadableRecordingError(
            f"{where}: the time column is irregular (median step {step:g} s); resample first or "
            "give --fs"
        )
    return 1.0 / step


def _read_polar_rr(table: _Table, where: str, col: int, unit: str) -> Recording:
    values = table.columns[col]
    values = values[np.isfinite(values)]
    scale = 1000.0 / 1024.0 if unit == "1/1024 s" else (1000.0 if unit == "s" else 1.0)
    rr = values * scale
    _check_rr(rr, where)
    return Recording(source=where, format="polar-rr", rr_ms=rr, rr_unit=unit)


def _flag_column(table: _Table, col: int, where: str) -> NDArray[np.bool_]:
    """A 0/1 flag column as booleans, refusing any other value by row and column."""
    values = table.columns[col]
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        name = table.header[col] if table.header else str(col)
        raise UnreadableRecordingError(
            f"{where}: row {i + 2}, column {name!r}: {values[i]:g} is not a 0/1 flag"
        )
    return values == 1.0


def _read_polar_ppi(table: _Table, where: str, col: int) -> Recording:
    """A Polar PPI export: ``PP-interval [ms]``, ``error estimate [ms]``, ``blocker``,
    ``contact`` (skin contact), ``contact`` (skin contact supported), ``hr [bpm]``.

    An interval is invalid when its blocker flag is set (movement during the measurement) or
    the device supports skin contact and reports none (Polar BLE SDK, documentation/PPIData.md:
    such a sample "should not be treated as valid").
    """
    assert table.header is not None
    low = [h.lower() for h in table.header]
    rr = table.columns[col]
    if not np.all(np.isfinite(rr)):
        i = int(np.flatnonzero(~np.isfinite(rr))[0])
        raise HrvInputError(f"{where}: row {i + 2}, column {table.header[col]!r} is empty")
    flagged = np.zeros(rr.size, dtype=bool)
    if "blocker" in low:
        flagged |= _flag_column(table, low.index("blocker"), where)
    contact = [i for i, h in enumerate(low) if h.startswith("contact")]
    if len(contact) == 2:
        status, supported = (_flag_column(table, i, where) for i in contact)
        flagged |= supported & ~status
    _check_rr(rr, where)
    return Recording(source=where, format="polar-ppi", rr_ms=rr, rr_unit="ms", rr_flagged=flagged)


def _interval_recording(
    series: BeatSeries, where: str, fmt: str, unit: str, start: datetime | None
) -> Recording:
    """An RR recording of intervals a device wrote with their own times: the stand-ins over
    the stretches without intervals are flagged (never used) and listed as ``missing`` gaps."""
    _check_rr(series.rr_ms[~series.flagged], where)
    return Recording(
        source=where,
        format=fmt,
        rr_ms=series.rr_ms,
        rr_unit=unit,
        start_time=start,
        rr_flagged=series.flagged,
        gaps=_gap_frame(series.gaps),
    )


def _peaks_to_rr(values: NDArray[np.float64], fs: float | None, where: str) -> Recording:
    """RR intervals from a file of R-peak sample indices (one per line, e.g. GUDB annotations)."""
    if fs is None:
        raise HrvInputError(f"{where}: R-peak sample indices need the sampling rate (fs / --fs)")
    if values.size and not np.all(np.isfinite(values)):
        first = int(np.flatnonzero(~np.isfinite(values))[0])
        raise HrvInputError(f"{where}: line {first + 1} is empty or not a number")
    steps = np.diff(values)
    if steps.size and np.any(steps <= 0):
        i = int(np.flatnonzero(steps <= 0)[0])
        raise HrvInputError(
            f"{where}: R-peak indices must increase; line {i + 2} ({values[i + 1]:g}) is not "
            f"after line {i + 1} ({values[i]:g})"
        )
    rr = steps * (1000.0 / fs)
    _check_rr(rr, where)
    return Recording(
        source=where, format="peaks", fs=None, rr_ms=rr, rr_unit=f"samples at {fs:g} Hz"
    )


_RR_HEADER = re.compile(r"(?<![a-z])(rr|nn)(?![a-z])|rr[-_ ]?interval")


def _read_text_file(
    path: Path,
    fs: float | None,
    channel: str | int | None,
    rr_unit: str | None,
    kind: str | None,
) -> Recording:
    from peerlens.hrv import _opensignals

    where = path.name
    text = _read_text(path)
    if _opensignals.is_opensignals(text):
        return _read_opensignals(text, where, channel)
    from peerlens.hrv import _empatica, _vuams

    if _vuams.is_vuams(text):
        return _interval_recording(_vuams.read_vuams(text, where), where, "vu-ams", "ms", None)
    if _empatica.is_empatica_ibi(text):
        series, start = _empatica.read_empatica_ibi(text, where)
        return _interval_recording(series, where, "empatica-ibi", "s", start)
    table = _parse_table(text, where)
    header = table.header
    if header is not None:
        low = [h.lower() for h in header]
        ppi_cols = [i for i, h in enumerate(low) if re.match(r"pp[-_ ]?interval", h)]
        if ppi_cols and kind != "ecg":
            return _read_polar_ppi(table, where, ppi_cols[0])
        if all(re.match(r"hr\b|heart ?rate", h) for h in low):
            raise HrvInputError(
                f"{where}: holds heart rate only ({', '.join(header)}), no RR intervals or ECG"
            )
        # "rr", "RR (ms)", "rr_ms", "RR-interval", "nn": rr/nn not inside a longer word.
        rr_cols = [i for i, h in enumerate(low) if _RR_HEADER.search(h)]
        if rr_cols and kind != "ecg":
            col = rr_cols[0]
            h = low[col]
            unit = rr_unit or (
                "1/1024 s"
                if "1024" in h
                else "ms"
                if "ms" in h
                else "s"
                if re.search(r"\[s\]|\(s\)|_s\b", h)
                else None
            )
            if unit is None:
                unit, _ = _rr_unit_from_values(
                    table.columns[col][np.isfinite(table.columns[col])], where
                )
            return _read_polar_rr(table, where, col, unit)
        time_cols = [i for i, h in enumerate(header) if _time_scale(h) is not None]
        polar = any("ecg" in h and ("uv" in h or "µv" in h) for h in low)
        signal_names = [h for i, h in enumerate(header) if i not in time_cols]
        signal_idx = [i for i in range(len(header)) if i not in time_cols]
        if not signal_idx:
            raise UnreadableRecordingError(f"{where}: only time columns, no ECG column")
        pick = signal_idx[_pick_channel(signal_names, channel, where)]
        signal = table.columns[pick]
        if fs is None:
            if polar:
                fs = POLAR_H10_ECG_HZ
            elif time_cols:
                tcol = time_cols[-1] if polar else time_cols[0]
                scale = _time_scale(header[tcol]) or 1.0
                fs = _fs_from_time(table.columns[tcol] * scale, where)
            else:
                raise HrvInputError(
                    f"{where}: no time column (time, timestamp, seconds...) and no sampling rate; "
                    "give fs (CLI: --fs HZ)"
                )
        signal = np.array(signal, dtype=np.float64)
        filled, missing, gaps = _check_ecg(signal, fs, f"{where} column {header[pick]!r}")
        return Recording(
            gaps=gaps,
            filled_samples=filled,
            missing_samples=missing,
            source=where,
            format="polar-ecg" if polar else "csv",
            fs=float(fs),
            signal=np.ascontiguousarray(signal),
            channel=header[pick],
        )
    # headerless
    cols = table.columns
    if kind == "peaks":
        return _peaks_to_rr(cols[0], fs, where)
    if len(cols) == 1 and (kind == "rr" or (kind is None and fs is None)):
        values = cols[0]
        if not np.all(np.isfinite(values)):
            first = int(np.flatnonzero(~np.isfinite(values))[0])
            raise HrvInputError(f"{where}: line {first + 1} is empty or not a number")
        if rr_unit is None:
            unit, scale = _rr_unit_from_values(values, where)
        else:
            unit = rr_unit
            scale = {"ms": 1.0, "s": 1000.0, "1/1024 s": 1000.0 / 1024.0}[rr_unit]
        rr = values * scale
        _check_rr(rr, where)
        return Recording(source=where, format="rr", rr_ms=rr, rr_unit=unit)
    if fs is None:
        raise HrvInputError(
            f"{where}: {len(cols)} unnamed columns and no sampling rate; give fs (CLI: --fs HZ) "
            "or add a header with a time column"
        )
    names = [f"#{i}" for i in range(len(cols))]
    pick = _pick_channel(names, channel, where)
    signal = cols[pick]
    signal = np.array(signal, dtype=np.float64)
    filled, missing, gaps = _check_ecg(signal, fs, f"{where} column {pick}")
    return Recording(
        gaps=gaps,
        filled_samples=filled,
        missing_samples=missing,
        source=where,
        format="csv",
        fs=float(fs),
        signal=np.ascontiguousarray(signal),
        channel=names[pick],
    )


# --------------------------------------------------------------------------- public API


def read_ecg(
    path: str | Path,
    *,
    fs: float | None = None,
    channel: str | int | None = None,
    rr_unit: str | None = None,
    kind: str | None = None,
) -> Recording:
    """Read an ECG recording or an RR-interval file.

    Parameters
    ----------
    path
        A WFDB record (``.hea`` or the record name without extension), an EDF/EDF+/BDF file, an
        ISHNE Holter file, a CSV/TSV/TXT ECG or RR file, or a Polar H10 export.
    fs
        Sampling rate in Hz for text ECG files without a time column (ignored for formats that
        store it).
    channel
        Channel name (case-insensitive) or 0-based index; by default the first channel named like
        an ECG lead (ECG, MLII, II, ...) or else the first.
    rr_unit
        Force the unit of an RR file: ``"ms"``, ``"s"`` or ``"1/1024 s"``; detected otherwise
        (1/1024 s units cannot be told from ms by magnitude and must be declared in the header or
        here).
    kind
        ``"ecg"`` or ``"rr"`` to override detection for text files, or ``"peaks"`` for a file
        of R-peak sample indices (one per line, e.g. reference annotations) read with ``fs``.

    Returns
    -------
    Recording

    Raises
    ------
    UnreadableRecordingError, EmptyRecordingError, FlatSignalError, RecordingTooShortError,
    ChannelNotFoundError, HrvInputError
        With the file name and the problem.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "rr.txt"
    >>> _ = path.write_text("0.812 0.790 0.805 0.798".replace(" ", chr(10)))  # one per line
    >>> rec = read_ecg(path)
    >>> rec.format, rec.rr_unit, rec.rr_ms.round(1).tolist()
    ('rr', 's', [812.0, 790.0, 805.0, 798.0])
    """
    p = Path(path)
    if rr_unit is not None and rr_unit not in {"ms", "s", "1/1024 s"}:
        raise HrvInputError(f"{p.name}: rr_unit must be 'ms', 's' or '1/1024 s', not {rr_unit!r}")
    if kind is not None and kind not in {"ecg", "rr", "peaks"}:
        raise HrvInputError(f"{p.name}: kind must be 'ecg', 'rr' or 'peaks', not {kind!r}")
    suffix = p.suffix.lower()
    if suffix in {".hea", ".dat", ".atr"} or (suffix == "" and Path(str(p) + ".hea").exists()):
        return _read_wfdb(p, channel)
    if not p.exists():
        raise UnreadableRecordingError(f"{p.name}: file not found")
    if p.is_dir():
        raise UnreadableRecordingError(f"{p.name}: is a directory, not a recording")
    if suffix in {".edf", ".bdf", ".rec"}:
        return _read_edf(p, channel)
    if p.stat().st_size == 0:
        raise EmptyRecordingError(f"{p.name}: the file is empty (0 bytes)")
    from peerlens.hrv import _ishne

    if _ishne.is_ishne(p):
        return _read_ishne(p, channel)
    return _read_text_file(p, fs, channel, rr_unit, kind)


def read_rr(path: str | Path, *, rr_unit: str | None = None) -> Recording:
    """Read an RR/NN interval file (plain one-per-line, or a Polar RR export).

    See :func:`read_ecg` for ``rr_unit``. The detected unit is in :attr:`Recording.rr_unit`.
    """
    rec = read_ecg(path, rr_unit=rr_unit, kind="rr")
    if not rec.is_rr:
        raise HrvInputError(f"{Path(path).name}: holds an ECG, not RR intervals")
    return rec

"""Analysis windows: an events file (label, start, end) or consecutive fixed-length segments."""

from __future__ import annotations

import math
import re
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from peerlens.hrv._errors import EventsFileError

__all__ = [
    "MIN_DURATION_S",
    "consecutive_windows",
    "read_events",
]

#: Task Force (1996) minimum recording length per spectral component: about ten times the
#: wavelength of the band's lower bound, "approximately 1 min for HF and 2 min for LF"; VLF
#: should not be assessed from short-term recordings of 5 min or less, so 300 s is the floor
#: below which it is flagged.
MIN_DURATION_S: dict[str, float] = {"hf": 60.0, "lf": 120.0, "vlf": 300.0}


#: Seconds as plain decimal text; float() alone would also take "inf", "nan" and "1_0".
_SECONDS = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _parse_time(value: str, start_time: datetime | None, where: str) -> float:
    text = value.strip()
    if _SECONDS.fullmatch(text):
        seconds = float(text)
        if not math.isfinite(seconds):
            raise EventsFileError(f"{where}: {value!r} is not a finite number of seconds")
        return seconds
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise EventsFileError(
            f"{where}: {value!r} is neither seconds nor an ISO timestamp"
        ) from None
    if start_time is None:
        raise EventsFileError(
            f"{where}: ISO timestamp {value!r} needs the recording start time, which the "
            "recording does not state; give start times in seconds from the recording start"
        )
    a, b = stamp, start_time
    if (a.tzinfo is None) != (b.tzinfo is None):
        a, b = a.replace(tzinfo=None), b.replace(tzinfo=None)
    return (a - b).total_seconds()


def read_events(path: str | Path, *, start_time: datetime | None = None) -> pd.DataFrame:
    """Read an events file: CSV with columns ``label``, ``start``, ``end``.

    Times are seconds from the recording start, or ISO 8601 timestamps (converted with
    ``start_time``, the recording start). The file is read by the shared table reader
    (:func:`peerlens._tables.read_text_table`): delimiter ``,``, ``;`` or tab, UTF-8/UTF-16 or
    Windows-1252 with a warning, and a row with more or fewer cells than the header refused.

    Returns
    -------
    pandas.DataFrame
        Columns ``label`` (string), ``start_s``, ``end_s`` (float seconds).

    Warns
    -----
    peerlens._tables.TableNoteWarning
        What the reader noted (a Windows-1252 file, a dropped trailing delimiter column).

    Raises
    ------
    EventsFileError
        Missing or unreadable file, ragged rows, missing columns, unparseable or non-finite
        times, or end <= start, naming the row (the file line the record starts on).
    """
    from peerlens._tables import TableReadError, read_text_table

    p = Path(path)
    if not p.exists():
        raise EventsFileError(f"{p.name}: events file not found")
    try:
        table = read_text_table(p)
    except TableReadError as exc:
        raise EventsFileError(str(exc).replace(f"{exc.source}: ", f"{p.name}: ", 1)) from None
    for note in table.notes:
        warnings.warn(note.message, note.category, stacklevel=2)
    cols = {c.lower(): i for i, c in enumerate(table.header)}
    missing = [c for c in ("label", "start", "end") if c not in cols]
    if missing:
        raise EventsFileError(
            f"{p.name}: missing column(s) {', '.join(missing)} (need label,start,end; found "
            f"{', '.join(table.header)})"
        )
    if not table.rows:
        raise EventsFileError(f"{p.name}: no events")
    labels, starts, ends = [], [], []
    for cells, line in zip(table.rows, table.row_numbers, strict=True):
        where = f"{p.name}, row {line}"
        s = _parse_time(cells[cols["start"]], start_time, f"{where}, column 'start'")
        e = _parse_time(cells[cols["end"]], start_time, f"{where}, column 'end'")
        if not e > s:
            raise EventsFileError(f"{where}: end ({e:g} s) is not after start ({s:g} s)")
        label = cells[cols["label"]].strip()
        if not label:
            raise EventsFileError(f"{where}: empty label")
        labels.append(label)
        starts.append(s)
        ends.append(e)
    return pd.DataFrame(
        {
            "label": pd.Series(labels, dtype="string"),
            "start_s": np.asarray(starts, dtype=np.float64),
            "end_s": np.asarray(ends, dtype=np.float64),
        }
    )


def consecutive_windows(duration_s: float, window_s: float) -> pd.DataFrame:
    """Consecutive windows of ``window_s`` seconds from 0 to ``duration_s`` (last one partial).

    Examples
    --------
    >>> consecutive_windows(650, 300)[["label", "start_s", "end_s"]].values.tolist()
    [['w001', 0.0, 300.0], ['w002', 300.0, 600.0], ['w003', 600.0, 650.0]]
    """
    if not window_s > 0:
        raise EventsFileError(f"window length must be positive seconds, not {window_s!r}")
    starts = np.arange(0.0, duration_s, float(window_s))
    ends = np.minimum(starts + window_s, duration_s)
    labels = [f"w{i + 1:03d}" for i in range(starts.size)]
    return pd.DataFrame(
        {"label": pd.Series(labels, dtype="string"), "start_s": starts, "end_s": ends}
    )

"""Analysis windows: an events file (label, start, end) or consecutive fixed-length segments."""

from __future__ import annotations

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


def _parse_time(value: str, start_time: datetime | None, where: str) -> float:
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
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
    ``start_time``, the recording start).

    Returns
    -------
    pandas.DataFrame
        Columns ``label`` (string), ``start_s``, ``end_s`` (float seconds).

    Raises
    ------
    EventsFileError
        Missing file or columns, unparseable times, or end <= start, naming the row.
    """
    p = Path(path)
    try:
        frame = pd.read_csv(p, dtype=str, keep_default_na=False, sep=None, engine="python")
    except FileNotFoundError:
        raise EventsFileError(f"{p.name}: events file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise EventsFileError(f"{p.name}: cannot read as CSV ({exc})") from exc
    cols = {c.strip().lower(): c for c in frame.columns}
    missing = [c for c in ("label", "start", "end") if c not in cols]
    if missing:
        raise EventsFileError(
            f"{p.name}: missing column(s) {', '.join(missing)} (need label,start,end; found "
            f"{', '.join(map(str, frame.columns))})"
        )
    if frame.empty:
        raise EventsFileError(f"{p.name}: no events")
    labels, starts, ends = [], [], []
    for i, row in enumerate(frame.itertuples(index=False), start=2):
        rec = dict(zip(frame.columns, row, strict=True))
        where = f"{p.name}, row {i}"
        s = _parse_time(str(rec[cols["start"]]), start_time, f"{where}, column 'start'")
        e = _parse_time(str(rec[cols["end"]]), start_time, f"{where}, column 'end'")
        if not e > s:
            raise EventsFileError(f"{where}: end ({e:g} s) is not after start ({s:g} s)")
        label = str(rec[cols["label"]]).strip()
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

"""VU-AMS R-peak exports: the tab-separated inter-beat-interval file the VU-AMS analysis software
(VU-DAMS) writes for a recording of the VU-AMS ambulatory ECG recorder.

Layout (as the files are written): a line ``Subject Id: <id>``; a header line ``R-peak time``,
``ibi_cumulative``, ``ibi``, ``interpolated``, ``LabelCode1`` ... ``LabelCode5`` (tab-separated,
each line ending with a tab); then one line per R peak: its clock time ``dd-mm-yy/HH:MM:SS.mmm``,
the cumulative interval time in ms from the first peak, the interval ending at this peak in ms
(``0`` on the first line, which starts the series) and the interpolation flag (``O``: an
original, detected beat); label codes mark events (``-9999``: none) and do not change the
intervals.

Read exactly or refused by line: an interval or cumulative time that is not a number, a clock
time that is not one, a clock time or cumulative time that disagrees with the intervals, and
any interpolation flag other than ``O`` (what other flags mean is not documented in what was
found). A cumulative time that runs ahead of the intervals (beats left out of the export) is a
gap (:mod:`peerlens.hrv._beat_series`). The clock time's two-digit year is not turned into a
date: the recording's start is not set.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from peerlens.hrv._beat_series import BeatSeries, join_intervals
from peerlens.hrv._errors import UnreadableRecordingError

_HEADER = ("R-peak time", "ibi_cumulative", "ibi", "interpolated")
#: Cumulative times and intervals are whole milliseconds.
_TOLERANCE_S = 0.0005


def is_vuams(text: str) -> bool:
    """True when ``text`` starts as a VU-AMS R-peak export does."""
    lines = text.lstrip("\ufeff").split("\n", 2)
    return (
        len(lines) >= 2
        and lines[0].startswith("Subject Id:")
        and lines[1].startswith("\t".join(_HEADER))
    )


def read_vuams(text: str, where: str) -> BeatSeries:
    """The intervals of a VU-AMS R-peak export (see the module docstring)."""
    lines = text.lstrip("\ufeff").splitlines()
    ends: list[float] = []
    rrs: list[float] = []
    numbers: list[int] = []
    first: tuple[dt.datetime, float] | None = None
    for n, line in enumerate(lines[2:], start=3):
        if not line.strip():
            continue
        cells = line.rstrip("\t").split("\t")
        if len(cells) < len(_HEADER):
            raise UnreadableRecordingError(
                f"{where}: line {n}: {len(cells)} columns; the R-peak export has "
                f"{', '.join(_HEADER)}"
            )
        stamp, cumulative, interval, flag = (c.strip() for c in cells[:4])
        try:
            clock = dt.datetime.strptime(stamp, "%d-%m-%y/%H:%M:%S.%f")
        except ValueError:
            raise UnreadableRecordingError(
                f"{where}: line {n}: R-peak time {stamp!r} is not dd-mm-yy/HH:MM:SS.mmm"
            ) from None
        try:
            cum_ms, rr_ms = float(cumulative), float(interval)
        except ValueError:
            raise UnreadableRecordingError(
                f"{where}: line {n}: ibi_cumulative {cumulative!r} and ibi {interval!r} must "
                "be numbers (ms)"
            ) from None
        if not (np.isfinite(cum_ms) and np.isfinite(rr_ms)):
            raise UnreadableRecordingError(f"{where}: line {n}: not a finite number")
        if flag != "O":
            raise UnreadableRecordingError(
                f"{where}: line {n}: interpolation flag {flag!r} is not 'O' (an original beat), "
                "the only one this reader takes"
            )
        if first is None:
            first = (clock, cum_ms)
        elapsed_ms = (clock - first[0]).total_seconds() * 1000.0
        if abs(elapsed_ms - (cum_ms - first[1])) > 1.0:
            raise UnreadableRecordingError(
                f"{where}: line {n}: R-peak time {stamp} is {elapsed_ms:.0f} ms after the first "
                f"peak but ibi_cumulative says {cum_ms - first[1]:g} ms"
            )
        if rr_ms == 0 and not numbers and not ends:
            continue  # the first peak starts the series: no interval ends there
        ends.append(cum_ms / 1000.0)
        rrs.append(rr_ms)
        numbers.append(n)
    return join_intervals(np.array(ends), np.array(rrs), numbers, where, _TOLERANCE_S)

"""Empatica E4 ``IBI.csv``: the inter-beat intervals of an E4 wristband session (E4 Connect
export).

Layout (Empatica's ``info.txt``, written into every session export): a first line
``<session start as unix time, UTC>, IBI``; then one line per detected interval: the time of
the beat ending it, in seconds from the session start, and the interval's duration in seconds.
The E4 leaves out intervals it cannot detect from the pulse wave, so an interval may start
well after the previous beat: that time is a gap, never bridged
(:mod:`peerlens.hrv._beat_series`). Times are written to the microsecond, so an interval that
starts within 2 ms of the previous beat follows it.

Refused by line: a cell that is not a number, an interval that is not positive, a beat time
that goes back, an interval that starts before the previous beat.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np

from peerlens.hrv._beat_series import BeatSeries, join_intervals
from peerlens.hrv._errors import UnreadableRecordingError

_FIRST = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*,\s*IBI\s*$")
_TOLERANCE_S = 0.002


def is_empatica_ibi(text: str) -> bool:
    """True when ``text`` starts as an E4 ``IBI.csv`` does."""
    return _FIRST.match(text.lstrip("\ufeff").split("\n", 1)[0]) is not None


def read_empatica_ibi(text: str, where: str) -> tuple[BeatSeries, dt.datetime]:
    """The intervals of an E4 ``IBI.csv`` and when the first one starts (UTC)."""
    lines = text.lstrip("\ufeff").splitlines()
    match = _FIRST.match(lines[0])
    assert match is not None
    session_start = float(match[1])
    ends: list[float] = []
    rrs: list[float] = []
    numbers: list[int] = []
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split(",")
        try:
            end, rr = (float(c) for c in cells)
        except ValueError:
            raise UnreadableRecordingError(
                f"{where}: line {n}: {line.strip()!r} is not 'time, interval' in seconds"
            ) from None
        if not (np.isfinite(end) and np.isfinite(rr)):
            raise UnreadableRecordingError(f"{where}: line {n}: not a finite number")
        ends.append(end)
        rrs.append(rr * 1000.0)
        numbers.append(n)
    series = join_intervals(np.array(ends), np.array(rrs), numbers, where, _TOLERANCE_S)
    start = dt.datetime.fromtimestamp(session_start + series.first_s, dt.UTC)
    return series, start

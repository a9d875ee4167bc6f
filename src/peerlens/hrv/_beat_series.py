"""Inter-beat intervals that a device writes with their own times, joined on one time line.

Some portable recorders export each detected inter-beat interval with the time of the beat that
ends it (VU-AMS: cumulative milliseconds; Empatica E4: seconds from the session start). Where
the device detected no interval, the next interval does not start at the previous beat: the
time between is a gap. :func:`join_intervals` keeps every interval as written and puts one
flagged stand-in interval over each gap, so the recording keeps its real length and
:func:`peerlens.hrv.analyze` never bridges the gap (flagged intervals are never used, as with
the intervals a Polar PPI export flags).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from peerlens.hrv._errors import EmptyRecordingError, UnreadableRecordingError


@dataclass(frozen=True)
class BeatSeries:
    """Intervals on one time line: the file's intervals and a flagged stand-in for each gap."""

    rr_ms: NDArray[np.float64]
    flagged: NDArray[np.bool_]
    #: ``(start_s, end_s, kind, detail)`` per gap, seconds from the first interval's start.
    gaps: list[tuple[float, float, str, str]]
    #: When the first interval starts, in the file's own time (seconds).
    first_s: float


def join_intervals(
    end_s: NDArray[np.float64],
    rr_ms: NDArray[np.float64],
    lines: Sequence[int],
    where: str,
    tolerance_s: float,
) -> BeatSeries:
    """Join intervals ``rr_ms`` (kept as given) ending at ``end_s`` (file ``lines``) on one
    time line.

    An interval may start up to ``tolerance_s`` away from the previous beat (the rounding of
    the file's times); later is a gap, earlier (an overlap) or a time going back is refused.

    Raises
    ------
    EmptyRecordingError
        No interval.
    UnreadableRecordingError
        Naming the file and line: an interval that is not positive, a time that goes back, an
        interval that starts before the previous beat.

    Examples
    --------
    >>> ends, rr = np.array([1.0, 1.8, 4.0]), np.array([800.0, 800.0, 900.0])
    >>> s = join_intervals(ends, rr, [2, 3, 4], "f", 0.001)
    >>> s.rr_ms.round(1).tolist(), s.flagged.tolist(), [round(t, 3) for t in s.gaps[0][:2]]
    ([800.0, 800.0, 1300.0, 900.0], [False, False, True, False], [1.6, 2.9])
    """
    if end_s.size == 0:
        raise EmptyRecordingError(f"{where}: no intervals found")
    begin_s = end_s - rr_ms / 1000.0
    rr: list[float] = []
    flagged: list[bool] = []
    gaps: list[tuple[float, float, str, str]] = []
    for k in range(end_s.size):
        if not rr_ms[k] > 0:
            raise UnreadableRecordingError(
                f"{where}: line {lines[k]}: interval {rr_ms[k]:g} ms is not positive"
            )
        if k:
            if end_s[k] <= end_s[k - 1]:
                raise UnreadableRecordingError(
                    f"{where}: line {lines[k]}: the beat's time is not after line {lines[k - 1]}'s"
                )
            missing = begin_s[k] - end_s[k - 1]
            if missing < -tolerance_s:
                raise UnreadableRecordingError(
                    f"{where}: line {lines[k]}: the interval starts {-missing:.3f} s before "
                    f"line {lines[k - 1]}'s beat"
                )
            if missing > tolerance_s:
                start = end_s[k - 1] - begin_s[0]
                detail = f"no interval between line {lines[k - 1]} and line {lines[k]}"
                gaps.append((float(start), float(start + missing), "missing", detail))
                rr.append(float(missing) * 1000.0)
                flagged.append(True)
        rr.append(float(rr_ms[k]))
        flagged.append(False)
    return BeatSeries(np.array(rr), np.array(flagged, dtype=bool), gaps, float(begin_s[0]))

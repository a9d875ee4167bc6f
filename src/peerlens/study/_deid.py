"""De-identification rules shared by the exports (tidy tables and REDCap records)."""

from __future__ import annotations

import datetime as dt


def shift_date(text: str, days: int) -> str:
    """``text``, an ISO date or date-time, moved back by ``days`` (a participant's secret date
    shift), in the same form; text that is not an ISO date is returned as it is.

    Every date of one participant moves by the same number of days (drawn once, 0-364, at
    enrolment, like REDCap's export option to shift all dates by 0-364 days), so intervals
    within a participant are kept.

    Examples
    --------
    >>> shift_date("2024-03-01", 30), shift_date("2024-03-01 09:30:00", 1)
    ('2024-01-31', '2024-02-29 09:30:00')
    >>> shift_date("not a date", 30)
    'not a date'
    """
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return text
    shifted = parsed - dt.timedelta(days=days)
    return shifted.date().isoformat() if len(text) <= 10 else shifted.isoformat(sep=" ")

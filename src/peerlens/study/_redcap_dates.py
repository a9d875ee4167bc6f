"""REDCap's date, date-time and time text: the forms its record import takes, the form it stores.

REDCap stores and exports every date field as ``YYYY-MM-DD`` and every date-time field as
``YYYY-MM-DD HH:MM`` (``HH:MM:SS`` for the ``datetime_seconds_*`` validations), whatever the
field's display validation (``date_dmy``, ``date_mdy``, ...): the validation only says how the
form shows the date. Its record import (the Data Import Tool's date-format choice, the API's
``dateFormat`` parameter) also takes month-first (``MDY``: ``M/D/YYYY``) or day-first (``DMY``:
``D/M/YYYY``) dates, and always takes ``YYYY-MM-DD``; it stores them as ``YYYY-MM-DD``.
(REDCap API documentation, "Import Records", ``dateFormat``; Data Import Tool instructions.)

Times are stored as typed in the validation's shape: ``H:MM`` (``time``), ``H:MM:SS``
(``time_hh_mm_ss``), ``MM:SS`` (``time_mm_ss``).

A slashed date is read only in the order the import names: ``03/04/2022`` is 4 March under
``DMY`` and 3 April under ``MDY``, and refused under the default ``YMD`` rather than guessed.

A two-digit year takes REDCap's century (:func:`four_digit_year`): up to ten years past the
current year it is 20yy, later it is 19yy.
"""

from __future__ import annotations

import datetime as dt
import re

#: The date orders REDCap's record import takes (its ``dateFormat`` values).
DATE_FORMATS = ("YMD", "MDY", "DMY")

#: The text REDCap stores for each kind of date, date-time and time validation, and the shape
#: named in messages.
_STORED = {
    "date": (re.compile(r"^\d{4}-\d{2}-\d{2}$"), "YYYY-MM-DD"),
    "datetime": (re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$"), "YYYY-MM-DD HH:MM"),
    "datetime_seconds": (
        re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"),
        "YYYY-MM-DD HH:MM:SS",
    ),
    "time": (re.compile(r"^\d{1,2}:\d{2}$"), "HH:MM"),
    "time_hh_mm_ss": (re.compile(r"^\d{1,2}:\d{2}:\d{2}$"), "HH:MM:SS"),
    "time_mm_ss": (re.compile(r"^\d{2}:\d{2}$"), "MM:SS"),
}


#: How many years past the current one a two-digit year is still read in this century.
CENTURY_WINDOW_YEARS = 10


def four_digit_year(two_digits: int, this_year: int) -> int:
    """The year REDCap reads for a two-digit year ``two_digits`` (0-99) in ``this_year``.

    REDCap's rule: a two-digit year up to ten years past the current year's last two digits
    is in the 2000s, any later one in the 1900s (``yy <= this_yy + 10``). It is the rule of
    REDCap's own date cleaning, ``redcap_clean_date`` in ``Resources/js/base.js`` (REDCap
    10.4.1, the script every REDCap server sends with its forms: "Make sure year has 4
    digits"), which turns ``6/17/19`` into ``06-17-2019``. REDCap's Data Import Tool takes
    such years too: its validation suite (REDCap Cypress Test Framework,
    ``22_reporting.feature``) imports ``22_Reporting_IMP.csv`` with ``dob`` 6/17/19 and sees
    06-17-2019 on the form. The server-side import code is not public; the one year it shows
    (19 -> 2019) agrees with this rule. Like REDCap, the window slides with the current year.

    Examples
    --------
    >>> four_digit_year(19, 2026), four_digit_year(36, 2026), four_digit_year(37, 2026)
    (2019, 2036, 1937)
    """
    if not 0 <= two_digits <= 99:
        raise ValueError(f"{two_digits} is not a two-digit year")
    this_yy = this_year % 100
    return 2000 + two_digits if two_digits <= this_yy + CENTURY_WINDOW_YEARS else 1900 + two_digits


def stored_kind(validation: str) -> str | None:
    """Which stored form a text validation takes (a key of the table above), or ``None``.

    Examples
    --------
    >>> stored_kind("date_dmy"), stored_kind("datetime_mdy"), stored_kind("datetime_seconds_ymd")
    ('date', 'datetime', 'datetime_seconds')
    >>> stored_kind("time_mm_ss"), stored_kind("integer")
    ('time_mm_ss', None)
    """
    if validation in _STORED:
        return validation
    for prefix in ("datetime_seconds", "datetime", "date"):
        if validation in (f"{prefix}_ymd", f"{prefix}_dmy", f"{prefix}_mdy"):
            return prefix
    return None


def stored_problem(raw: str, kind: str) -> str | None:
    """Why ``raw`` is not the text REDCap stores for ``kind`` (see :func:`stored_kind`), or
    ``None``. The text is never rewritten: a day- or month-first date is refused, not read.

    Examples
    --------
    >>> stored_problem("2022-08-03 15:15", "datetime") is None
    True
    >>> stored_problem("2022-08-03 15:15:04", "datetime")
    "'2022-08-03 15:15:04' is not in REDCap's form YYYY-MM-DD HH:MM"
    >>> stored_problem("03/08/2022", "date")
    "'03/08/2022' is not an ISO date (YYYY-MM-DD)"
    >>> stored_problem("24:00", "time")
    "'24:00' is not a real date or time (HH:MM)"
    """
    shape, want = _STORED[kind]
    if not shape.match(raw):
        if kind == "date":
            return f"{raw!r} is not an ISO date (YYYY-MM-DD)"
        return f"{raw!r} is not in REDCap's form {want}"
    parts = [int(p) for p in re.split(r"[- :]", raw)]
    if kind.startswith("date"):
        try:
            dt.datetime(*parts)  # type: ignore[arg-type]
        except ValueError:
            return f"{raw!r} is not a real date or time ({want})"
        return None
    limits = {"time": (23, 59), "time_hh_mm_ss": (23, 59, 59), "time_mm_ss": (59, 59)}[kind]
    if any(p > most for p, most in zip(parts, limits, strict=True)):
        return f"{raw!r} is not a real date or time ({want})"
    return None


_SLASHED = re.compile(
    r"^(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<year>\d{4}|\d{2})"
    r"(?: (?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?)?$"
)


def iso_from_import(
    raw: str, date_format: str, *, this_year: int | None = None
) -> tuple[str | None, str | None]:
    """``raw`` (a date or date-time cell of a record import) as REDCap stores it, or why not.

    Y-M-D text is returned unchanged (its checking is the field rule's); under ``MDY`` or
    ``DMY`` a slashed date ``M/D/YYYY`` or ``D/M/YYYY`` (with an optional ``H:MM`` or
    ``H:MM:SS`` time) becomes ``YYYY-MM-DD`` (``YYYY-MM-DD HH:MM[:SS]``). A two-digit year
    takes REDCap's century in ``this_year`` (:func:`four_digit_year`; by default the current
    UTC year, as REDCap reads it at import time). A slashed date under ``YMD`` is refused.

    Returns
    -------
    tuple
        ``(text, None)`` or ``(None, problem)``.

    Examples
    --------
    >>> iso_from_import("4/12/1982", "MDY"), iso_from_import("4/12/1982", "DMY")
    (('1982-04-12', None), ('1982-12-04', None))
    >>> iso_from_import("7/31/2023 14:49", "MDY")
    ('2023-07-31 14:49', None)
    >>> iso_from_import("31/7/2023", "MDY")[1]
    "'31/7/2023' is not a month-first date M/D/YYYY (the import's date format is MDY)"
    >>> iso_from_import("6/17/19", "MDY", this_year=2026), iso_from_import("6/17/85", "MDY")
    (('2019-06-17', None), ('1985-06-17', None))
    """
    if date_format not in DATE_FORMATS:
        raise ValueError(f"date format {date_format!r} is not one of {', '.join(DATE_FORMATS)}")
    m = _SLASHED.match(raw)
    if m is None:
        return raw, None  # Y-M-D (or not a date: the field rule says why)
    if date_format == "YMD":
        why = "is not an ISO date (YYYY-MM-DD); a month- or day-first date needs the import's"
        return None, f"{raw!r} {why} date format (MDY or DMY), as REDCap's import does"
    year = int(m["year"])
    if len(m["year"]) == 2:
        now = this_year if this_year is not None else dt.datetime.now(dt.UTC).year
        year = four_digit_year(year, now)
    first, second = int(m["a"]), int(m["b"])
    month, day = (first, second) if date_format == "MDY" else (second, first)
    try:
        date = dt.date(year, month, day)
    except ValueError:
        shape = "month-first date M/D/YYYY" if date_format == "MDY" else "day-first date D/M/YYYY"
        return None, f"{raw!r} is not a {shape} (the import's date format is {date_format})"
    if m["hour"] is None:
        return date.isoformat(), None
    hour, minute = int(m["hour"]), int(m["minute"])
    second_ = int(m["second"]) if m["second"] is not None else None
    if hour > 23 or minute > 59 or (second_ is not None and second_ > 59):
        return None, f"{raw!r} has no such time of day"
    time = f"{hour:02d}:{minute:02d}" + (f":{second_:02d}" if second_ is not None else "")
    return f"{date.isoformat()} {time}", None

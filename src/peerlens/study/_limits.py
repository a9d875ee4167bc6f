"""What a column of the study store can hold, read from the model's column types.

Every check of a value's length or integer range against the database happens here, before
anything is written or copied, so that an over-long label or a huge number is refused with a
message naming where it came from instead of failing inside the database (PostgreSQL refuses a
string longer than its ``VARCHAR(n)`` and an integer beyond ``INTEGER``; SQLite cannot bind an
integer beyond 64 bits). The limits come from :mod:`peerlens.study.models`, never copied by hand.

``Integer`` columns are 32-bit on PostgreSQL and 64-bit on SQLite; the narrower range applies on
both, so that a study moves between backends (SQLAlchemy's type docs; PostgreSQL 15 manual,
section 8.1.1; SQLite "Datatypes In SQLite", section 2).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Integer, SmallInteger, String
from sqlalchemy.orm import QueryableAttribute

from peerlens.study.errors import StudyError

#: Bits of each integer type (checked most specific first: BigInteger is an Integer).
_INT_BITS: tuple[tuple[type[Integer], int], ...] = (
    (SmallInteger, 16),
    (BigInteger, 64),
    (Integer, 32),
)


def max_length(column: QueryableAttribute[Any]) -> int | None:
    """The most characters ``column`` holds (``None``: no limit, e.g. ``Text``).

    Examples
    --------
    >>> from peerlens.study.models import Recording, Transcript
    >>> max_length(Recording.device), max_length(Transcript.text)
    (100, None)
    """
    kind = column.type
    return kind.length if isinstance(kind, String) else None


def int_range(column: QueryableAttribute[Any]) -> tuple[int, int]:
    """The smallest and largest integer ``column`` holds on every supported backend.

    Examples
    --------
    >>> from peerlens.study.models import Response
    >>> int_range(Response.repeat_instance)
    (-2147483648, 2147483647)
    """
    kind = column.type
    for base, bits in _INT_BITS:
        if isinstance(kind, base):
            return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    raise TypeError(f"{column} is not an integer column")


def problem(column: QueryableAttribute[Any], value: object) -> str | None:
    """Why ``value`` does not fit ``column`` (``None`` if it does, or is ``None``).

    Strings are measured in characters, as ``VARCHAR(n)`` counts them; the value itself is never
    quoted (labels and names may identify someone).
    """
    if value is None:
        return None
    if isinstance(value, str):
        limit = max_length(column)
        if limit is not None and len(value) > limit:
            return f"{len(value)} characters; at most {limit} fit"
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        low, high = int_range(column)
        if not low <= value <= high:
            return f"{_short(value)} is outside the range {low}..{high}"
    return None


def check(column: QueryableAttribute[Any], value: object, what: str) -> None:
    """Refuse ``value`` for ``column`` with a :class:`StudyError` naming ``what`` (the option,
    argument or key it came from).

    Examples
    --------
    >>> from peerlens.study.models import Recording
    >>> check(Recording.device, "Polar H10", "device")
    >>> check(Recording.device, "x" * 101, "device")
    Traceback (most recent call last):
    ...
    peerlens.study.errors.StudyError: device: 101 characters; at most 100 fit
    """
    why = problem(column, value)
    if why is not None:
        raise StudyError(f"{what}: {why}")


def _short(value: int) -> str:
    """A huge number as its leading digits and length (a 10**30 is not printed in full)."""
    text = str(value)
    return text if len(text) <= 24 else f"{text[:12]}... ({len(text.lstrip('-'))} digits)"

"""Pagination of list endpoints: ``limit`` and an opaque ``cursor``, answered in one envelope.

A list answers ``{"items": [...], "next": "<cursor>" | null, "total": n}``. To get the next
page, send the same request with ``cursor=<next>``; ``next`` is ``null`` on the last page. The
cursor is opaque to clients (today an offset into the list, in the order the study API returns
it: by participant, timepoint, ... as each endpoint documents).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from peerlens.web.api.errors import ApiError

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "Cursor", "Limit", "Page", "paginate"]

T = TypeVar("T")
#: Items on a page unless ``limit`` says otherwise.
DEFAULT_LIMIT = 100
#: The most items one page holds.
MAX_LIMIT = 1000

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page (1-{MAX_LIMIT}).")]
Cursor = Annotated[
    str | None,
    Query(max_length=64, description="The `next` of the previous page; omit for the first."),
]


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    next: str | None = Field(description="Cursor of the next page (null on the last page).")
    total: int = Field(description="How many items the whole list has.")


def _encode(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    kind, _, number = text.partition(":")
    if kind != "o" or not number.isdigit() or len(number) > 12:
        raise ApiError(
            422,
            "invalid_request",
            "cursor: not a cursor this API gave (use the `next` of the previous page)",
            {"errors": [{"location": "query.cursor", "message": "not a cursor of this API"}]},
        )
    return int(number)


def paginate(items: Sequence[T], limit: int, cursor: str | None) -> Page[T]:
    """The page of ``items`` that ``limit`` and ``cursor`` ask for.

    Examples
    --------
    >>> first = paginate(list(range(5)), 2, None)
    >>> first.items, paginate(list(range(5)), 2, first.next).items
    ([0, 1], [2, 3])
    """
    start = 0 if cursor is None else _decode(cursor)
    end = start + limit
    following = _encode(end) if end < len(items) else None
    return Page(items=list(items[start:end]), next=following, total=len(items))

"""A per-process cache of study-level data, valid while the database's catalog revision holds.

A participant's every request needs their study's definition (the timepoint's forms and their
pages, the consent text), which changes rarely: re-reading and re-building it was most of what
a page view cost. Study-level data lives in the tables of :data:`STUDY_LEVEL`. Every
transaction that writes one of them sets a new random token in ``catalog_revision`` before it
commits (:func:`note_changes`, called by :func:`peerlens.study.integrity.settle`, which sees
every write of a transaction: the seals depend on it). A request reads the token in its own
transaction before anything else it takes from the cache, and uses an entry only when it was
built under that same token (:meth:`CatalogCache.get`), so several server processes on one
database, and changes made with the CLI while a server runs, are seen at once.

On PostgreSQL (READ COMMITTED) an entry built after the token was read may hold data committed
after that read: never older than the token says, which is what a request reading the tables
itself would have seen.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from peerlens.study.models import CatalogRevision

__all__ = ["STUDY_LEVEL", "CatalogCache", "note_changes", "revision"]

#: The tables holding study-level data (a study's definition, shared by its participants).
STUDY_LEVEL = frozenset(
    {
        "study",
        "arm",
        "site",
        "timepoint",
        "timepoint_instrument",
        "field",
        "form_scoring",
        "consent_text",
        "redcap_layout",
    }
)

V = TypeVar("V")


def note_changes(session: Session, written: Iterable[str]) -> None:
    """Set a new catalog revision token in ``session``'s transaction when ``written`` (the
    tables, or sealed kinds, it wrote) holds study-level data."""
    if STUDY_LEVEL.isdisjoint(written):
        return
    session.execute(
        update(CatalogRevision).where(CatalogRevision.id == 1).values(token=uuid.uuid4().hex)
    )


def revision(session: Session) -> str:
    """The catalog revision token as ``session``'s transaction sees it."""
    return str(
        session.execute(select(CatalogRevision.token).where(CatalogRevision.id == 1)).scalar_one()
    )


class CatalogCache:
    """Values built from study-level data, each kept with the catalog revision it was built
    under (least recently used dropped beyond ``size`` entries); one per store, thread-safe."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._entries: OrderedDict[Hashable, tuple[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self,
        session: Session,
        key: Hashable,
        build: Callable[[], V],
        valid: Callable[[V], bool] = lambda _: True,
    ) -> V:
        """The value for ``key`` built under the revision ``session`` sees now (and still
        ``valid``, for what lives outside the database), else ``build()`` in ``session``.

        The revision is read first: the value is never older than it."""
        token = revision(session)
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and hit[0] == token and valid(hit[1]):
            cached: V = hit[1]
            return cached
        value = build()
        with self._lock:
            self._entries[key] = (token, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return value

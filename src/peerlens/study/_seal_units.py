"""What a sealed unit of data is, and its canonical content.

A *unit* is what one row seal covers: one row of a data table, except that a response's items
belong to the response's unit and a derived story's sentences to the story's (items and sentences
are many and always written with their parent, so sealing them per parent keeps imports fast).
A unit's content is its head row and its child rows (sorted, without their surrogate ids), as
the Python ``repr`` of the list of their values: every column in the model's order, times as UTC
ISO 8601, bytes as hex, the rest as the database driver returns them (``repr`` of ``str``,
``int``, ``float`` (shortest round-trip form), ``bool`` and ``None`` is deterministic, and it is
several times faster than JSON). The seal
of a unit is ``HMAC-SHA256(seal key, content)``; its *tally* is ``HMAC-SHA256(tally key, seal)``
read as a 256-bit integer, summed per kind into the audit chain.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Date, DateTime, LargeBinary, Select, Table, select
from sqlalchemy.orm import Session

from peerlens.study import models as m
from peerlens.study.models import as_utc

#: The modulus of tally sums.
MODULUS = 1 << 256
_CHUNK = 5000


@dataclass(frozen=True)
class Child:
    """Rows of ``table`` that belong to the unit whose key is in ``parent`` (a column of it)."""

    table: Table
    parent: str
    order: tuple[str, ...]
    skip: tuple[str, ...] = ("id",)


@dataclass(frozen=True)
class UnitKind:
    """A sealed table: its head rows, keyed by ``key``, with their child rows."""

    table: Table
    key: str
    children: tuple[Child, ...] = ()

    @property
    def name(self) -> str:
        """The kind's name: its head table's name."""
        return self.table.name

    def key_column(self) -> Column[Any]:
        """The head table's key column."""
        return self.table.c[self.key]


def _t(model: type[m.Base]) -> Table:
    return model.__table__  # type: ignore[return-value]


#: Every sealed kind. ``audit_log`` has its own hash chain; ``row_seal`` holds the seals;
#: ``alembic_version`` is the schema's own bookkeeping.
KINDS: tuple[UnitKind, ...] = (
    UnitKind(_t(m.Study), "id"),
    UnitKind(_t(m.Arm), "id"),
    UnitKind(_t(m.Site), "id"),
    UnitKind(_t(m.Timepoint), "id"),
    UnitKind(_t(m.TimepointInstrument), "id"),
    UnitKind(_t(m.Field), "id"),
    UnitKind(_t(m.Participant), "id"),
    UnitKind(_t(m.IdentityVault), "participant_id"),
    UnitKind(_t(m.Consent), "id"),
    UnitKind(_t(m.PSRelationship), "id"),
    UnitKind(_t(m.Session), "id"),
    UnitKind(
        _t(m.Response),
        "id",
        (Child(_t(m.ResponseItem), "response_id", ("item",)),),
    ),
    UnitKind(_t(m.Recording), "id"),
    UnitKind(_t(m.RecordingWindow), "id"),
    UnitKind(_t(m.Transcript), "id"),
    UnitKind(_t(m.Derivation), "id"),
    UnitKind(_t(m.DerivedScore), "id"),
    UnitKind(_t(m.DerivedHrv), "id"),
    UnitKind(
        _t(m.DerivedStory),
        "id",
        (Child(_t(m.DerivedSentence), "story_id", ("position",)),),
    ),
    UnitKind(_t(m.User), "id"),
    UnitKind(_t(m.RoleAssignment), "id"),
    UnitKind(_t(m.Setting), "key"),
)
BY_NAME: dict[str, UnitKind] = {k.name: k for k in KINDS}
#: Table name -> (its kind, the column of that table holding the unit key).
UNIT_OF: dict[str, tuple[UnitKind, str]] = {
    **{k.name: (k, k.key) for k in KINDS},
    **{c.table.name: (k, c.parent) for k in KINDS for c in k.children},
}
#: Tables deliberately left unsealed (a test checks every table is in one of the two).
UNSEALED = frozenset({"audit_log", "row_seal", "alembic_version"})


def _plain(value: Any) -> Any:
    if isinstance(value, str):  # SQLite hands times back as the text SQLAlchemy stored
        return value
    if isinstance(value, dt.datetime):
        aware = as_utc(value)
        assert aware is not None
        return aware.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return value


def unit_text(key: Any) -> str:
    """A unit key as stored in ``row_seal.unit``."""
    return str(key)


def _chunks(values: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def contents(
    session: Session, kind: UnitKind, keys: Iterable[Any] | None = None
) -> Iterator[tuple[str, bytes]]:
    """``(unit, canonical content)`` of each unit of ``kind`` that exists (all units when
    ``keys`` is None)."""
    if keys is None:
        yield from _contents(session, kind, None)
        return
    wanted = sorted(set(keys))
    for chunk in _chunks(wanted):
        yield from _contents(session, kind, chunk)


def _contents(
    session: Session, kind: UnitKind, chunk: Sequence[Any] | None
) -> Iterator[tuple[str, bytes]]:
    head = select(kind.table).order_by(kind.key_column())
    if chunk is not None:
        head = head.where(_among(kind.key_column(), chunk))
    heads = _fetch(session, head)
    parts: list[dict[Any, list[Any]]] = []
    for child in kind.children:
        cols = [c for c in child.table.c if c.name not in child.skip]
        stmt = select(*cols).order_by(
            child.table.c[child.parent], *(child.table.c[o] for o in child.order)
        )
        if chunk is not None:
            stmt = stmt.where(_among(child.table.c[child.parent], chunk))
        grouped: dict[Any, list[Any]] = {}
        at = cols.index(child.table.c[child.parent])
        plain = _plainer(cols)
        for row in _fetch(session, stmt):
            grouped.setdefault(row[at], []).append(plain(row))
        parts.append(grouped)
    at_key = list(kind.table.c).index(kind.key_column())
    plain = _plainer(list(kind.table.c))
    for row in heads:
        key = row[at_key]
        body: list[Any] = [kind.name, plain(row)]
        body.extend(p.get(key, ()) for p in parts)
        yield unit_text(key), repr(body).encode("utf-8", "surrogatepass")


def _among(column: Column[Any], keys: Sequence[Any]) -> Any:
    """``column IN keys``, as a range when ``keys`` are consecutive integers (new rows are)."""
    first, last = keys[0], keys[-1]
    if isinstance(first, int) and isinstance(last, int) and last - first + 1 == len(keys):
        return column.between(first, last)
    return column.in_(keys)


def _fetch(session: Session, stmt: Select[Any]) -> list[tuple[Any, ...]]:
    """Every row of ``stmt`` as the driver returns it (no SQLAlchemy row objects or type
    processing: sealing reads whole tables, and seals and checks both read this way)."""
    conn = session.connection()
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _plainer(columns: Sequence[Column[Any]]) -> Any:
    """A function giving a row as JSON-able values: only columns of types JSON cannot hold
    (times, bytes) are converted, the rest pass as they are."""
    convert = [
        i for i, c in enumerate(columns) if isinstance(c.type, DateTime | Date | LargeBinary)
    ]
    if not convert:
        return tuple

    def plain(row: Sequence[Any]) -> list[Any]:
        out = list(row)
        for i in convert:
            out[i] = _plain(out[i])
        return out

    return plain


def orphans(session: Session, kind: UnitKind) -> Iterator[tuple[str, str]]:
    """``(child table, parent key)`` of child rows whose parent row does not exist."""
    for child in kind.children:
        parent = child.table.c[child.parent]
        stmt = (
            select(parent)
            .distinct()
            .where(~parent.in_(select(kind.key_column()).scalar_subquery()))
            .order_by(parent)
        )
        for (key,) in session.execute(stmt):
            yield child.table.name, unit_text(key)


def seal_of(seal_key: bytes, content: bytes) -> bytes:
    """The row seal of a unit's canonical ``content``."""
    return hmac.digest(seal_key, content, "sha256")


def tally_of(tally_key: bytes, seal: bytes) -> int:
    """The tally of one seal (a 256-bit integer only the key holder can compute)."""
    return int.from_bytes(hmac.digest(tally_key, seal, "sha256"), "big")

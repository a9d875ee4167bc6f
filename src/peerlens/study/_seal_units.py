"""What a sealed unit of data is, and its canonical content.

A *unit* is what one row seal covers: one row of a data table, except that child rows belong to
their parent's unit: a response's items and a derived story's sentences (they are many, always
written with their parent, and sealing them per parent keeps imports fast). A derived score is a
unit of its own (since revision 0023, seal scheme 2): a form completed through a personal link
re-scores its response inside the study's current scores run, and sealing the run with all its
scores made each completion read and hash the whole run. Before it (scheme 1,
:data:`LEGACY_KINDS`) a run's scores were child rows of the run's unit; a database sealed so is
checked under that scheme and resealed under this one by its first write with the key
(:func:`peerlens.study.integrity.ensure_scheme`).

A unit's content is ``repr`` of ``[kind, head row, child rows of each child table]``: every column
in the model's order (child rows without their surrogate ids, sorted by their natural key in
Python, not by the database's collation), each value in a canonical form by column type: times as
UTC ISO 8601, bytes as hex, floats as ``float``, integers as ``int``, booleans as ``bool``, text as
``str``. A kind's *late* columns (added to a sealed table by a later revision, nullable) are left
out of the head row while all of them are ``NULL`` and otherwise follow it as one more element,
``("late", ((name, value), ...))``: rows sealed before the revision keep their seals, and a value
written to, changed in or removed from such a column changes the content. ``repr`` of those types
is deterministic (floats in their shortest round-trip form), so
the same content gives the same bytes whether it is read back from SQLite or PostgreSQL or taken
from the rows a bulk insert has just written. The seal of a unit is
``HMAC-SHA256(seal key, content)``; its *tally* is ``HMAC-SHA256(tally key, seal)`` read as a
256-bit integer, summed per kind into the audit chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import numbers
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    Select,
    Table,
    bindparam,
    select,
)
from sqlalchemy.orm import Session

from peerlens.study import models as m
from peerlens.study.models import as_utc

#: The modulus of tally sums.
MODULUS = 1 << 256
_CHUNK = 5000

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Child:
    """Rows of ``table`` that belong to the unit whose key is in ``parent`` (a column of it),
    sorted by ``order``; ``skip`` columns (surrogate ids) are left out of the content."""

    table: Table
    parent: str
    order: tuple[str, ...]
    skip: tuple[str, ...] = ("id",)

    @property
    def columns(self) -> list[Column[Any]]:
        """The columns the content holds, in the table's order."""
        return [c for c in self.table.c if c.name not in self.skip]

    @property
    def order_at(self) -> tuple[int, ...]:
        """Positions of the ``order`` columns among :attr:`columns`."""
        names = [c.name for c in self.columns]
        return tuple(names.index(o) for o in self.order)


@dataclass(frozen=True)
class UnitKind:
    """A sealed table: its head rows, keyed by ``key``, with their child rows; ``late`` names
    its columns added after its rows were first sealed (see the module docstring)."""

    table: Table
    key: str
    children: tuple[Child, ...] = field(default=())
    late: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        """The kind's name: its head table's name, as a plain ``str`` (SQLAlchemy's
        ``quoted_name`` is a ``str`` subclass, which the sqlite3 driver adapts through a slow
        path on every ``row_seal`` row it binds; its ``repr`` in a seal's content is the same)."""
        return str(self.table.name)

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
    UnitKind(_t(m.Response), "id", (Child(_t(m.ResponseItem), "response_id", ("item",)),)),
    UnitKind(_t(m.Recording), "id", late=("timepoint_id",)),  # 0019
    UnitKind(_t(m.RecordingWindow), "id"),
    UnitKind(_t(m.Transcript), "id"),
    UnitKind(_t(m.Derivation), "id"),
    UnitKind(_t(m.DerivedScore), "id"),  # 0023: a unit of its own (scheme 2)
    UnitKind(_t(m.DerivedHrv), "id", late=("n_gaps", "gap_s", "gaps_json")),  # 0009
    UnitKind(_t(m.DerivedStory), "id", (Child(_t(m.DerivedSentence), "story_id", ("position",)),)),
    UnitKind(_t(m.User), "id"),
    UnitKind(_t(m.RoleAssignment), "id"),
    UnitKind(_t(m.Setting), "key"),
    UnitKind(_t(m.RedcapLayout), "study_id"),
    UnitKind(_t(m.FormScoring), "id"),
    UnitKind(_t(m.ConsentText), "id"),  # 0012
    UnitKind(_t(m.ParticipantLink), "id"),  # 0012
    UnitKind(_t(m.WorkerAccess), "id"),  # 0014
    UnitKind(
        _t(m.PracticeStory), "id", (Child(_t(m.PracticeSentence), "story_id", ("position",)),)
    ),  # 0014
    UnitKind(_t(m.Disagreement), "id"),  # 0014
)
BY_NAME: dict[str, UnitKind] = {k.name: k for k in KINDS}
#: The seal scheme :data:`KINDS` make: 2 since revision 0023 (derived scores sealed one by one).
SCHEME = 2
#: The kinds of seal scheme 1 (before revision 0023): a derivation run's scores were child rows
#: of the run's unit, ordered by response and score name.
LEGACY_KINDS: tuple[UnitKind, ...] = tuple(
    UnitKind(
        _t(m.Derivation),
        "id",
        (Child(_t(m.DerivedScore), "derivation_id", ("response_id", "name")),),
    )
    if k.name == "derivation"
    else k
    for k in KINDS
    if k.name != "derived_score"
)


def kinds_of(scheme: int) -> tuple[UnitKind, ...]:
    """The sealed kinds of seal scheme ``scheme`` (1: before revision 0023; 2: now)."""
    return KINDS if scheme >= SCHEME else LEGACY_KINDS


#: Table name -> (its kind, the column of that table holding the unit key).
UNIT_OF: dict[str, tuple[UnitKind, str]] = {
    **{k.name: (k, k.key) for k in KINDS},
    **{c.table.name: (k, c.parent) for k in KINDS for c in k.children},
}
#: Child table name -> its :class:`Child`.
CHILD: dict[str, Child] = {c.table.name: c for k in KINDS for c in k.children}
#: ``id`` of a kind (of either scheme) -> the sort key of each child table's rows (its ``order``
#: columns).
_ORDER_BY: dict[int, list[Callable[[Row], Any]]] = {
    id(k): [itemgetter(*c.order_at) for c in k.children] for k in (*KINDS, *LEGACY_KINDS)
}
#: Tables deliberately left unsealed (a test checks every table is in one of the two). The web
#: app's sessions, failed sign-ins and API tokens change on every request (last use) and hold no
#: study data: sealing them would append an audit entry per page view. Sessions and tokens
#: carry a MAC under the vault key instead (``token_mac``), so a row written with SQL is none.
#: ``catalog_revision`` holds one random token, no data (a cache's validity, see
#: :mod:`peerlens.study._catalog_cache`).
UNSEALED = frozenset(
    {
        "audit_log",
        "row_seal",
        "alembic_version",
        "web_session",
        "login_failure",
        "api_token",
        "catalog_revision",
    }
)


def _time(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite hands times back as the text SQLAlchemy stored
        if len(value) == 26 and value[10] == " ":  # its format: UTC, always microseconds
            return f"{value[:10]}T{value[11:]}+00:00"
        return ("!", value)  # stored in another form than peerlens writes
    if isinstance(value, dt.datetime):
        return as_utc(value).isoformat(timespec="microseconds")  # type: ignore[union-attr]
    if isinstance(value, dt.date):
        return value.isoformat()
    return ("!", repr(value))


def _hex(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return ("!", repr(value))


# Values the database holds that are not of their column's type (written outside peerlens, e.g.
# text in a number column on SQLite) become ("!", repr) so they never equal a lawful value.


def _bool(value: Any) -> Any:
    if value is None or value.__class__ is bool:
        return value
    if value.__class__ is int and value in (0, 1):  # SQLite keeps booleans as 0/1
        return bool(value)
    return ("!", repr(value))


def _float(value: Any) -> Any:
    # -0.0 is 0.0 (``+ 0.0``): SQLite stores -0.0 as 0.0, PostgreSQL keeps it; every other
    # value is unchanged, so units that never held -0.0 keep the content they were sealed with.
    if value is None:
        return value
    if value.__class__ is float:
        return value + 0.0
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value) + 0.0
    return ("!", repr(value))


def _int(value: Any) -> Any:
    if value is None or value.__class__ is int:
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return ("!", repr(value))


def _str(value: Any) -> Any:
    if value is None or value.__class__ is str:
        return value
    return str(value) if isinstance(value, str) else ("!", repr(value))


def _converter(column: Column[Any]) -> Callable[[Any], Any]:
    ctype = column.type
    if isinstance(ctype, DateTime | Date):
        return _time
    if isinstance(ctype, LargeBinary):
        return _hex
    if isinstance(ctype, Boolean):
        return _bool
    if isinstance(ctype, Float):
        return _float
    if isinstance(ctype, Integer):
        return _int
    return _str


#: Converters that give back unchanged every value of one class (and None; ``_float`` all but
#: -0.0, which :func:`canon_rows` looks for).
_IDENTITY_ON: dict[Callable[[Any], Any], type] = {_bool: bool, _float: float, _int: int, _str: str}


def canon_rows(columns: Sequence[Column[Any]], rows: Sequence[Sequence[Any]]) -> list[Row]:
    """Every row of ``rows`` (values of ``columns``) in its canonical form (each value through
    its column's converter), converted a column at a time.

    A column whose values are all None or of the one class its converter leaves unchanged (rows a
    bulk insert writes, rows read back from the database) is taken as it is, without a call per
    value."""
    if not rows:
        return []
    none = type(None)
    out: list[Sequence[Any]] = []
    converted = False
    for values, column in zip(zip(*rows, strict=True), columns, strict=True):
        convert = _converter(column)
        same = _IDENTITY_ON.get(convert)
        if (
            same is not None
            and set(map(type, values)) <= {same, none}
            and not (same is float and _negative_zero(values))  # _float makes -0.0 0.0
        ):
            out.append(values)
        else:
            out.append(list(map(convert, values)))
            converted = True
    if not converted and set(map(type, rows)) == {tuple}:
        return cast(list[Row], list(rows))  # every value as it was: the rows themselves
    return list(zip(*out, strict=True))


def _negative_zero(values: Sequence[float | None]) -> bool:
    """Whether ``values`` (floats and None) hold -0.0 (checked only among the zeros: item
    values are often 0, and most columns hold no zero at all)."""
    if 0.0 not in values:
        return False
    return any(math.copysign(1.0, v) < 0 for v in values if v == 0.0)


def head_rows(kind: UnitKind, rows: Sequence[Sequence[Any]]) -> list[Row]:
    """Head rows of ``kind`` (every column, in the table's order) in their canonical form, each
    row's late columns appended only when one of them holds a value."""
    columns = list(kind.table.c)
    late = [i for i, c in enumerate(columns) if c.name in kind.late]
    if not late:
        return canon_rows(columns, rows)
    early = [i for i in range(len(columns)) if i not in late]
    firsts = canon_rows([columns[i] for i in early], [[r[i] for i in early] for r in rows])
    lates = canon_rows([columns[i] for i in late], [[r[i] for i in late] for r in rows])
    names = tuple(columns[i].name for i in late)
    return [
        head
        if all(v is None for v in then)
        else (*head, ("late", tuple(zip(names, then, strict=True))))
        for head, then in zip(firsts, lates, strict=True)
    ]


def unit_text(key: Any) -> str:
    """A unit key as stored in ``row_seal.unit``."""
    return str(key)


def content(
    kind: UnitKind,
    head: Row,
    children: Sequence[Iterable[Row]],
    tails: Sequence[dict[Row, str]] | None = None,
) -> bytes:
    """The canonical content of one unit from its canonical head row and child rows.

    ``tails`` (one dict per child table, kept across the units of one batch) lets the text of
    child rows be put together from parts already written out (see :func:`_rows_repr`); the
    bytes are those of ``repr`` in any case."""
    parts = [repr(kind.name), repr(head)]
    for i, (order, rows) in enumerate(zip(_ORDER_BY[id(kind)], children, strict=True)):
        ordered = sorted(rows, key=order)
        parts.append(repr(ordered) if tails is None else _rows_repr(ordered, tails[i]))
    # repr of the list [kind, head, child rows...], written out a part at a time.
    return ("[" + ", ".join(parts) + "]").encode("utf-8", "surrogatepass")


def _rows_repr(rows: Sequence[Row], tails: dict[Row, str]) -> str:
    """``repr(list(rows))`` for canonical child rows, each row's text after its first value
    taken from ``tails`` once written.

    A unit's child rows repeat a few tails down a batch (an item's name and one of its few
    values) and share their first value (the parent key): writing each tail out once made
    sealing an import's responses twice as fast as ``repr`` of every row. Equal canonical
    tails have equal ``repr``: each column holds values of one class (:func:`canon_rows`)
    and -0.0 is never among them."""
    out = []
    last: Any = _NOTHING
    start = ""
    for row in rows:
        if row.__class__ is not tuple or len(row) < 3:  # ("x",) and (a, b,)-shaped tails
            out.append(repr(row))
            continue
        first = row[0]
        if first is not last:
            last, start = first, "(" + repr(first)
        tail = row[1:]
        text = tails.get(tail)
        if text is None:
            text = tails[tail] = ", " + repr(tail)[1:]
        out.append(start + text)
    return "[" + ", ".join(out) + "]"


_NOTHING = object()


def contents(
    session: Session,
    kind: UnitKind,
    keys: Iterable[Any] | None = None,
    *,
    known_children: Mapping[Any, Sequence[Iterable[Row]]] | None = None,
    lock: bool = False,
) -> Iterator[tuple[str, bytes]]:
    """``(unit, canonical content)`` of each unit of ``kind`` that exists (all units when
    ``keys`` is None).

    ``known_children`` gives the complete child rows (canonical) of some units, e.g. those a bulk
    insert has just written; only their head rows are then read. ``lock`` (named ``keys`` only;
    on PostgreSQL) locks the rows read until the transaction ends (:data:`ROW_LOCK`)."""
    if keys is None:
        yield from _contents(session, kind, None, known_children or {}, False)
        return
    wanted = sorted(set(keys))
    for i in range(0, len(wanted), _CHUNK):
        yield from _contents(session, kind, wanted[i : i + _CHUNK], known_children or {}, lock)


#: The row lock (PostgreSQL) a write's check takes on the rows of the units it checks, until the
#: transaction ends: any other transaction's UPDATE or DELETE of them waits for it. Not ``FOR
#: UPDATE``: that would also make the foreign-key checks of rows inserted elsewhere that refer to
#: a locked row wait (a derivation's scores referring to a response being saved), and the saving
#: transaction, which then waits for the audit chain's lock the derivation holds, deadlock with
#: it. Child rows inserted for a unit meanwhile are found otherwise (see
#: :func:`peerlens.study.integrity.check_units`).
ROW_LOCK = "FOR NO KEY UPDATE"


def _contents(
    session: Session,
    kind: UnitKind,
    chunk: Sequence[Any] | None,
    known: Mapping[Any, Sequence[Iterable[Row]]],
    lock: bool,
) -> Iterator[tuple[str, bytes]]:
    locked = lock and chunk is not None and session.get_bind().dialect.name == "postgresql"
    row_lock = ROW_LOCK if locked else ""
    heads = _fetch_among(session, list(kind.table.c), kind.key_column(), chunk, row_lock)
    read = [k for k in chunk if k not in known] if chunk is not None else None
    parts: list[dict[Any, list[Row]]] = []
    for child in kind.children:
        grouped: dict[Any, list[Row]] = {}
        if read is None or read:
            cols = child.columns
            rows = _fetch_among(session, cols, child.table.c[child.parent], read, row_lock)
            grouped = _by_parent(child, rows)
        parts.append(grouped)
    yield from _assembled(kind, heads, parts, known)


def _by_parent(child: Child, rows: Sequence[Sequence[Any]]) -> dict[Any, list[Row]]:
    """Child rows (values of ``child.columns``) in canonical form, grouped by their parent key."""
    at = child.columns.index(child.table.c[child.parent])
    grouped: dict[Any, list[Row]] = {}
    for row in canon_rows(child.columns, rows):
        grouped.setdefault(row[at], []).append(row)
    return grouped


def _assembled(
    kind: UnitKind,
    heads: Sequence[Sequence[Any]],
    parts: Sequence[Mapping[Any, list[Row]]],
    known: Mapping[Any, Sequence[Iterable[Row]]],
) -> Iterator[tuple[str, bytes]]:
    """``(unit, content)`` of each head row of ``heads`` (every column, as read) with its child
    rows (``parts``: per child table, canonical rows by parent key; ``known`` for some units)."""
    at_key = list(kind.table.c).index(kind.key_column())
    tails: list[dict[Row, str]] = [{} for _ in kind.children]
    for row in head_rows(kind, heads):
        key = row[at_key]
        given = known.get(key)
        children = given if given is not None else [p.get(key, ()) for p in parts]
        yield unit_text(key), content(kind, row, children, tails)


def read_tables(session: Session, kind: UnitKind) -> dict[str, list[Row]]:
    """Every row of ``kind``'s head and child tables (every column, as the driver returns it),
    by table name: what :func:`contents_of` makes the units of ``kind``, or of any other kind
    made of those tables (another seal scheme's), from."""
    tables = [kind.table, *(c.table for c in kind.children)]
    return {str(t.name): _fetch(session, select(*t.c)) for t in tables}


def contents_of(
    kind: UnitKind, tables: Mapping[str, Sequence[Sequence[Any]]]
) -> Iterator[tuple[str, bytes]]:
    """``(unit, canonical content)`` of every unit of ``kind`` from rows :func:`read_tables`
    read (the same as :func:`contents` gives from the database)."""
    parts = []
    for child in kind.children:
        every = list(child.table.c)
        pick = [every.index(c) for c in child.columns]
        rows = tables[child.table.name]
        if pick != list(range(len(every))):
            rows = [[r[i] for i in pick] for r in rows]
        parts.append(_by_parent(child, rows))
    yield from _assembled(kind, tables[kind.name], parts, {})


def _among(column: Column[Any], keys: Sequence[Any]) -> Any:
    """``column IN keys``, as a range when ``keys`` are consecutive integers (new rows are)."""
    first, last = keys[0], keys[-1]
    if isinstance(first, int) and isinstance(last, int) and last - first + 1 == len(keys):
        return column.between(first, last)
    return column.in_(keys)


#: The most keys a query for named units is prepared (and kept) for; more are written out.
_PREPARED_KEYS = 64
#: (dialect, columns, key column, shape) -> the SQL and its parameter names in order.
_PREPARED: dict[tuple[Any, ...], tuple[str, tuple[str, ...]]] = {}


def _fetch_among(
    session: Session,
    columns: Sequence[Column[Any]],
    column: Column[Any],
    keys: Sequence[Any] | None,
    lock: str = "",
) -> list[tuple[Any, ...]]:
    """Rows of ``columns`` whose ``column`` is among ``keys`` (every row when None), as
    :func:`_fetch` gives them; ``lock`` is a row-locking clause to end the query with
    (PostgreSQL: ``"FOR NO KEY UPDATE"``, ``"FOR UPDATE"``) or ``""``.

    A few keys (a page request's units) are looked up with SQL compiled once per process and
    shape (a range, or so many keys) and given parameters, not compiled afresh every time."""
    stmt = select(*columns)
    if keys is None:
        return _fetch(session, stmt)
    if len(keys) > _PREPARED_KEYS:
        return _fetch(session, stmt.where(_among(column, keys)), lock)
    first, last = keys[0], keys[-1]
    ranged = isinstance(first, int) and isinstance(last, int) and last - first + 1 == len(keys)
    params = [first, last] if ranged else list(keys)
    conn = session.connection()
    shape = (
        conn.dialect.name,
        tuple((c.table.name, c.name) for c in columns),
        (column.table.name, column.name),
        "range" if ranged else len(keys),
    )
    prepared = _PREPARED.get(shape)
    if prepared is None:
        names = [f"k{i}" for i in range(len(params))]
        where = (
            column.between(bindparam(names[0]), bindparam(names[1]))
            if ranged
            else column.in_([bindparam(n) for n in names])
        )
        compiled = stmt.where(where).compile(dialect=conn.dialect)
        order = tuple(compiled.positiontup or ())
        prepared = _PREPARED[shape] = (str(compiled), order)
    sql, order = prepared
    sql = f"{sql} {lock}" if lock else sql
    given = dict(zip([f"k{i}" for i in range(len(params))], params, strict=True))
    args: Any = [given[n] for n in order] if order else given
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, args)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _fetch(session: Session, stmt: Select[Any], lock: str = "") -> list[tuple[Any, ...]]:
    """Every row of ``stmt`` (ended with the row-locking clause ``lock``) as the driver returns
    it (no SQLAlchemy row objects or type processing: sealing reads whole tables;
    :func:`canon_rows` makes the values canonical)."""
    conn = session.connection()
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    sql = f"{sql} {lock}" if lock else sql
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()


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


def seal_of(seal_key: bytes, data: bytes) -> bytes:
    """The row seal of a unit's canonical content."""
    return _hmac_sha256(seal_key, data)


def tally_of(tally_key: bytes, seal: bytes) -> int:
    """The tally of one seal (a 256-bit integer only the key holder can compute)."""
    return int.from_bytes(_hmac_sha256(tally_key, seal), "big")


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 of ``message`` under ``key``: the same bytes as ``hmac.digest(key, message,
    "sha256")`` (RFC 2104, as :mod:`hmac` computes it without OpenSSL's HMAC).

    The SHA-256 states after the key's inner and outer pads are made once per key and copied per
    message: ``hmac.digest`` sets the key up afresh on every call, which was half the cost of
    sealing an import's units and summing their tallies (two MACs per unit)."""
    inner, outer = _padded(key)
    h = inner.copy()
    h.update(message)
    out = outer.copy()
    out.update(h.digest())
    return out.digest()


#: A byte XORed with HMAC's inner and outer pad bytes (RFC 2104), for ``bytes.translate``.
_IPAD = bytes(b ^ 0x36 for b in range(256))
_OPAD = bytes(b ^ 0x5C for b in range(256))


@lru_cache(maxsize=8)  # a store's seal and tally keys (and those of a key rotation)
def _padded(key: bytes) -> tuple[Any, Any]:
    """SHA-256 states that have hashed ``key`` XOR the inner pad, and XOR the outer pad."""
    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    return hashlib.sha256(key.translate(_IPAD)), hashlib.sha256(key.translate(_OPAD))

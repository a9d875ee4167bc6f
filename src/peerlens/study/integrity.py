"""Tamper evidence for the data tables: row seals checkpointed in the audit chain.

The audit log's hash chain shows edits to the log; this module shows edits to the data. Every unit
of data (see :mod:`peerlens.study._seal_units`: a row, or a row with its child rows, such as a
response with its items) has a *seal* in ``row_seal``: an HMAC-SHA256 of its canonical content
under a key derived from the vault key, which never enters the database. Each transaction that
writes data reseals the units it touched and appends one ``data.seal`` audit entry holding, per
kind, the running number of seals and sum of their *tallies* (a second keyed MAC of each seal,
never stored, summed modulo 2^256), with an HMAC of those totals, the entry's ``seq`` and the
previous entry's hash under a third key: the public chain can be appended to by anyone, a seal
entry only with the key. So:

* a row changed or added behind peerlens's back no longer matches, or has no, seal;
* a row removed leaves its seal without a row;
* a row removed together with its seal, or a unit rolled back to an older sealed version, changes
  the tally sums, which no longer add up to what the audit chain vouches for; and without the key
  nobody can compute the tally nor make a seal entry that vouches for other totals.

:func:`check_seals` names each such table and row. Writes are tracked without help from the
write paths: ORM flushes and ``session.execute`` of INSERT/UPDATE/DELETE statements are seen by
session events, and :func:`peerlens.study._bulk.bulk_insert` reports its rows; the seals are
brought up to date in :meth:`peerlens.study.storage.Store.transaction` just before it commits.
A write made outside those paths (a raw connection, a migration) is, by design, indistinguishable
from tampering: reseal deliberately with :func:`reseal_all` inside an audited operation.

The first write made with the key to a database that has no seals yet (a new database, or one
upgraded from before seals) seals every unit it holds and records the totals as ``data.reseal``;
if the audit chain already holds seal entries, that first-seal step is refused (someone removed
the seals). Key rotation reseals everything under the new key, also as ``data.reseal``.
"""

from __future__ import annotations

import hashlib
import hmac
import operator
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

from sqlalchemy import Result, Table, any_, delete, event, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, ColumnElement
from sqlalchemy.sql.operators import in_op

from peerlens.study import audit
from peerlens.study._bulk import bulk_insert
from peerlens.study._gc_pause import collection_paused
from peerlens.study._seal_units import (
    BY_NAME,
    CHILD,
    KINDS,
    MODULUS,
    ROW_LOCK,
    SCHEME,
    UNIT_OF,
    Row,
    UnitKind,
    canon_rows,
    contents,
    contents_of,
    kinds_of,
    orphans,
    read_tables,
    seal_of,
    tally_of,
    unit_text,
)
from peerlens.study.errors import TamperedError
from peerlens.study.models import AuditLog, Recording, RowSeal
from peerlens.study.vault import VaultKey

#: ``session.info`` key of a transaction's :class:`Tracker`.
TRACKER_KEY = "peerlens_seal_tracker"
SEAL_ACTION = "data.seal"
RESEAL_ACTION = "data.reseal"


@dataclass
class Tracker:
    """What a transaction wrote, per kind of unit.

    ``touched`` are the units to reseal. ``new`` are units whose head row the transaction
    inserted; ``known`` holds the child rows bulk inserts wrote for a unit (canonical), which are
    all of its child rows when the unit is new and no other write touched its children
    (``children_dirty``): then only its head row is read back to seal it.
    """

    touched: dict[str, set[Any]] = field(default_factory=dict)
    new: dict[str, set[Any]] = field(default_factory=dict)
    children_dirty: dict[str, set[Any]] = field(default_factory=dict)
    known: dict[str, dict[Any, list[list[Row]]]] = field(default_factory=dict)
    #: Units whose stored content was checked against their seal before this transaction
    #: changed them.
    checked: dict[str, set[Any]] = field(default_factory=dict)
    #: Whether the database's seal scheme was made sure of (:func:`ensure_scheme`) before the
    #: transaction's first write to a sealed table.
    scheme_ensured: bool = False
    #: PostgreSQL: per kind with child rows, per unit checked before a change, the transaction
    #: ids (``xmin``) of the child rows it had when checked (see :func:`check_units`).
    child_xmins: dict[str, dict[Any, set[str]]] = field(default_factory=dict)

    def add(self, kind: UnitKind, keys: Iterable[Any], *, child: bool = False) -> None:
        """Note ``keys`` of ``kind`` as touched (through a child table's rows: ``child``)."""
        keys = [k for k in keys if k is not None]
        self.touched.setdefault(kind.name, set()).update(keys)
        if child:
            self.children_dirty.setdefault(kind.name, set()).update(keys)

    def add_new(self, kind: UnitKind, keys: Iterable[Any]) -> None:
        """Note ``keys`` of ``kind`` as units whose head row was inserted."""
        keys = [k for k in keys if k is not None]
        self.touched.setdefault(kind.name, set()).update(keys)
        self.new.setdefault(kind.name, set()).update(keys)

    def known_children(self, kind: UnitKind, keys: Iterable[Any]) -> dict[Any, list[list[Row]]]:
        """The complete child rows of those of ``keys`` whose children only bulk inserts wrote."""
        if not kind.children:
            return {}
        new = self.new.get(kind.name, set())
        dirty = self.children_dirty.get(kind.name, set())
        rows = self.known.get(kind.name, {})
        empty: list[list[Row]] = [[] for _ in kind.children]
        return {k: rows.get(k, empty) for k in keys if k in new and k not in dirty}

    def clear(self) -> None:
        """Forget everything (after sealing)."""
        for part in (
            self.touched,
            self.new,
            self.children_dirty,
            self.known,
            self.checked,
            self.child_xmins,
        ):
            part.clear()

    def __bool__(self) -> bool:
        return any(self.touched.values())


def start(session: Session) -> Tracker:
    """Begin tracking the writes of ``session``'s transaction."""
    tracker = Tracker()
    session.info[TRACKER_KEY] = tracker
    return tracker


def _tracker(session: Session) -> Tracker | None:
    tracker = session.info.get(TRACKER_KEY)
    return tracker if isinstance(tracker, Tracker) else None


# ----------------------------------------------------------------------------- tracking writes


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    tracker = _tracker(session)
    if tracker is None:
        return
    for obj in (*session.dirty, *session.deleted, *session.new):
        name = getattr(getattr(obj, "__table__", None), "name", None)
        if name not in UNIT_OF:
            continue
        # No scheme upgrade inside a flush (it writes itself): the ORM writes no derived
        # score, the one kind the schemes differ in, so its checks are the same under both;
        # the upgrade then runs at the next statement's write or before sealing (_settle).
        kind, column = UNIT_OF[name]
        if obj in session.new and name == kind.name:
            continue  # a new unit: nothing stored to check
        if obj in session.dirty and not session.is_modified(obj):
            continue
        from sqlalchemy import inspect

        keys = [getattr(obj, column), *inspect(obj).attrs[column].history.deleted]
        check_before_change(session, kind, keys)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    tracker = _tracker(session)
    if tracker is None:
        return
    from sqlalchemy import inspect

    for group, objs in (("new", session.new), ("old", (*session.dirty, *session.deleted))):
        for obj in objs:
            name = getattr(getattr(obj, "__table__", None), "name", None)
            if name not in UNIT_OF:
                continue
            kind, column = UNIT_OF[name]
            keys = [getattr(obj, column), *inspect(obj).attrs[column].history.deleted]
            if group == "new" and name == kind.name:
                tracker.add_new(kind, keys)
            else:
                tracker.add(kind, keys, child=name != kind.name)


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> Result[Any] | None:
    tracker = _tracker(state.session)
    if tracker is None or not (state.is_insert or state.is_update or state.is_delete):
        return None
    table = getattr(state.statement, "table", None)
    if not isinstance(table, Table) or table.name not in UNIT_OF:
        return None
    ensure_scheme(state.session)
    kind, column = UNIT_OF[table.name]
    child = table.name != kind.name
    if state.is_insert:
        params: Any = state.parameters
        rows: list[Any] = params if isinstance(params, list) else [params or {}]
        if rows and all(column in r for r in rows):
            keys = [r[column] for r in rows]
            if child:
                check_before_change(state.session, kind, keys)
                tracker.add(kind, keys, child=True)
            else:
                tracker.add_new(kind, keys)
            return None
        if child:
            raise ValueError(f"an INSERT into {table.name} must give {column}")
        # The database assigns the keys: learn exactly those from the statement itself. Rows
        # above some earlier largest key may be other connections' (or added with SQL) on
        # PostgreSQL, and are never this transaction's to seal.
        returning = state.statement.returning(table.c[column])  # type: ignore[attr-defined]
        result = state.invoke_statement(statement=returning)
        frozen = result.freeze()
        tracker.add_new(kind, (row[-1] for row in frozen.data))
        return frozen()
    where = state.statement.whereclause  # type: ignore[attr-defined]
    named = _keys_in(where, table.c[column])
    if named is None:
        named = _lock_targets(state, table, column, where)
    check_before_change(state.session, kind, named)
    tracker.add(kind, named, child=child)
    return None


def _lock_targets(
    state: ORMExecuteState, table: Table, column: str, where: ColumnElement[Any] | None
) -> list[Any]:
    """The units an UPDATE or DELETE without named keys will touch, found before it runs.

    On PostgreSQL each statement of a READ COMMITTED transaction sees what others committed
    before it started, so the statement could touch rows committed after this look-up, which
    would then be neither checked nor resealed. So the rows are locked here (as the statement
    would lock them) and the statement is narrowed to them: it acts as if it had run at the
    look-up, and rows committed since are left alone.
    """
    key = table.c[column]
    if state.session.get_bind().dialect.name != "postgresql":
        stmt = select(key).distinct()
        if where is not None:
            stmt = stmt.where(where)
        return list(state.session.execute(stmt).scalars())
    stmt = select(key).with_for_update(of=table, key_share=state.is_update)
    if where is not None:
        stmt = stmt.where(where)
    named = sorted(set(state.session.execute(stmt).scalars()))
    only = key == any_(literal(named, type_=ARRAY(key.type)))
    state.statement = state.statement.where(only)  # type: ignore[attr-defined]
    return named


def check_before_change(session: Session, kind: UnitKind, keys: Iterable[Any]) -> None:
    """Refuse to change units of ``kind`` whose stored content no longer matches their seal
    (changed, added or removed outside peerlens): resealing them would launder the tampering.

    Each unit is checked once per transaction, before its first change; new units and
    databases not sealed yet are not checked.

    Raises
    ------
    TamperedError
        Naming the table and row; nothing is changed (the transaction rolls back).
    """
    tracker = _tracker(session)
    if tracker is None:
        return
    done = tracker.checked.setdefault(kind.name, set())
    new = tracker.new.get(kind.name, set())
    todo = {k for k in keys if k is not None and k not in done and k not in new}
    if todo:
        done.update(todo)
        check_units(session, kind, todo, required=True, lock=True)


def ensure_scheme(session: Session) -> None:
    """Before a transaction's first write to a sealed table, bring a database sealed under an
    older seal scheme (see :mod:`peerlens.study._seal_units`: before revision 0023 a derivation
    run's scores were sealed with the run; or sealed before seal entries were keyed) to the
    current one: every unit is checked under the scheme the audit chain vouches for, and only
    when nothing is amiss is everything resealed under the current scheme (``data.reseal``).

    It runs before the transaction has changed any sealed row, so what it checks and reseals is
    exactly what the transaction found; the transaction's own writes are then checked and
    sealed as usual. Known current per store once seen (a scheme never goes back).

    Raises
    ------
    TamperedError
        Something was changed outside peerlens under the old scheme: nothing is resealed.
    VaultKeyError
        No usable vault key (a write needs it anyway).
    """
    tracker = _tracker(session)
    if tracker is None or tracker.scheme_ensured:
        return
    tracker.scheme_ensured = True  # first: the upgrade below writes to sealed tables itself
    from peerlens.study.storage import STORE_KEY

    store = session.info.get(STORE_KEY)
    if store is None or getattr(store, "_scheme_current", False):
        return
    with session.no_autoflush:
        if not sealed_before(session):
            return  # the first write seals everything under the current scheme
        key = store.vault_key(session)
        session.flush()  # the key's first use may record its check value (tracked, as touched)
        latest = _seal_entries(session, key, latest=True)
        if not latest or latest[0].keyed_ok is False:
            return  # sealing refuses an entry not made with the key (_latest_totals)
        if latest[0].keyed_ok and latest[0].scheme == SCHEME:
            store._scheme_current = True
            return
        # Units this transaction already wrote were checked before it changed them (a flush
        # comes first only for kinds both schemes seal alike; their rows are locked since) and
        # are sealed anew below.
        skip = {name: {unit_text(k) for k in keys} for name, keys in tracker.touched.items()}
        # Every unit is read once: checked under the old scheme and sealed under the current
        # one from the same rows, so what is sealed is exactly what was checked (a row changed
        # with SQL after this read keeps its old content's seal, and is named).
        found = check_seals(session, key, skip=skip, seal_with=key)
        # One upgrade at a time: lawful writers seal holding the chain's lock, so while it is
        # held nothing is sealed but by this transaction. When a seal entry was appended since
        # the check began, another writer upgraded (done: this one has nothing to do) or sealed
        # meanwhile (checked again, now that nothing can be half-seen).
        audit.lock_chain(session)
        now = _seal_entries(session, key, latest=True)
        if not now or now[0].seq != latest[0].seq:
            if now and now[0].keyed_ok and now[0].scheme == SCHEME:
                store._scheme_current = True
                return
            latest = now
            found = check_seals(session, key, skip=skip, seal_with=key)
        if found.problems:
            raise TamperedError(
                f"{len(found.problems)} problem(s) found by the row seals, e.g. "
                f"{found.problems[0]}; nothing was done. Run `peerlens audit verify`"
            )
        if found.seals is None:  # the chain's seal entries are gone (only SQL removes them)
            raise TamperedError(
                "the audit log's seal entries were removed outside peerlens; nothing was done. "
                "Run `peerlens audit verify`"
            )
        # Inside audit.appended_late the reseal's entry must still be appended at once: its
        # MAC binds the seq it is written at.
        reason = (
            "seal entries keyed (upgrade)"
            if latest and latest[0].keyed_ok is None
            else "seal scheme upgraded (derived scores sealed one by one)"
        )
        with audit.appended_at_once(session):
            reseal_all(session, key, actor=_actor(session), reason=reason, checked=found)


def check_units(
    session: Session,
    kind: UnitKind,
    keys: Iterable[Any],
    *,
    required: bool = False,
    lock: bool = False,
) -> None:
    """Raise :class:`TamperedError` when a unit of ``kind`` among ``keys`` was changed, added or
    removed outside peerlens (checked against its seal with the vault key).

    Nothing is checked in a database not sealed yet, nor without a key unless ``required`` (a
    write needs the key anyway; reading rights without the key is allowed, see
    docs/security.md). With ``lock`` (a write about to change them), the units' rows are locked
    on PostgreSQL by the statements that read them for the check, until the transaction ends
    (:data:`~peerlens.study._seal_units.ROW_LOCK`): nobody else can change or delete them
    between the check and the seal made of them at commit, which is then of what was checked
    and of this transaction's own changes only (under READ COMMITTED the seal reads the rows
    again, and would otherwise seal whatever was committed meanwhile). A child row inserted
    meanwhile for such a unit cannot be kept out by a lock; the transaction ids of its child
    rows are noted at the check, and sealing refuses a unit holding a child row written since
    by another transaction (:func:`_refuse_rows_added_meanwhile`). SQLite needs neither: a
    writing transaction holds the database's write lock from its start."""
    todo = sorted({k for k in keys if k is not None})
    if not todo:
        return
    from peerlens.study.storage import STORE_KEY
    from peerlens.study.vault import VaultKeyError

    store = session.info.get(STORE_KEY)
    if store is None:
        return
    with session.no_autoflush:
        if not sealed_before(session):
            return
        try:
            key = store.vault_key(session)
        except VaultKeyError:
            if required:
                raise
            return
        problem = _consistently(session, lambda: _unit_problem(session, key, kind, todo, lock))
        if problem is not None:
            raise TamperedError(
                f"{problem} outside peerlens since peerlens last wrote it; nothing was done. "
                "Run `peerlens audit verify` and restore it first"
            )


def _consistently(session: Session, check: Any) -> Any:
    """``check()``'s finding, made sure of on PostgreSQL.

    A check reads seals and rows in separate statements, and under READ COMMITTED each sees
    what others committed before it began: a lawful write committed in between (its rows and
    seals at once) looks like tampering. Lawful writers seal and commit holding the audit
    chain's lock, so a finding is checked again holding that lock, when no lawful write can be
    half-seen. Only a finding costs the lock; SQLite's writers are serialised already."""
    found = check()
    if found is None or session.get_bind().dialect.name != "postgresql":
        return found
    audit.lock_chain(session)
    return check()


def _unit_problem(
    session: Session, key: VaultKey, kind: UnitKind, todo: list[Any], lock: bool = False
) -> str | None:
    """How the first unit of ``todo`` that does not match its seal differs ("<where> was
    changed"), or None; ``lock``: lock their rows (see :func:`check_units`).

    The rows are read (and locked) before the seals: a lawful writer whose lock the read waited
    for has committed its seals by then."""
    if lock and kind.children and session.get_bind().dialect.name == "postgresql":
        _note_child_versions(session, kind, todo)
    found = list(contents(session, kind, todo, lock=lock))
    stored = _stored(session, kind, [unit_text(k) for k in todo])
    present: set[str] = set()
    for unit, data in found:
        present.add(unit)
        if stored.get(unit) != seal_of(key.seal_key, data):
            why = "added" if unit not in stored else "changed"
            return f"{_where(kind, unit)} was {why}"
    for unit in sorted(set(stored) - present):
        return f"{_where(kind, unit)} was removed"
    return None


def _child_versions(
    session: Session, kind: UnitKind, keys: Sequence[Any], *, lock: bool = False, others: bool
) -> list[tuple[Any, str]]:
    """PostgreSQL: ``(unit key, xmin)`` of the child rows of ``kind``'s units ``keys`` (only
    those another transaction wrote: ``others``), locking them with ``lock``."""
    out: list[tuple[Any, str]] = []
    driver = session.connection().connection.driver_connection
    for child in kind.children:
        parent = child.table.c[child.parent].name
        sql = (
            f"SELECT {parent}, xmin::text FROM {child.table.name} WHERE {parent} = ANY(%(k)s)"
            + (" AND xmin <> pg_current_xact_id()::xid" if others else "")
            + (f" {ROW_LOCK}" if lock else "")
        )
        with driver.cursor() as cur:  # type: ignore[union-attr]
            cur.execute(sql, {"k": list(keys)}, prepare=False)
            out.extend((k, x) for k, x in cur.fetchall())
    return out


def _note_child_versions(session: Session, kind: UnitKind, keys: Sequence[Any]) -> None:
    """Before units ``keys`` are checked for a change (PostgreSQL): lock their child rows and
    note the transactions that wrote them (a child row inserted after this is either read by
    the check, and checked, or written by a transaction not noted here)."""
    tracker = _tracker(session)
    if tracker is None:
        return
    noted = tracker.child_xmins.setdefault(kind.name, {})
    for k in keys:
        noted.setdefault(k, set())
    for k, xmin in _child_versions(session, kind, keys, lock=True, others=False):
        noted[k].add(xmin)


def _refuse_rows_added_meanwhile(session: Session, kind: UnitKind, keys: Iterable[Any]) -> None:
    """Before units ``keys`` of ``kind`` are sealed (PostgreSQL): refuse when one that was
    checked before its change holds a child row that neither this transaction wrote nor was
    there when it was checked (inserted with SQL meanwhile; sealing it would launder it).

    Raises
    ------
    TamperedError
        Naming the table and unit; nothing is stored (the transaction rolls back).
    """
    tracker = _tracker(session)
    noted = None if tracker is None else tracker.child_xmins.get(kind.name)
    if not noted or session.get_bind().dialect.name != "postgresql":
        return
    held = sorted(k for k in keys if k in noted)
    if not held:
        return
    for k, xmin in _child_versions(session, kind, held, others=True):
        if xmin not in noted[k]:
            raise TamperedError(
                f"{_where(kind, unit_text(k))} was changed outside peerlens (a row added to it) "
                "while this change was being made; nothing was done. Run `peerlens audit "
                "verify` and restore it first"
            )


def check_rights(session: Session, user_id: int) -> None:
    """Check the account row and role rows of user ``user_id`` against their seals before they
    are trusted (an account or role edited or added with SQL grants nothing), and the role table
    as a whole against the totals the audit chain vouches for (a revoked role put back with its
    old seal grants nothing either)."""
    from peerlens.study.models import RoleAssignment

    check_units(session, BY_NAME["app_user"], [user_id])
    roles = session.execute(
        select(RoleAssignment.id).where(RoleAssignment.user_id == user_id)
    ).scalars()
    check_units(session, BY_NAME["role_assignment"], list(roles))
    check_kind_totals(session, BY_NAME["role_assignment"])


def check_kind_totals(session: Session, kind: UnitKind) -> None:
    """Raise :class:`TamperedError` when the seals of ``kind`` do not add up to the totals of the
    newest keyed seal entry (rows removed or put back with their seals), or that entry was not
    made with the key. Meant for small tables that confer rights; skipped without a key, before
    the first seal and before seal entries were keyed."""
    from peerlens.study.storage import STORE_KEY
    from peerlens.study.vault import VaultKeyError

    store = session.info.get(STORE_KEY)
    if store is None:
        return
    with session.no_autoflush:
        if not sealed_before(session):
            return
        try:
            key = store.vault_key(session)
        except VaultKeyError:
            return
        problem = _consistently(session, lambda: _totals_problem(session, key, kind))
        if problem is not None:
            raise TamperedError(problem)


def _totals_problem(session: Session, key: VaultKey, kind: UnitKind) -> str | None:
    """Why the seals of ``kind`` do not match the newest keyed seal entry, or None."""
    entries = _seal_entries(session, key, latest=True)
    if not entries or entries[0].keyed_ok is None:
        return None
    if not entries[0].keyed_ok or entries[0].totals is None:
        return _bad_entry(entries[0]) + "; nothing was done"
    count, tally = entries[0].totals.get(kind.name, [0, 0])
    macs = session.execute(select(RowSeal.mac).where(RowSeal.kind == kind.name)).scalars()
    have = [tally_of(key.tally_key, bytes(m)) for m in macs]
    if len(have) != count or sum(have) % MODULUS != tally:
        return (
            f"table {kind.name}: rows removed or put back with their seals outside peerlens "
            "(the seals do not add up to what the audit chain vouches for); nothing was "
            "done. Run `peerlens audit verify`"
        )
    return None


def _keys_in(where: ColumnElement[Any] | None, column: Any) -> list[Any] | None:
    """The key values a ``column == v`` or ``column IN (...)`` clause names, else None."""
    if not isinstance(where, BinaryExpression) or not where.left.compare(column):
        return None
    right = where.right
    if not isinstance(right, BindParameter):
        return None
    if where.operator is operator.eq:
        return [right.value]
    if where.operator is in_op and isinstance(right.value, list | tuple):
        return list(right.value)
    return None


def note_rows(
    session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> Iterable[Sequence[Any]]:
    """Track rows a bulk insert is about to write (pass them through this). Child rows that
    give every column are kept (canonical) to seal their unit without reading them back."""
    tracker = _tracker(session)
    spec = UNIT_OF.get(table.name)
    if tracker is None or spec is None:
        return rows
    ensure_scheme(session)
    kind, column = spec
    if column not in columns:  # keys the database assigns could not be told from others'
        raise ValueError(f"a bulk insert into {table.name} must give {column}")
    at = list(columns).index(column)
    touched = tracker.touched.setdefault(kind.name, set())
    if table.name == kind.name:
        return _noting(rows, at, touched, tracker.new.setdefault(kind.name, set()))
    # Child rows added to units stored before: each such unit is checked (and its rows locked)
    # before the insert, as any other change to it is.
    child = CHILD[table.name]
    index = kind.children.index(child)
    names = [c.name for c in child.columns]
    rows = rows if isinstance(rows, list) else list(rows)
    if not set(names) <= set(columns):
        parents = {r[at] for r in rows}
        check_before_change(session, kind, parents)
        touched.update(parents)
        tracker.children_dirty.setdefault(kind.name, set()).update(parents)
        return rows
    pick = [list(columns).index(n) for n in names]
    picked = rows if pick == list(range(len(columns))) else [[r[i] for i in pick] for r in rows]
    known = tracker.known.setdefault(kind.name, {})
    width = len(kind.children)
    # Rows of one unit are usually written one after another: group runs, not rows.
    heads: list[Any] = []
    for key, run in groupby(canon_rows(child.columns, picked), itemgetter(names.index(column))):
        heads.append(key)
        parts = known.get(key)
        if parts is None:
            parts = known[key] = [[] for _ in range(width)]
        parts[index].extend(run)
    check_before_change(session, kind, heads)
    touched.update(heads)
    return rows


def _noting(rows: Iterable[Sequence[Any]], at: int, *into: set[Any]) -> Iterator[Sequence[Any]]:
    """Pass ``rows`` through, adding each row's value at ``at`` to every set of ``into``."""
    for row in rows:
        for keys in into:
            keys.add(row[at])
        yield row


# --------------------------------------------------------------------------------- sealing


@dataclass(frozen=True)
class _Change:
    count: int
    tally: int


def settle(session: Session, key_of: Any) -> None:
    """Bring the seals of every unit ``session``'s transaction touched up to date and record the
    change in the audit chain (called by ``Store.transaction`` just before it commits).

    ``key_of(session)`` returns the vault key; it is called only when something was written.
    """
    tracker = _tracker(session)
    if tracker is None:
        return
    session.flush()
    if not tracker:
        return
    from peerlens.study._catalog_cache import note_changes

    note_changes(session, [name for name, keys in tracker.touched.items() if keys])
    with collection_paused():
        _settle(session, tracker, key_of)


def _settle(session: Session, tracker: Tracker, key_of: Any) -> None:
    key: VaultKey = key_of(session)
    session.flush()  # the key's first use may record its check value
    if not sealed_before(session):
        reseal_all(session, key, actor=_actor(session), reason="first seal of this database")
        return
    ensure_scheme(session)  # when only ORM flushes wrote (they do not upgrade, see _before_flush)
    if not any(tracker.touched.values()):
        tracker.clear()
        return
    totals = _latest_totals(session, key)
    if totals is None:  # the chain's seal entries are from before they were keyed
        found = _check_unkeyed(session, key, tracker)
        why = "seal entries keyed (upgrade)"
        reseal_all(session, key, actor=_actor(session), reason=why, checked=found)
        return
    changed = False
    for name, keys in sorted(tracker.touched.items()):
        if keys:
            kind = BY_NAME[name]
            change = _reseal(session, key, kind, keys, tracker.known_children(kind, keys))
            if change.count or change.tally:
                have = totals.setdefault(name, [0, 0])
                have[0] += change.count
                have[1] = (have[1] + change.tally) % MODULUS
                changed = True
    tracker.clear()
    if changed:
        _record_totals(session, key, SEAL_ACTION, _actor(session), totals, None)


def _actor(session: Session) -> str:
    return str(session.info.get(audit.ACTOR_KEY) or "peerlens")


def sealed_before(session: Session) -> bool:
    """Whether the audit chain already records seals (cached per store for the session's
    database; a first seal is made only when it does not)."""
    from peerlens.study.storage import STORE_KEY

    store = session.info.get(STORE_KEY)
    if store is not None and getattr(store, "_sealed", False):
        return True
    found = (
        session.execute(
            select(AuditLog.seq).where(AuditLog.action.in_((SEAL_ACTION, RESEAL_ACTION))).limit(1)
        ).first()
        is not None
    )
    if found and store is not None:
        store._sealed = True
    return found


def _stored(session: Session, kind: UnitKind, units: Sequence[str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        # One array parameter, not thousands of literals, and never a prepared statement: psycopg
        # prepares a statement on its sixth run on a connection, and PostgreSQL's generic plan for
        # it cannot hash a parameter array (only a constant one), so while row_seal's statistics
        # were stale (a table filled since its last ANALYZE) each seal of the kind was compared
        # with every unit looked up: 1 to 6 s per 2,000-participant import, growing with the
        # study (issue 9). Planned with its values, the array is hashed (or probed in the index).
        driver = conn.connection.driver_connection
        with driver.cursor() as cur:  # type: ignore[union-attr]
            cur.execute(
                "SELECT unit, mac FROM row_seal WHERE kind = %(k)s AND unit = ANY(%(u)s)",
                {"k": kind.name, "u": list(units)},
                prepare=False,
            )
            return {u: bytes(mac) for u, mac in cur.fetchall()}
    # SQLite: the driver's own statements, as many units per statement as it takes parameters
    # (compiling thousands of bound IN values through SQLAlchemy cost more than the look-ups).
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for i in range(0, len(units), _SQLITE_UNITS):
            chunk = units[i : i + _SQLITE_UNITS]
            cursor.execute(
                "SELECT unit, mac FROM row_seal WHERE kind = ? AND unit IN "
                f"({', '.join('?' * len(chunk))})",
                [kind.name, *chunk],
            )
            out.update((u, bytes(mac)) for u, mac in cursor.fetchall())
    finally:
        cursor.close()
    return out


#: Units looked up per statement on SQLite (its oldest limit is 999 parameters).
_SQLITE_UNITS = 998


def _reseal(
    session: Session,
    key: VaultKey,
    kind: UnitKind,
    keys: set[Any],
    known: dict[Any, list[list[Row]]],
) -> _Change:
    _refuse_rows_added_meanwhile(session, kind, keys)
    units = sorted(unit_text(k) for k in keys)
    old = _stored(session, kind, units)
    new = {
        u: seal_of(key.seal_key, c) for u, c in contents(session, kind, keys, known_children=known)
    }
    gone = [u for u in old if u not in new or new[u] != old[u]]
    added = [(kind.name, u, mac) for u, mac in new.items() if old.get(u) != mac]
    for i in range(0, len(gone), 5000):
        session.execute(
            delete(RowSeal).where(RowSeal.kind == kind.name, RowSeal.unit.in_(gone[i : i + 5000]))
        )
    if added:
        bulk_insert(session, RowSeal, ("kind", "unit", "mac"), added)
    tally = sum(tally_of(key.tally_key, mac) for _, _, mac in added)
    tally -= sum(tally_of(key.tally_key, old[u]) for u in gone)
    return _Change(len(new) - len(old), tally % MODULUS)


def reseal_all(
    session: Session,
    key: VaultKey,
    *,
    actor: str,
    reason: str,
    scheme: int = SCHEME,
    checked: SealReport | None = None,
) -> dict[str, int]:
    """Seal every unit afresh under ``key`` and record the totals in the audit chain as
    ``data.reseal`` (first seal of a database, key rotation, scheme upgrade); return seals per
    kind. ``scheme`` is the seal scheme to seal under (an older one only to make, in tests, a
    database as an older peerlens sealed it).

    ``checked``, a :func:`check_seals` report made with ``seal_with=key`` in this transaction,
    gives the seals of the units as that check read them: they are used as they are, and only
    the units this transaction has written (whose rows it locked when it checked them, see
    :func:`check_units`) are read again. So a unit changed outside peerlens since the check is
    not sealed as it is now, but as it was checked."""
    if not session._flushing:  # called from a flush hook (ensure_scheme): rows are read as stored
        session.flush()
    tracker = _tracker(session)
    if checked is not None and (checked.seals is None or checked.seal_key != key.seal_key):
        raise ValueError("reseal_all(checked=...) needs a check made with seal_with=key")
    session.execute(delete(RowSeal))
    totals: dict[str, list[Any]] = {}
    for kind in kinds_of(scheme):
        if checked is None or checked.seals is None:
            seals = {u: seal_of(key.seal_key, c) for u, c in contents(session, kind)}
        else:
            seals = dict(checked.seals[kind.name])
            written = set() if tracker is None else tracker.touched.get(kind.name, set())
            _refuse_rows_added_meanwhile(session, kind, written)
            for k in written:
                seals.pop(unit_text(k), None)
            seals.update((u, seal_of(key.seal_key, c)) for u, c in contents(session, kind, written))
        rows = [(kind.name, u, mac) for u, mac in seals.items()]
        bulk_insert(session, RowSeal, ("kind", "unit", "mac"), rows)
        tally = sum(tally_of(key.tally_key, mac) for _, _, mac in rows) % MODULUS
        totals[kind.name] = [len(rows), f"{tally:064x}"]
    if tracker is not None:
        tracker.clear()
    running = {k: [int(v[0]), int(v[1], 16)] for k, v in totals.items()}
    _record_totals(session, key, RESEAL_ACTION, actor, running, reason, scheme=scheme)
    from peerlens.study.storage import STORE_KEY

    store = session.info.get(STORE_KEY)
    if store is not None:
        store._sealed = True
        store._scheme_current = scheme == SCHEME
    return {k: int(v[0]) for k, v in totals.items()}


# ------------------------------------------------------------------------------- verifying


@dataclass(frozen=True)
class SealReport:
    """What :func:`check_seals` found: ``problems`` name tables and rows."""

    units: int
    problems: tuple[str, ...] = ()
    #: False when the database has never been sealed (nothing written with the key yet).
    sealed: bool = True
    #: With ``seal_with``: kind name (current scheme) -> unit -> its seal under that key, of the
    #: unit's rows as the check read them (for :func:`reseal_all`).
    seals: dict[str, dict[str, bytes]] | None = field(default=None, repr=False, compare=False)
    #: The seal key of :attr:`seals`.
    seal_key: bytes | None = field(default=None, repr=False, compare=False)


#: What a seal entry's MAC also covers since audit entries carry MACs of their own (revision
#: 0021): such an entry proves, under the key, that the chain was keyed when it was written, so
#: a chain whose entries' MACs were all removed cannot pass for one written before them.
_KEYED_CHAIN = "audit entries keyed"
#: What a seal entry's MAC also covers when its totals count units of seal scheme 2 (revision
#: 0023 on: derived scores sealed one by one), so that the scheme a chain's totals are in is
#: vouched for by the key too.
_SCORES_ALONE = "derived scores sealed one by one"


def _entry_mac(
    key: VaultKey,
    seq: int,
    prev_hash: str,
    action: str,
    totals: Any,
    *,
    keyed_chain: bool = True,
    scheme: int = SCHEME,
) -> str:
    """HMAC-SHA256 (hex) binding a seal entry's running totals to its place in the chain (and,
    for an entry written since revision 0021, to :data:`_KEYED_CHAIN`; for one of seal scheme 2,
    to :data:`_SCORES_ALONE`)."""
    parts = [seq, prev_hash, action, totals, *([_KEYED_CHAIN] if keyed_chain else [])]
    parts += [_SCORES_ALONE] if scheme >= 2 else []
    msg = audit.canonical_json(parts) or ""
    return hmac.new(key.entry_key, msg.encode("utf-8"), hashlib.sha256).hexdigest()


def _record_totals(
    session: Session,
    key: VaultKey,
    action: str,
    actor: str,
    totals: dict[str, list[int]],
    reason: str | None,
    *,
    scheme: int = SCHEME,
) -> None:
    """Append a keyed seal entry: the running totals (count and tally per kind) and their MAC
    over (seq, previous entry's hash, action, totals, the seal scheme's marker)."""
    shown = {k: [int(c), f"{t % MODULUS:064x}"] for k, (c, t) in sorted(totals.items())}
    seq, prev = audit.current_head(session)
    mac = _entry_mac(key, seq + 1, prev, action, shown, scheme=scheme)
    audit.record(session, actor, action, "data", new={"totals": shown, "mac": mac}, reason=reason)


@dataclass(frozen=True)
class _Entry:
    seq: int
    action: str
    totals: dict[str, list[int]] | None
    #: None for an entry from before seal entries were keyed, else whether its MAC verifies.
    keyed_ok: bool | None
    #: Whether its MAC says it was written while audit entries carried MACs (revision 0021 on).
    keyed_chain: bool = False
    #: The seal scheme its totals count units of (:data:`peerlens.study._seal_units.SCHEME`).
    scheme: int = 1


def _parse_entry(key: VaultKey, seq: int, prev: str, action: str, new: str | None) -> _Entry:
    import json

    try:
        values = json.loads(new or "{}")
    except ValueError:
        return _Entry(seq, action, None, False)
    if not isinstance(values, dict):
        return _Entry(seq, action, None, False)
    if set(values) == {"totals", "mac"}:
        shown, mac = values["totals"], values["mac"]
        if not isinstance(mac, str):
            return _Entry(seq, action, None, False)
        for keyed_chain, scheme in ((True, SCHEME), (True, 1), (False, 1)):
            expected = _entry_mac(
                key, seq, prev, action, shown, keyed_chain=keyed_chain, scheme=scheme
            )
            if hmac.compare_digest(mac, expected):
                return _Entry(seq, action, _totals_of(shown), True, keyed_chain, scheme)
        return _Entry(seq, action, None, False)
    try:
        return _Entry(seq, action, _totals_of(values), None)
    except (TypeError, ValueError):
        return _Entry(seq, action, None, False)


def first_keyed_chain_entry(session: Session, key: VaultKey) -> int | None:
    """The ``seq`` of the first seal entry whose MAC under ``key`` says it was written while
    audit entries carried MACs (``None`` when there is none).

    Such an entry cannot be made, nor its marker removed, without the key: a chain holding one
    whose entries carry no MAC at all had them removed (see
    :func:`peerlens.study.audit.check_chain`)."""
    return next((e.seq for e in _seal_entries(session, key) if e.keyed_chain), None)


def _totals_of(values: Any) -> dict[str, list[int]]:
    return {str(k): [int(c), int(t, 16) % MODULUS] for k, (c, t) in values.items()}


def _seal_entries(session: Session, key: VaultKey, *, latest: bool = False) -> list[_Entry]:
    stmt = (
        select(AuditLog.seq, AuditLog.prev_hash, AuditLog.action, AuditLog.new)
        .where(AuditLog.action.in_((SEAL_ACTION, RESEAL_ACTION)))
        .order_by(AuditLog.seq.desc() if latest else AuditLog.seq)
    )
    if latest:
        stmt = stmt.limit(1)
    return [_parse_entry(key, int(q), str(p), str(a), n) for q, p, a, n in session.execute(stmt)]


def _latest_totals(session: Session, key: VaultKey) -> dict[str, list[int]] | None:
    """The running totals of the newest seal entry, to add a transaction's change to; ``None``
    when it is from before seal entries were keyed.

    Raises
    ------
    TamperedError
        The newest seal entry's MAC does not verify: it was not written by peerlens with this
        key, and adding to its totals would bless whatever it hides.
    """
    audit.current_head(session)  # holds the chain's lock: no seal entry can follow meanwhile
    entries = _seal_entries(session, key, latest=True)
    if not entries:
        return {}
    last = entries[0]
    if last.keyed_ok is False or last.totals is None:
        raise TamperedError(
            f"audit log row seq {last.seq} ({last.action}): seal totals not made with this "
            "database's key (appended or changed outside peerlens); nothing was done. Run "
            "`peerlens audit verify`"
        )
    return last.totals if last.keyed_ok else None


def _chain_totals(
    session: Session, key: VaultKey
) -> tuple[dict[str, list[int]] | None, list[str], int]:
    """The totals the audit chain vouches for, the seal entries it holds that it must not, and
    the seal scheme those totals count units of.

    Only keyed entries whose MAC verifies are trusted, from the newest keyed ``data.reseal``
    that verifies under ``key`` (entries before it may be under an earlier key). A chain with no
    keyed entry yet (sealed before entries were keyed) is summed as it was then, until the first
    write with the key reseals it.
    """
    entries = _seal_entries(session, key)
    if not entries:
        return None, [], SCHEME
    start = next(
        (
            i
            for i in range(len(entries) - 1, -1, -1)
            if entries[i].keyed_ok and entries[i].action == RESEAL_ACTION
        ),
        None,
    )
    problems: list[str] = []
    totals: dict[str, list[int]] | None = None
    if start is None:
        for e in entries:
            if e.keyed_ok is None and e.totals is not None:
                if e.action == RESEAL_ACTION or totals is None:
                    totals = {}
                for name, (count, tally) in e.totals.items():
                    have = totals.setdefault(name, [0, 0])
                    have[0] += count
                    have[1] = (have[1] + tally) % MODULUS
            else:
                problems.append(_bad_entry(e))
        return totals, problems, 1
    scheme = entries[start].scheme
    for e in entries[start:]:
        if e.keyed_ok and e.totals is not None:
            totals, scheme = e.totals, e.scheme
        else:
            problems.append(_bad_entry(e))
    return totals, problems, scheme


def _bad_entry(e: _Entry) -> str:
    return (
        f"audit log row seq {e.seq} ({e.action}): seal totals not made with this database's key "
        "(appended or changed outside peerlens)"
    )


def _check_unkeyed(session: Session, key: VaultKey, tracker: Tracker) -> SealReport:
    """Before the first keyed reseal of a chain sealed under the unkeyed scheme, check every
    unit (except those this transaction wrote, checked before it changed them) and the tallies
    under that scheme, so that the upgrade never blesses tampering; return the report, with the
    units' seals under ``key`` as read for the check (to reseal with)."""
    skip = {name: {unit_text(k) for k in keys} for name, keys in tracker.touched.items()}
    found = check_seals(session, key, skip=skip, seal_with=key)
    if found.problems:
        raise TamperedError(
            f"{len(found.problems)} problem(s) found by the row seals, e.g. {found.problems[0]}; "
            "nothing was done. Run `peerlens audit verify`"
        )
    return found


def check_seals(
    session: Session,
    key: VaultKey,
    *,
    skip: dict[str, set[str]] | None = None,
    seal_with: VaultKey | None = None,
) -> SealReport:
    """Compare every unit with its seal, and the seals with the totals in the audit chain
    (trusting only seal entries keyed with ``key``; any other is named). Units named in ``skip``
    (kind name -> units) are not compared with their seals.

    With ``seal_with``, the report also holds the seal under that key of every unit of the
    current seal scheme made from the very rows read for the check (:attr:`SealReport.seals`),
    for :func:`reseal_all` to seal what was checked, not what is stored when it runs."""
    totals, problems, scheme = _chain_totals(session, key)
    if totals is None:
        return SealReport(0, tuple(problems), sealed=bool(problems))
    kinds = kinds_of(scheme)  # the units the totals count (an older scheme until resealed)
    fresh: dict[str, dict[str, bytes]] | None = None if seal_with is None else {}
    skip = skip or {}
    stored: dict[str, dict[str, bytes]] = {}
    for kind_name, unit, mac in session.execute(select(RowSeal.kind, RowSeal.unit, RowSeal.mac)):
        stored.setdefault(kind_name, {})[unit] = bytes(mac)
    for name in sorted(set(stored) - {k.name for k in kinds}):
        problems.append(f"row_seal: {len(stored[name])} seal(s) of unknown kind {name!r} added")
    n = 0
    for kind in kinds:
        seals = stored.get(kind.name, {})
        seen: set[str] = set()
        skipped = skip.get(kind.name, set())
        if seal_with is None or fresh is None:
            units = contents(session, kind)
        else:
            tables = read_tables(session, kind)
            units = contents_of(kind, tables)
            fresh.update(_seals_from(tables, seal_with))
        for unit, content in units:
            n += 1
            seen.add(unit)
            if unit in skipped:
                continue
            sealed = seals.get(unit)
            if sealed is None:
                problems.append(f"{_where(kind, unit)}: added outside peerlens (no seal)")
            elif sealed != seal_of(key.seal_key, content):
                problems.append(f"{_where(kind, unit)}: changed outside peerlens")
        for unit in sorted(set(seals) - seen - skipped, key=_natural):
            problems.append(f"{_where(kind, unit)}: removed outside peerlens (its seal remains)")
        for table, unit in orphans(session, kind):
            problems.append(
                f"table {table}: rows of {kind.name} {unit}, which does not exist, added "
                "outside peerlens"
            )
        count, tally = totals.get(kind.name, [0, 0])
        have_tally = sum(tally_of(key.tally_key, mac) for mac in seals.values()) % MODULUS
        if len(seals) != count:
            diff = count - len(seals)
            what = "removed" if diff > 0 else "added"
            problems.append(
                f"table {kind.name}: {abs(diff)} row(s) {what} outside peerlens together with "
                f"their seals (the audit chain vouches for {count}, {len(seals)} are sealed)"
            )
        elif have_tally != tally:
            problems.append(
                f"table {kind.name}: seals differ from what the audit chain vouches for (rows "
                "replaced with other or older sealed versions)"
            )
    if seal_with is None or fresh is None:
        return SealReport(n, tuple(problems))
    missing = {k.name for k in KINDS} - set(fresh)
    if missing:  # every kind of the current scheme is made of one older kind's tables
        raise RuntimeError(f"no seals made for {sorted(missing)}")
    return SealReport(n, tuple(problems), seals=fresh, seal_key=seal_with.seal_key)


def _seals_from(tables: dict[str, list[Row]], key: VaultKey) -> dict[str, dict[str, bytes]]:
    """The seals under ``key`` of the units of each current kind whose head and child tables are
    all among ``tables`` (rows :func:`~peerlens.study._seal_units.read_tables` read)."""
    out: dict[str, dict[str, bytes]] = {}
    for kind in KINDS:
        if all(str(t.name) in tables for t in (kind.table, *(c.table for c in kind.children))):
            out[kind.name] = {u: seal_of(key.seal_key, c) for u, c in contents_of(kind, tables)}
    return out


def check_files(session: Session, blob_dir: Path) -> tuple[int, list[str]]:
    """Re-hash every stored recording file; return how many were checked and the problems (a file
    missing or changed on disk, named by recording id and digest)."""
    from peerlens.study.sessions import blob_path, stored_digest

    checked, problems = 0, []
    stmt = select(Recording.id, Recording.sha256, Recording.suffix, Recording.stored_sha256)
    for rid, sha, suffix, want in session.execute(stmt.order_by(Recording.id)):
        if want is None:
            continue
        checked += 1
        have = stored_digest(blob_path(blob_dir, sha, suffix))
        if have is None:
            problems.append(f"recording id {rid} ({sha[:12]}): stored file missing")
        elif have != want:
            problems.append(f"recording id {rid} ({sha[:12]}): stored file changed on disk")
    return checked, problems


def _natural(unit: str) -> tuple[int, Any]:
    return (0, int(unit)) if unit.isdigit() else (1, unit)


def _where(kind: UnitKind, unit: str) -> str:
    return f"table {kind.name}, {kind.key} {unit}"

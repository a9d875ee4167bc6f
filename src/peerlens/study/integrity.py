"""Tamper evidence for the data tables: row seals checkpointed in the audit chain.

The audit log's hash chain shows edits to the log; this module shows edits to the data. Every unit
of data (see :mod:`peerlens.study._seal_units`: a row, or a response with its items, or a derived
story with its sentences) has a *seal* in ``row_seal``: an HMAC-SHA256 of its canonical content
under a key derived from the vault key, which never enters the database. Each transaction that
writes data reseals the units it touched and appends one ``data.seal`` audit entry holding, per
kind, the change in the number of seals and in the sum of their *tallies* (a second keyed MAC of
each seal, never stored, summed modulo 2^256). So:

* a row changed or added behind peerlens's back no longer matches, or has no, seal;
* a row removed leaves its seal without a row;
* a row removed together with its seal, or a unit rolled back to an older sealed version, changes
  the tally sums, which no longer add up to what the audit chain vouches for; and without the key
  nobody can compute the tally to correct the chain.

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

import operator
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Table, delete, event, func, select
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, ColumnElement
from sqlalchemy.sql.operators import in_op

from peerlens.study import audit
from peerlens.study._bulk import bulk_insert
from peerlens.study._seal_units import (
    BY_NAME,
    KINDS,
    MODULUS,
    UNIT_OF,
    UnitKind,
    contents,
    orphans,
    seal_of,
    tally_of,
    unit_text,
)
from peerlens.study.models import AuditLog, Recording, RowSeal
from peerlens.study.vault import VaultKey

#: ``session.info`` key of a transaction's :class:`Tracker`.
TRACKER_KEY = "peerlens_seal_tracker"
SEAL_ACTION = "data.seal"
RESEAL_ACTION = "data.reseal"


@dataclass
class Tracker:
    """The units a transaction touched, per kind, and where key-less inserts started."""

    touched: dict[str, set[Any]] = field(default_factory=dict)
    #: Kind name -> largest key before the transaction's first insert that gave no keys.
    watermarks: dict[str, Any] = field(default_factory=dict)

    def add(self, kind: UnitKind, keys: Iterable[Any]) -> None:
        """Note ``keys`` of ``kind`` as touched."""
        self.touched.setdefault(kind.name, set()).update(k for k in keys if k is not None)

    def __bool__(self) -> bool:
        return any(self.touched.values()) or bool(self.watermarks)


def start(session: Session) -> Tracker:
    """Begin tracking the writes of ``session``'s transaction."""
    tracker = Tracker()
    session.info[TRACKER_KEY] = tracker
    return tracker


def _tracker(session: Session) -> Tracker | None:
    tracker = session.info.get(TRACKER_KEY)
    return tracker if isinstance(tracker, Tracker) else None


# ----------------------------------------------------------------------------- tracking writes


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    tracker = _tracker(session)
    if tracker is None:
        return
    from sqlalchemy import inspect

    for obj in (*session.new, *session.dirty, *session.deleted):
        table = getattr(obj, "__table__", None)
        spec = None if table is None else UNIT_OF.get(table.name)
        if spec is None:
            continue
        kind, column = spec
        history = inspect(obj).attrs[column].history
        tracker.add(kind, [getattr(obj, column), *history.deleted])


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    tracker = _tracker(state.session)
    if tracker is None or not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if not isinstance(table, Table) or table.name not in UNIT_OF:
        return
    kind, column = UNIT_OF[table.name]
    if state.is_insert:
        params: Any = state.parameters
        rows: list[Any] = params if isinstance(params, list) else [params or {}]
        if rows and all(column in r for r in rows):
            tracker.add(kind, (r[column] for r in rows))
        else:
            mark_keyless_insert(state.session, kind)
        return
    where = state.statement.whereclause  # type: ignore[attr-defined]
    keys = _keys_in(where, table.c[column])
    if keys is None:
        stmt = select(table.c[column]).distinct()
        if where is not None:
            stmt = stmt.where(where)
        keys = list(state.session.execute(stmt).scalars())
    tracker.add(kind, keys)


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


def mark_keyless_insert(session: Session, kind: UnitKind) -> None:
    """Note that rows of ``kind`` are about to be inserted with keys the database assigns:
    every row above the current largest key is then the transaction's."""
    tracker = _tracker(session)
    if tracker is None or kind.name in tracker.watermarks:
        return
    top = session.execute(select(func.max(kind.key_column()))).scalar()
    tracker.watermarks[kind.name] = 0 if top is None else top


def note_rows(
    session: Session, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> Iterable[Sequence[Any]]:
    """Track rows a bulk insert is about to write (pass them through this)."""
    tracker = _tracker(session)
    spec = UNIT_OF.get(table.name)
    if tracker is None or spec is None:
        return rows
    kind, column = spec
    if column not in columns:
        mark_keyless_insert(session, kind)
        return rows
    at = list(columns).index(column)
    seen = tracker.touched.setdefault(kind.name, set())

    def passing() -> Iterator[Sequence[Any]]:
        for row in rows:
            seen.add(row[at])
            yield row

    return passing()


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
    key: VaultKey = key_of(session)
    session.flush()  # the key's first use may record its check value
    if not _sealed_before(session):
        reseal_all(session, key, actor=_actor(session), reason="first seal of this database")
        return
    for name, top in tracker.watermarks.items():
        kind = BY_NAME[name]
        fresh = select(kind.key_column()).where(kind.key_column() > top)
        tracker.add(kind, session.execute(fresh).scalars())
    tracker.watermarks.clear()
    changes: dict[str, _Change] = {}
    for name, keys in sorted(tracker.touched.items()):
        if keys:
            change = _reseal(session, key, BY_NAME[name], keys)
            if change.count or change.tally:
                changes[name] = change
    tracker.touched.clear()
    if changes:
        audit.record(
            session,
            _actor(session),
            SEAL_ACTION,
            "data",
            new={k: [c.count, f"{c.tally:064x}"] for k, c in changes.items()},
        )


def _actor(session: Session) -> str:
    return str(session.info.get(audit.ACTOR_KEY) or "peerlens")


def _sealed_before(session: Session) -> bool:
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
    for i in range(0, len(units), 5000):
        stmt = select(RowSeal.unit, RowSeal.mac).where(
            RowSeal.kind == kind.name, RowSeal.unit.in_(units[i : i + 5000])
        )
        out.update((u, bytes(mac)) for u, mac in session.execute(stmt))
    return out


def _reseal(session: Session, key: VaultKey, kind: UnitKind, keys: set[Any]) -> _Change:
    units = sorted(unit_text(k) for k in keys)
    old = _stored(session, kind, units)
    new = {u: seal_of(key.seal_key, c) for u, c in contents(session, kind, keys)}
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


def reseal_all(session: Session, key: VaultKey, *, actor: str, reason: str) -> dict[str, int]:
    """Seal every unit afresh under ``key`` and record the totals in the audit chain as
    ``data.reseal`` (first seal of a database, key rotation); return seals per kind."""
    session.flush()
    session.execute(delete(RowSeal))
    totals: dict[str, list[Any]] = {}
    for kind in KINDS:
        rows = [(kind.name, u, seal_of(key.seal_key, c)) for u, c in contents(session, kind)]
        bulk_insert(session, RowSeal, ("kind", "unit", "mac"), rows)
        tally = sum(tally_of(key.tally_key, mac) for _, _, mac in rows) % MODULUS
        totals[kind.name] = [len(rows), f"{tally:064x}"]
    tracker = _tracker(session)
    if tracker is not None:
        tracker.touched.clear()
        tracker.watermarks.clear()
    audit.record(session, actor, RESEAL_ACTION, "data", new=totals, reason=reason)
    from peerlens.study.storage import STORE_KEY

    store = session.info.get(STORE_KEY)
    if store is not None:
        store._sealed = True
    return {k: int(v[0]) for k, v in totals.items()}


# ------------------------------------------------------------------------------- verifying


@dataclass(frozen=True)
class SealReport:
    """What :func:`check_seals` found: ``problems`` name tables and rows."""

    units: int
    problems: tuple[str, ...] = ()
    #: False when the database has never been sealed (nothing written with the key yet).
    sealed: bool = True


def _chain_totals(session: Session) -> dict[str, list[int]] | None:
    import json

    totals: dict[str, list[int]] | None = None
    stmt = (
        select(AuditLog.action, AuditLog.new)
        .where(AuditLog.action.in_((SEAL_ACTION, RESEAL_ACTION)))
        .order_by(AuditLog.seq)
    )
    for action, new in session.execute(stmt):
        values = json.loads(new or "{}")
        if action == RESEAL_ACTION or totals is None:
            totals = {}
        for name, (count, tally) in values.items():
            have = totals.setdefault(name, [0, 0])
            have[0] += int(count)
            have[1] = (have[1] + int(tally, 16)) % MODULUS
    return totals


def check_seals(session: Session, key: VaultKey) -> SealReport:
    """Compare every unit with its seal, and the seals with the totals in the audit chain."""
    problems: list[str] = []
    totals = _chain_totals(session)
    if totals is None:
        return SealReport(0, (), sealed=False)
    stored: dict[str, dict[str, bytes]] = {}
    for kind_name, unit, mac in session.execute(select(RowSeal.kind, RowSeal.unit, RowSeal.mac)):
        stored.setdefault(kind_name, {})[unit] = bytes(mac)
    for name in sorted(set(stored) - set(BY_NAME)):
        problems.append(f"row_seal: {len(stored[name])} seal(s) of unknown kind {name!r} added")
    n = 0
    for kind in KINDS:
        seals = stored.get(kind.name, {})
        seen: set[str] = set()
        for unit, content in contents(session, kind):
            n += 1
            seen.add(unit)
            sealed = seals.get(unit)
            if sealed is None:
                problems.append(f"{_where(kind, unit)}: added outside peerlens (no seal)")
            elif sealed != seal_of(key.seal_key, content):
                problems.append(f"{_where(kind, unit)}: changed outside peerlens")
        for unit in sorted(set(seals) - seen, key=_natural):
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
    return SealReport(n, tuple(problems))


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

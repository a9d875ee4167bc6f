"""Append-only, hash-chained audit log.

Every data change, import, export and erasure appends one :class:`~peerlens.study.models.AuditLog`
row recording who, when (UTC, ISO 8601), what (action, entity, entity id, study), the old and new
values (canonical JSON) and why. Row ``n`` stores the hash of row ``n - 1`` (``prev_hash``) and its
own ``hash = sha256(canonical JSON of [seq, at_utc, actor, action, entity, entity_id, study, old,
new, reason, prev_hash])``; the first row's ``prev_hash`` is 64 zeros. Editing any row breaks its
own hash; removing a row leaves a gap in ``seq`` and breaks the next row's ``prev_hash``. Removing
rows from the *end* of the chain is only detectable against a head recorded elsewhere, so every
export writes the head (``seq`` and ``hash``) into its manifest and :func:`verify_audit` accepts an
expected head. This is the hash-chain construction of Haber & Stornetta (1991), "How to time-stamp
a digital document", J. Cryptology 3(2):99-111.

Anyone who can write to the database could append to such a chain, or rewrite it consistently
from any row on. So every row also carries ``mac``, an HMAC-SHA256 (RFC 2104) of its ``seq`` and
``hash`` under a key derived from the vault key (:func:`entry_mac`), which the database never
holds: appending needs the key, and :func:`check_chain` given the key names the first row whose
MAC does not verify. An :data:`CHECKPOINT_ACTION` row vouches for every row before it through the
hash links (its own hash covers the hash of the row before, and its MAC covers its hash), so rows
before the newest checkpoint keyed with the current key need no MAC of their own under that key.
Checkpoints are written when the chain's rows from before schema revision 0021 (which have no
MAC) are first appended to with the key, and when the vault key is rotated (:func:`checkpoint`);
each is written only after the chain before it checked out under the key it was kept with.
A chain none of whose rows carries a MAC passes for one from before revision 0021 only while it
holds no seal entry written since (:func:`peerlens.study.integrity.first_keyed_chain_entry`):
otherwise the MACs were removed, and the rows behind them may have been rewritten.

Values written here must never be identifying: identity-vault changes record field names only and
free text is recorded as ``{"redacted": "text", "chars": n}`` (see :func:`redacted`), so that
erasure never needs to touch the log and the chain stays verifiable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from peerlens.study.errors import TamperedError
from peerlens.study.models import AuditLog
from peerlens.study.policy import Caller, authorize, guarded
from peerlens.study.storage import STORE_KEY, Store, pg_lock
from peerlens.study.vault import VaultKey

#: ``prev_hash`` of the first row.
GENESIS = "0" * 64
_HEAD_KEY = "peerlens_audit_head"
#: ``session.info`` key of the actor of the transaction's latest audit entry.
ACTOR_KEY = "peerlens_audit_actor"
#: ``session.info`` key of the vault key new entries are MACed with, when not the store's (the
#: new key, once a rotation has written its checkpoint).
_MAC_KEY = "peerlens_audit_mac_key"
#: The action of a keyed checkpoint (see module docstring).
CHECKPOINT_ACTION = "audit.checkpoint"
_HASHED = (
    "seq",
    "at_utc",
    "actor",
    "action",
    "entity",
    "entity_id",
    "study",
    "old",
    "new",
    "reason",
    "prev_hash",
)


def canonical_json(value: Any) -> str | None:
    """Deterministic JSON (sorted keys, no spaces, UTF-8); ``None`` stays ``None``.

    Examples
    --------
    >>> canonical_json({"b": 1, "a": [1.5, None]})
    '{"a":[1.5,null],"b":1}'
    """
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def row_hash(row: Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of a row's hashed columns."""
    payload = json.dumps([row[k] for k in _HASHED], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def redacted(value: str | None) -> dict[str, Any] | None:
    """What the audit log records instead of a free-text value: its length only.

    Examples
    --------
    >>> redacted("I felt alone")
    {'redacted': 'text', 'chars': 12}
    """
    if value is None:
        return None
    return {"redacted": "text", "chars": len(value)}


def _now_utc() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def lock_chain(session: Session) -> None:
    """Make ``session``'s transaction the one appender of the audit chain until it ends (on
    PostgreSQL; SQLite's writers are serialised already).

    A transaction that will take another advisory lock as well and append to the chain later
    takes this one first, so that every transaction takes its locks in one order (the chain's,
    then the other): a derivation that held its study's lock while waiting for the chain, against
    a form save that held the chain while waiting to re-score that study, deadlocked.
    """
    pg_lock(session, "audit")


def entry_mac(key: VaultKey, seq: int, hash_: str) -> str:
    """HMAC-SHA256 (hex) of an audit row's ``seq`` and ``hash`` under ``key``'s audit key.

    The hash covers every other column and the row before, so this one MAC binds them all.

    Examples
    --------
    >>> from peerlens.study.vault import VaultKey
    >>> key = VaultKey.from_master(bytes(32), "example")
    >>> mac = entry_mac(key, 1, "ab" * 32)
    >>> len(mac), mac == entry_mac(key, 2, "ab" * 32)
    (64, False)
    """
    msg = f"peerlens audit entry\x00{seq}\x00{hash_}".encode("ascii")
    return hmac.new(key.audit_key, msg, hashlib.sha256).hexdigest()


def _mac_key(session: Session) -> VaultKey:
    """The key new entries are MACed with: the store's vault key, or the new key of a rotation.

    Raises
    ------
    VaultKeyError
        No usable vault key: nothing can be appended to the chain without it.
    """
    override = session.info.get(_MAC_KEY)
    if isinstance(override, VaultKey):
        return override
    store = session.info.get(STORE_KEY)
    if store is None:
        raise RuntimeError("audit entries are appended only in a Store.transaction()")
    key: VaultKey = store.vault_key(session)
    return key


def _head(session: Session) -> tuple[int, str]:
    cached = session.info.get(_HEAD_KEY)
    if cached is not None:
        return (int(cached[0]), str(cached[1]))
    lock_chain(session)
    last = session.execute(
        select(AuditLog.seq, AuditLog.hash, AuditLog.action, AuditLog.mac)
        .order_by(AuditLog.seq.desc())
        .limit(1)
    ).first()
    head = (0, GENESIS) if last is None else (int(last[0]), str(last[1]))
    session.info[_HEAD_KEY] = head
    if last is not None:
        _check_head(session, head, str(last[2]), last[3])
    return _head(session)


def _check_head(session: Session, head: tuple[int, str], action: str, mac: str | None) -> None:
    """Before a transaction first appends: refuse to append after a row not written with the
    key, and key a chain whose rows all predate audit MACs with a checkpoint (only when the
    chain checks out, so that the checkpoint never vouches for tampering)."""
    key = _mac_key(session)
    seq, digest = head
    if mac is not None:
        if not hmac.compare_digest(mac, entry_mac(key, seq, digest)):
            raise TamperedError(
                f"audit log row seq {seq} ({action}): its MAC does not verify under this "
                "database's key (appended or changed outside peerlens); nothing was done. Run "
                "`peerlens audit verify`"
            )
        return
    found = check_chain(session, key=key)
    if found.problems:
        raise TamperedError(
            f"{len(found.problems)} problem(s) found in the audit log, e.g. {found.problems[0]}; "
            "nothing was done. Run `peerlens audit verify`"
        )
    checkpoint(
        session,
        str(session.info.get(ACTOR_KEY) or "peerlens"),
        key,
        reason="audit entries keyed (upgrade)",
    )


def checkpoint(session: Session, actor: str, key: VaultKey, *, reason: str) -> None:
    """Append a :data:`CHECKPOINT_ACTION` row MACed with ``key``, which vouches for every row
    before it; later rows of the transaction are MACed with ``key`` too.

    The caller must have checked the chain first (under the key its rows were written with):
    a key rotation calls this with the new key, after the chain verified under the old one.
    """
    seq, digest = _head(session)
    session.info[_MAC_KEY] = key
    record(
        session,
        actor,
        CHECKPOINT_ACTION,
        "audit_log",
        str(seq),
        new={"covers_through": {"seq": seq, "hash": digest}},
        reason=reason,
    )


@dataclass(frozen=True)
class AuditEvent:
    """One audit entry to append (see :func:`record`)."""

    action: str
    entity: str
    entity_id: str | None = None
    study: str | None = None
    old: Any = None
    new: Any = None
    reason: str | None = None


def record_many(session: Session, actor: str, events: Iterable[AuditEvent]) -> int:
    """Append ``events`` to the chain inside ``session``'s transaction; return how many.

    Raises
    ------
    VaultKeyError
        No usable vault key (each entry's MAC needs it).
    TamperedError
        The chain's newest row was not written with the key.
    """
    events = list(events)
    if not events:
        return 0
    held = session.info.get(_HELD_KEY)
    if held is not None:  # inside appended_late: appended when its block ends
        held.extend((actor, ev) for ev in events)
        return len(events)
    seq, prev = _head(session)
    key = _mac_key(session)
    at = _now_utc()
    rows: list[dict[str, Any]] = []
    for ev in events:
        seq += 1
        row: dict[str, Any] = {
            "seq": seq,
            "at_utc": at,
            "actor": actor,
            "action": ev.action,
            "entity": ev.entity,
            "entity_id": ev.entity_id,
            "study": ev.study,
            "old": canonical_json(ev.old),
            "new": canonical_json(ev.new),
            "reason": ev.reason,
            "prev_hash": prev,
        }
        row["hash"] = prev = row_hash(row)
        row["mac"] = entry_mac(key, seq, prev)
        rows.append(row)
    if rows:
        session.execute(insert(AuditLog), rows)
        session.info[_HEAD_KEY] = (seq, prev)
        session.info[ACTOR_KEY] = actor
    return len(rows)


#: ``session.info`` key of the entries :func:`appended_late` holds back.
_HELD_KEY = "peerlens_audit_held"


@contextmanager
def appended_late(session: Session) -> Iterator[None]:
    """Hold back the entries recorded in ``session`` within the block and append them, in the
    order recorded, when it ends without an error.

    Appending takes the chain's lock (:func:`lock_chain`), held until the transaction ends: a
    transaction that records early and then computes (a form's save, which scores the form)
    would make every other writer wait for its computing. Entries are the same as if recorded
    at once, only their ``seq`` and time are taken at the end of the block. Nested, the outer
    block appends.
    """
    if _HELD_KEY in session.info:
        yield
        return
    held: list[tuple[str, AuditEvent]] = []
    session.info[_HELD_KEY] = held
    try:
        yield
    finally:
        del session.info[_HELD_KEY]
    for actor, group in groupby(held, key=itemgetter(0)):
        record_many(session, actor, [ev for _, ev in group])


@contextmanager
def appended_at_once(session: Session) -> Iterator[None]:
    """Inside :func:`appended_late`, append the entries recorded within this block at once (an
    entry whose MAC binds the ``seq`` it is written at, such as a seal scheme upgrade's)."""
    held = session.info.pop(_HELD_KEY, None)
    try:
        yield
    finally:
        if held is not None:
            session.info[_HELD_KEY] = held


def record(
    session: Session,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | None = None,
    *,
    study: str | None = None,
    old: Any = None,
    new: Any = None,
    reason: str | None = None,
) -> None:
    """Append one audit entry inside ``session``'s transaction.

    Parameters
    ----------
    actor
        Who: a peerlens user name, or ``os:<login>`` for an unauthenticated local user.
    action
        What happened, e.g. ``participant.add``, ``responses.import``, ``export``.
    entity, entity_id
        What it happened to (table-like name and a pseudonymous key).
    old, new
        JSON-able values before and after (never identifying, see module docstring).
    reason
        Why, as given by the user.
    """
    record_many(
        session,
        actor,
        [AuditEvent(action, entity, entity_id, study, old, new, reason)],
    )


@dataclass(frozen=True)
class AuditReport:
    """Result of :func:`verify_audit`: ``ok`` is True only when ``problems`` is empty."""

    rows: int
    head_seq: int
    head_hash: str
    problems: tuple[str, ...] = field(default_factory=tuple)
    #: Participant erasures recorded in the chain (they removed data, never log rows).
    erasures: int = 0
    #: Sealed units of data checked against their seals (see :mod:`.integrity`).
    data_units: int = 0
    #: Why the data tables' seals were not checked (``None`` when they were).
    data_unchecked: str | None = None
    #: Stored recording files re-hashed (recordings stored before their digest was kept are not).
    files_checked: int = 0
    #: Rows whose MAC verified under the vault key (rows before the newest checkpoint of that
    #: key are vouched for by it and need none).
    macs_checked: int = 0
    #: Why the rows' MACs were not checked (``None`` when they were): no key, or no row keyed
    #: yet (every row predates schema revision 0021 and nothing was written since).
    macs_unchecked: str | None = None

    @property
    def ok(self) -> bool:
        """True when every row's hash and link checked out."""
        return not self.problems


def check_chain(
    session: Session,
    *,
    expect_head: tuple[int, str] | None = None,
    key: VaultKey | None = None,
) -> AuditReport:
    """Walk the whole chain and report every edited, removed or re-ordered row, and with ``key``
    every row appended or rewritten without it.

    Parameters
    ----------
    expect_head
        ``(seq, hash)`` of a head recorded earlier (e.g. in an export manifest): the chain must
        still contain that row unchanged, which catches removal of rows from the end.
    key
        The vault key: every row's MAC must verify under it, except rows followed by a
        checkpoint whose MAC does (see module docstring). The first row that fails is named,
        with the number of later ones. Without it only the hashes and links are checked
        (``macs_unchecked`` says so).
    """
    problems: list[str] = []
    prev_seq, prev_hash, n, erasures = 0, GENESIS, 0, 0
    seen_expected = expect_head is None
    # Rows whose MAC did not verify since the last checkpoint that did: (seq, action, has a MAC).
    pending: list[tuple[int, str, bool]] = []
    any_mac, good = False, 0
    stmt = select(*[getattr(AuditLog, c) for c in (*_HASHED, "hash", "mac")]).order_by(AuditLog.seq)
    for r in session.execute(stmt.execution_options(yield_per=5000)).mappings():
        n += 1
        seq = int(r["seq"])
        if seq != prev_seq + 1:
            gap = f"{prev_seq + 1}" if seq == prev_seq + 2 else f"{prev_seq + 1}..{seq - 1}"
            problems.append(f"row(s) seq {gap} removed (chain jumps from {prev_seq} to {seq})")
        if r["prev_hash"] != prev_hash:
            problems.append(f"row seq {seq}: prev_hash does not match the hash of the row before")
        if row_hash(dict(r)) != r["hash"]:
            problems.append(f"row seq {seq} ({r['action']}): content edited, hash does not match")
        if key is not None:
            mac = r["mac"]
            any_mac = any_mac or mac is not None
            if mac is not None and hmac.compare_digest(mac, entry_mac(key, seq, str(r["hash"]))):
                good += 1
                if r["action"] == CHECKPOINT_ACTION:
                    pending.clear()
            else:
                pending.append((seq, str(r["action"]), mac is not None))
        erasures += r["action"] == "participant.erase"
        if expect_head is not None and seq == expect_head[0]:
            seen_expected = True
            if r["hash"] != expect_head[1]:
                problems.append(f"row seq {seq}: differs from the expected head hash")
        prev_seq, prev_hash = seq, str(r["hash"])
    if not seen_expected and expect_head is not None:
        problems.append(
            f"expected head row seq {expect_head[0]} is missing: rows removed from the end "
            f"(chain now ends at seq {prev_seq})"
        )
    unchecked = None if key is not None else "no vault key given"
    if pending and not any_mac and key is not None:
        # Written before revision 0021 and never since, or every MAC removed: a seal entry
        # written with audit MACs on (its own MAC says so) tells the second from the first.
        from peerlens.study.integrity import first_keyed_chain_entry

        keyed_at = first_keyed_chain_entry(session, key)
        if keyed_at is None:
            unchecked = (
                f"no row carries a MAC yet (all {n} were written before schema revision 0021); "
                "the next write with the key adds a keyed checkpoint"
            )
        else:
            problems.append(
                f"no row carries a MAC, yet row seq {keyed_at} was written when every row got "
                "one: the MACs were removed outside peerlens (and the rows may have been "
                "rewritten)"
            )
    elif pending:
        seq, action, has_mac = pending[0]
        what = "its MAC does not verify" if has_mac else "it has no MAC"
        more = f"; so do {len(pending) - 1} later row(s)" if len(pending) > 1 else ""
        problems.append(
            f"row seq {seq} ({action}): {what} under this database's key (appended or "
            f"rewritten outside peerlens){more}"
        )
    return AuditReport(
        n,
        prev_seq,
        prev_hash,
        tuple(problems),
        erasures,
        macs_checked=good,
        macs_unchecked=unchecked,
    )


def log_frame(session: Session, *, study: str | None = None) -> Any:
    """The audit log as a :class:`pandas.DataFrame` (optionally one study's rows)."""
    import pandas as pd

    stmt = select(AuditLog).order_by(AuditLog.seq)
    if study is not None:
        stmt = stmt.where(AuditLog.study == study)
    cols = [*_HASHED, "hash"]
    rows = [{c: getattr(a, c) for c in cols} for a in session.scalars(stmt)]
    return pd.DataFrame(rows, columns=cols)


def current_head(session: Session) -> tuple[int, str]:
    """``(seq, hash)`` of the newest row as seen by ``session`` (``(0, GENESIS)`` if empty)."""
    return _head(session)


@guarded("audit.verify")
def verify_audit(
    store: Store, *, caller: Caller, expect_head: tuple[int, str] | None = None
) -> AuditReport:
    """Check the whole audit hash chain (see :func:`check_chain`) and every data row against its
    seal (see :func:`peerlens.study.integrity.check_seals`) as ``caller``.

    The rows' MACs, the seals and the access tokens' MACs are checked with the vault key;
    without it the report says why they were not (``macs_unchecked``, ``data_unchecked``) and
    only the chain's hashes and links are checked. Stored recording files are re-hashed. An
    access token or participant link whose row says it is live although the chain revoked it
    is named (see :mod:`peerlens.study._revocation`).

    Parameters
    ----------
    expect_head
        ``(seq, hash)`` recorded earlier, e.g. in an export manifest.
    """
    from dataclasses import replace

    from peerlens.study._revocation import check_links
    from peerlens.study.integrity import check_files, check_seals
    from peerlens.study.keys import check_token_macs
    from peerlens.study.vault import VaultKeyError

    with store.transaction() as s:
        authorize(s, caller, "audit.verify")
        try:
            key: VaultKey | None = store.vault_key(s)
            unusable = None
        except VaultKeyError as exc:
            key, unusable = None, f"no usable vault key ({exc})"
    # One snapshot for the chain, the seals and the tables: each compared with the others.
    with store.snapshot() as s:
        report = check_chain(s, expect_head=expect_head, key=key)
        files, file_problems = check_files(s, store.blob_dir)
        report = replace(report, problems=(*report.problems, *file_problems), files_checked=files)
        if key is None:
            return replace(report, data_unchecked=unusable, macs_unchecked=unusable)
        revived = (*check_token_macs(s, key), *check_links(s))
        report = replace(report, problems=(*report.problems, *revived))
        seals = check_seals(s, key)
        if not seals.sealed:
            return replace(report, data_unchecked="nothing has been sealed yet")
        return replace(report, problems=(*report.problems, *seals.problems), data_units=seals.units)


@guarded("audit.read")
def audit_frame(store: Store, *, caller: Caller, study: str | None = None) -> Any:
    """The audit log as a frame (optionally one study's rows). It holds no identifying values."""
    with store.transaction() as s:
        authorize(s, caller, "audit.read")
        return log_frame(s, study=study)

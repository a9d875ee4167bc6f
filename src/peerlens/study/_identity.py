"""Reading and writing the identity vault inside a transaction (the one place that does).

Callers are the public study functions, which have already checked the caller's right to read or
write identity data; the key comes from the transaction's :class:`~peerlens.study.storage.Store`
(see :mod:`peerlens.study.vault`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from peerlens.study import audit
from peerlens.study.models import IdentityVault, Participant, utcnow
from peerlens.study.vault import VaultKey


def _key(s: Session) -> VaultKey:
    from peerlens.study.storage import STORE_KEY, Store

    store = s.info.get(STORE_KEY)
    assert isinstance(store, Store), "vault access outside Store.transaction()"
    return store.vault_key(s)


def _aad(s: Session, participant_id: int) -> str:
    from peerlens.study.storage import STORE_KEY

    return f"peerlens-vault/{s.info[STORE_KEY].database_id}/participant/{participant_id}"


def _fields(s: Session, row: IdentityVault) -> dict[str, str]:
    if row.ciphertext is not None:
        return _key(s).open(row.ciphertext, _aad(s, row.participant_id))
    return dict(json.loads(row.fields_json or "{}"))


def read_fields(s: Session, participant: Participant) -> dict[str, str]:
    """The participant's identifying fields (empty when none, or after erasure)."""
    row = s.get(IdentityVault, participant.id)
    return {} if row is None else _fields(s, row)


def read_many(s: Session, participant_ids: Iterable[int]) -> dict[int, dict[str, str]]:
    """Identifying fields of each listed participant that has any."""
    ids = sorted(set(participant_ids))
    out: dict[int, dict[str, str]] = {}
    for i in range(0, len(ids), 5000):
        chunk = ids[i : i + 5000]
        for row in s.scalars(select(IdentityVault).where(IdentityVault.participant_id.in_(chunk))):
            out[row.participant_id] = _fields(s, row)
    return out


def _store(s: Session, row: IdentityVault, fields: Mapping[str, str]) -> None:
    row.ciphertext = _key(s).seal(dict(fields), _aad(s, row.participant_id))
    row.fields_json = None
    row.field_names = json.dumps(sorted(fields))
    row.updated_at = utcnow()


def merge_fields(
    s: Session,
    participant: Participant,
    fields: Mapping[str, str],
    *,
    actor: str,
    study_name: str,
    reason: str | None = None,
) -> None:
    """Merge ``fields`` into the participant's vault entry (creating it), encrypted.

    The audit log records the changed field names and a keyed hash of each new value (salted per
    participant, see :mod:`peerlens.study.vault`), never a value.
    """
    row = s.get(IdentityVault, participant.id)
    if row is None:
        row = IdentityVault(participant_id=participant.id, salt=secrets.token_bytes(16))
        s.add(row)
        old: dict[str, str] = {}
    else:
        old = _fields(s, row)
        if row.salt is None:
            row.salt = secrets.token_bytes(16)
    changed = sorted(k for k in fields if old.get(k) != fields[k])
    if not changed:
        return
    merged = {**old, **fields}
    _store(s, row, merged)
    key, salt = _key(s), row.salt or b""
    audit.record(
        s,
        actor,
        "identity.update",
        "identity_vault",
        participant.study_code,
        study=study_name,
        old={"fields": sorted(old)},
        new={
            "fields": sorted(merged),
            "changed": changed,
            "keyed_hash": {k: key.keyed_hash(salt, k, str(fields[k])) for k in changed},
        },
        reason=reason,
    )


def item_hashes(
    s: Session,
    participant_id: int,
    items: Mapping[str, tuple[float | None, str | None, str | None]],
) -> dict[str, str | None]:
    """Keyed hashes of a participant's item values (``None`` for an item with no value), as the
    audit log records changed answers: never the values (a field flagged identifying later
    would otherwise stay in the append-only log), yet one can tell that a value changed and,
    with the key, check a guessed value.

    The hashes are salted with the participant's vault salt (an entry without fields is made
    when there is none), so erasure, which deletes the salt, makes them unlinkable to any value,
    as it does for identity changes; so does a key rotation, which re-salts.
    """
    row = s.get(IdentityVault, participant_id)
    if row is None:
        row = IdentityVault(participant_id=participant_id, salt=secrets.token_bytes(16))
        _store(s, row, {})
        s.add(row)
    elif row.salt is None:
        row.salt = secrets.token_bytes(16)
    key, salt = _key(s), row.salt or b""
    out: dict[str, str | None] = {}
    for name, item in items.items():
        value, text, missing = item
        if value is None and text is None and missing is None:
            out[name] = None
            continue
        # One canonical text per stored value: a missing code, a text or a number.
        canon = (
            f"missing:{missing}"
            if missing is not None
            else (f"text:{text}" if text is not None else f"value:{float(value or 0.0)!r}")
        )
        out[name] = key.keyed_hash(salt, name, canon)
    return out


def add_new(
    s: Session, entries: Sequence[tuple[Participant, Mapping[str, str]]]
) -> dict[int, dict[str, str]]:
    """Vault entries for participants who have none yet (just enrolled), written in bulk.

    Returns each participant's keyed hashes (field -> hash) for the caller's audit entry, which
    records field names and these hashes, never values (as :func:`merge_fields` does).
    """
    if not entries:
        return {}
    key, now = _key(s), utcnow()
    rows: list[dict[str, object]] = []
    hashes: dict[int, dict[str, str]] = {}
    for person, fields in entries:
        salt = secrets.token_bytes(16)
        rows.append(
            {
                "participant_id": person.id,
                "ciphertext": key.seal(dict(fields), _aad(s, person.id)),
                "fields_json": None,
                "field_names": json.dumps(sorted(fields)),
                "salt": salt,
                "updated_at": now,
            }
        )
        hashes[person.id] = {k: key.keyed_hash(salt, k, str(v)) for k, v in fields.items()}
    s.execute(insert(IdentityVault), rows)
    return hashes


def field_count(s: Session, participant: Participant) -> int:
    """How many identifying fields the participant's entry holds (no key needed)."""
    row = s.get(IdentityVault, participant.id)
    return 0 if row is None else len(json.loads(row.field_names or "[]"))


def encrypt_clear_rows(s: Session) -> int:
    """Encrypt vault rows still in clear (written before schema revision 0006); return how
    many. Needs the key only when there are such rows."""
    rows = s.scalars(
        select(IdentityVault).where(
            IdentityVault.ciphertext.is_(None), IdentityVault.fields_json.is_not(None)
        )
    ).all()
    for row in rows:
        fields = dict(json.loads(row.fields_json or "{}"))
        if row.salt is None:
            row.salt = secrets.token_bytes(16)
        _store(s, row, fields)
    if rows:
        audit.record(
            s, "peerlens", "vault.encrypt", "identity_vault", None, new={"rows": len(rows)}
        )
    return len(rows)


def rekey(s: Session, new: VaultKey) -> int:
    """Re-encrypt every vault entry under ``new`` (the caller then stores its check value)."""
    rows = s.scalars(select(IdentityVault)).all()
    plain = [(row, _fields(s, row)) for row in rows]
    for row, fields in plain:
        row.ciphertext = new.seal(fields, _aad(s, row.participant_id))
        row.fields_json = None
        # A new salt: keyed hashes already in the audit log can no longer be checked against
        # guessed values, not even with the old key (the old salt is overwritten).
        row.salt = secrets.token_bytes(16)
    return len(plain)

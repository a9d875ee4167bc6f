"""The audit chain decides whether a bearer credential (an access token, a participant's personal
link) was revoked, whatever its row says (review 7, R7-2 and R7-5).

A credential's row and its MAC or seal are made with the vault key, so the row before its
revocation is as valid as the row after: someone who copied it (a backup, a replica, an earlier
read) and can write the database would revive the credential by writing it back. The keyed,
append-only audit chain cannot be rewritten that way, and it records every issue and revocation.
So the rule, one for every kind: **an entry revoking the credential after the latest entry that
issued it revokes it**. What issues and what revokes differs by kind (:class:`Credential`):

- an access token is issued by ``token.create`` and revoked by ``token.revoke``, both naming its
  id (a revocation before the latest creation belongs to an earlier token with the same id:
  SQLite reuses the ids of deleted rows);
- a link is issued by ``link.issue`` naming its id and revoked by ``link.revoke`` of its
  participant for its timepoint or for all, or by the next ``link.issue`` of its participant and
  timepoint (issuing a link replaces the earlier ones). These entries name the participant's
  code in their study, not the link.

The entries are read with one statement through the audit log's entity index (revision 0020):
only the credential's own entries, never the chain.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from peerlens.study.models import ApiToken, AuditLog, ParticipantLink, Study

#: One audit entry as the rule reads it: its seq, action and ``new`` value.
Entry = tuple[int, str, Mapping[str, Any]]


@dataclass(frozen=True)
class Credential:
    """How the audit chain records issuing and revoking one kind of credential."""

    #: The ``entity`` of its entries.
    entity: str
    #: The actions of the entries that issue and revoke it.
    actions: tuple[str, ...]
    #: Whether an entry issued the credential of row id ``int``.
    issues: Callable[[int, str, Mapping[str, Any]], bool]
    #: Whether an entry revokes the credential issued by the entry whose ``new`` is given
    #: (``None``: no entry names its issue).
    revokes: Callable[[Mapping[str, Any] | None, str, Mapping[str, Any]], bool]


def _link_revoked_by(issued: Mapping[str, Any] | None, action: str, new: Mapping[str, Any]) -> bool:
    timepoint = None if issued is None else issued.get("timepoint")
    if action == "link.revoke":
        return new.get("timepoint") in (None, timepoint)
    return timepoint is not None and new.get("timepoint") == timepoint  # a later link.issue


API_TOKEN = Credential(
    "api_token",
    ("token.create", "token.revoke"),
    lambda row_id, action, new: action == "token.create",
    lambda issued, action, new: action == "token.revoke",
)
PARTICIPANT_LINK = Credential(
    "participant_link",
    ("link.issue", "link.revoke"),
    lambda row_id, action, new: action == "link.issue" and new.get("link") == row_id,
    _link_revoked_by,
)


def revoking_seq(kind: Credential, row_id: int, entries: Iterable[Entry]) -> int | None:
    """The ``seq`` of the first entry revoking the credential of row ``row_id`` after the latest
    entry issuing it (``None``: none), of ``entries`` (its kind's, in chain order)."""
    issued: Mapping[str, Any] | None = None
    found: int | None = None
    for seq, action, new in entries:
        if kind.issues(row_id, action, new):
            issued, found = new, None
        elif found is None and kind.revokes(issued, action, new):
            found = seq
    return found


def revoked_in_chain(session: Session, row: ApiToken | ParticipantLink) -> int | None:
    """The ``seq`` of the audit entry revoking the credential of ``row`` when its row says it is
    live (``None`` otherwise: live in the chain too, or revoked by its row).

    One indexed read of the credential's own entries (see the module docstring for the rule).
    """
    if row.revoked_at is not None:
        return None
    if isinstance(row, ApiToken):
        kind, own = API_TOKEN, [AuditLog.entity_id == str(row.id)]
    else:  # the entries name the participant's code in its study
        person = row.participant
        study = select(Study.name).where(Study.id == person.study_id).scalar_subquery()
        own = [AuditLog.entity_id == person.study_code, AuditLog.study == study]
        kind = PARTICIPANT_LINK
    q = (
        select(AuditLog.seq, AuditLog.action, AuditLog.new)
        .where(AuditLog.entity == kind.entity, AuditLog.action.in_(kind.actions), *own)
        .order_by(AuditLog.seq)
    )
    entries = ((int(seq), action, _as_mapping(new)) for seq, action, new in session.execute(q))
    return revoking_seq(kind, row.id, entries)


def _as_mapping(new: str | None) -> Mapping[str, Any]:
    value = json.loads(new) if new else None
    return value if isinstance(value, dict) else {}


def revived(session: Session, row: ApiToken | ParticipantLink) -> str | None:
    """What ``audit verify`` says of ``row`` when it is live although the audit chain revoked
    its credential (``None`` otherwise)."""
    seq = revoked_in_chain(session, row)
    if seq is None:
        return None
    what = "token" if isinstance(row, ApiToken) else "link"
    return (
        f"table {row.__tablename__}, id {row.id}: live, but revoked by audit log row seq {seq} "
        f"(an earlier copy of the row written back outside peerlens); the {what} is refused"
    )


def check_links(session: Session) -> list[str]:
    """Name every participant link whose row says it is live although the audit chain revoked
    it (one indexed read per live link)."""
    live = session.scalars(
        select(ParticipantLink)
        .where(ParticipantLink.revoked_at.is_(None))
        .options(selectinload(ParticipantLink.participant))
        .order_by(ParticipantLink.id)
    )
    return [found for row in live if (found := revived(session, row)) is not None]

"""Personal participant links: issued and revoked by the study team, one per participant and
timepoint, opening that timepoint's consent and questionnaires without an account.

A link's token (``secrets.token_urlsafe(32)``, 256 random bits) is returned once, when the link
is issued, and stored only as its sha256: whoever reads the database cannot rebuild a link. The
token never reaches the audit log. Issuing a new link for a participant and timepoint revokes
the earlier ones, so a link sent to a wrong address dies with its replacement. What a link
holder may do is checked by :func:`peerlens.study.policy.authorize_link`.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from peerlens.study import audit
from peerlens.study._lookup import get_participant, get_study, get_timepoint, lock_participants
from peerlens.study.errors import StudyError
from peerlens.study.models import ParticipantLink, utcnow
from peerlens.study.policy import Caller, authorize, guarded, token_digest
from peerlens.study.storage import Store

__all__ = ["DEFAULT_LINK_DAYS", "IssuedLink", "issue_link", "revoke_links"]

#: How long a link is valid unless the study team says otherwise.
DEFAULT_LINK_DAYS = 30
#: The longest validity a link may be given.
MAX_LINK_DAYS = 366


@dataclass(frozen=True)
class IssuedLink:
    """A link just issued: the only time its token is known outside the participant's hands."""

    participant: str
    timepoint: str
    expires_at: dt.datetime
    token: str = field(repr=False)


@guarded("link.issue")
def issue_link(
    store: Store,
    study_name: str,
    code: str,
    *,
    timepoint: str,
    days: int = DEFAULT_LINK_DAYS,
    caller: Caller,
    reason: str | None = None,
) -> IssuedLink:
    """Issue a personal link for participant ``code`` at ``timepoint``; earlier links of that
    participant and timepoint are revoked.

    Parameters
    ----------
    days
        How long the link is valid (1 to 366 days).
    caller
        Who issues (an admin or researcher; a site-scoped one for their sites' participants).

    Returns
    -------
    IssuedLink
        With the token, which is not stored and cannot be shown again.

    Raises
    ------
    StudyError
        Unknown study, participant or timepoint, a withdrawn or erased participant, or ``days``
        out of range.
    PermissionDenied
        The caller may not issue links for this participant.
    """
    if not 1 <= days <= MAX_LINK_DAYS:
        raise StudyError(f"a link is valid for 1 to {MAX_LINK_DAYS} days, not {days}")
    token = secrets.token_urlsafe(32)
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "link.issue", study)
        p = get_participant(s, study, code, grant=grant)
        # One issuer or revoker of the participant's links at a time: two links issued at
        # once must not both stay valid (each revokes the links it sees).
        lock_participants(s, [p], exclusive=True)
        if p.status in ("erased", "withdrawn"):
            raise StudyError(f"participant {code!r} was {p.status}: no link can be issued")
        tp = get_timepoint(s, study, timepoint)
        now = utcnow()
        revoked = _revoke(s, p.id, tp.id, now)
        expires = now + dt.timedelta(days=days)
        link = ParticipantLink(
            participant_id=p.id,
            timepoint_id=tp.id,
            token_sha256=token_digest(token),
            issued_at=now,
            expires_at=expires,
        )
        s.add(link)
        s.flush()
        audit.record(
            s,
            grant.actor,
            "link.issue",
            "participant_link",
            code,
            study=study_name,
            new={
                "link": link.id,
                "timepoint": tp.name,
                "expires_at": expires.isoformat(),
                "revoked_links": revoked,
            },
            reason=reason,
        )
    return IssuedLink(code, tp.name, expires, token)


@guarded("link.revoke")
def revoke_links(
    store: Store,
    study_name: str,
    code: str,
    *,
    timepoint: str | None = None,
    caller: Caller,
    reason: str | None = None,
) -> int:
    """Revoke participant ``code``'s valid links (at ``timepoint`` only, when given); return how
    many were revoked (0 when none was valid)."""
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "link.revoke", study)
        p = get_participant(s, study, code, grant=grant)
        lock_participants(s, [p], exclusive=True)
        tp = get_timepoint(s, study, timepoint) if timepoint is not None else None
        n = _revoke(s, p.id, None if tp is None else tp.id, utcnow())
        if n:
            audit.record(
                s,
                grant.actor,
                "link.revoke",
                "participant_link",
                code,
                study=study_name,
                new={"timepoint": None if tp is None else tp.name, "revoked_links": n},
                reason=reason,
            )
    return n


def _revoke(s: Session, participant_id: int, timepoint_id: int | None, now: dt.datetime) -> int:
    """Revoke the participant's links not yet revoked (of one timepoint when given)."""
    q = select(ParticipantLink).where(
        ParticipantLink.participant_id == participant_id, ParticipantLink.revoked_at.is_(None)
    )
    if timepoint_id is not None:
        q = q.where(ParticipantLink.timepoint_id == timepoint_id)
    links = list(s.scalars(q))
    for link in links:  # through the ORM, so each row's seal follows its change
        link.revoked_at = now
    return len(links)

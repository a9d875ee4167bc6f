"""Finding studies, participants, timepoints and sessions by name, with clear errors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from peerlens.study.errors import NotFound, StudyError
from peerlens.study.models import Participant, PSRelationship, Study, Timepoint
from peerlens.study.models import Session as PSSession

if TYPE_CHECKING:
    from peerlens.study.policy import Grant


def get_study(session: Session, name: str) -> Study:
    """The study called ``name``."""
    study = session.scalars(select(Study).where(Study.name == name)).first()
    if study is None:
        raise unknown_study(name)
    return study


def unknown_study(name: str) -> NotFound:
    """The error for study ``name`` when it does not exist or the caller holds no role in it:
    the same words for both (other studies' names are never listed either)."""
    return NotFound(f"no study called {name!r} (peerlens study list shows yours)")


def get_timepoint(session: Session, study: Study, name: str) -> Timepoint:
    """The study's timepoint with name (or REDCap event name) ``name``."""
    for tp in study.timepoints:
        if name in (tp.name, tp.redcap_event):
            return tp
    known = ", ".join(tp.name for tp in study.timepoints)
    raise StudyError(f"study {study.name!r} has no timepoint {name!r} (timepoints: {known})")


def participant_map(session: Session, study: Study) -> dict[str, Participant]:
    """Every participant of the study by study code."""
    rows = session.scalars(select(Participant).where(Participant.study_id == study.id))
    return {p.study_code: p for p in rows}


def get_participant(
    session: Session, study: Study, code: str, *, grant: Grant | None = None
) -> Participant:
    """The study's participant with study code ``code``.

    With ``grant``, a participant outside its sites and one that does not exist are refused
    alike (:class:`NotFound` with :meth:`Grant.hidden`'s words), so that a refusal tells a
    site-scoped caller nothing about other sites' participants.
    """
    p = session.scalars(
        select(Participant).where(Participant.study_id == study.id, Participant.study_code == code)
    ).first()
    if grant is not None:
        if p is None:
            raise NotFound(grant.hidden(code))
        grant.check(study, p)
    if p is None:
        raise StudyError(f"study {study.name!r} has no participant {code!r}")
    return p


def lock_participants(
    session: Session, people: Iterable[Participant], *, exclusive: bool = False
) -> None:
    """Hold ``people``'s rows until ``session``'s transaction ends and read them afresh.

    On PostgreSQL the rows are locked ``FOR SHARE`` (``FOR UPDATE`` when ``exclusive``), in id
    order, and reloaded: a write that adds content for a participant holds a shared lock, an
    erasure holds the exclusive one *before* it removes anything. So an erasure waits for the
    writes in flight (and then removes what they stored), and a write waits for an erasure
    (and then sees ``erased``). Row locks come before the audit chain's lock in every
    transaction (:func:`peerlens.study.audit.lock_chain` is taken when recording, later), so
    the two never deadlock. SQLite's ``BEGIN IMMEDIATE`` already serialises writers.
    """
    ids = sorted({p.id for p in people})
    if not ids or session.get_bind().dialect.name != "postgresql":
        return
    for i in range(0, len(ids), 5000):
        stmt = (
            select(Participant)
            .where(Participant.id.in_(ids[i : i + 5000]))
            .order_by(Participant.id)
            .with_for_update(read=not exclusive)
            .execution_options(populate_existing=True)
        )
        session.scalars(stmt).all()


def refuse_erased(session: Session, *people: Participant, exclusive: bool = False) -> None:
    """Lock ``people`` for a write (see :func:`lock_participants`) and refuse when any of them
    was erased: nothing new is stored about an erased participant (it could never be erased
    again).

    A write that will change the participant rows themselves takes them ``exclusive``: two
    transactions holding a shared lock on a row and both updating it would deadlock.
    """
    lock_participants(session, people, exclusive=exclusive)
    for person in people:
        if person.status == "erased":
            raise StudyError(f"participant {person.study_code!r} was erased")


def get_session(session: Session, study: Study, participant: Participant, label: str) -> PSSession:
    """The PS session labelled ``label`` in a relationship ``participant`` belongs to."""
    stmt = (
        select(PSSession)
        .join(PSRelationship, PSSession.relationship_id == PSRelationship.id)
        .where(
            PSRelationship.study_id == study.id,
            (PSRelationship.ps_worker_id == participant.id)
            | (PSRelationship.service_user_id == participant.id),
            PSSession.label == label,
        )
    )
    found = session.scalars(stmt).all()
    if not found:
        raise StudyError(
            f"participant {participant.study_code!r} has no session {label!r} in {study.name!r}"
        )
    if len(found) > 1:
        raise StudyError(
            f"participant {participant.study_code!r} has {len(found)} sessions labelled {label!r}"
        )
    return found[0]

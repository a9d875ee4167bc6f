"""Erasing a participant's identifying content, keeping the audit chain verifiable.

Policy (also in ``docs/study.md``):

1. The identity-vault row is deleted (names, contact details, dates of birth, ... are gone).
2. Free text about or by the participant is deleted: their transcripts and stories (with the
   practice stories of a PS worker's story studio and their "I disagree" marks), the notes of
   every session of a relationship they are part of, and every text-valued response item (free
   text answers and dates).
3. Their ECG/RR recordings are deleted: the database rows, their window events, and the stored
   files unless another participant's recording has the same content. Results derived from
   deleted transcripts, recordings and responses (story labels, HRV, scores) go with them.
4. Coded item responses (numbers and missing codes) are kept, linked to the pseudonymous study
   code, as research data (GDPR Art. 17(3)(d) and Art. 89 allow keeping pseudonymised research
   data when erasing it would seriously impair the research); ``purge_responses=True`` deletes
   them too, for a participant who withdraws consent to their use.
   A caller limited to some sites cannot erase someone who shares session transcripts or notes
   with a participant outside those sites (a cross-site relationship): that content is the
   partner's too, so the erasure is refused, naming the relationships, and is left to an admin
   whose sites cover both people.
5. The participant row stays with status ``erased`` so that imports naming the code are refused
   and the audit history still refers to something; nothing can be added for it afterwards.
6. The audit log is not touched: it never holds identifying values (identity changes are logged
   by field name only, free text by its length only), so the hash chain still verifies. The
   erasure itself is logged with counts of what was removed and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session as DbSession

from peerlens.study import audit
from peerlens.study._identity import field_count
from peerlens.study._lookup import get_participant, get_study, lock_participants
from peerlens.study.derived import amend_after_erasure, intact_runs
from peerlens.study.errors import PermissionDenied, StudyError
from peerlens.study.models import (
    DerivedHrv,
    DerivedScore,
    DerivedSentence,
    DerivedStory,
    IdentityVault,
    Participant,
    PSRelationship,
    Recording,
    RecordingWindow,
    Response,
    ResponseItem,
    Session,
    Study,
    Transcript,
    utcnow,
)
from peerlens.study.policy import Caller, Grant, authorize, guarded
from peerlens.study.redcap import forget_layout_rows
from peerlens.study.sessions import blob_path, remove_blob
from peerlens.study.storage import Store
from peerlens.study.stories import erase_worker_stories


def _count(result: object) -> int:
    """Rows a DELETE/UPDATE touched."""
    return int(getattr(result, "rowcount", 0))


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure removed."""

    participant: str
    identity_fields: int
    transcripts: int
    session_notes: int
    text_items: int
    recordings: int
    files_deleted: int
    responses_deleted: int
    #: SQLite: the write-ahead log was folded in and truncated (False when another connection
    #: was reading; its old page images then stay until it closes).
    pages_purged: bool = True
    #: Practice stories of the story studio (with their sentences and "I disagree" marks).
    practice_stories: int = 0


def _refuse_shared_content(s: DbSession, study: Study, grant: Grant, p: Participant) -> None:
    """Refuse an erasure that would delete content of a participant outside ``grant``'s sites.

    Erasure deletes every transcript and session note of the person's relationships, and those
    are the partner's too. When the partner is outside the caller's sites (a cross-site
    relationship), that is data the caller has no right over: the erasure is refused, naming
    the relationships, and must be done by someone whose sites cover both people."""
    if grant.sites is None:
        return
    blocked: list[int] = []
    for rel in s.scalars(
        select(PSRelationship).where(
            or_(PSRelationship.ps_worker_id == p.id, PSRelationship.service_user_id == p.id)
        )
    ):
        partner_id = rel.service_user_id if rel.ps_worker_id == p.id else rel.ps_worker_id
        partner = s.get(Participant, partner_id)
        if partner is None or grant.outside(study, partner) is None:
            continue
        sess_ids = select(Session.id).where(Session.relationship_id == rel.id)
        shared = s.scalar(
            select(func.count()).select_from(Transcript).where(Transcript.session_id.in_(sess_ids))
        ) or s.scalar(
            select(func.count())
            .select_from(Session)
            .where(Session.relationship_id == rel.id, Session.notes.is_not(None))
        )
        if shared:
            blocked.append(rel.id)
    if blocked:
        rels = ", ".join(str(r) for r in blocked)
        raise PermissionDenied(
            f"participant {p.study_code!r} shares session transcripts or notes with a participant "
            f"outside your site(s) (relationship {rels}); nothing was erased: an admin whose "
            f"sites cover both people must erase"
        )


@guarded("participant.erase")
def erase_participant(
    store: Store,
    study_name: str,
    code: str,
    *,
    caller: Caller,
    reason: str,
    purge_responses: bool = False,
) -> ErasureReport:
    """Erase a participant's identifying content per the module's policy.

    Raises
    ------
    StudyError
        Unknown participant, already erased, or no reason given.
    """
    if not reason or not reason.strip():
        raise StudyError("an erasure needs a reason (it is kept in the audit log)")
    files: list[tuple[str, str]] = []
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "participant.erase", study)
        actor = grant.actor
        p = get_participant(s, study, code, grant=grant)
        # Before anything is removed: writes in flight for them end first (and what they
        # stored is removed below), later ones wait and then see "erased" (PostgreSQL).
        lock_participants(s, [p], exclusive=True)
        # Then the audit chain's lock (the order every transaction keeps), before any row is
        # removed: a derivation holding the chain's lock never waits for rows deleted here.
        audit.lock_chain(s)
        if p.status == "erased":
            raise StudyError(f"participant {code!r} was already erased")
        _refuse_shared_content(s, study, grant, p)
        intact = intact_runs(s, study)  # before any derived row goes
        n_ident = field_count(s, p)
        s.execute(delete(IdentityVault).where(IdentityVault.participant_id == p.id))
        rels = select(PSRelationship.id).where(
            or_(PSRelationship.ps_worker_id == p.id, PSRelationship.service_user_id == p.id)
        )
        sess_ids = select(Session.id).where(Session.relationship_id.in_(rels))
        gone = or_(Transcript.participant_id == p.id, Transcript.session_id.in_(sess_ids))
        # Derived story results go with their transcripts (they hold no text, but they are of it).
        stories = select(DerivedStory.id).where(
            DerivedStory.transcript_id.in_(select(Transcript.id).where(gone))
        )
        s.execute(delete(DerivedSentence).where(DerivedSentence.story_id.in_(stories)))
        s.execute(
            delete(DerivedStory).where(
                DerivedStory.transcript_id.in_(select(Transcript.id).where(gone))
            )
        )
        n_tr = _count(s.execute(delete(Transcript).where(gone)))
        n_practice = erase_worker_stories(s, [p.id])
        n_notes = _count(
            s.execute(
                update(Session)
                .where(Session.relationship_id.in_(rels), Session.notes.is_not(None))
                .values(notes=None)
            )
        )
        resp_ids = select(Response.id).where(Response.participant_id == p.id)
        n_text = _count(
            s.execute(
                delete(ResponseItem).where(
                    ResponseItem.response_id.in_(resp_ids), ResponseItem.text.is_not(None)
                )
            )
        )
        recs = s.execute(
            select(Recording.id, Recording.sha256, Recording.suffix).where(
                Recording.participant_id == p.id
            )
        ).all()
        rec_ids = [r[0] for r in recs]
        if rec_ids:
            s.execute(delete(DerivedHrv).where(DerivedHrv.recording_id.in_(rec_ids)))
            s.execute(delete(RecordingWindow).where(RecordingWindow.recording_id.in_(rec_ids)))
            s.execute(delete(Recording).where(Recording.id.in_(rec_ids)))
        for _, sha, suffix in recs:
            others = s.scalar(
                select(func.count()).select_from(Recording).where(Recording.sha256 == sha)
            )
            if not others:
                files.append((sha, suffix))
        n_resp = 0
        if purge_responses:
            s.execute(delete(DerivedScore).where(DerivedScore.response_id.in_(resp_ids)))
            s.execute(delete(ResponseItem).where(ResponseItem.response_id.in_(resp_ids)))
            n_resp = _count(s.execute(delete(Response).where(Response.participant_id == p.id)))
            forget_layout_rows(s, study.id, p.study_code)
        amend_after_erasure(s, study, actor, reason, intact)
        old_status = p.status
        p.status = "erased"
        p.erased_at = utcnow()
        report = ErasureReport(
            code,
            n_ident,
            n_tr,
            n_notes,
            n_text,
            len(rec_ids),
            len(files),
            n_resp,
            practice_stories=n_practice,
        )
        audit.record(
            s,
            actor,
            "participant.erase",
            "participant",
            code,
            study=study_name,
            old={"status": old_status},
            new={
                "status": "erased",
                "identity_fields": n_ident,
                "transcripts": n_tr,
                "practice_stories": n_practice,
                "session_notes": n_notes,
                "text_items": n_text,
                "recordings": len(rec_ids),
                "responses_deleted": n_resp,
                "purge_responses": purge_responses,
            },
            reason=reason,
        )
    # Files go only after the database no longer refers to them.
    for sha, suffix in files:
        remove_blob(blob_path(store.blob_dir, sha, suffix))
    if not _purge_old_pages(store):
        report = replace(report, pages_purged=False)
    return report


def _purge_old_pages(store: Store) -> bool:
    """SQLite: fold the write-ahead log into the database and truncate it, so that no earlier
    page image holding erased content stays in the ``-wal`` file (secure_delete has already
    zeroed the deleted content in the pages themselves). PostgreSQL keeps dead row versions
    until VACUUM; see docs/security.md."""
    if store.dialect != "sqlite":
        return True
    raw = store.engine.raw_connection()  # outside any transaction (a checkpoint needs that)
    try:
        driver = raw.driver_connection
        assert driver is not None
        busy = driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    finally:
        raw.close()
    return not busy

"""The story studio of PS workers: practice stories with their analysis, "I disagree" marks,
and each worker's connection index over time.

A PS worker (a participant enrolled as ``ps_worker``) reaches their studio through a user
account tied to them (:func:`grant_studio_access`, relation ``worker``); a trainer's account is
tied to each worker they train (relation ``trainer``). Who reaches which worker is
:func:`peerlens.study.policy.authorize_worker`: a ``ps_worker`` account only their own studio,
a ``trainer`` only their trainees', researchers and admins every worker of their sites.

A practice story is analysed here, by :func:`peerlens.narrative.analyze`, when it is saved, and
stored with its labels, cues, hints, connection index, interval and the model's provenance:
the analysis shown is the one stored, never one sent in by the page. Editing and re-checking
saves a new version that replaces the earlier one in the worker's list and plot. Story text and
marks' notes are free text: the audit log records their length only.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd
from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import aliased

from peerlens.study import _limits, audit
from peerlens.study._lookup import get_participant, get_study, lock_participants, refuse_erased
from peerlens.study.errors import NotFound, PermissionDenied, StudyError
from peerlens.study.models import (
    STUDIO_RELATIONS,
    DerivedStory,
    Disagreement,
    Participant,
    PracticeSentence,
    PracticeStory,
    PSRelationship,
    Session,
    Study,
    Transcript,
    User,
    WorkerAccess,
    as_utc,
)
from peerlens.study.policy import (
    Caller,
    Grant,
    WorkerReach,
    active_user,
    authorize,
    authorize_worker,
    guarded,
    worker_reach,
)
from peerlens.study.storage import Store

__all__ = [
    "DISAGREEMENT_COLUMNS",
    "TIMELINE_COLUMNS",
    "StoredSentence",
    "StoredStory",
    "StudioWorker",
    "connection_over_time",
    "export_disagreements",
    "grant_studio_access",
    "mark_disagreement",
    "read_story",
    "revoke_studio_access",
    "save_story",
    "studio_workers",
    "worker_session_stories",
]

#: The longest story or transcript the studio analyses (characters).
MAX_STORY_CHARS = 200_000
#: Columns of :func:`connection_over_time`.
TIMELINE_COLUMNS = (
    "date",
    "kind",
    "story",
    "source",
    "n_sentences",
    "connection_index",
    "ci_low",
    "ci_high",
    "ci_method",
    "model_version",
)
#: Columns of :func:`worker_session_stories`.
SESSION_STORY_COLUMNS = (
    "worker",
    "participant",
    "session",
    "status",
    "n_sentences",
    "n_connection",
    "n_upward",
    "n_downward",
    "n_neutral",
)
#: Columns of :func:`export_disagreements`.
DISAGREEMENT_COLUMNS = (
    "worker",
    "story",
    "position",
    "sentence",
    "model_label",
    "proposed_label",
    "note",
    "marked_by",
    "marked_at",
    "model_version",
)


@dataclass(frozen=True)
class StudioWorker:
    """A PS worker whose studio the caller may open, and how (``self``: the caller is this
    worker; ``trainee``: the caller trains them; ``site``: the worker is at the caller's sites)."""

    code: str
    site: str | None
    relation: str


@dataclass(frozen=True)
class StoredSentence:
    """One labelled sentence of a stored story, with the caller's own "I disagree" mark (the
    label they proposed and their note) when they made one."""

    position: int
    text: str
    label: str
    confidence: float
    cues: tuple[str, ...]
    hint: str | None
    mixed: bool
    speaker: str | None
    disagreed: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class StoredStory:
    """A practice story as stored: its text, when it was told, the analysis and its model."""

    id: int
    study: str
    worker: str
    told_on: dt.date
    source: str
    speaker: str | None
    text: str
    sentences: tuple[StoredSentence, ...]
    counts: dict[str, int]
    n_sentences: int
    connection_index: float
    ci_low: float
    ci_high: float
    ci_method: str
    model_version: str
    revises: int | None
    replaced_by: int | None


def _worker(s: DbSession, study: Study, code: str) -> Participant:
    """The study's PS worker ``code`` (the same refusal for a code that is not one)."""
    p = s.scalars(
        select(Participant).where(Participant.study_id == study.id, Participant.study_code == code)
    ).first()
    if p is None or p.role != "ps_worker":
        raise NotFound(f"unknown PS worker {code!r} or not one of yours")
    return p


def _user(s: DbSession, username: str) -> User:
    user = s.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise StudyError(f"no user called {username!r}")
    return user


@guarded("studio.access")
def grant_studio_access(
    store: Store,
    study_name: str,
    worker: str,
    username: str,
    *,
    relation: str,
    caller: Caller,
    reason: str | None = None,
) -> None:
    """Tie user account ``username`` to PS worker ``worker``'s story studio.

    Parameters
    ----------
    relation
        ``worker`` (the account is this worker's own: one per worker, and one worker per
        account in a study) or ``trainer`` (the account's holder trains this worker).
    caller
        An admin or researcher whose sites include the worker's.

    Notes
    -----
    The account also needs the matching role in the study (``ps_worker`` for ``worker``,
    ``trainer`` for ``trainer``; see :func:`peerlens.study.grant_role`): the tie alone opens
    nothing, and taking the role away closes the studio at once.
    """
    if relation not in STUDIO_RELATIONS:
        raise StudyError(f"relation {relation!r}: use one of {', '.join(STUDIO_RELATIONS)}")
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "studio.access", study)
        person = get_participant(s, study, worker, grant=grant)
        if person.role != "ps_worker":
            raise StudyError(f"{worker!r} is enrolled as {person.role}, not ps_worker")
        refuse_erased(s, person)
        user = _user(s, username)
        existing = s.scalars(
            select(WorkerAccess).where(
                WorkerAccess.participant_id == person.id, WorkerAccess.user_id == user.id
            )
        ).first()
        if existing is not None:
            raise StudyError(
                f"{username!r} already opens {worker!r}'s studio as {existing.relation}"
            )
        if relation == "worker":
            taken = s.scalars(
                select(WorkerAccess).where(
                    WorkerAccess.study_id == study.id,
                    WorkerAccess.relation == "worker",
                    (WorkerAccess.participant_id == person.id) | (WorkerAccess.user_id == user.id),
                )
            ).first()
            if taken is not None:
                raise StudyError(
                    f"{worker!r} already has an account, or {username!r} is already a worker "
                    f"in {study_name!r}: revoke that first"
                )
        s.add(
            WorkerAccess(
                study_id=study.id, participant_id=person.id, user_id=user.id, relation=relation
            )
        )
        s.flush()
        audit.record(
            s,
            grant.actor,
            "studio.access",
            "worker_access",
            worker,
            study=study_name,
            new={"user": username, "relation": relation},
            reason=reason,
        )


@guarded("studio.access")
def revoke_studio_access(
    store: Store,
    study_name: str,
    worker: str,
    username: str,
    *,
    caller: Caller,
    reason: str | None = None,
) -> int:
    """Untie ``username`` from PS worker ``worker``'s studio; return how many ties went (0 or
    1). The stories stay; a worker's account tied again sees them again."""
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "studio.access", study)
        person = get_participant(s, study, worker, grant=grant)
        user = _user(s, username)
        rows = list(
            s.scalars(
                select(WorkerAccess).where(
                    WorkerAccess.participant_id == person.id, WorkerAccess.user_id == user.id
                )
            )
        )
        for row in rows:
            s.delete(row)
        if rows:
            audit.record(
                s,
                grant.actor,
                "studio.revoke",
                "worker_access",
                worker,
                study=study_name,
                old={"user": username, "relation": rows[0].relation},
                reason=reason,
            )
        return len(rows)


@guarded("studio.workers")
def studio_workers(store: Store, study_name: str, *, caller: Caller) -> list[StudioWorker]:
    """The PS workers whose studio ``caller`` may open in ``study_name``, by study code: their
    own (a PS worker), their trainees (a trainer), every worker of their sites (a researcher or
    admin). Erased workers are left out."""
    with store.transaction() as s:
        study = get_study(s, study_name)
        reach = worker_reach(s, caller, "studio.workers", study)
        sites = {x.id: x.name for x in study.sites}
        out: list[StudioWorker] = []
        for p in s.scalars(
            select(Participant)
            .where(
                Participant.study_id == study.id,
                Participant.role == "ps_worker",
                Participant.status != "erased",
            )
            .order_by(Participant.study_code)
        ):
            if not reach.reaches(p):
                continue
            how = {"worker": "self", "trainer": "trainee"}.get(reach.linked.get(p.id, ""), "site")
            out.append(StudioWorker(p.study_code, sites.get(p.site_id or -1), how))
        out.sort(key=lambda w: (w.relation != "self", w.code))
        return out


@guarded("story.save")
def save_story(
    store: Store,
    study_name: str,
    text: str,
    *,
    told_on: dt.date,
    source: str = "typed",
    transcript: bool = False,
    speaker: str | None = None,
    revises: int | None = None,
    caller: Caller,
) -> int:
    """Analyse a practice story (or transcript) of the caller's own and store it with its
    analysis; return the story's id.

    Parameters
    ----------
    text
        The story, or with ``transcript=True`` a transcript (``Name: text`` lines, WebVTT,
        SRT; see ``docs/story.md``) of which ``speaker``'s turns are scored.
    told_on
        The day the story was told or the session held (the date it is plotted at).
    source
        Where the text came from (a file name, or ``typed``), for the worker's list.
    revises
        The id of the caller's earlier story this is an edited version of.
    caller
        The PS worker's own account (tied to them as ``worker``).

    Raises
    ------
    peerlens.narrative.NarrativeError
        The text cannot be analysed (empty, not English, a malformed transcript, a speaker who
        does not speak); the message says what and where. Nothing is stored.
    """
    from peerlens.narrative import analyze

    if len(text) > MAX_STORY_CHARS:
        raise StudyError(
            f"{source}: the text has {len(text):,} characters; the studio takes at most "
            f"{MAX_STORY_CHARS:,}"
        )
    _limits.check(PracticeStory.source, source, "source")
    _limits.check(PracticeStory.speaker, speaker, "speaker")

    def own_studio(s: DbSession) -> tuple[Study, WorkerReach, Participant]:
        study = get_study(s, study_name)
        reach = worker_reach(s, caller, "story.save", study)
        own = [pid for pid, rel in reach.linked.items() if rel == "worker"]
        if not own:
            raise PermissionDenied(
                f"{caller} has no story studio of their own in {study_name!r} (an admin or "
                "researcher ties a PS worker's account to them)"
            )
        worker = s.get(Participant, own[0])
        lock_participants(s, [] if worker is None else [worker])
        if worker is None or worker.status == "erased":
            raise StudyError("this PS worker was erased: nothing new is stored")
        if revises is not None:
            earlier = s.get(PracticeStory, revises)
            if earlier is None or earlier.participant_id != worker.id:
                raise NotFound(f"unknown story {revises}")
        return study, reach, worker

    # rights first (a short transaction), then the analysis outside any transaction: a long
    # story must not hold the database's write lock while the model reads it; the write
    # transaction checks everything again, so a right withdrawn meanwhile still stops it
    with store.transaction() as s:
        own_studio(s)
    result = analyze(text, transcript=transcript, speaker=speaker, source=source)
    with store.transaction() as s:
        study, reach, worker = own_studio(s)
        summary = result.summary
        story = PracticeStory(
            study_id=study.id,
            participant_id=worker.id,
            revises_id=revises,
            told_on=told_on,
            source=source,
            speaker=result.speaker,
            text=text,
            n_sentences=summary.n_sentences,
            connection_index=_number(summary.connection_index),
            ci_low=_number(summary.ci_low),
            ci_high=_number(summary.ci_high),
            ci_method=summary.ci_method,
            counts_json=json.dumps(dict(summary.counts), sort_keys=True),
            model_version=result.model_version,
            model_json=json.dumps(result.model, sort_keys=True, default=str),
        )
        s.add(story)
        s.flush()
        s.add_all(
            PracticeSentence(
                story_id=story.id,
                position=i,
                speaker=x.speaker,
                text=x.text,
                label=x.label,
                confidence=float(x.confidence),
                cues_json=json.dumps(list(x.cues)),
                hint=x.hint,
                mixed=bool(x.mixed),
            )
            for i, x in enumerate(result.sentences)
        )
        s.flush()
        audit.record(
            s,
            reach.grant.actor,
            "story.save",
            "practice_story",
            str(story.id),
            study=study_name,
            new={
                "worker": worker.study_code,
                "told_on": told_on.isoformat(),
                "revises": revises,
                "text": audit.redacted(text),
                "n_sentences": summary.n_sentences,
                "model_version": result.model_version,
            },
        )
        return story.id


def study_name_of(s: DbSession, story: PracticeStory) -> str | None:
    """The name of the study ``story`` belongs to."""
    study = s.get(Study, story.study_id)
    return None if study is None else study.name


def _number(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _story_for(s: DbSession, caller: Caller, operation: str, story_id: int) -> PracticeStory:
    """The story ``story_id`` when ``caller`` reaches its worker for ``operation`` (else the
    refusal given for a story that does not exist)."""
    _limits.check(PracticeStory.id, story_id, "story")
    story = s.get(PracticeStory, story_id)
    worker = s.get(Participant, story.participant_id) if story is not None else None
    study = s.get(Study, story.study_id) if story is not None else None
    if story is None or worker is None or study is None:
        raise NotFound(f"unknown story {story_id}")
    try:
        authorize_worker(s, caller, operation, study, worker)
    except PermissionDenied as exc:
        raise NotFound(f"unknown story {story_id}") from exc
    return story


@guarded("story.read")
def read_story(store: Store, story_id: int, *, caller: Caller) -> StoredStory:
    """A practice story with its sentences, labels and the caller's own "I disagree" marks.

    Raises
    ------
    PermissionDenied
        ``unknown story N`` for a story that does not exist and for one the caller may not
        read, alike.
    """
    with store.transaction() as s:
        story = _story_for(s, caller, "story.read", story_id)
        user = active_user(s, caller)
        marks = {
            d.position: d
            for d in s.scalars(
                select(Disagreement).where(
                    Disagreement.story_id == story.id, Disagreement.user_id == user.id
                )
            )
        }
        sentences = []
        for x in s.scalars(
            select(PracticeSentence)
            .where(PracticeSentence.story_id == story.id)
            .order_by(PracticeSentence.position)
        ):
            mark = marks.get(x.position)
            sentences.append(
                StoredSentence(
                    position=x.position,
                    text=x.text,
                    label=x.label,
                    confidence=x.confidence,
                    cues=tuple(json.loads(x.cues_json)),
                    hint=x.hint,
                    mixed=x.mixed,
                    speaker=x.speaker,
                    disagreed=mark.proposed_label if mark is not None else None,
                    note=mark.note if mark is not None else None,
                )
            )
        worker = s.get(Participant, story.participant_id)
        later = s.scalar(select(PracticeStory.id).where(PracticeStory.revises_id == story.id))
        return StoredStory(
            id=story.id,
            study=study_name_of(s, story) or "",
            worker=worker.study_code if worker is not None else "",
            told_on=story.told_on,
            source=story.source,
            speaker=story.speaker,
            text=story.text,
            sentences=tuple(sentences),
            counts={str(k): int(v) for k, v in json.loads(story.counts_json).items()},
            n_sentences=story.n_sentences,
            connection_index=_nan(story.connection_index),
            ci_low=_nan(story.ci_low),
            ci_high=_nan(story.ci_high),
            ci_method=story.ci_method,
            model_version=story.model_version,
            revises=story.revises_id,
            replaced_by=later,
        )


def _nan(x: float | None) -> float:
    return math.nan if x is None else float(x)


@guarded("story.read")
def connection_over_time(
    store: Store, study_name: str, worker: str, *, caller: Caller
) -> pd.DataFrame:
    """PS worker ``worker``'s connection index over time: their practice stories (the newest
    version of each) and their analysed sessions, oldest first.

    Returns
    -------
    pandas.DataFrame
        One row per story or session, columns :data:`TIMELINE_COLUMNS`: ``date``, ``kind``
        (``practice`` or ``session``), ``story`` (the practice story's id; ``None`` for a
        session), ``source`` (a file name or ``typed``; a session's label),
        ``n_sentences``, ``connection_index``, ``ci_low``, ``ci_high`` (``NaN`` when
        undefined), ``ci_method`` and ``model_version``. Sessions come from the stored story
        results of their transcripts (``peerlens study derive``), the newest version of each.
    """
    with store.transaction() as s:
        study = get_study(s, study_name)
        person = _worker(s, study, worker)
        authorize_worker(s, caller, "story.read", study, person)
        rows: list[dict[str, object]] = []
        replaced = select(PracticeStory.revises_id).where(PracticeStory.revises_id.is_not(None))
        for p in s.scalars(
            select(PracticeStory).where(
                PracticeStory.participant_id == person.id, PracticeStory.id.not_in(replaced)
            )
        ):
            rows.append(
                {
                    "date": p.told_on,
                    "kind": "practice",
                    "story": p.id,
                    "source": p.source,
                    "n_sentences": p.n_sentences,
                    "connection_index": _nan(p.connection_index),
                    "ci_low": _nan(p.ci_low),
                    "ci_high": _nan(p.ci_high),
                    "ci_method": p.ci_method,
                    "model_version": p.model_version,
                }
            )
        stmt = select(Session, DerivedStory).join(
            PSRelationship, Session.relationship_id == PSRelationship.id
        )
        found = s.execute(
            _newest_stories(stmt, study).where(
                PSRelationship.ps_worker_id == person.id, DerivedStory.status == "ok"
            )
        ).all()
        for sess, ds in found:
            started = as_utc(sess.started_at)
            model = json.loads(ds.model_json or "{}")
            rows.append(
                {
                    "date": started.date() if started is not None else None,
                    "kind": "session",
                    "story": None,
                    "source": sess.label,
                    "n_sentences": ds.n_sentences or 0,
                    "connection_index": _nan(ds.connection_index),
                    "ci_low": _nan(ds.ci_low),
                    "ci_high": _nan(ds.ci_high),
                    "ci_method": str(model.get("ci_method", "")),
                    "model_version": str(model.get("model_version", "")),
                }
            )
    frame = pd.DataFrame(rows, columns=list(TIMELINE_COLUMNS))
    return frame.sort_values(["date", "kind"], kind="stable").reset_index(drop=True)


@guarded("story.sessions")
def worker_session_stories(store: Store, study_name: str, *, caller: Caller) -> pd.DataFrame:
    """The stored story labels of every PS worker's session transcripts, for analysis (e.g.
    each worker's connection index as a moderator, :func:`peerlens.analysis.fit_moderation`).

    Returns
    -------
    pandas.DataFrame
        One row per PS session with an analysed transcript (the newest version of it),
        columns :data:`SESSION_STORY_COLUMNS`: ``worker`` and ``participant`` (pseudonyms),
        ``session`` (its label), ``status`` (``ok`` or ``error``), ``n_sentences`` and the
        count of each label. No text. A site-scoped caller gets the workers of their sites.
    """
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "story.sessions", study, tier="deidentified")
        return session_story_rows(s, study, grant)


def session_story_rows(s: DbSession, study: Study, grant: Grant) -> pd.DataFrame:
    """:func:`worker_session_stories` inside an open transaction, for a caller whose right to
    read them (``story.sessions``) was checked and granted as ``grant``."""
    worker = aliased(Participant)
    user = aliased(Participant)
    stmt = (
        select(worker, user.study_code, Session.label, DerivedStory)
        .join(PSRelationship, PSRelationship.ps_worker_id == worker.id)
        .join(user, PSRelationship.service_user_id == user.id)
        .join(Session, Session.relationship_id == PSRelationship.id)
    )
    found = s.execute(_newest_stories(stmt, study).where(PSRelationship.study_id == study.id)).all()
    rows = []
    for person, participant, label, ds in found:
        if grant.outside(study, person) is not None:
            continue
        counts = json.loads(ds.counts_json or "{}")
        rows.append(
            (
                person.study_code,
                participant,
                label,
                ds.status,
                ds.n_sentences or 0,
                *(int(counts.get(c.removeprefix("n_")) or 0) for c in SESSION_STORY_COLUMNS[5:]),
            )
        )
    frame = pd.DataFrame(rows, columns=list(SESSION_STORY_COLUMNS))
    return frame.sort_values(["worker", "participant", "session"], kind="stable").reset_index(
        drop=True
    )


@guarded("story.disagree")
def mark_disagreement(
    store: Store,
    story_id: int,
    position: int,
    label: str,
    *,
    note: str | None = None,
    caller: Caller,
) -> None:
    """Mark "I disagree" on sentence ``position`` of a story: ``label`` is the label the caller
    proposes instead (one of the four labels, not the model's). Marking the same sentence again
    replaces the caller's earlier mark. The audit log records the labels, not the sentence or
    the note."""
    from peerlens.narrative import LABELS

    if label not in LABELS:
        raise StudyError(f"label {label!r}: use one of {', '.join(LABELS)}")
    _limits.check(Disagreement.position, position, "sentence")
    note = (note or "").strip() or None
    if note is not None and len(note) > 2000:
        raise StudyError("the note has more than 2,000 characters")
    with store.transaction() as s:
        story = _story_for(s, caller, "story.disagree", story_id)
        user = active_user(s, caller)
        sentence = s.scalars(
            select(PracticeSentence).where(
                PracticeSentence.story_id == story.id, PracticeSentence.position == position
            )
        ).first()
        if sentence is None:
            raise StudyError(f"story {story_id} has no sentence {position + 1}")
        if label == sentence.label:
            raise StudyError(
                f"sentence {position + 1} is already labelled {label}: choose the label you "
                "think is right"
            )
        old = s.scalars(
            select(Disagreement).where(
                Disagreement.story_id == story.id,
                Disagreement.position == position,
                Disagreement.user_id == user.id,
            )
        ).first()
        before = None if old is None else {"proposed_label": old.proposed_label}
        if old is not None:
            s.delete(old)
            s.flush()
        s.add(
            Disagreement(
                story_id=story.id,
                position=position,
                user_id=user.id,
                sentence=sentence.text,
                model_label=sentence.label,
                proposed_label=label,
                note=note,
            )
        )
        s.flush()
        audit.record(
            s,
            caller.username,
            "story.disagree",
            "story_disagreement",
            f"{story.id}/{position}",
            study=study_name_of(s, story),
            old=before,
            new={
                "model_label": sentence.label,
                "proposed_label": label,
                "note": audit.redacted(note),
            },
        )


@guarded("disagreements.export")
def export_disagreements(store: Store, study_name: str, *, caller: Caller) -> pd.DataFrame:
    """Every "I disagree" mark on the practice stories of the caller's sites, with the sentence
    as it was marked: the material of the next training round of the story model.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`DISAGREEMENT_COLUMNS`, one row per mark, by story and sentence.
        ``marked_by`` is the marking account's role towards the worker (``worker`` or
        ``trainer``), not its user name.
    """
    with store.transaction() as s:
        study = get_study(s, study_name)
        grant = authorize(s, caller, "disagreements.export", study, tier="remove_identifiers")
        found = s.execute(
            select(Disagreement, PracticeStory, Participant)
            .join(PracticeStory, Disagreement.story_id == PracticeStory.id)
            .join(Participant, PracticeStory.participant_id == Participant.id)
            .where(PracticeStory.study_id == study.id)
            .order_by(PracticeStory.id, Disagreement.position, Disagreement.id)
        ).all()
        ties = {
            (a.participant_id, a.user_id): a.relation
            for a in s.scalars(select(WorkerAccess).where(WorkerAccess.study_id == study.id))
        }
        rows = [
            {
                "worker": person.study_code,
                "story": story.id,
                "position": d.position,
                "sentence": d.sentence,
                "model_label": d.model_label,
                "proposed_label": d.proposed_label,
                "note": d.note,
                "marked_by": ties.get((person.id, d.user_id), "former"),
                "marked_at": as_utc(d.marked_at),
                "model_version": story.model_version,
            }
            for d, story, person in found
            if grant.outside(study, person) is None
        ]
        audit.record(
            s,
            grant.actor,
            "disagreements.export",
            "story_disagreement",
            None,
            study=study_name,
            new={"rows": len(rows), "sites": None if grant.sites is None else sorted(grant.sites)},
        )
    return pd.DataFrame(rows, columns=list(DISAGREEMENT_COLUMNS))


_Query = TypeVar("_Query", bound="Select[*tuple[Any, ...]]")


def _newest_stories(stmt: _Query, study: Study) -> _Query:
    """``stmt`` (a select that has joined :class:`Session`) joined to the story derived from
    each session's newest transcript version in ``study``."""
    newest = (
        select(Transcript.session_id, func.max(Transcript.version).label("v"))
        .where(Transcript.study_id == study.id, Transcript.session_id.is_not(None))
        .group_by(Transcript.session_id)
        .subquery()
    )
    return (
        stmt.join(Transcript, Transcript.session_id == Session.id)
        .join(
            newest,
            (newest.c.session_id == Transcript.session_id) & (newest.c.v == Transcript.version),
        )
        .join(DerivedStory, DerivedStory.transcript_id == Transcript.id)
    )


def erase_worker_stories(s: DbSession, participant_ids: Sequence[int]) -> int:
    """Delete the practice stories of ``participant_ids`` with their sentences and marks, and
    their studio access (for :func:`peerlens.study.erase_participant`); return how many stories
    went."""
    stories = select(PracticeStory.id).where(PracticeStory.participant_id.in_(participant_ids))
    s.execute(delete(Disagreement).where(Disagreement.story_id.in_(stories)))
    s.execute(delete(PracticeSentence).where(PracticeSentence.story_id.in_(stories)))
    ids = list(s.scalars(stories))
    # Newest first, so that no version is deleted before the one revising it.
    for sid in sorted(ids, reverse=True):
        s.execute(delete(PracticeStory).where(PracticeStory.id == sid))
    s.execute(delete(WorkerAccess).where(WorkerAccess.participant_id.in_(participant_ids)))
    return len(ids)

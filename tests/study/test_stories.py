"""The story studio's study API: who reaches which PS worker's stories (own, trainees, site),
saving and reading stories with their analysis, "I disagree" marks and their export, the
connection index over time, and erasure. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from peerlens.narrative import NarrativeError, analyze
from peerlens.study import (
    Caller,
    PermissionDenied,
    Store,
    StudyError,
    add_participant,
    add_relationship,
    add_session,
    add_transcript,
    connection_over_time,
    create_study,
    derive,
    erase_participant,
    export_disagreements,
    grant_role,
    grant_studio_access,
    mark_disagreement,
    read_story,
    revoke_role,
    revoke_studio_access,
    save_story,
    studio_workers,
)
from peerlens.study.models import AuditLog, PracticeStory

from .conftest import ADMIN, make_user

# A downward comparison the packaged model calls one after CONNECTION (the neighbour context counts:
# "At least you still have a job, I had nothing back then." sits at 0.82 there, under the
# downward threshold 0.84; docs/story.md, "Reproducible fits").
COMPARISON = "At least you have a roof over your head, I was homeless back then."
CONNECTION = "Me too, I felt exactly the same when I was in hospital."
STORY = f"{CONNECTION} {COMPARISON}"
DAY = dt.date(2026, 3, 2)


@dataclass
class Studio:
    store: Store
    worker: Caller  # tied to W1 (leeds)
    other: Caller  # tied to W2 (glasgow)
    coach: Caller  # trainer of W1
    leeds: Caller  # researcher at leeds
    research: Caller  # researcher, whole study
    auditor: Caller


@pytest.fixture
def studio(store: Store, config_path: Path) -> Studio:
    create_study(store, "pilot", config_path, caller=ADMIN)
    add_participant(store, "pilot", "W1", site="leeds", role="ps_worker", caller=ADMIN)
    add_participant(store, "pilot", "W2", site="glasgow", role="ps_worker", caller=ADMIN)
    add_participant(store, "pilot", "S1", site="leeds", caller=ADMIN)
    worker = make_user(store, "worker1", "ps_worker", study="pilot", site="leeds")
    other = make_user(store, "worker2", "ps_worker", study="pilot", site="glasgow")
    coach = make_user(store, "coach", "trainer", study="pilot")
    leeds = make_user(store, "res-leeds", "researcher", study="pilot", site="leeds")
    research = make_user(store, "res", "researcher", study="pilot")
    auditor = make_user(store, "aud", "auditor")
    grant_studio_access(store, "pilot", "W1", "worker1", relation="worker", caller=ADMIN)
    grant_studio_access(store, "pilot", "W2", "worker2", relation="worker", caller=research)
    grant_studio_access(store, "pilot", "W1", "coach", relation="trainer", caller=leeds)
    return Studio(store, worker, other, coach, leeds, research, auditor)


def _audit_text(store: Store) -> str:
    with store.transaction() as s:
        rows = s.scalars(select(AuditLog)).all()
        return "\n".join(f"{r.action} {r.entity_id} {r.old} {r.new}" for r in rows)


def test_a_worker_saves_a_story_and_reads_it_with_labels_cues_and_hints(studio: Studio) -> None:
    sid = save_story(studio.store, "pilot", STORY, told_on=DAY, caller=studio.worker)
    story = read_story(studio.store, sid, caller=studio.worker)
    expected = analyze(STORY)  # the narrative package's own result for the same text
    assert [(x.text, x.label, x.hint) for x in story.sentences] == [
        (x.text, x.label, x.hint) for x in expected.sentences
    ]
    by_label = {x.label: x for x in story.sentences}
    assert by_label["connection"].hint is None
    assert by_label["downward"].hint and by_label["downward"].cues
    assert story.worker == "W1" and story.told_on == DAY and story.text == STORY
    assert story.model_version == expected.model_version
    assert story.connection_index == pytest.approx(expected.summary.connection_index)
    # The story's text is in the database, never in the audit log.
    assert "hospital" not in _audit_text(studio.store)


def test_a_worker_reaches_only_their_own_stories(studio: Studio) -> None:
    sid = save_story(studio.store, "pilot", STORY, told_on=DAY, caller=studio.worker)
    with pytest.raises(PermissionDenied) as other:
        read_story(studio.store, sid, caller=studio.other)
    with pytest.raises(PermissionDenied) as missing:
        read_story(studio.store, sid + 1000, caller=studio.other)
    assert str(other.value) == f"unknown story {sid}"  # the same words as for no such story
    assert str(missing.value) == f"unknown story {sid + 1000}"
    with pytest.raises(PermissionDenied):
        connection_over_time(studio.store, "pilot", "W1", caller=studio.other)
    with pytest.raises(PermissionDenied, match="unknown PS worker"):
        connection_over_time(studio.store, "pilot", "S1", caller=studio.other)
    assert [w.code for w in studio_workers(studio.store, "pilot", caller=studio.other)] == ["W2"]
    # A researcher saves no practice stories: only a worker's own account does.
    with pytest.raises(PermissionDenied):
        save_story(studio.store, "pilot", STORY, told_on=DAY, caller=studio.research)


def test_a_trainer_sees_their_trainees_only_and_researchers_their_sites(studio: Studio) -> None:
    sid = save_story(studio.store, "pilot", STORY, told_on=DAY, caller=studio.worker)
    other = save_story(studio.store, "pilot", CONNECTION, told_on=DAY, caller=studio.other)
    assert read_story(studio.store, sid, caller=studio.coach).worker == "W1"
    with pytest.raises(PermissionDenied):
        read_story(studio.store, other, caller=studio.coach)
    with pytest.raises(PermissionDenied):
        save_story(studio.store, "pilot", STORY, told_on=DAY, caller=studio.coach)
    who = {
        c.username: [(w.code, w.relation) for w in studio_workers(studio.store, "pilot", caller=c)]
        for c in (studio.worker, studio.coach, studio.leeds, studio.research)
    }
    assert who == {
        "worker1": [("W1", "self")],
        "coach": [("W1", "trainee")],
        "res-leeds": [("W1", "site")],
        "res": [("W1", "site"), ("W2", "site")],
    }
    assert read_story(studio.store, sid, caller=studio.leeds).id == sid
    with pytest.raises(PermissionDenied):
        read_story(studio.store, other, caller=studio.leeds)
    for nobody in (studio.auditor, Caller("not-a-user")):
        with pytest.raises(PermissionDenied):
            studio_workers(studio.store, "pilot", caller=nobody)
        with pytest.raises(PermissionDenied):
            read_story(studio.store, sid, caller=nobody)


def test_the_tie_opens_nothing_without_the_role_and_untying_closes(studio: Studio) -> None:
    sid = save_story(studio.store, "pilot", STORY, told_on=DAY, caller=studio.worker)
    revoke_role(studio.store, "coach", "trainer", study="pilot", caller=ADMIN)
    with pytest.raises(PermissionDenied):
        read_story(studio.store, sid, caller=studio.coach)
    grant_role(studio.store, "coach", "trainer", study="pilot", caller=ADMIN)
    assert read_story(studio.store, sid, caller=studio.coach).id == sid
    assert revoke_studio_access(studio.store, "pilot", "W1", "coach", caller=studio.leeds) == 1
    with pytest.raises(PermissionDenied):
        read_story(studio.store, sid, caller=studio.coach)
    # A Leeds researcher ties no one to a Glasgow worker.
    with pytest.raises(PermissionDenied):
        grant_studio_access(
            studio.store, "pilot", "W2", "coach", relation="trainer", caller=studio.leeds
        )
    with pytest.raises(PermissionDenied):
        grant_studio_access(
            studio.store, "pilot", "W1", "coach", relation="trainer", caller=studio.worker
        )
    with pytest.raises(StudyError, match="already"):
        grant_studio_access(studio.store, "pilot", "W1", "worker2", relation="worker", caller=ADMIN)
    with pytest.raises(StudyError, match="not ps_worker"):
        grant_studio_access(studio.store, "pilot", "S1", "coach", relation="trainer", caller=ADMIN)


def test_disagreements_are_stored_exported_and_audited_without_text(studio: Studio) -> None:
    sid = save_story(studio.store, "pilot", STORY, told_on=DAY, caller=studio.worker)
    story = read_story(studio.store, sid, caller=studio.worker)
    comparison = next(x for x in story.sentences if x.hint is not None)
    mark_disagreement(
        studio.store,
        sid,
        comparison.position,
        "connection",
        note="I meant it kindly, about Leeds General",
        caller=studio.worker,
    )
    mark_disagreement(studio.store, sid, comparison.position, "neutral", caller=studio.coach)
    again = read_story(studio.store, sid, caller=studio.worker)
    assert again.sentences[comparison.position].disagreed == "connection"
    coach_view = read_story(studio.store, sid, caller=studio.coach)
    assert coach_view.sentences[comparison.position].disagreed == "neutral"
    with pytest.raises(StudyError, match="already labelled"):
        mark_disagreement(
            studio.store, sid, comparison.position, comparison.label, caller=studio.worker
        )
    with pytest.raises(StudyError, match="no sentence"):
        mark_disagreement(studio.store, sid, 99, "neutral", caller=studio.worker)
    with pytest.raises(PermissionDenied):
        mark_disagreement(studio.store, sid, 0, "neutral", caller=studio.other)
    with pytest.raises(PermissionDenied):  # researchers read, they do not mark
        mark_disagreement(studio.store, sid, 0, "neutral", caller=studio.research)
    frame = export_disagreements(studio.store, "pilot", caller=studio.research)
    assert sorted(frame["marked_by"]) == ["trainer", "worker"]
    assert set(frame["sentence"]) == {comparison.text}
    assert set(frame["model_label"]) == {comparison.label}
    audit = _audit_text(studio.store)
    assert "Leeds General" not in audit and comparison.text not in audit
    assert '"proposed_label":"connection"' in audit
    with pytest.raises(PermissionDenied):
        export_disagreements(studio.store, "pilot", caller=studio.worker)
    # A Leeds researcher exports Leeds workers' marks only.
    glasgow = save_story(studio.store, "pilot", STORY, told_on=DAY, caller=studio.other)
    mark_disagreement(studio.store, glasgow, 0, "neutral", caller=studio.other)
    assert set(export_disagreements(studio.store, "pilot", caller=studio.leeds)["worker"]) == {"W1"}
    assert set(export_disagreements(studio.store, "pilot", caller=studio.research)["worker"]) == {
        "W1",
        "W2",
    }


def test_connection_index_over_time_holds_practice_and_sessions(studio: Studio) -> None:
    first = save_story(studio.store, "pilot", COMPARISON, told_on=DAY, caller=studio.worker)
    save_story(studio.store, "pilot", CONNECTION, told_on=DAY, revises=first, caller=studio.worker)
    later = DAY + dt.timedelta(days=7)
    save_story(studio.store, "pilot", STORY, told_on=later, caller=studio.worker)
    rel = add_relationship(
        studio.store,
        "pilot",
        "W1",
        "S1",
        started_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        caller=ADMIN,
    )
    sess = add_session(
        studio.store,
        "pilot",
        rel,
        "s1",
        started_at=dt.datetime(2026, 3, 5, 10, tzinfo=dt.UTC),
        mode="phone",
        caller=ADMIN,
    )
    add_transcript(
        studio.store,
        "pilot",
        f"Sam: {CONNECTION}\nAlex: Thanks.\nSam: {COMPARISON}",
        session_id=sess,
        speaker="Sam",
        caller=ADMIN,
    )
    derive(studio.store, "pilot", ["story"], caller=ADMIN)
    frame = connection_over_time(studio.store, "pilot", "W1", caller=studio.coach)
    assert list(frame["kind"]) == ["practice", "session", "practice"]  # by date
    assert list(frame["date"]) == [DAY, dt.date(2026, 3, 5), later]
    assert frame.loc[0, "connection_index"] == 1.0  # the revised version replaced the first
    session = frame.loc[1]
    assert session["source"] == "s1" and 0 <= session["ci_low"] <= session["ci_high"] <= 1
    assert not math.isnan(session["connection_index"])
    assert list(frame["story"].dropna()) == [first + 1, first + 2]


def test_bad_text_stores_nothing(studio: Studio) -> None:
    with pytest.raises(NarrativeError):
        save_story(studio.store, "pilot", "   ", told_on=DAY, caller=studio.worker)
    with pytest.raises(NarrativeError, match="speaker"):
        save_story(
            studio.store,
            "pilot",
            "Sam: Me too.\nAlex: Thanks.",
            told_on=DAY,
            transcript=True,
            speaker="Kim",
            caller=studio.worker,
        )
    with studio.store.transaction() as s:
        assert s.scalars(select(PracticeStory)).all() == []


def test_erasure_deletes_a_workers_practice_stories(studio: Studio) -> None:
    sid = save_story(studio.store, "pilot", STORY, told_on=DAY, caller=studio.worker)
    mark_disagreement(studio.store, sid, 0, "neutral", caller=studio.coach)
    report = erase_participant(studio.store, "pilot", "W1", caller=ADMIN, reason="request")
    assert report.practice_stories == 1
    with studio.store.transaction() as s:
        assert s.scalars(select(PracticeStory)).all() == []
    with pytest.raises(PermissionDenied):
        read_story(studio.store, sid, caller=studio.worker)
    assert export_disagreements(studio.store, "pilot", caller=studio.research).empty


def test_the_analysis_runs_outside_the_write_transaction(
    studio: Studio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long story is analysed while other writers go on (SQLite has one writer at a time)."""
    import threading

    import peerlens.narrative as narrative

    real = narrative.analyze
    finished: list[bool] = []

    def other_writer() -> None:
        add_participant(studio.store, "pilot", "S9", site="leeds", caller=ADMIN)
        finished.append(True)

    def analyze_while_another_writes(*args: object, **kwargs: object) -> object:
        thread = threading.Thread(target=other_writer)
        thread.start()
        thread.join(timeout=10)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(narrative, "analyze", analyze_while_another_writes)
    sid = save_story(studio.store, "pilot", STORY, told_on=DAY, caller=studio.worker)
    assert finished == [True], "another writer waited for the analysis"
    assert read_story(studio.store, sid, caller=studio.worker).n_sentences == 2

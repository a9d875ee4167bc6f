"""What a participant does through their link: consent, answer page by page, resume, withdraw."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from peerlens.instruments import score
from peerlens.study import (
    ConsentNeeded,
    LinkHolder,
    PermissionDenied,
    Store,
    StudyError,
    add_participant,
    agree_to_consent,
    audit_frame,
    create_study,
    derive,
    derived_frame,
    export_frame,
    issue_link,
    open_visit,
    save_page,
    set_consent_text,
    verify_audit,
    verify_derived,
    withdraw_through_link,
)

from .conftest import ADMIN


def _answers(store: Store, holder: LinkHolder, page: int, value: int) -> dict[str, str]:
    layout = open_visit(store, caller=holder).pages[page - 1].layout
    return {q.item: str(value) for q in layout.questions}


def _stored(store: Store) -> pd.DataFrame:
    frame = export_frame(store, "pilot", tier="deidentified", caller=ADMIN)
    return frame[frame["participant"] == "A1"]


def _items(frame: pd.DataFrame) -> dict[str, str]:
    """Stored items as the answers they were given as (value, or missing code)."""
    items = frame[frame["kind"] == "item"]
    return {
        row["name"]: row["missing_code"]
        if isinstance(row["missing_code"], str)
        else f"{row['value']:g}"
        for _, row in items.iterrows()
    }


def test_consent_comes_first_and_is_audited_with_its_version(
    store: Store, holder: LinkHolder
) -> None:
    visit = open_visit(store, caller=holder)
    assert not visit.consented and visit.consent is not None and visit.consent.version == "v1"
    assert not visit.renewal
    with pytest.raises(ConsentNeeded, match="agree to the consent"):
        save_page(store, 1, _answers(store, holder, 1, 3), caller=holder)
    with pytest.raises(ConsentNeeded, match="changed"):
        agree_to_consent(store, "v0", caller=holder)
    assert agree_to_consent(store, "v1", caller=holder).consented
    agree_to_consent(store, "v1", caller=holder)  # agreeing twice records it once
    log = audit_frame(store, caller=ADMIN)
    consents = log[log["action"] == "consent.add"]
    assert list(consents["actor"]) == ["link:A1"] and '"v1"' in consents.iloc[0]["new"]
    set_consent_text(store, "pilot", "v2", "A new wording.", caller=ADMIN)
    visit = open_visit(store, caller=holder)
    assert not visit.consented and visit.consent is not None and visit.consent.version == "v2"
    assert visit.renewal  # agreed to v1, asked again for v2
    with pytest.raises(ConsentNeeded, match="agree to the consent"):
        save_page(store, 1, _answers(store, holder, 1, 3), caller=holder)
    assert len(_stored(store)) == 0
    renewed = agree_to_consent(store, "v2", caller=holder)
    assert renewed.consented and renewed.open and not renewed.renewal
    with pytest.raises(StudyError, match="already has consent text"):
        set_consent_text(store, "pilot", "v2", "Another wording.", caller=ADMIN)


def test_pages_save_resume_complete_and_score(store: Store, holder: LinkHolder) -> None:
    agree_to_consent(store, "v1", caller=holder)
    visit = open_visit(store, caller=holder)
    assert [len(p.layout.questions) for p in visit.pages] == [9, 9, 8, 9]
    assert visit.pages[0].layout.standin  # no licensed wording loaded in the tests
    given: dict[str, str] = {}
    for page, value in ((1, 4), (2, 2)):
        answers = _answers(store, holder, page, value)
        done = save_page(store, page, answers, caller=holder)
        assert done.problems == {} and set(done.saved) == set(answers)
        given |= answers
    again = open_visit(store, caller=holder)  # "another device": nothing but the link
    assert again.next_page == 3
    assert dict(again.pages[0].answers) == {
        k: v for k, v in given.items() if k in again.pages[0].answers
    }
    stored = _stored(store)
    assert set(stored.loc[stored["instrument"] == "scs", "completion"]) == {0}
    third = _answers(store, holder, 3, 5)
    skip = next(q for q in again.pages[2].layout.questions if q.skip_code is not None)
    third[skip.item] = "-99"  # prefer not to answer, where the SCS allows one missing item
    done = save_page(store, 3, third, caller=holder)
    assert done.completed == ("scs",) and done.visit.next_page == 4
    given |= third
    stored = _stored(store)
    scs = stored[stored["instrument"] == "scs"]
    assert set(scs["completion"]) == {2}
    assert _items(scs) == given  # every answer stored as given, the skipped one as its code
    # The derived score is what the scoring engine gives for the answers as given.
    expected = score(pd.DataFrame([given]), "scs", missing_codes=[-99]).iloc[0]
    scores = derived_frame(store, "pilot", "scores", caller=ADMIN)
    total = scores[(scores["participant"] == "A1") & (scores["name"] == "scs_total")]
    assert len(total) == 1 and total.iloc[0]["value"] == pytest.approx(expected["scs_total"])
    assert verify_audit(store, caller=ADMIN).ok


def test_an_invalid_answer_stores_nothing_of_its_page(store: Store, holder: LinkHolder) -> None:
    agree_to_consent(store, "v1", caller=holder)
    answers = _answers(store, holder, 4, 1)  # the PHQ-9: 0..3
    first, second, third = list(answers)[:3]
    answers[first] = "7"
    answers[second] = ""
    answers[third] = "<script>alert(1)</script>"
    done = save_page(store, 4, answers, caller=holder)
    assert set(done.problems) == {first, second, third} and done.saved == ()
    assert done.submitted[third] == "<script>alert(1)</script>"
    assert _stored(store).empty
    phq_skip = [q.skip_code for q in done.visit.pages[3].layout.questions]
    assert "-99" in phq_skip  # the PHQ-9 total tolerates two missing items
    with pytest.raises(StudyError, match="no page 9"):
        save_page(store, 9, answers, caller=holder)


def test_withdrawal_blocks_further_answers(store: Store, holder: LinkHolder) -> None:
    agree_to_consent(store, "v1", caller=holder)
    save_page(store, 4, _answers(store, holder, 4, 1), caller=holder)
    visit = withdraw_through_link(store, caller=holder)
    assert visit.withdrawn and not visit.open
    with pytest.raises(StudyError, match="withdrawn"):
        save_page(store, 1, _answers(store, holder, 1, 3), caller=holder)
    with pytest.raises(StudyError, match="withdrawn"):
        agree_to_consent(store, "v1", caller=holder)
    stored = _stored(store)
    assert set(stored["instrument"]) == {"phq9"}  # kept, nothing added
    assert set(_items(stored).values()) == {"1"} and len(_items(stored)) == 9
    log = audit_frame(store, caller=ADMIN)
    assert list(log.loc[log["action"] == "participant.withdraw", "actor"]) == ["link:A1"]


def test_staff_accounts_cannot_act_as_the_participant(store: Store, holder: LinkHolder) -> None:
    for call in (
        lambda: open_visit(store, caller=ADMIN),  # type: ignore[arg-type]
        lambda: save_page(store, 1, {}, caller=ADMIN),  # type: ignore[arg-type]
        lambda: withdraw_through_link(store, caller=ADMIN),  # type: ignore[arg-type]
    ):
        with pytest.raises(PermissionDenied):
            call()


def test_without_a_consent_text_a_recorded_consent_opens_the_questionnaires(
    store: Store, config_path: Path
) -> None:
    import datetime as dt

    from peerlens.study import add_consent

    create_study(store, "plain", config_path, caller=ADMIN)  # no consent text in this config
    add_participant(store, "plain", "C3", site="leeds", caller=ADMIN)
    holder = LinkHolder(
        "C3", issue_link(store, "plain", "C3", timepoint="week24", caller=ADMIN).token
    )
    visit = open_visit(store, caller=holder)
    assert visit.consent is None and not visit.consented and not visit.open
    with pytest.raises(StudyError, match="no consent text"):
        agree_to_consent(store, "v1", caller=holder)
    when = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)
    add_consent(store, "plain", "C3", version="paper-v1", consented_at=when, caller=ADMIN)
    visit = open_visit(store, caller=holder)
    assert visit.open and [p.layout.instrument for p in visit.pages] == ["phq9"]
    answers = {q.item: "0" for q in visit.pages[0].layout.questions}
    assert save_page(store, 1, answers, caller=holder).completed == ("phq9",)


def _at_once(
    store: Store, holder: LinkHolder, sends: list[tuple[int, dict[str, str]]]
) -> list[str]:
    """Save each (page, answers) of ``sends`` in its own thread, all at once; the errors."""
    import threading

    errors: list[str] = []

    def send(page: int, answers: dict[str, str]) -> None:
        try:
            assert save_page(store, page, answers, caller=holder).problems == {}
        except BaseException as exc:  # reported by the caller, with its type
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=send, args=sent) for sent in sends]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


def test_saves_at_once_all_succeed_one_after_the_other(
    store: Store, holder: LinkHolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages sent at once (two tabs, a double tap on a slow connection) are saved one after
    the other: each save succeeds and is audited; the same page sent twice holds the later
    answers whole; two pages sent at once are both kept. Taken together (on PostgreSQL), two
    first saves both inserted a response (NULL session ids never clash in the unique key), and
    two re-saves both inserted the page's items (an IntegrityError, a 500 on the web)."""
    import contextlib
    import threading

    from sqlalchemy import func, select

    from peerlens.study import responses
    from peerlens.study.models import Response

    agree_to_consent(store, "v1", caller=holder)
    # Force the race: each save waits (up to 3 s) for the other after reading what is stored
    # and before writing; saves taken one at a time time out here and go on.
    read_stored = responses.stored_items
    meet = threading.Barrier(2, timeout=3)

    def stored_then_wait(*args: object, **kwargs: object) -> object:
        found = read_stored(*args, **kwargs)  # type: ignore[arg-type]
        with contextlib.suppress(threading.BrokenBarrierError):
            meet.wait()
        return found

    monkeypatch.setattr(responses, "stored_items", stored_then_wait)
    first = [_answers(store, holder, 1, v) for v in (2, 4)]
    again = [_answers(store, holder, 1, v) for v in (1, 5)]
    later = [(2, _answers(store, holder, 2, 3)), (3, _answers(store, holder, 3, 3))]
    rounds = [[(1, a) for a in first], [(1, a) for a in again], later]
    for sends in rounds:
        meet.reset()
        assert _at_once(store, holder, sends) == []
        if sends[0][0] == 1:  # the same page twice: one save's answers whole, never a mix
            assert _items(_stored(store)) in [a for _, a in sends]
    monkeypatch.undo()
    with store.transaction() as s:
        rows = s.scalar(
            select(func.count()).select_from(Response).where(Response.instrument == "scs")
        )
    assert rows == 1
    items = _items(_stored(store))
    for page, answers in later:  # both pages sent at once are kept
        assert {k: items[k] for k in answers} == answers, page
    assert open_visit(store, caller=holder).next_page == 4
    log = audit_frame(store, caller=ADMIN)
    assert (log["action"] == "responses.page").sum() == 6  # every save audited
    assert verify_audit(store, caller=ADMIN).ok


def _complete_scs(store: Store, holder: LinkHolder, values: tuple[int, int, int]) -> dict:
    agree_to_consent(store, "v1", caller=holder)
    given: dict[str, str] = {}
    for page, value in zip((1, 2, 3), values, strict=True):
        answers = _answers(store, holder, page, value)
        assert save_page(store, page, answers, caller=holder).problems == {}
        given |= answers
    return given


def _scs_total(store: Store, code: str) -> float:
    scores = derived_frame(store, "pilot", "scores", caller=ADMIN)
    total = scores[(scores["participant"] == code) & (scores["name"] == "scs_total")]
    assert len(total) == 1 and set(total["derivation"]) == {"current"}
    return float(total.iloc[0]["value"])


def test_a_completed_form_is_scored_in_place_of_the_whole_study(
    store: Store, holder: LinkHolder
) -> None:
    add_participant(store, "pilot", "B2", site="glasgow", caller=ADMIN)
    other = LinkHolder(
        "B2", issue_link(store, "pilot", "B2", timepoint="baseline", caller=ADMIN).token
    )
    first = _complete_scs(store, holder, (4, 2, 5))  # no scores yet: the study is scored
    given = _complete_scs(store, other, (1, 3, 5))  # scored alone, into the same run
    log = audit_frame(store, caller=ADMIN)
    assert (log["action"] == "derive.scores").sum() == 1
    amended = log[log["action"] == "derive.amend"]
    assert len(amended) == 1 and "responses.page" in amended.iloc[0]["new"]
    for code, answers in (("A1", first), ("B2", given)):
        expected = score(pd.DataFrame([answers]), "scs", missing_codes=[-99]).iloc[0]
        assert _scs_total(store, code) == pytest.approx(expected["scs_total"])
    assert verify_derived(store, "pilot", caller=ADMIN).ok
    assert verify_audit(store, caller=ADMIN).ok
    # A changed answer after completion scores again; the run still verifies.
    changed = _answers(store, other, 1, 5)
    assert save_page(store, 1, changed, caller=other).completed == ("scs",)
    expected = score(pd.DataFrame([given | changed]), "scs", missing_codes=[-99]).iloc[0]
    assert _scs_total(store, "B2") == pytest.approx(expected["scs_total"])
    assert verify_derived(store, "pilot", caller=ADMIN).ok
    # A whole-study derive gives the same scores as those scored in place.
    before = derived_frame(store, "pilot", "scores", caller=ADMIN)
    derive(store, "pilot", ["scores"], caller=ADMIN)
    after = derived_frame(store, "pilot", "scores", caller=ADMIN)
    cols = ["participant", "name", "value"]
    pd.testing.assert_frame_equal(before[cols], after[cols])


def test_opening_a_link_does_not_wait_for_a_writer(store: Store, holder: LinkHolder) -> None:
    """A page view only reads: it is served while a writer holds SQLite's write lock (and this
    process's writer lock) or PostgreSQL's audit chain lock, instead of queueing behind it
    (issue 12: on SQLite a GET spent most of its time waiting for writers)."""
    import threading

    from peerlens.study import audit

    agree_to_consent(store, "v1", caller=holder)
    opened: list[int | None] = []
    with store.transaction() as s:  # a writer in the middle of its work
        audit.record(s, "test", "test.write", "test")
        reader = threading.Thread(
            target=lambda: opened.append(open_visit(store, caller=holder).next_page)
        )
        reader.start()
        reader.join(timeout=30)
        assert not reader.is_alive(), "opening the link waited for the writer"
    assert opened == [1]


def test_a_save_takes_the_audit_chain_only_once_written_and_scored(
    store: Store, holder: LinkHolder
) -> None:
    """The save that completes a form reads the audit chain's head (and on PostgreSQL takes its
    lock, which every writer waits for) only after the answers are written and the form scored;
    its entries are all recorded and the chain and the scores still verify."""
    from sqlalchemy import event

    agree_to_consent(store, "v1", caller=holder)
    for page in (1, 2):
        save_page(store, page, _answers(store, holder, page, 3), caller=holder)
    derive(store, "pilot", ["scores"], caller=ADMIN)  # a run to score the form into, in place
    answers = _answers(store, holder, 3, 4)
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        assert save_page(store, 3, answers, caller=holder).completed == ("scs",)
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)

    def first(*marks: str) -> int:
        return next(i for i, st in enumerate(statements) if any(m in st for m in marks))

    def last(mark: str) -> int:
        return max(i for i, st in enumerate(statements) if mark in st)

    chain = first("pg_advisory_xact_lock", "FROM audit_log ORDER BY audit_log.seq DESC")
    assert chain > last("UPDATE response SET")  # the form's answers written (items in bulk)
    assert chain > last("SELECT response.id, response.instrument, response_item.item")  # scoring
    log = audit_frame(store, caller=ADMIN)
    assert (log["action"] == "responses.page").sum() == 3
    assert (log["action"] == "response.update").sum() == 2  # pages 2 and 3 updated the form
    assert (log["action"] == "derive.amend").sum() == 1  # scored in place
    assert verify_audit(store, caller=ADMIN).ok
    assert verify_derived(store, "pilot", caller=ADMIN).ok

"""Page layout of a timepoint: bundled instruments in even pages, dictionary forms by section,
with the record id, identifying and survey-hidden fields never asked."""

from __future__ import annotations

from pathlib import Path

from peerlens.study import LinkHolder, Store, add_participant, create_study, issue_link, open_visit

from .conftest import ADMIN, DATA


def test_a_dictionary_form_is_asked_by_section_without_identifying_fields(
    store: Store, tmp_path: Path
) -> None:
    config = tmp_path / "study.yaml"
    config.write_text(
        (DATA / "redcap_study.yaml").read_text(encoding="utf-8")
        + "missing_codes: [-99]\nconsent: {version: v1, text: I agree.}\n",
        encoding="utf-8",
    )
    (tmp_path / "redcap_dictionary.csv").write_bytes((DATA / "redcap_dictionary.csv").read_bytes())
    create_study(store, "rc", config, caller=ADMIN)
    add_participant(store, "rc", "R1", site="leeds", caller=ADMIN)
    link = issue_link(store, "rc", "R1", timepoint="baseline", caller=ADMIN)
    visit = open_visit(store, caller=LinkHolder("R1", link.token))
    enrolment = [p.layout for p in visit.pages if p.layout.instrument == "enrolment"]
    asked = [q.item for layout in enrolment for q in layout.questions]
    # record_id (the record id), name and dob (identifiers) are never asked.
    assert asked[:3] == ["enrol_date", "gender", "supports___1"]
    assert not {"record_id", "name", "dob"} & set(asked)
    assert enrolment[0].title == "Contact"  # the section header of its first field
    gender = next(q for layout in enrolment for q in layout.questions if q.item == "gender")
    assert [(c.value, c.label) for c in gender.choices][:2] == [("1", "Woman"), ("2", "Man")]
    logs = [
        q.item
        for p in visit.pages
        if p.layout.instrument == "session_log"
        for q in p.layout.questions
    ]
    assert "sess_notes" not in logs and "sess_date" in logs  # @HIDDEN-SURVEY is not asked
    assert all(len(p.layout.questions) <= 10 for p in visit.pages)


def test_prefer_not_to_answer_is_offered_on_every_dictionary_item_not_required(
    store: Store, tmp_path: Path
) -> None:
    """Typed items (text, number, date, notes) offer it as choice items do; a field REDCap
    marks required never does (the form does not allow it missing)."""
    config = tmp_path / "study.yaml"
    config.write_text(
        (DATA / "redcap_study.yaml").read_text(encoding="utf-8")
        + "missing_codes: [-99]\nconsent: {version: v1, text: I agree.}\n",
        encoding="utf-8",
    )
    (tmp_path / "redcap_dictionary.csv").write_bytes((DATA / "redcap_dictionary.csv").read_bytes())
    create_study(store, "rc", config, caller=ADMIN)
    add_participant(store, "rc", "R1", site="leeds", caller=ADMIN)
    link = issue_link(store, "rc", "R1", timepoint="baseline", caller=ADMIN)
    visit = open_visit(store, caller=LinkHolder("R1", link.token))
    asked = {
        q.item: q
        for p in visit.pages
        if p.layout.instrument == "enrolment"
        for q in p.layout.questions
    }
    assert not asked["age"].choices and asked["age"].skip_code == "-99"  # typed integer
    assert not asked["comments"].choices and asked["comments"].skip_code == "-99"  # notes
    assert asked["gender"].choices and asked["gender"].skip_code == "-99"
    assert asked["enrol_date"].skip_code is None  # required in the dictionary

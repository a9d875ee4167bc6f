from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from peerlens.study import (
    ImportRejected,
    LinkHolder,
    NewParticipant,
    Store,
    StudyError,
    add_participants,
    create_study,
    get_identity,
    import_responses,
    set_identity,
)
from peerlens.study.audit import check_chain
from peerlens.study.erasure import erase_participant
from peerlens.study.sessions import (
    add_recording,
    add_relationship,
    add_session,
    add_transcript,
    blob_path,
)

from .conftest import ADMIN

T0 = dt.datetime(2026, 2, 1, 10, 0, tzinfo=dt.UTC)
SECRET = "Zebulon Quartermaine"


@pytest.fixture
def populated(store: Store, config_path: Path, tmp_path: Path) -> Store:
    create_study(store, "pilot", config_path, caller=ADMIN)
    add_participants(
        store,
        "pilot",
        [
            NewParticipant("SU1", identity={"name": SECRET, "phone": "07700 900123"}),
            NewParticipant("SU2"),
            NewParticipant("PW1", role="ps_worker"),
        ],
        caller=ADMIN,
    )
    set_identity(store, "pilot", "SU1", {"email": "zq@example.org"}, caller=ADMIN)
    rel = add_relationship(store, "pilot", "PW1", "SU1", started_at=T0, caller=ADMIN)
    add_session(
        store,
        "pilot",
        rel,
        "s1",
        started_at=T0,
        mode="video",
        duration_min=45,
        notes=f"{SECRET} talked about her brother",
        caller=ADMIN,
    )
    add_transcript(
        store,
        "pilot",
        f"I'm {SECRET} and I felt alone",
        participant="SU1",
        kind="story",
        caller=ADMIN,
    )
    ecg = tmp_path / "su1.rr.csv"
    ecg.write_text("rr_ms\n812\n798\n805\n", encoding="utf-8")
    add_recording(
        store,
        "pilot",
        ecg,
        participant="SU1",
        session="s1",
        kind="rr",
        device="Polar H10",
        caller=ADMIN,
        windows=[("baseline", 0.0, 1.5)],
    )
    f = tmp_path / "gad.csv"
    cols = ",".join(f"gad7_{i}" for i in range(1, 8))
    f.write_text(f"participant,{cols}\nSU1,1,2,1,2,1,2,1\nSU2,0,0,0,0,0,0,0\n", "utf-8")
    import_responses(store, "pilot", f, timepoint="baseline", caller=ADMIN)
    return store


def _dump_audit(store: Store) -> str:
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM audit_log")).all()
    return json.dumps([[str(v) for v in r] for r in rows])


def test_identifying_values_never_reach_the_audit_log(populated: Store) -> None:
    log = _dump_audit(populated)
    for value in (SECRET, "07700", "zq@example.org", "brother", "felt alone"):
        assert value not in log


def test_erasure_removes_identifying_content_and_keeps_chain(
    populated: Store, tmp_path: Path
) -> None:
    with populated.engine.connect() as conn:
        sha = conn.execute(text("SELECT sha256, suffix FROM recording")).one()
    blob = blob_path(populated.blob_dir, sha[0], sha[1])
    assert blob.exists() and blob.read_text().startswith("rr_ms")
    rep = erase_participant(populated, "pilot", "SU1", caller=ADMIN, reason="participant request")
    assert (rep.identity_fields, rep.transcripts, rep.session_notes, rep.recordings) == (3, 1, 1, 1)
    assert rep.files_deleted == 1 and not blob.exists()
    assert get_identity(populated, "pilot", "SU1", caller=ADMIN) == {}
    with populated.engine.connect() as conn:
        q = lambda sql: conn.execute(text(sql)).scalar_one()  # noqa: E731
        assert q("SELECT count(*) FROM identity_vault") == 0
        assert q("SELECT count(*) FROM transcript") == 0
        assert q("SELECT count(*) FROM ps_session WHERE notes IS NOT NULL") == 0
        assert q("SELECT count(*) FROM recording") == 0
        assert q("SELECT count(*) FROM recording_window") == 0
        assert q("SELECT status FROM participant WHERE study_code = 'SU1'") == "erased"
        # Coded responses are kept (pseudonymous research data), see the policy.
        assert q("SELECT count(*) FROM response_item") == 14
        everything = json.dumps(
            [
                [str(v) for v in r]
                for t in ("participant", "ps_session", "response_item")
                for r in conn.execute(text(f"SELECT * FROM {t}")).all()
            ]
        )
    assert SECRET not in everything
    with populated.transaction() as s:
        assert check_chain(s).ok
    assert "participant.erase" in _dump_audit(populated)


def test_erased_participant_refuses_new_data(populated: Store, tmp_path: Path) -> None:
    erase_participant(
        populated, "pilot", "SU1", caller=ADMIN, reason="request", purge_responses=True
    )
    with populated.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM response_item")).scalar_one() == 7
    f = tmp_path / "again.csv"
    cols = ",".join(f"gad7_{i}" for i in range(1, 8))
    f.write_text(f"participant,{cols}\nSU1,1,2,1,2,1,2,1\n", "utf-8")
    with pytest.raises(ImportRejected, match="'SU1' was erased"):
        import_responses(populated, "pilot", f, timepoint="week12", caller=ADMIN)
    with pytest.raises(StudyError, match="already erased"):
        erase_participant(populated, "pilot", "SU1", caller=ADMIN, reason="again")
    with pytest.raises(StudyError, match="needs a reason"):
        erase_participant(populated, "pilot", "SU2", caller=ADMIN, reason=" ")


def test_shared_recording_file_survives_other_participants_erasure(
    populated: Store, tmp_path: Path
) -> None:
    ecg = tmp_path / "su1.rr.csv"
    rid, sha = add_recording(populated, "pilot", ecg, participant="SU2", kind="rr", caller=ADMIN)
    again, _ = add_recording(populated, "pilot", ecg, participant="SU2", kind="rr", caller=ADMIN)
    assert again == rid  # idempotent
    rep = erase_participant(populated, "pilot", "SU1", caller=ADMIN, reason="request")
    assert rep.recordings == 1 and rep.files_deleted == 0
    assert blob_path(populated.blob_dir, sha, ".csv").exists()


def test_an_erasure_does_not_record_the_digest_of_a_run_changed_by_hand(
    store: Store, holder: LinkHolder
) -> None:
    # An erasure records, for each run that lost rows, the digest of the rows left. When a run
    # was already changed with SQL (another participant's score deleted), recording the digest
    # of what is left would make that change what verify_derived expects: nothing is recorded.
    from peerlens.study import (
        add_participant,
        agree_to_consent,
        issue_link,
        open_visit,
        save_page,
        verify_derived,
    )

    add_participant(store, "pilot", "B2", site="leeds", caller=ADMIN)
    b2 = LinkHolder(
        "B2", issue_link(store, "pilot", "B2", timepoint="baseline", caller=ADMIN).token
    )
    for who, value in ((holder, "4"), (b2, "2")):
        agree_to_consent(store, "v1", caller=who)
        for page in (1, 2, 3):
            layout = open_visit(store, caller=who).pages[page - 1].layout
            assert save_page(store, page, {q.item: value for q in layout.questions}, caller=who)
    assert verify_derived(store, "pilot", caller=ADMIN).ok
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "DELETE FROM derived_score WHERE id = (SELECT s.id FROM derived_score s "
                "JOIN response r ON r.id = s.response_id JOIN participant p "
                "ON p.id = r.participant_id WHERE p.study_code = 'A1' ORDER BY s.id LIMIT 1)"
            )
        )
    assert not verify_derived(store, "pilot", caller=ADMIN).ok
    erase_participant(store, "pilot", "B2", caller=ADMIN, reason="asked to", purge_responses=True)
    assert not verify_derived(store, "pilot", caller=ADMIN).ok  # still named after the erasure

"""The medium findings of the hostile review of the study store, each rebuilt as a test."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from peerlens.study import (
    ImportRejected,
    NewParticipant,
    PermissionDenied,
    Store,
    add_participants,
    add_recording,
    authenticate,
    bootstrap_admin,
    create_study,
    derive,
    export_study,
    import_responses,
    list_participants,
)

from ..conftest import ADMIN, PASSWORD

GAD7 = [f"gad7_{i}" for i in range(1, 8)]


@pytest.fixture
def pilot(store: Store, config_path: Path) -> Store:
    create_study(store, "pilot", config_path, caller=ADMIN)
    people = [NewParticipant("P1", site="leeds"), NewParticipant("P2", site="leeds")]
    add_participants(store, "pilot", people, caller=ADMIN)
    return store


def test_an_emptied_user_table_grants_nothing_and_cannot_be_re_bootstrapped(pilot: Store) -> None:
    # Finding: emptying the users table made every caller a passwordless admin.
    with pilot.engine.begin() as conn:
        conn.execute(text("DELETE FROM role_assignment"))
        conn.execute(text("DELETE FROM app_user"))
    with pytest.raises(PermissionDenied, match="not an active peerlens user"):
        list_participants(pilot, "pilot", caller=ADMIN)
    with pytest.raises(PermissionDenied, match="no user accounts yet"):
        authenticate(pilot, "anyone", PASSWORD)
    with pytest.raises(PermissionDenied, match="emptied outside peerlens"):
        bootstrap_admin(pilot, "mallory", "a password of hers")


def test_full_tier_export_of_a_study_without_answers(pilot: Store, tmp_path: Path) -> None:
    # Finding: a full-tier tidy export of a study with no answers yet raised KeyError.
    res = export_study(pilot, "pilot", tmp_path / "full.csv", tier="full", caller=ADMIN)
    assert res.rows == 0


def test_exported_text_that_a_spreadsheet_would_run_is_neutralised(
    pilot: Store, tmp_path: Path
) -> None:
    # Finding: exported cells starting with =, +, -, @ were not neutralised.
    f = tmp_path / "gad.csv"
    pd.DataFrame([["P1", *[1] * 7]], columns=["participant", *GAD7]).to_csv(f, index=False)
    import_responses(pilot, "pilot", f, timepoint="baseline", caller=ADMIN)
    with pilot.engine.begin() as conn:  # a free-text answer as a spreadsheet formula
        rid = conn.execute(text("SELECT id FROM response")).scalar_one()
        conn.execute(
            text("INSERT INTO response_item (response_id, item, text) VALUES (:r, 'note', :t)"),
            {"r": rid, "t": '=HYPERLINK("http://x.invalid","click")'},
        )
    out = tmp_path / "full.csv"
    export_study(pilot, "pilot", out, tier="full", caller=ADMIN)
    cells = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert '\'=HYPERLINK("http://x.invalid","click")' in set(cells["text"])
    raw = tmp_path / "raw.csv"
    export_study(pilot, "pilot", raw, tier="full", raw_values=True, caller=ADMIN)
    assert '=HYPERLINK("http://x.invalid","click")' in set(
        pd.read_csv(raw, dtype=str, keep_default_na=False)["text"]
    )


def test_file_names_never_reach_exports_or_the_audit_log(pilot: Store, tmp_path: Path) -> None:
    # Finding: original file names (which hold names) reached de-identified exports, also
    # through HRV error texts.
    f = tmp_path / "ana_ruiz_baseline.csv"
    pd.DataFrame([["P1", *[2] * 7]], columns=["participant", *GAD7]).to_csv(f, index=False)
    import_responses(pilot, "pilot", f, timepoint="baseline", caller=ADMIN)
    # An ECG the readers read (so it is stored) in which no beat is found when it is analysed.
    broken = tmp_path / "ana_ruiz_ecg.csv"
    broken.write_text("MLII\n" + "\n".join(str(i % 7) for i in range(2500)) + "\n")
    add_recording(pilot, "pilot", broken, participant="P2", sampling_rate_hz=250, caller=ADMIN)
    derive(pilot, "pilot", ["hrv"], caller=ADMIN, executor="sequential")
    out = tmp_path / "deid.csv"
    export_study(pilot, "pilot", out, tier="deidentified", caller=ADMIN)
    exported = out.read_text(encoding="utf-8")
    manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
    with pilot.engine.connect() as conn:
        logged = " ".join(str(r) for r in conn.execute(text("SELECT * FROM audit_log")))
        stored = " ".join(str(r) for r in conn.execute(text("SELECT source FROM response")))
        errors = [r[0] for r in conn.execute(text("SELECT error FROM derived_hrv"))]
    for where in (exported, json.dumps(manifest), logged, stored):
        assert "ana_ruiz" not in where
    assert errors and all(e.startswith("recording ") and "ana" not in e for e in errors)
    assert str(pilot.blob_dir) not in " ".join(errors)


@pytest.mark.parametrize("cell", ["1e999", "inf", "-inf", "nan"])
def test_non_finite_numbers_are_refused_with_their_cell(
    pilot: Store, tmp_path: Path, cell: str
) -> None:
    f = tmp_path / "gad.csv"
    f.write_text(f"participant,{','.join(GAD7)}\nP1,1,1,{cell},1,1,1,1\n", encoding="utf-8")
    with pytest.raises(ImportRejected, match=r"row 1, column 'gad7_3'"):
        import_responses(pilot, "pilot", f, timepoint="baseline", caller=ADMIN)


def test_opening_something_that_is_not_a_peerlens_database(tmp_path: Path) -> None:
    # Review L4/L5: a file that is not a database gave a traceback; init on another
    # application's SQLite file added peerlens tables to it.
    from peerlens.study import StudyError

    junk = tmp_path / "notes.db"
    junk.write_text("these are my notes\n" * 200, encoding="utf-8")
    with pytest.raises(StudyError, match="cannot open it as a database"):
        Store.open(f"sqlite:///{junk}")
    import sqlite3

    other = tmp_path / "other_app.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(StudyError, match="already holds other tables"):
        Store.open(f"sqlite:///{other}", create=True)


def test_messages_never_quote_identifying_values(pilot: Store, tmp_path: Path) -> None:
    # Review M8: a bad value of an identifier field was quoted in the error, as was a name
    # that landed in the participant column.
    from peerlens.study._catalog import ItemRule

    _, _, why = ItemRule("dob", "date", identifier=True).check("12/03/1985")
    assert why is not None and "12/03/1985" not in why and "value not shown" in why
    f = tmp_path / "names.csv"
    f.write_text(f"participant,{','.join(GAD7)}\nAna Ruiz,1,1,1,1,1,1,1\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as info:
        import_responses(pilot, "pilot", f, timepoint="baseline", caller=ADMIN)
    assert "Ana Ruiz" not in str(info.value)


def test_nothing_new_is_stored_about_an_erased_participant(pilot: Store) -> None:
    # Review M7: sessions with notes could be added to an erased participant's relationship.
    import datetime as dt

    from peerlens.study import (
        StudyError,
        add_relationship,
        add_session,
        add_transcript,
        erase_participant,
    )

    add_participants(
        pilot, "pilot", [NewParticipant("W1", role="ps_worker", site="leeds")], caller=ADMIN
    )
    t0 = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    rel = add_relationship(pilot, "pilot", "W1", "P1", started_at=t0, caller=ADMIN)
    add_session(pilot, "pilot", rel, "s1", started_at=t0, mode="phone", caller=ADMIN)
    erase_participant(pilot, "pilot", "P1", caller=ADMIN, reason="request")
    with pytest.raises(StudyError, match="was erased"):
        add_session(pilot, "pilot", rel, "s2", started_at=t0, mode="phone", notes="x", caller=ADMIN)
    with pytest.raises(StudyError, match="was erased"):
        add_transcript(
            pilot, "pilot", "P1 said hello", participant="W1", session="s1", caller=ADMIN
        )


def test_an_export_never_overwrites_the_database_and_fails_cleanly(
    pilot: Store, tmp_path: Path
) -> None:
    # Review M2/M3: an export could overwrite the study database; a failed one left a
    # world-readable ``.part`` file with the data and a traceback.
    from peerlens.study import StudyError

    if pilot.dialect == "sqlite":
        db = Path(str(pilot.engine.url.database))
        with pytest.raises(StudyError, match="that is the study database"):
            export_study(pilot, "pilot", db, tier="full", caller=ADMIN)
    with pytest.raises(StudyError, match="inside the recordings folder"):
        export_study(pilot, "pilot", pilot.blob_dir / "x.csv", tier="full", caller=ADMIN)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be", encoding="utf-8")
    with pytest.raises(StudyError, match="cannot write the export"):
        export_study(pilot, "pilot", blocked / "out.csv", tier="full", caller=ADMIN)
    assert not list(tmp_path.glob("**/*.part"))
    out = tmp_path / "ok.csv"
    export_study(pilot, "pilot", out, tier="full", caller=ADMIN)
    assert out.stat().st_mode & 0o077 == 0  # study data: the owner's only

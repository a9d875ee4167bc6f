"""Tamper evidence for the data tables: ``audit verify`` names every row changed, added or removed
behind peerlens's back, and stays quiet after every lawful operation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import inspect, text

from peerlens.study import (
    NewParticipant,
    Store,
    TamperedError,
    add_participants,
    add_recording,
    add_relationship,
    add_session,
    add_transcript,
    create_study,
    derive,
    erase_participant,
    import_responses,
    rotate_vault_key,
    set_identity,
    verify_audit,
    verify_derived,
    withdraw_participant,
)
from peerlens.study._seal_units import (
    BY_NAME,
    KINDS,
    UNIT_OF,
    UNSEALED,
    canon_rows,
    content,
    contents,
)
from peerlens.study.models import Base
from peerlens.study.vault import VaultKeyError, generate_key

from ..conftest import ADMIN

GAD7 = [f"gad7_{i}" for i in range(1, 8)]
T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def _rr_file(path: Path, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    rr = 800 + rng.normal(0, 30, 400)
    pd.DataFrame({"rr_ms": rr.round(1)}).to_csv(path, index=False)
    return path


@pytest.fixture
def full(store: Store, config_path: Path, tmp_path: Path) -> Store:
    """A study with data in every kind of table, written only through peerlens."""
    create_study(store, "pilot", config_path, caller=ADMIN)
    people = [
        NewParticipant("P1", site="leeds", identity={"name": "Ann Example"}),
        NewParticipant("P2", site="leeds"),
        NewParticipant("W1", site="leeds", role="ps_worker"),
    ]
    add_participants(store, "pilot", people, caller=ADMIN)
    f = tmp_path / "gad.csv"
    rows = [["P1", *[1] * 7], ["P2", *[2] * 7]]
    pd.DataFrame(rows, columns=["participant", *GAD7]).to_csv(f, index=False)
    import_responses(store, "pilot", f, timepoint="baseline", caller=ADMIN)
    rel = add_relationship(store, "pilot", "W1", "P1", started_at=T0, caller=ADMIN)
    add_session(store, "pilot", rel, "s1", started_at=T0, mode="phone", caller=ADMIN)
    add_transcript(
        store,
        "pilot",
        "I felt that too. Lots of people do.",
        kind="story",
        participant="W1",
        caller=ADMIN,
    )
    add_recording(
        store,
        "pilot",
        _rr_file(tmp_path / "rr.csv"),
        participant="P1",
        kind="rr",
        windows=[("baseline", 0.0, 150.0)],
        caller=ADMIN,
    )
    derive(store, "pilot", caller=ADMIN, executor="sequential")
    return store


def _problems(store: Store) -> list[str]:
    rep = verify_audit(store, caller=ADMIN)
    assert rep.data_unchecked is None
    return list(rep.problems)


def _sql(store: Store, sql: str, **params: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(sql), params)


def _untrigger(store: Store, table: str) -> None:
    """Drop the trigger that refuses UPDATE on a derived table, as someone holding the database
    can."""
    on = f" ON {table}" if store.dialect == "postgresql" else ""
    _sql(store, f"DROP TRIGGER {table}_no_update{on}")


def test_every_table_is_sealed_or_deliberately_not() -> None:
    tables = set(Base.metadata.tables) | {"alembic_version"}
    assert tables == set(UNIT_OF) | UNSEALED
    assert not set(UNIT_OF) & UNSEALED
    assert len({k.name for k in KINDS}) == len(KINDS)


def test_a_row_without_gap_values_keeps_the_content_it_was_sealed_with_before_0009(
    full: Store,
) -> None:
    """Revision 0009 added derived_hrv's gap columns; while they are NULL (an RR-only recording,
    or a row derived before 0009) a row's sealed content is what it was without them, so seals
    written before the upgrade still verify."""
    from sqlalchemy import select

    kind = BY_NAME["derived_hrv"]
    late = ("n_gaps", "gap_s", "gaps_json")
    before = [c for c in kind.table.c if c.name not in late]
    with full.transaction() as s:
        rows = s.execute(select(kind.table).order_by(kind.table.c.id)).mappings().all()
        got = dict(contents(s, kind))
    assert rows and all(r[c] is None for r in rows for c in late)
    heads = canon_rows(before, [[r[c.name] for c in before] for r in rows])
    for r, head in zip(rows, heads, strict=True):
        assert got[str(r["id"])] == content(kind, head, [])


def test_lawful_work_verifies_clean(full: Store, tmp_path: Path) -> None:
    with full.engine.connect() as conn:
        for table in ("derived_score", "derived_hrv", "derived_sentence", "recording_window"):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() > 0, table
    rep = verify_audit(full, caller=ADMIN)
    assert rep.ok, rep.problems
    assert rep.data_units > 20
    # Updates, erasure and key rotation keep the seals in step.
    f = tmp_path / "gad2.csv"
    pd.DataFrame([["P2", *[3] * 7]], columns=["participant", *GAD7]).to_csv(f, index=False)
    import_responses(full, "pilot", f, timepoint="baseline", caller=ADMIN)
    set_identity(full, "pilot", "P2", {"phone": "0700"}, caller=ADMIN)
    withdraw_participant(full, "pilot", "P2", caller=ADMIN, reason="moved")
    erase_participant(full, "pilot", "P1", caller=ADMIN, reason="request")
    derive(full, "pilot", caller=ADMIN, executor="sequential")
    assert _problems(full) == []
    assert verify_derived(full, "pilot", caller=ADMIN).ok


def test_rotation_reseals_under_the_new_key(full: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    new = generate_key()
    rotate_vault_key(full, new, caller=ADMIN)
    monkeypatch.setenv("PEERLENS_VAULT_KEY", new)
    full.forget_key()
    assert _problems(full) == []
    _sql(full, "UPDATE participant SET status = 'completed' WHERE study_code = 'P2'")
    assert any("table participant" in p and "changed" in p for p in _problems(full))


@pytest.mark.parametrize(
    ("sql", "table"),
    [
        ("UPDATE participant SET site_id = NULL WHERE study_code = 'P2'", "participant"),
        ("UPDATE response_item SET value = 3 WHERE item = 'gad7_1'", "response"),
        ("UPDATE derived_score SET value = 0", "derived_score"),  # its own unit (0023)
        ("UPDATE derived_hrv SET n_beats = 1", "derived_hrv"),
        ("UPDATE derived_hrv SET gap_s = 1.5", "derived_hrv"),  # a late column set
        ("UPDATE derived_sentence SET label = 'upward'", "derived_story"),
        ("UPDATE identity_vault SET field_names = '[]'", "identity_vault"),
        ("UPDATE recording_window SET end_s = 10", "recording_window"),
        ("UPDATE transcript SET text = 'I beat it, so can you.'", "transcript"),
        ("UPDATE role_assignment SET export_tier = 'full'", "role_assignment"),
        ("UPDATE setting SET value = '/elsewhere' WHERE key = 'recordings_dir'", "setting"),
        ("UPDATE timepoint SET offset_days = 1 WHERE name = 'week12'", "timepoint"),
        ("UPDATE derivation SET actor = 'someone'", "derivation"),
    ],
)
def test_a_changed_row_is_named(full: Store, sql: str, table: str) -> None:
    assert _problems(full) == []
    changed = sql.split()[1]
    if changed.startswith("deriv"):
        _untrigger(full, changed)
    _sql(full, sql)
    found = _problems(full)
    assert found and all("changed outside peerlens" in p for p in found)
    assert any(p.startswith(f"table {table}, ") for p in found), found


def test_an_admin_added_by_sql_is_found(full: Store) -> None:
    # Review finding L8: anyone who could write to the database added an admin without a trace.
    _sql(
        full,
        "INSERT INTO app_user (username, password_hash, is_active, created_at) "
        "VALUES ('mallory', 'x', true, CURRENT_TIMESTAMP)",
    )
    _sql(
        full,
        "INSERT INTO role_assignment (user_id, role) "
        "SELECT id, 'admin' FROM app_user WHERE username = 'mallory'",
    )
    found = _problems(full)
    assert any(p.startswith("table app_user, id ") and "added" in p for p in found)
    assert any(p.startswith("table role_assignment, id ") and "added" in p for p in found)


def test_an_item_added_to_a_response_or_to_no_response(full: Store) -> None:
    _sql(
        full,
        "INSERT INTO response_item (response_id, item, value) "
        "SELECT min(id), 'gad7_extra', 1 FROM response",
    )
    found = _problems(full)
    assert len(found) == 1 and found[0].startswith("table response, id ") and "changed" in found[0]
    if full.dialect == "sqlite":  # PostgreSQL's foreign keys cannot be switched off per session
        import sqlite3

        raw = sqlite3.connect(str(full.engine.url.database))
        raw.execute("INSERT INTO response_item (response_id, item, value) VALUES (9999, 'x', 1)")
        raw.commit()
        raw.close()
        assert any("table response_item: rows of response 9999" in p for p in _problems(full))


def test_a_removed_row_is_named_and_one_removed_with_its_seal_is_counted(full: Store) -> None:
    with full.engine.connect() as conn:
        rid = conn.execute(text("SELECT max(id) FROM derived_hrv")).scalar_one()
    _sql(full, "DELETE FROM derived_hrv WHERE id = :i", i=rid)
    assert _problems(full) == [
        f"table derived_hrv, id {rid}: removed outside peerlens (its seal remains)"
    ]
    _sql(full, "DELETE FROM row_seal WHERE kind = 'derived_hrv' AND unit = :u", u=str(rid))
    found = _problems(full)
    assert len(found) == 1 and found[0].startswith("table derived_hrv: 1 row(s) removed")


def test_a_removed_child_row_names_its_unit(full: Store) -> None:
    with full.engine.connect() as conn:
        story = conn.execute(text("SELECT max(story_id) FROM derived_sentence")).scalar_one()
    _sql(full, "DELETE FROM derived_sentence WHERE id = (SELECT max(id) FROM derived_sentence)")
    assert _problems(full) == [f"table derived_story, id {story}: changed outside peerlens"]


def test_a_removed_score_is_named_by_its_id(full: Store) -> None:
    """A derived score is a unit of its own since revision 0023 (not a child row of its run)."""
    with full.engine.connect() as conn:
        sid = conn.execute(text("SELECT max(id) FROM derived_score")).scalar_one()
    _sql(full, "DELETE FROM derived_score WHERE id = :i", i=sid)
    assert _problems(full) == [
        f"table derived_score, id {sid}: removed outside peerlens (its seal remains)"
    ]


def test_a_unit_put_back_to_an_older_sealed_version_is_found(full: Store, tmp_path: Path) -> None:
    with full.engine.connect() as conn:
        old = (
            conn.execute(text("SELECT * FROM participant WHERE study_code = 'P2'")).mappings().one()
        )
        old_mac = conn.execute(
            text("SELECT mac FROM row_seal WHERE kind = 'participant' AND unit = :u"),
            {"u": str(old["id"])},
        ).scalar_one()
    withdraw_participant(full, "pilot", "P2", caller=ADMIN, reason="moved")
    assert _problems(full) == []
    # Someone with the old row and seal (e.g. from a backup) puts both back.
    _sql(
        full,
        "UPDATE participant SET status = :s, withdrawn_at = NULL WHERE id = :i",
        s=old["status"],
        i=old["id"],
    )
    _sql(
        full,
        "UPDATE row_seal SET mac = :m WHERE kind = 'participant' AND unit = :u",
        m=old_mac,
        u=str(old["id"]),
    )
    found = _problems(full)
    assert len(found) == 1 and found[0].startswith("table participant: seals differ")


def test_a_forged_seal_is_refused(full: Store) -> None:
    _sql(full, "UPDATE participant SET status = 'completed' WHERE study_code = 'P2'")
    _sql(full, "UPDATE row_seal SET mac = :m WHERE kind = 'participant'", m=b"\x00" * 32)
    found = _problems(full)
    assert any(p.startswith("table participant, id ") and "changed" in p for p in found)


def test_removed_seals_are_not_silently_renewed(full: Store, tmp_path: Path) -> None:
    _sql(full, "UPDATE participant SET status = 'completed' WHERE study_code = 'P2'")
    _sql(full, "DELETE FROM row_seal")
    # A lawful write afterwards neither seals the whole database again nor the row it changes.
    with pytest.raises(TamperedError, match="added outside peerlens"):
        withdraw_participant(full, "pilot", "P1", caller=ADMIN, reason="moved")
    found = _problems(full)
    assert any("table participant, id" in p and "no seal" in p for p in found)
    assert any(p.startswith("table study, id") for p in found)


def test_writing_needs_the_key_and_verifying_says_when_it_could_not_check(
    full: Store, db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PEERLENS_VAULT_KEY")
    monkeypatch.setenv("PEERLENS_HOME", str(tmp_path / "nokeys"))
    fresh = Store.open(db_url)
    try:
        with full.engine.connect() as conn:
            before = conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
        with pytest.raises(VaultKeyError):
            withdraw_participant(fresh, "pilot", "P2", caller=ADMIN, reason="moved")
        with full.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one() == before
            status = conn.execute(
                text("SELECT status FROM participant WHERE study_code = 'P2'")
            ).scalar_one()
        assert status == "enrolled"
        rep = verify_audit(fresh, caller=ADMIN)
        assert rep.ok and rep.data_unchecked is not None and "key" in rep.data_unchecked
    finally:
        fresh.close()


def test_the_cli_exits_1_naming_the_row(full: Store, db_url: str) -> None:
    from typer.testing import CliRunner

    from peerlens.cli import app

    from ..conftest import PASSWORD

    _sql(full, "UPDATE participant SET status = 'completed' WHERE study_code = 'P2'")
    res = CliRunner().invoke(
        app,
        ["audit", "verify", "--db", db_url, "--user", "tester"],
        env={"PEERLENS_PASSWORD": PASSWORD},
    )
    assert res.exit_code == 1, res.output
    assert "TAMPERED: table participant, id" in res.output


def test_sealed_tables_are_known_to_the_schema(store: Store) -> None:
    names = set(inspect(store.engine).get_table_names())
    assert set(UNIT_OF) <= names


def test_a_recording_file_changed_or_removed_on_disk_is_named(full: Store) -> None:
    with full.engine.connect() as conn:
        rid, sha, suffix = conn.execute(text("SELECT id, sha256, suffix FROM recording")).one()
    from peerlens.study.sessions import blob_path

    path = blob_path(full.blob_dir, sha, suffix)
    assert verify_audit(full, caller=ADMIN).files_checked == 1
    path.write_bytes(path.read_bytes() + b"800\n")
    assert _problems(full) == [f"recording id {rid} ({sha[:12]}): stored file changed on disk"]
    path.unlink()
    assert _problems(full) == [f"recording id {rid} ({sha[:12]}): stored file missing"]


def test_a_lawful_write_never_seals_a_tampered_row(full: Store, tmp_path: Path) -> None:
    # Someone edits P2's site, then an admin withdraws P2 (a lawful change of the same row):
    # the change is refused rather than sealing the edited row as if peerlens had written it.
    _sql(full, "UPDATE participant SET site_id = NULL WHERE study_code = 'P2'")
    with full.engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    with pytest.raises(TamperedError, match=r"table participant, id \d+ was changed outside"):
        withdraw_participant(full, "pilot", "P2", caller=ADMIN, reason="moved")
    # An edited answer blocks a re-import that would rewrite that response.
    _sql(full, "UPDATE response_item SET value = 3 WHERE item = 'gad7_1'")
    f = tmp_path / "gad3.csv"
    pd.DataFrame([["P1", *[2] * 7]], columns=["participant", *GAD7]).to_csv(f, index=False)
    with pytest.raises(TamperedError, match=r"table response, id \d+ was changed outside"):
        import_responses(full, "pilot", f, timepoint="baseline", caller=ADMIN)
    # A row removed by hand cannot be "removed again" lawfully to hide it.
    with full.engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
        status = conn.execute(
            text("SELECT status FROM participant WHERE study_code = 'P2'")
        ).scalar_one()
    assert count == before and status == "enrolled"
    found = _problems(full)
    assert any(p.startswith("table participant, id") for p in found)
    assert any(p.startswith("table response, id") for p in found)


# Second hostile review (findings 1, 3-6): ways to get tampering sealed or missed.


def test_a_clear_vault_row_put_there_with_sql_is_never_sealed_or_read(
    full: Store, db_url: str
) -> None:
    _sql(
        full,
        "UPDATE identity_vault SET ciphertext = NULL, fields_json = :f "
        "WHERE participant_id = (SELECT id FROM participant WHERE study_code = 'P1')",
        f='{"name": "Forged Person"}',
    )
    reopened = Store.open(db_url)  # opening once encrypted clear rows (before revision 0006)
    try:
        assert any(p.startswith("table identity_vault, ") for p in _problems(reopened))
        from peerlens.study import get_identity

        with pytest.raises(TamperedError, match="in clear"):
            get_identity(reopened, "pilot", "P1", caller=ADMIN)
    finally:
        reopened.close()


def test_an_account_edited_with_sql_grants_nothing(full: Store) -> None:
    from peerlens.study import authenticate, list_participants
    from peerlens.study.users import hash_password

    from ..conftest import PASSWORD

    _sql(
        full,
        "UPDATE app_user SET password_hash = :h WHERE username = 'tester'",
        h=hash_password("mallory's password"),
    )
    with pytest.raises(TamperedError, match="table app_user"):
        authenticate(full, "tester", "mallory's password")
    with pytest.raises(TamperedError, match="table app_user"):
        list_participants(full, "pilot", caller=ADMIN)
    assert PASSWORD  # the real password does not help either: the row itself is refused


def test_a_role_added_with_sql_grants_nothing(full: Store) -> None:
    from peerlens.study import create_user, list_participants

    from ..conftest import PASSWORD

    create_user(full, "rita", PASSWORD, caller=ADMIN)
    _sql(
        full,
        "INSERT INTO role_assignment (user_id, role) "
        "SELECT id, 'admin' FROM app_user WHERE username = 'rita'",
    )
    from peerlens.study.policy import Caller

    with pytest.raises(TamperedError, match="table role_assignment"):
        list_participants(full, "pilot", caller=Caller("rita"))


def test_key_rotation_refuses_to_reseal_tampered_data(full: Store) -> None:
    _sql(full, "UPDATE participant SET site_id = NULL WHERE study_code = 'P2'")
    with pytest.raises(TamperedError, match="nothing was rotated"):
        rotate_vault_key(full, generate_key(), caller=ADMIN)
    assert any(p.startswith("table participant, ") for p in _problems(full))


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE response_item SET value = 'abc' WHERE item = 'gad7_1'",
        "UPDATE participant SET date_shift_days = 19.9 WHERE study_code = 'P2'",
        "UPDATE participant SET enrolled_at = '2026-01-01T00:00:00' WHERE study_code = 'P2'",
    ],
)
def test_values_of_the_wrong_type_are_named_not_crashed_on(
    full: Store, sql: str, db_url: str
) -> None:
    if full.dialect == "postgresql":
        pytest.skip("PostgreSQL refuses values of the wrong type itself")
    _sql(full, sql)
    found = _problems(full)
    assert found and all("changed outside peerlens" in p for p in found)

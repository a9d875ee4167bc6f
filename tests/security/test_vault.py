"""The identity vault keeps its promise: identifying values live only there, encrypted, never in
the audit log or lower export tiers, and an erasure removes every copy."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from peerlens.study import (
    PermissionDenied,
    Store,
    StudyError,
    add_participant,
    add_recording,
    add_transcript,
    create_study,
    erase_participant,
    export_study,
    get_identity,
    import_data_dictionary,
    import_records,
    import_responses,
    set_field_identifier,
    set_identity,
    verify_audit,
)
from peerlens.study.vault import VaultKeyError, generate_key

from ..conftest import ADMIN, DATA, make_user

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
NAME, EMAIL = "Zebedee Quuxley", "zq.private@example.org"


@pytest.fixture
def rc(store: Store, tmp_path: Path) -> Store:
    """The REDCap-managed study (identifier fields ``name`` and ``dob``)."""
    for name in ("redcap_study.yaml", "redcap_dictionary.csv"):
        shutil.copy(DATA / name, tmp_path / name)
    create_study(store, "rc", tmp_path / "redcap_study.yaml", caller=ADMIN)
    return store


def _raw(store: Store) -> bytes:
    """Every byte SQLite keeps for the database (main file, WAL, shared memory)."""
    db = Path(str(store.engine.url.database))
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*") if p.is_file())


def test_identity_is_encrypted_at_rest_and_audited_by_keyed_hash(rc: Store) -> None:
    add_participant(rc, "rc", "P1", site="leeds", identity={"name": NAME}, caller=ADMIN)
    set_identity(rc, "rc", "P1", {"email": EMAIL}, caller=ADMIN)
    assert get_identity(rc, "rc", "P1", caller=ADMIN) == {"name": NAME, "email": EMAIL}
    with rc.engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM identity_vault")).mappings().one()
        log = " ".join(str(r) for r in conn.execute(text("SELECT * FROM audit_log")))
    assert row["fields_json"] is None and NAME.encode() not in bytes(row["ciphertext"])
    assert json.loads(row["field_names"]) == ["email", "name"]
    assert NAME not in log and EMAIL not in log and "keyed_hash" in log
    if rc.dialect == "sqlite":
        assert NAME.encode() not in _raw(rc) and EMAIL.encode() not in _raw(rc)


def test_the_key_is_needed_and_checked(
    rc: Store, monkeypatch: pytest.MonkeyPatch, db_url: str, tmp_path: Path
) -> None:
    add_participant(rc, "rc", "P1", identity={"name": NAME}, caller=ADMIN)
    monkeypatch.delenv("PEERLENS_VAULT_KEY")
    monkeypatch.setenv("PEERLENS_HOME", str(tmp_path / "home"))
    fresh = Store.open(db_url)
    with pytest.raises(VaultKeyError, match="no identity-vault key"):
        get_identity(fresh, "rc", "P1", caller=ADMIN)
    # Reading what is not identifying needs no key.
    assert fresh.blob_dir == rc.blob_dir
    fresh.close()
    monkeypatch.setenv("PEERLENS_VAULT_KEY", generate_key())
    other = Store.open(db_url)
    with pytest.raises(VaultKeyError, match="not this database's key"):
        get_identity(other, "rc", "P1", caller=ADMIN)
    other.close()


def test_a_ciphertext_moved_to_another_participant_does_not_decrypt(rc: Store) -> None:
    add_participant(rc, "rc", "P1", identity={"name": NAME}, caller=ADMIN)
    add_participant(rc, "rc", "P2", identity={"name": "Other Person"}, caller=ADMIN)
    with rc.engine.begin() as conn:
        ids = dict(conn.execute(text("SELECT study_code, id FROM participant")).all())
        blob = conn.execute(
            text("SELECT ciphertext FROM identity_vault WHERE participant_id = :p"),
            {"p": ids["P1"]},
        ).scalar_one()
        conn.execute(
            text("UPDATE identity_vault SET ciphertext = :c WHERE participant_id = :p"),
            {"c": blob, "p": ids["P2"]},
        )
    with pytest.raises(VaultKeyError, match="changed or moved"):
        get_identity(rc, "rc", "P2", caller=ADMIN)


def test_rows_written_in_clear_before_encryption_are_encrypted_on_open(
    db_url: str, tmp_path: Path
) -> None:
    # A database from before revision 0006 (vault fields in clear), opened with this version.
    from peerlens.study import bootstrap_admin
    from peerlens.study.storage import create_study_engine, upgrade

    from ..conftest import ACTOR, PASSWORD

    engine = create_study_engine(db_url)
    upgrade(engine, "0005")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO study (id, name, title, missing_codes_json, created_at) "
                "VALUES (1, 'old', 'made at 0005', '[]', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO participant (id, study_id, study_code, role, status, enrolled_at, "
                "date_shift_days) VALUES (1, 1, 'P1', 'service_user', 'enrolled', "
                "CURRENT_TIMESTAMP, 0)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO identity_vault (participant_id, fields_json, updated_at) "
                "VALUES (1, :f, CURRENT_TIMESTAMP)"
            ),
            {"f": json.dumps({"name": NAME})},
        )
    engine.dispose()
    reopened = Store.open(db_url, blob_dir=tmp_path / "blobs")
    try:
        with reopened.engine.connect() as conn:
            row = conn.execute(text("SELECT fields_json, ciphertext FROM identity_vault")).one()
        assert row[0] is None and row[1] is not None
        bootstrap_admin(reopened, ACTOR, PASSWORD)  # the first write seals what is there
        assert get_identity(reopened, "old", "P1", caller=ADMIN) == {"name": NAME}
        assert verify_audit(reopened, caller=ADMIN).ok
    finally:
        reopened.close()


def _wide_enrolment(tmp_path: Path, code: str, comment: str) -> Path:
    f = tmp_path / f"enrol-{code}.csv"
    row = {"record_id": code, "name": NAME, "dob": "1990-04-12", "enrol_date": "2026-01-05"}
    row |= {"gender": "1", "age": "35", "comments": comment}
    row |= {f"supports___{c}": "0" for c in (1, 2, 3, 99)}
    frame = pd.DataFrame([row])
    frame.to_csv(f, index=False)
    return f


def test_wide_import_keeps_identifier_fields_only_in_the_vault(rc: Store, tmp_path: Path) -> None:
    # Finding: `responses import` stored identifier fields as ordinary answers.
    add_participant(rc, "rc", "P1", site="leeds", caller=ADMIN)
    f = _wide_enrolment(tmp_path, "P1", "calls are fine")
    import_responses(rc, "rc", f, timepoint="baseline", instrument="enrolment", caller=ADMIN)
    with rc.engine.connect() as conn:
        items = {r[0] for r in conn.execute(text("SELECT item FROM response_item"))}
        values = " ".join(str(r) for r in conn.execute(text("SELECT * FROM response_item")))
    assert "name" not in items and "dob" not in items and "age" in items
    assert NAME not in values
    assert get_identity(rc, "rc", "P1", caller=ADMIN) == {"name": NAME, "dob": "1990-04-12"}


def _dictionary_without_identifiers(tmp_path: Path) -> Path:
    frame = pd.read_csv(DATA / "redcap_dictionary.csv", dtype=str, keep_default_na=False)
    frame["Identifier?"] = ""
    out = tmp_path / "no_identifiers.csv"
    frame.to_csv(out, index=False)
    return out


def test_a_dictionary_cannot_quietly_downgrade_an_identifier(rc: Store, tmp_path: Path) -> None:
    # Finding: replacing the dictionary let identifier values reach a de-identified export.
    add_participant(rc, "rc", "P1", site="leeds", caller=ADMIN)
    f = _wide_enrolment(tmp_path, "P1", "calls are fine")
    import_responses(rc, "rc", f, timepoint="baseline", instrument="enrolment", caller=ADMIN)
    plain = _dictionary_without_identifiers(tmp_path)
    researcher = make_user(rc, "rex", "researcher", study="rc")
    with pytest.raises(PermissionDenied, match="name"):
        import_data_dictionary(rc, "rc", plain, caller=researcher)
    with pytest.raises(PermissionDenied, match="may not mark a field"):
        import_data_dictionary(rc, "rc", plain, allow_identifier_downgrade=True, caller=researcher)
    import_data_dictionary(rc, "rc", plain, allow_identifier_downgrade=True, caller=ADMIN)
    out = tmp_path / "deid.csv"
    export_study(rc, "rc", out, tier="deidentified", caller=ADMIN)
    assert NAME not in out.read_text(encoding="utf-8")  # the values stayed in the vault


def test_flagging_a_field_as_identifying_moves_its_values_into_the_vault(
    rc: Store, tmp_path: Path
) -> None:
    add_participant(rc, "rc", "P1", site="leeds", caller=ADMIN)
    f = _wide_enrolment(tmp_path, "P1", "my neighbour Mrs Quuxley drives me")
    import_responses(rc, "rc", f, timepoint="baseline", instrument="enrolment", caller=ADMIN)
    set_field_identifier(rc, "rc", "comments", True, caller=ADMIN, reason="names people")
    with rc.engine.connect() as conn:
        items = {r[0] for r in conn.execute(text("SELECT item FROM response_item"))}
    assert "comments" not in items
    ident = get_identity(rc, "rc", "P1", caller=ADMIN)
    assert ident["comments"] == "my neighbour Mrs Quuxley drives me"
    out = tmp_path / "ri.csv"
    export_study(rc, "rc", out, format="redcap", tier="remove_identifiers", caller=ADMIN)
    assert "Quuxley" not in out.read_text(encoding="utf-8")
    with pytest.raises(StudyError, match="needs a reason"):
        set_field_identifier(rc, "rc", "age", True, caller=ADMIN, reason=" ")


def test_erasure_removes_every_copy_and_the_chain_still_verifies(rc: Store, tmp_path: Path) -> None:
    # Finding: after erasure identifying values were still in the database file.
    add_participant(rc, "rc", "P1", site="leeds", identity={"email": EMAIL}, caller=ADMIN)
    import_responses(
        rc,
        "rc",
        _wide_enrolment(tmp_path, "P1", "Zebedee feels low on Mondays"),
        timepoint="baseline",
        instrument="enrolment",
        caller=ADMIN,
    )
    records = tmp_path / "records.csv"
    rows = pd.read_csv(DATA / "redcap_records.csv", dtype=str, keep_default_na=False).head(2)
    rows["record_id"] = "P1"
    rows.loc[0, "name"] = NAME  # the enrolment row; row 2 is a repeating session log
    rows.to_csv(records, index=False)
    import_records(rc, "rc", records, caller=ADMIN)
    add_transcript(rc, "rc", "Zebedee said he felt alone.", participant="P1", caller=ADMIN)
    ecg = tmp_path / "zebedee.quuxley.rr.txt"  # the original name holds the person's name
    ecg.write_text("800\n810\n790\n805\n", encoding="utf-8")
    add_recording(rc, "rc", ecg, participant="P1", kind="rr", caller=ADMIN)
    stored = [p.name for p in rc.blob_dir.rglob("*")]
    assert not any("zebedee" in n.lower() or "quuxley" in n.lower() for n in stored)
    if rc.dialect == "sqlite":
        assert b"Zebedee feels low" in _raw(rc)  # the test can see free text before erasure

    report = erase_participant(rc, "rc", "P1", caller=ADMIN, reason="participant request")
    assert report.identity_fields == 3  # email, name, dob
    assert get_identity(rc, "rc", "P1", caller=ADMIN) == {}
    assert not any(p.is_file() for p in rc.blob_dir.rglob("*"))
    if rc.dialect == "sqlite":
        raw = _raw(rc)
        for secret in (NAME, EMAIL, "Zebedee", "Quuxley", "zebedee"):
            assert secret.encode() not in raw, secret
    audit = verify_audit(rc, caller=ADMIN)
    assert audit.ok and audit.erasures == 1


def test_rotating_the_key_re_encrypts_and_retires_the_old_key(
    rc: Store, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from peerlens.study import rotate_vault_key

    add_participant(rc, "rc", "P1", identity={"name": NAME}, caller=ADMIN)
    with rc.engine.connect() as conn:
        before = conn.execute(text("SELECT ciphertext FROM identity_vault")).scalar_one()
    new = generate_key()
    assert rotate_vault_key(rc, new, caller=ADMIN, reason="yearly rotation") == 1
    with rc.engine.connect() as conn:
        assert conn.execute(text("SELECT ciphertext FROM identity_vault")).scalar_one() != before
    with pytest.raises(VaultKeyError, match="not this database's key"):
        get_identity(rc, "rc", "P1", caller=ADMIN)  # the old key (still in the environment)
    monkeypatch.setenv("PEERLENS_VAULT_KEY", new)
    assert get_identity(rc, "rc", "P1", caller=ADMIN) == {"name": NAME}


def test_two_dictionary_imports_cannot_launder_an_identifier_flag(
    rc: Store, tmp_path: Path
) -> None:
    # Review H2: drop the field in one dictionary, re-add it unflagged in the next.
    frame = pd.read_csv(DATA / "redcap_dictionary.csv", dtype=str, keep_default_na=False)
    without = tmp_path / "without_name.csv"
    frame[frame["Variable / Field Name"] != "name"].to_csv(without, index=False)
    unflagged = tmp_path / "name_unflagged.csv"
    frame.assign(
        **{"Identifier?": frame["Identifier?"].where(frame["Variable / Field Name"] != "name", "")}
    ).to_csv(unflagged, index=False)
    researcher = make_user(rc, "rex", "researcher", study="rc")
    import_data_dictionary(rc, "rc", without, caller=researcher)
    with pytest.raises(PermissionDenied, match="name"):
        import_data_dictionary(rc, "rc", unflagged, caller=researcher)


def test_flagging_a_checkbox_field_moves_every_option_into_the_vault(
    rc: Store, tmp_path: Path
) -> None:
    add_participant(rc, "rc", "P1", site="leeds", caller=ADMIN)
    f = _wide_enrolment(tmp_path, "P1", "fine")
    import_responses(rc, "rc", f, timepoint="baseline", instrument="enrolment", caller=ADMIN)
    set_field_identifier(rc, "rc", "supports", True, caller=ADMIN, reason="small site")
    with rc.engine.connect() as conn:
        items = {r[0] for r in conn.execute(text("SELECT item FROM response_item"))}
    assert not any(i.startswith("supports___") for i in items)
    assert get_identity(rc, "rc", "P1", caller=ADMIN)["supports___99"] == "0"

"""The findings of the hostile review (issue 9) that were still open after the first round,
each rebuilt as a test that failed before its fix (see /work/notes/review_FINDINGS.md)."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import shutil
from pathlib import Path

import pandas as pd
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import text

from peerlens.study import (
    ImportRejected,
    NewParticipant,
    PermissionDenied,
    Store,
    StudyError,
    add_participant,
    add_participants,
    add_recording,
    add_relationship,
    add_session,
    add_transcript,
    create_study,
    derivation_status,
    derive,
    erase_participant,
    export_frame,
    export_study,
    get_identity,
    import_data_dictionary,
    import_records,
    import_responses,
    list_participants,
    rotate_vault_key,
    set_field_identifier,
)
from peerlens.study.vault import VaultKey, decode_key, generate_key

from ..conftest import ADMIN, DATA, VAULT_KEY, make_user

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
GAD7 = [f"gad7_{i}" for i in range(1, 8)]


@pytest.fixture
def pilot(store: Store, config_path: Path) -> Store:
    create_study(store, "pilot", config_path, caller=ADMIN)
    people = [NewParticipant("L1", site="leeds"), NewParticipant("G1", site="glasgow")]
    add_participants(store, "pilot", people, caller=ADMIN)
    return store


# ----------------------------------------------------------------------------------- L15


def _vault_blobs(store: Store) -> dict[str, bytes]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.study_code, v.ciphertext FROM identity_vault v "
                "JOIN participant p ON p.id = v.participant_id"
            )
        ).all()
    return {code: bytes(blob) for code, blob in rows}


def test_vault_ciphertext_length_does_not_tell_the_length_of_a_name(pilot: Store) -> None:
    # Review L15: length(ciphertext) was 28 + length of the JSON, so a file holder learnt
    # each name's length.
    add_participant(pilot, "pilot", "A1", identity={"name": "Al Li"}, caller=ADMIN)
    add_participant(pilot, "pilot", "A2", identity={"name": "Alexandra Lin"}, caller=ADMIN)
    blobs = _vault_blobs(pilot)
    assert len(blobs["A1"]) == len(blobs["A2"])
    assert (len(blobs["A1"]) - 1 - 12 - 16) % 32 == 0  # version, nonce, tag; padded body


def test_unpadded_vault_entries_still_open_and_rotation_pads_them(
    pilot: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_participant(pilot, "pilot", "A1", identity={"name": "Al Li"}, caller=ADMIN)
    key = VaultKey.from_master(decode_key(VAULT_KEY, "test"), "test")
    with pilot.engine.begin() as conn:
        pid = conn.execute(text("SELECT id FROM participant WHERE study_code = 'A1'")).scalar()
        aad = f"peerlens-vault/{pilot.database_id}/participant/{pid}"
        for first in (b"\x01", b"\x07"):  # a format-0 nonce may start like a version byte
            nonce = first + secrets.token_bytes(11)
            legacy = nonce + AESGCM(key.enc).encrypt(
                nonce, json.dumps({"name": "Al Li"}).encode(), aad.encode()
            )
            conn.execute(
                text("UPDATE identity_vault SET ciphertext = :c WHERE participant_id = :p"),
                {"c": legacy, "p": pid},
            )
            assert key.open(legacy, aad) == {"name": "Al Li"}
    # Such entries come from databases written before padding; sealing came later and sealed
    # them as they were (row seals make this SQL edit look like what it is, tampering).
    from peerlens.study.integrity import reseal_all

    with pilot.transaction() as s:
        reseal_all(s, pilot.vault_key(s), actor="tester", reason="an older database's first seal")
    assert get_identity(pilot, "pilot", "A1", caller=ADMIN) == {"name": "Al Li"}
    new = generate_key()
    rotate_vault_key(pilot, new, caller=ADMIN)
    monkeypatch.setenv("PEERLENS_VAULT_KEY", new)
    assert get_identity(pilot, "pilot", "A1", caller=ADMIN) == {"name": "Al Li"}
    blob = _vault_blobs(pilot)["A1"]
    assert blob[:1] == b"\x01" and (len(blob) - 29) % 32 == 0


# ------------------------------------------------------------------------------------ M1


@pytest.fixture
def rc(store: Store, tmp_path: Path) -> Store:
    """The REDCap-managed study of ``tests/study/data`` (site leeds; identifiers name, dob)."""
    for name in ("redcap_study.yaml", "redcap_dictionary.csv"):
        shutil.copy(DATA / name, tmp_path / name)
    create_study(store, "rc", tmp_path / "redcap_study.yaml", caller=ADMIN)
    return store


def test_items_of_fields_a_later_dictionary_dropped_never_reach_lower_tiers(
    rc: Store, tmp_path: Path
) -> None:
    # Review M1: the tidy export decided by the current dictionary only, so the free text and
    # real dates of a field a later dictionary dropped were exported as they were.
    records = tmp_path / "rec.csv"
    records.write_text(
        "record_id,redcap_event_name,enrol_date,comments,age,enrolment_complete\n"
        '1,baseline_arm_1,2026-01-07,"I am Gordon, 12 Byres Road",35,2\n',
        encoding="utf-8",
    )
    import_records(rc, "rc", records, create_participants=True, caller=ADMIN)
    lines = (DATA / "redcap_dictionary.csv").read_text(encoding="utf-8").splitlines(True)
    smaller = tmp_path / "smaller.csv"
    smaller.write_text(
        "".join(x for x in lines if not x.startswith(("comments,", "enrol_date,"))),
        encoding="utf-8",
    )
    import_data_dictionary(rc, "rc", smaller, caller=ADMIN)
    for tier in ("deidentified", "remove_identifiers"):
        out = tmp_path / f"{tier}.csv"
        export_study(rc, "rc", out, tier=tier, caller=ADMIN)
        exported = out.read_text(encoding="utf-8")
        assert "Byres" not in exported and "2026-01-07" not in exported
        assert ",age," in exported  # a field still in the dictionary is kept
        manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
        assert manifest["items_left_out"] == {"not in the data dictionary": 2}
    full = export_frame(rc, "rc", tier="full", caller=ADMIN)
    assert {"comments", "enrol_date"} <= set(full["name"])  # the full tier keeps everything


# ------------------------------------------------------------------------------------ L1


def test_imports_tell_a_site_user_nothing_about_other_sites_participants(
    pilot: Store, tmp_path: Path
) -> None:
    # Review L1: a leeds researcher learnt from the refusals which codes exist at glasgow,
    # and which were erased.
    add_participants(pilot, "pilot", [NewParticipant("G2", site="glasgow")], caller=ADMIN)
    erase_participant(pilot, "pilot", "G2", caller=ADMIN, reason="asked")
    leeds = make_user(pilot, "rs_leeds", "researcher", study="pilot", site="leeds")
    f = tmp_path / "probe.csv"
    rows = "".join(f"{code},1,1,1,1,1,1,1\n" for code in ("G1", "G2", "G3"))
    f.write_text(f"participant,{','.join(GAD7)}\n{rows}", encoding="utf-8")
    with pytest.raises(ImportRejected) as info:
        import_responses(pilot, "pilot", f, timepoint="baseline", caller=leeds)
    said = {p.reason for p in info.value.problems}
    assert said == {
        f"unknown participant {c!r} or outside your site(s) leeds" for c in ("G1", "G2", "G3")
    }
    rc_file = tmp_path / "probe_rc.csv"
    rows = "".join(f"{c},baseline,1,1,1,1,1,1,1,2\n" for c in ("G1", "G2", "G3"))
    rc_file.write_text(
        f"record_id,redcap_event_name,{','.join(GAD7)},gad7_complete\n{rows}", encoding="utf-8"
    )
    for create in (False, True):
        with pytest.raises(ImportRejected) as info:
            import_records(pilot, "pilot", rc_file, create_participants=create, caller=leeds)
        assert {p.reason for p in info.value.problems if p.column == "record_id"} == said


# ----------------------------------------------------------------------------------- L13


def test_a_data_access_group_matching_two_sites_is_refused(store: Store, tmp_path: Path) -> None:
    # Review L13: group leeds_north matched sites 'Leeds North' and 'leeds-north' and was
    # placed silently at the one defined last.
    shutil.copy(DATA / "redcap_dictionary.csv", tmp_path / "redcap_dictionary.csv")
    config = (DATA / "redcap_study.yaml").read_text(encoding="utf-8")
    config = config.replace("sites: [leeds]", "sites: [Leeds North, leeds-north]")
    (tmp_path / "study.yaml").write_text(config, encoding="utf-8")
    create_study(store, "rc", tmp_path / "study.yaml", caller=ADMIN)
    f = tmp_path / "dag.csv"
    f.write_text(
        "record_id,redcap_event_name,redcap_data_access_group,age,enrolment_complete\n"
        "7,baseline_arm_1,leeds_north,35,2\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as info:
        import_records(store, "rc", f, create_participants=True, caller=ADMIN)
    (problem,) = info.value.problems
    assert (problem.row, problem.column) == (1, "redcap_data_access_group")
    assert "'Leeds North' and 'leeds-north'" in problem.reason
    assert list_participants(store, "rc", caller=ADMIN).empty


# ------------------------------------------------------------------------------------ L7


def test_derivation_status_counts_only_the_callers_sites(pilot: Store, tmp_path: Path) -> None:
    # Review L7: a leeds researcher saw whole-study counts (glasgow's responses included).
    f = tmp_path / "gad.csv"
    f.write_text(
        f"participant,{','.join(GAD7)}\nL1,1,1,1,1,1,1,1\nG1,2,2,2,2,2,2,2\n", encoding="utf-8"
    )
    import_responses(pilot, "pilot", f, timepoint="baseline", caller=ADMIN)
    derive(pilot, "pilot", ["scores"], caller=ADMIN, executor="sequential")
    leeds = make_user(pilot, "rs_leeds", "researcher", study="pilot", site="leeds")
    mine = derivation_status(pilot, "pilot", caller=leeds).set_index("what")
    everyone = derivation_status(pilot, "pilot", caller=ADMIN).set_index("what")
    assert everyone.loc["scores", ["inputs", "current"]].tolist() == [2, 2]
    assert mine.loc["scores", ["inputs", "current", "missing"]].tolist() == [1, 1, 0]
    assert pd.isna(mine.loc["scores", "errors"])


# ---------------------------------------------------------------------------- L2 and L14


def _audit_text(store: Store) -> str:
    with store.engine.connect() as conn:
        return " ".join(str(r) for r in conn.execute(text("SELECT * FROM audit_log")))


def test_device_window_and_session_labels_are_redacted_in_the_audit_log(
    pilot: Store, tmp_path: Path
) -> None:
    # Review L2: recording.add logged the device and window labels verbatim (and session.add
    # the session label in its entity id); erasure can never remove them from the chain.
    add_participants(
        pilot, "pilot", [NewParticipant("W1", role="ps_worker", site="leeds")], caller=ADMIN
    )
    rel = add_relationship(pilot, "pilot", "W1", "L1", started_at=T0, caller=ADMIN)
    add_session(pilot, "pilot", rel, "zebedee-visit", started_at=T0, mode="phone", caller=ADMIN)
    rr = tmp_path / "rr.txt"
    rr.write_text("800\n810\n790\n805\n", encoding="utf-8")
    add_recording(
        pilot,
        "pilot",
        rr,
        participant="L1",
        session="zebedee-visit",
        kind="rr",
        device="Zebedee's Polar",
        windows=[("zebedee-walk", 0, 2)],
        caller=ADMIN,
    )
    logged = _audit_text(pilot)
    assert "ebedee" not in logged
    assert '"chars": 12' in logged or '"chars":12' in logged  # the window label's length


def test_adding_a_recording_again_keeps_its_new_windows(pilot: Store, tmp_path: Path) -> None:
    # Review L14: adding the same file again returned the stored recording and silently
    # dropped the new --window.
    rr = tmp_path / "rr.txt"
    rr.write_text("800\n810\n790\n805\n", encoding="utf-8")
    rid, _ = add_recording(
        pilot, "pilot", rr, participant="L1", kind="rr", windows=[("rest", 0, 2)], caller=ADMIN
    )
    again, _ = add_recording(
        pilot,
        "pilot",
        rr,
        participant="L1",
        kind="rr",
        windows=[("rest", 0, 2), ("task", 2, 3)],
        caller=ADMIN,
    )
    assert again == rid
    with pilot.engine.connect() as conn:
        labels = conn.execute(text("SELECT label FROM recording_window ORDER BY label")).all()
    assert [x[0] for x in labels] == ["rest", "task"]
    with pytest.raises(StudyError, match="already has a window 'rest'"):
        add_recording(
            pilot, "pilot", rr, participant="L1", kind="rr", windows=[("rest", 1, 2)], caller=ADMIN
        )
    with pytest.raises(StudyError, match="already stored"):
        add_recording(pilot, "pilot", rr, participant="L1", kind="ecg", caller=ADMIN)


def test_an_export_is_written_as_its_suffix_says_or_refused(pilot: Store, tmp_path: Path) -> None:
    # Review L14: --out x.xlsx silently got CSV text.
    book = tmp_path / "x.xlsx"
    export_study(pilot, "pilot", book, tier="full", caller=ADMIN)
    assert book.read_bytes()[:2] == b"PK"  # a workbook (a zip), not CSV
    assert list(pd.read_excel(book).columns)[:2] == ["participant", "role"]
    for bad, fmt in (("x.txt", "tidy"), ("x.json", "tidy"), ("x.parquet", "redcap")):
        with pytest.raises(StudyError, match="is written as"):
            export_study(pilot, "pilot", tmp_path / bad, format=fmt, tier="full", caller=ADMIN)
        assert not (tmp_path / bad).exists()


# ------------------------------------------------------------------------------------ M5


def test_changed_answers_reach_the_audit_log_as_keyed_hashes_only(
    rc: Store, tmp_path: Path
) -> None:
    # Review M5: response.update entries held item values in clear, so a field flagged
    # identifying later (an NHS number) stayed in the append-only log for good.
    def records(nhs: str) -> Path:
        f = tmp_path / f"{nhs}.csv"
        f.write_text(
            f"record_id,redcap_event_name,age,enrolment_complete\n1,baseline_arm_1,{nhs},2\n",
            encoding="utf-8",
        )
        return f

    import_records(rc, "rc", records("47"), create_participants=True, caller=ADMIN)
    import_records(rc, "rc", records("83"), caller=ADMIN)
    set_field_identifier(rc, "rc", "age", True, caller=ADMIN, reason="it identifies")
    with rc.engine.connect() as conn:
        old, new = conn.execute(
            text("SELECT old, new FROM audit_log WHERE action = 'response.update'")
        ).one()
        salt = conn.execute(text("SELECT salt FROM identity_vault")).scalar_one()
    before, after = json.loads(old)["items"]["age"], json.loads(new)["items"]["age"]
    assert all(isinstance(h, str) and len(h) == 32 for h in (before, after))
    key = VaultKey.from_master(decode_key(VAULT_KEY, "test"), "test")
    # An admin holding the key can check a guessed value; nobody can read one.
    assert before == key.keyed_hash(bytes(salt), "age", f"value:{47.0!r}")
    assert after == key.keyed_hash(bytes(salt), "age", f"value:{83.0!r}")


# ------------------------------------------------------------------------------------ L6


def test_a_site_admin_cannot_erase_another_sites_transcripts(pilot: Store) -> None:
    # Review L6: a leeds admin erasing a leeds PS worker deleted the transcript a glasgow
    # participant owned in their shared session.
    add_participants(
        pilot, "pilot", [NewParticipant("LW", role="ps_worker", site="leeds")], caller=ADMIN
    )
    rel = add_relationship(pilot, "pilot", "LW", "G1", started_at=T0, caller=ADMIN)
    add_session(pilot, "pilot", rel, "s1", started_at=T0, mode="phone", caller=ADMIN)
    add_transcript(pilot, "pilot", "G1's own words", participant="G1", session="s1", caller=ADMIN)
    leeds_admin = make_user(pilot, "ad_leeds", "admin", study="pilot", site="leeds")
    with pytest.raises(PermissionDenied, match=f"outside your site.*relationship {rel}"):
        erase_participant(pilot, "pilot", "LW", caller=leeds_admin, reason="asked")
    with pilot.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM transcript")).scalar() == 1
        status = conn.execute(text("SELECT status FROM participant WHERE study_code = 'LW'"))
        assert status.scalar() != "erased"
    # Someone whose sites cover both people may.
    erase_participant(pilot, "pilot", "LW", caller=ADMIN, reason="asked")


# ------------------------------------------------------------------------- HRV whole row


def test_the_whole_recording_row_uses_the_hrv_packages_validity_rule(
    pilot: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The study's HRV 'whole' row judged validity by the artifact rate alone, its own copy of
    # a rule the HRV package keeps (HrvResult.whole_validity: artifact rate and signal quality).
    from peerlens.hrv import HrvResult

    rr = tmp_path / "rr.txt"
    rr.write_text("\n".join(str(800 + (i % 7) * 5) for i in range(400)) + "\n", encoding="utf-8")
    add_recording(pilot, "pilot", rr, participant="L1", kind="rr", caller=ADMIN)
    monkeypatch.setattr(HrvResult, "whole_validity", lambda self: (False, "the package says no"))
    derive(pilot, "pilot", ["hrv"], caller=ADMIN, executor="sequential")
    with pilot.engine.connect() as conn:
        valid, reason = conn.execute(
            text("SELECT valid, reason FROM derived_hrv WHERE label = 'whole'")
        ).one()
    assert not valid and reason == "the package says no"

"""The findings of the hostile review (issue 9) that were still open after the first round,
each rebuilt as a test that failed before its fix (see /work/notes/review_FINDINGS.md)."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import text

from peerlens.study import (
    NewParticipant,
    Store,
    add_participant,
    add_participants,
    create_study,
    export_frame,
    export_study,
    get_identity,
    import_data_dictionary,
    import_records,
    rotate_vault_key,
)
from peerlens.study.vault import VaultKey, decode_key, generate_key

from ..conftest import ADMIN, DATA, VAULT_KEY

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

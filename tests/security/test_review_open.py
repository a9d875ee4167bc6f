"""The findings of the hostile review (issue 9) that were still open after the first round,
each rebuilt as a test that failed before its fix (see /work/notes/review_FINDINGS.md)."""

from __future__ import annotations

import datetime as dt
import json
import secrets
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
    get_identity,
    rotate_vault_key,
)
from peerlens.study.vault import VaultKey, decode_key, generate_key

from ..conftest import ADMIN, VAULT_KEY

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

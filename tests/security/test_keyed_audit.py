"""Every audit entry carries a MAC under a key derived from the vault key: someone who can write
to the database but holds no key can neither append to the audit chain nor rewrite it from some
entry on (review 5, F1: "MAC every audit row"), entries from before revision 0021 are vouched
for by a keyed checkpoint, a key rotation keeps ``audit verify`` passing, and an auditor without
the key is told that the MACs were not checked; on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from peerlens.study import (
    Caller,
    Store,
    TamperedError,
    add_participant,
    bootstrap_admin,
    export_study,
    rotate_vault_key,
    verify_audit,
)
from peerlens.study.audit import CHECKPOINT_ACTION, check_chain, row_hash
from peerlens.study.vault import VaultKey, decode_key, generate_key

from ..conftest import (
    ACTOR,
    ADMIN,
    AUDIT_COLUMNS,
    PASSWORD,
    VAULT_KEY,
    audit_rows,
    drop_audit_guards,
    insert_audit_row,
    legacy_database,
    rewrite_chain,
)


def test_a_chain_rewritten_from_an_entry_on_without_the_key_is_named(
    pilot: Store, tmp_path: Path
) -> None:
    # Entries after the newest seal entry (exports write no data): before audit MACs, nothing
    # keyed followed them, so a consistent rewrite of the hashes went unnoticed.
    for n in range(3):
        export_study(pilot, "pilot", tmp_path / f"e{n}.csv", caller=ADMIN)
    before = verify_audit(pilot, caller=ADMIN)
    assert before.ok and before.macs_unchecked is None
    assert before.macs_checked == before.rows
    target = [r for r in audit_rows(pilot) if r["action"] == "export"][-2]
    rewrite_chain(pilot, int(str(target["seq"])), "someone-else")
    report = verify_audit(pilot, caller=ADMIN)
    assert report.problems == (
        f"row seq {target['seq']} (export): its MAC does not verify under this database's key "
        "(appended or rewritten outside peerlens); so do 1 later row(s)",
    )
    # Nothing is appended on top of an entry not made with the key.
    with pytest.raises(TamperedError, match="its MAC does not verify"):
        export_study(pilot, "pilot", tmp_path / "e9.csv", caller=ADMIN)


def test_an_entry_appended_without_the_key_is_named_and_stops_writes(pilot: Store) -> None:
    head = audit_rows(pilot)[-1]
    row: dict[str, object] = dict.fromkeys(AUDIT_COLUMNS)
    row.update(
        seq=int(str(head["seq"])) + 1,
        at_utc=str(head["at_utc"]),
        actor=ACTOR,
        action="role.grant",
        entity="app_user",
        prev_hash=head["hash"],
        reason=None,
    )
    row["hash"] = row_hash(row)
    with pilot.engine.begin() as conn:
        insert_audit_row(conn, row)
    report = verify_audit(pilot, caller=ADMIN)
    assert report.problems == (
        f"row seq {row['seq']} (role.grant): it has no MAC under this database's key (appended "
        "or rewritten outside peerlens)",
    )
    with pytest.raises(TamperedError, match=f"row seq {row['seq']}"):
        add_participant(pilot, "pilot", "P9", site="leeds", caller=ADMIN)


def test_without_the_key_the_chain_is_checked_and_the_macs_are_said_not_to_be(
    pilot: Store, db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PEERLENS_VAULT_KEY")
    monkeypatch.setenv("PEERLENS_HOME", str(tmp_path / "nokeys"))
    auditor = Store.open(db_url)
    try:
        report = verify_audit(auditor, caller=ADMIN)
        assert report.ok and report.macs_checked == 0
        assert report.macs_unchecked is not None and "no usable vault key" in report.macs_unchecked
        # The hash chain is still checked without the key ...
        drop_audit_guards(pilot)
        with pilot.engine.begin() as conn:
            conn.execute(text("UPDATE audit_log SET actor = 'x' WHERE seq = 2"))
        assert "row seq 2 (" in verify_audit(auditor, caller=ADMIN).problems[0]
    finally:
        auditor.close()


def test_entries_from_before_0021_are_vouched_for_by_a_keyed_checkpoint(db_url: str) -> None:
    legacy_database(db_url, [("test.legacy", "thing")] * 3)
    store = Store.open(db_url)  # upgrades to 0021
    try:
        with store.transaction() as s:  # (verify_audit needs an account: none yet)
            report = check_chain(s, key=VaultKey.from_master(decode_key(VAULT_KEY, "t"), "t"))
        assert report.ok and report.macs_unchecked is not None
        assert "no row carries a MAC yet" in report.macs_unchecked
        bootstrap_admin(store, "ada", PASSWORD)  # the first write with the key
        rows = audit_rows(store)
        assert [r["action"] for r in rows[:4]] == ["test.legacy"] * 3 + [CHECKPOINT_ACTION]
        assert [r["mac"] is None for r in rows[:4]] == [True, True, True, False]
        assert all(r["mac"] is not None for r in rows[3:])
        ada = Caller("ada")
        report = verify_audit(store, caller=ada)
        assert report.ok and report.macs_unchecked is None
        assert report.macs_checked == len(rows) - 3
        # An entry before the checkpoint changed afterwards breaks the links into it.
        drop_audit_guards(store)
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE audit_log SET actor = 'eve' WHERE seq = 2"))
        assert verify_audit(store, caller=ada).problems[0].startswith("row seq 2 (test.legacy)")
    finally:
        store.close()


def test_a_broken_legacy_chain_is_never_checkpointed(db_url: str) -> None:
    legacy_database(db_url, [("test.legacy", "thing")] * 3)
    store = Store.open(db_url)
    try:
        drop_audit_guards(store)
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE audit_log SET actor = 'eve' WHERE seq = 2"))
        with pytest.raises(TamperedError, match="row seq 2"):
            bootstrap_admin(store, "ada", PASSWORD)
        assert [r["action"] for r in audit_rows(store)] == ["test.legacy"] * 3
    finally:
        store.close()


def test_verify_passes_after_a_key_rotation_and_still_names_rewrites(
    pilot: Store, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = generate_key()
    rotate_vault_key(pilot, new, caller=ADMIN, reason="yearly")
    monkeypatch.setenv("PEERLENS_VAULT_KEY", new)
    store = Store.open(db_url)
    try:
        add_participant(store, "pilot", "P4", site="leeds", caller=ADMIN)
        report = verify_audit(store, caller=ADMIN)
        assert report.ok and report.macs_unchecked is None
        rows = audit_rows(store)
        at = [r["action"] for r in rows].index(CHECKPOINT_ACTION)
        assert rows[at - 1]["action"] == "vault.rotate"
        assert rows[at]["reason"] == "vault key rotated"
        assert report.macs_checked == len(rows) - at  # the checkpoint and every entry after it
        target = next(r for r in rows[at:] if r["action"] == "participant.add")
        rewrite_chain(store, int(str(target["seq"])), "someone-else")
        problems = verify_audit(store, caller=ADMIN).problems
        assert problems[0].startswith(f"row seq {target['seq']} (participant.add): its MAC")
    finally:
        store.close()


def test_a_rotation_never_checkpoints_a_rewritten_chain(pilot: Store) -> None:
    target = next(r for r in audit_rows(pilot) if r["action"] == "participant.add")
    rewrite_chain(pilot, int(str(target["seq"])), "someone-else")
    before = len(audit_rows(pilot))
    with pytest.raises(TamperedError):
        rotate_vault_key(pilot, generate_key(), caller=ADMIN)
    assert len(audit_rows(pilot)) == before

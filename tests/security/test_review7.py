"""Review 7 (hostile review of issue 9): regressions and gaps found after reviews 1-6."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from peerlens.study import (
    LinkHolder,
    PermissionDenied,
    Store,
    TamperedError,
    add_participant,
    add_recording,
    bootstrap_admin,
    create_study,
    create_token,
    derive,
    erase_participant,
    export_study,
    issue_link,
    open_visit,
    resume_token,
    revoke_links,
    revoke_token,
    verify_audit,
)
from peerlens.study.audit import check_chain
from peerlens.study.integrity import RESEAL_ACTION, _entry_mac
from peerlens.study.vault import VaultKey, decode_key

from ..conftest import ADMIN, PASSWORD, VAULT_KEY, legacy_database, rewrite_chain


def test_stripping_every_mac_is_not_a_pre_0021_chain(pilot: Store, tmp_path: Path) -> None:
    for n in range(3):
        export_study(pilot, "pilot", tmp_path / f"e{n}.csv", caller=ADMIN)
    with pilot.engine.connect() as conn:
        last = conn.execute(text("SELECT max(seq) FROM audit_log")).scalar_one()
    rewrite_chain(pilot, int(last) - 1, "someone-else", strip_macs=True)
    report = verify_audit(pilot, caller=ADMIN)
    assert report.problems[0].startswith("no row carries a MAC, yet row seq ")
    assert "the MACs were removed outside peerlens" in report.problems[0]
    # ... and the next write does not checkpoint (bless) the rewritten chain.
    with pytest.raises(TamperedError, match="the MACs were removed"):
        export_study(pilot, "pilot", tmp_path / "e.csv", caller=ADMIN)


def _legacy_with_seal_entry(db_url: str, *, keyed_chain: bool) -> None:
    """A database at revision 0018 whose chain ends with a seal entry MACed as before revision
    0021 (``keyed_chain=False``) or as since (what a stripped chain holds)."""
    key = VaultKey.from_master(decode_key(VAULT_KEY, "t"), "t")

    def new(seq: int, prev: str, action: str) -> str | None:
        if action != RESEAL_ACTION:
            return None
        # As written before revision 0023 too (no seal-scheme marker: scheme 1).
        mac = _entry_mac(key, seq, prev, action, {}, keyed_chain=keyed_chain, scheme=1)
        return f'{{"mac":"{mac}","totals":{{}}}}'

    legacy_database(db_url, [("test.legacy", "data"), (RESEAL_ACTION, "data")], new)


@pytest.mark.parametrize("keyed_chain", [False, True])
def test_a_chain_without_macs_is_legacy_only_without_a_keyed_chain_seal_entry(
    db_url: str, keyed_chain: bool
) -> None:
    _legacy_with_seal_entry(db_url, keyed_chain=keyed_chain)
    store = Store.open(db_url)
    try:
        with store.transaction() as s:
            report = check_chain(s, key=VaultKey.from_master(decode_key(VAULT_KEY, "t"), "t"))
        if keyed_chain:
            assert report.problems == (
                "no row carries a MAC, yet row seq 2 was written when every row got one: the "
                "MACs were removed outside peerlens (and the rows may have been rewritten)",
            )
            with pytest.raises(TamperedError, match="the MACs were removed"):
                bootstrap_admin(store, "ada", PASSWORD)
        else:  # written before revision 0021: the chain is legacy, not tampered with
            assert report.ok and "no row carries a MAC yet" in str(report.macs_unchecked)
            # The first keyed write upgrades the seal scheme (revision 0023), which checks every
            # unit the seal entry vouches for first. This fixture's entry vouches for none, while
            # ``Store.open`` wrote two settings rows after it outside any keyed write: rows no
            # seal covers, which a real database never holds (its settings are written before
            # its first keyed write seals them), so the upgrade refuses and writes nothing.
            with pytest.raises(TamperedError, match="2 problem"):
                bootstrap_admin(store, "ada", PASSWORD)
            with store.transaction() as s:
                after = check_chain(s, key=VaultKey.from_master(decode_key(VAULT_KEY, "t"), "t"))
            assert after.ok and "no row carries a MAC yet" in str(after.macs_unchecked)
    finally:
        store.close()


def test_a_revoked_token_restored_from_an_earlier_copy_of_its_row_stays_revoked(
    store: Store,
) -> None:
    made = create_token(store, "ci", scopes=["read"], caller=ADMIN)
    with store.engine.connect() as conn:
        saved = dict(
            conn.execute(
                text("SELECT revoked_at, token_mac FROM api_token WHERE id = :i"), {"i": made.id}
            )
            .mappings()
            .one()
        )
    revoke_token(store, made.id, caller=ADMIN)
    with pytest.raises(PermissionDenied):
        resume_token(store, made.token)
    # Someone who read the row before (a backup, a replica) and can write the database now.
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE api_token SET revoked_at = :r, token_mac = :m WHERE id = :i"),
            {"r": saved["revoked_at"], "m": saved["token_mac"], "i": made.id},
        )
    with pytest.raises(PermissionDenied):
        resume_token(store, made.token)
    seq = _revoke_seq(store, made.id)
    assert verify_audit(store, caller=ADMIN).problems == (
        f"table api_token, id {made.id}: live, but revoked by audit log row seq {seq} (an "
        "earlier copy of the row written back outside peerlens); the token is refused",
    )


def _revoke_seq(store: Store, token_id: int) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT seq FROM audit_log WHERE action = 'token.revoke' AND entity_id = :i"),
                {"i": str(token_id)},
            ).scalar_one()
        )


def test_a_token_whose_id_was_revoked_before_its_creation_is_live(store: Store) -> None:
    # Token rows deleted (revision 0021 deletes them all) can leave their ids to new tokens on
    # SQLite: a revocation entry of the old token never refuses the new one.
    old = create_token(store, "old", scopes=["read"], caller=ADMIN)
    revoke_token(store, old.id, caller=ADMIN)
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM api_token"))
    new = create_token(store, "new", scopes=["read"], caller=ADMIN)
    assert resume_token(store, new.token).token == new.id
    assert verify_audit(store, caller=ADMIN).ok


def test_an_erasure_while_a_slow_derivation_stores_its_results_leaves_both_done(
    pilot: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # R7-3: the HRV derivation read which recordings still exist before it took the chain's
    # lock; an erasure committed in between and the derivation's rows for the erased
    # recording failed their foreign key (the whole run failed).
    from peerlens.study.derived import _hrv

    from .test_review5 import _needs_pg, _other, _Run, _waits_or_ends

    _needs_pg(pilot)
    rr = tmp_path / "p1.rr"
    rr.write_text("\n".join(f"{800 + 40 * math.sin(i / 3):.3f}" for i in range(300)) + "\n")
    add_recording(pilot, "pilot", rr, participant="P1", kind="rr", caller=ADMIN)
    other, app = _other(pilot)
    batch = _hrv.Hrv.batch
    erasures: list[_Run] = []

    def batch_then_erase(self: Any, *args: Any, **kwargs: Any) -> Any:
        found = batch(self, *args, **kwargs)
        run = _Run(
            "erasure",
            lambda: erase_participant(other, "pilot", "P1", caller=ADMIN, reason="asked"),
        )
        erasures.append(run)
        _waits_or_ends(pilot, app, run)
        return found

    monkeypatch.setattr(_hrv.Hrv, "batch", batch_then_erase)
    try:
        derive(pilot, "pilot", ["hrv"], caller=ADMIN, executor="sequential")
        erasures[0].join()
    finally:
        other.close()
    assert erasures[0].error is None
    assert verify_audit(pilot, caller=ADMIN).problems == ()


def _link_and_seal(store: Store) -> tuple[dict[str, Any], dict[str, Any]]:
    """The only link row and its row seal, as someone reading the database copies them."""
    with store.engine.connect() as conn:
        link = dict(conn.execute(text("SELECT * FROM participant_link")).mappings().one())
        seal = conn.execute(
            text("SELECT kind, unit, mac FROM row_seal WHERE kind = 'participant_link'")
        )
        return link, dict(seal.mappings().one())


def _write_back(store: Store, link: dict[str, Any], seal: dict[str, Any]) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE participant_link SET revoked_at = :revoked_at WHERE id = :id"), link
        )
        conn.execute(
            text("UPDATE row_seal SET mac = :mac WHERE kind = :kind AND unit = :unit"), seal
        )


def _last_seq(store: Store, action: str) -> int:
    with store.engine.connect() as conn:
        sql = text("SELECT max(seq) FROM audit_log WHERE action = :a")
        return int(conn.execute(sql, {"a": action}).scalar_one())


@pytest.mark.parametrize("how", ["revoke", "revoke-timepoint", "reissue"])
def test_a_revoked_link_restored_with_its_earlier_seal_stays_revoked(
    store: Store, holder: LinkHolder, how: str
) -> None:
    # R7-5: the row and its seal copied while the link was live are both valid under the key;
    # the audit chain decides instead (as for access tokens, R7-2).
    open_visit(store, caller=holder)
    link, seal = _link_and_seal(store)
    if how == "reissue":  # a new link for the same timepoint revokes the earlier one
        issue_link(store, "pilot", "A1", timepoint="baseline", caller=ADMIN)
        action = "link.issue"
    else:
        timepoint = "baseline" if how == "revoke-timepoint" else None
        assert revoke_links(store, "pilot", "A1", timepoint=timepoint, caller=ADMIN) == 1
        action = "link.revoke"
    with pytest.raises(PermissionDenied):
        open_visit(store, caller=holder)
    _write_back(store, link, seal)
    with pytest.raises(PermissionDenied):
        open_visit(store, caller=holder)
    assert (
        f"table participant_link, id {link['id']}: live, but revoked by audit log row seq "
        f"{_last_seq(store, action)} (an earlier copy of the row written back outside "
        "peerlens); the link is refused"
    ) in verify_audit(store, caller=ADMIN).problems


def test_a_link_revoked_at_another_timepoint_or_in_another_study_stays_live(
    store: Store, holder: LinkHolder, visit_config_path: Path
) -> None:
    issue_link(store, "pilot", "A1", timepoint="week12", caller=ADMIN)
    assert revoke_links(store, "pilot", "A1", timepoint="week12", caller=ADMIN) == 1
    # The same participant code in another study, its links revoked wholesale.
    create_study(store, "other", visit_config_path, caller=ADMIN)
    add_participant(store, "other", "A1", site="leeds", caller=ADMIN)
    issue_link(store, "other", "A1", timepoint="baseline", caller=ADMIN)
    assert revoke_links(store, "other", "A1", caller=ADMIN) == 1
    assert open_visit(store, caller=holder).participant == "A1"
    assert verify_audit(store, caller=ADMIN).ok


def test_a_link_reads_only_its_own_entries_of_the_chain_through_the_entity_index(
    store: Store, holder: LinkHolder
) -> None:
    # The revocation check runs on every request of a participant: one statement, and the
    # database answers it from ix_audit_log_entity (revision 0020), not by scanning the chain.
    reads: list[tuple[str, Any]] = []

    def note(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if "FROM audit_log" in statement:
            reads.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", note)
    try:
        open_visit(store, caller=holder)
    finally:
        event.remove(store.engine, "before_cursor_execute", note)
    assert len(reads) == 1, reads
    statement, parameters = reads[0]
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            steps = [str(row[-1]) for row in plan]
        else:  # a table this small is read whole unless the planner is told it costs more
            conn.exec_driver_sql("SET enable_seqscan = off")
            plan = conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
            steps = [str(row[0]) for row in plan]
    whole = ("SCAN audit_log", "Seq Scan on audit_log")  # SQLite's, PostgreSQL's words
    assert not [step for step in steps if step.strip().startswith(whole)], steps
    assert [step for step in steps if "ix_audit_log_entity" in step], steps

"""Review 9 (hostile review of seal scheme 2, additive run digests and the scheme upgrade,
commits 8116f58, 33dcacc and 9d6770c): findings, each a test that fails while the finding
stands."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from typing import Any

import pytest
from sqlalchemy import text

from peerlens.study import (
    LinkHolder,
    Store,
    add_participant,
    agree_to_consent,
    audit_frame,
    integrity,
    issue_link,
    open_visit,
    save_page,
    verify_audit,
    verify_derived,
)
from peerlens.study.integrity import reseal_all

from ..conftest import ADMIN

_SCORE_COLUMNS = (
    "id",
    "derivation_id",
    "response_id",
    "instrument",
    "name",
    "value",
    "text",
    "spec_version",
    "spec_sha256",
    "engine_version",
    "source_updated_at",
)


def _complete(store: Store, holder: LinkHolder, value: int) -> None:
    """Answer the SCS through ``holder``'s link (every item ``value``): the form completes."""
    agree_to_consent(store, "v1", caller=holder)
    for page in (1, 2, 3):
        layout = open_visit(store, caller=holder).pages[page - 1].layout
        answers = {q.item: str(value) for q in layout.questions}
        assert save_page(store, page, answers, caller=holder).problems == {}


def _scored_legacy(store: Store, holder: LinkHolder) -> None:
    """Study ``pilot`` where A1 and B2 completed the SCS, then sealed as peerlens did before
    revision 0023 (seal scheme 1): a database the next keyed write upgrades."""
    add_participant(store, "pilot", "B2", site="glasgow", caller=ADMIN)
    other = LinkHolder(
        "B2", issue_link(store, "pilot", "B2", timepoint="baseline", caller=ADMIN).token
    )
    _complete(store, holder, 4)
    _complete(store, other, 2)
    with store.transaction() as s:
        reseal_all(s, store.vault_key(s), actor="old", reason="as sealed before 0023", scheme=1)
    assert verify_audit(store, caller=ADMIN).ok
    assert verify_derived(store, "pilot", caller=ADMIN).ok


def _problems(store: Store) -> tuple[list[str], list[str]]:
    return (
        list(verify_audit(store, caller=ADMIN).problems),
        list(verify_derived(store, "pilot", caller=ADMIN).problems),
    )


# ---------------------------------------------------------------------------- finding R9-1
#
# The scheme upgrade (integrity.ensure_scheme) checks every unit under the old scheme
# (check_seals, one set of statements) and then reseals every unit as it reads it *again*
# (reseal_all, other statements). On PostgreSQL, under READ COMMITTED, each statement sees what
# other connections committed before it began, and neither step locks the rows it reads: a row
# changed with SQL between the check and the reseal is read by the reseal and sealed as if it
# were genuine. Afterwards every check passes. (On SQLite the upgrading transaction holds the
# write lock from its first statement, so nobody can write in between: sound there.)
#
# Here the change hides that a score is stale: its ``source_updated_at`` (not in the run's
# digest) is moved past the response's last change, so ``check_derived`` cannot see it either.
# Severity: medium (PostgreSQL; once per database, in a window of the upgrade's full check, which
# whoever can read pg_stat_activity sees running; any sealed row can be laundered so, a role
# assignment included). Key rotation (keys.py: check_seals, then reseal_all) has the same shape.


def test_r9_1_a_row_changed_between_the_upgrade_check_and_the_reseal_is_sealed_as_genuine(
    store: Store, holder: LinkHolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: the upgrading transaction holds the write lock (sound)")
    _scored_legacy(store, holder)
    with store.engine.connect() as conn:
        row: dict[str, Any] = dict(
            conn.execute(
                text(
                    f"SELECT {', '.join(_SCORE_COLUMNS)} FROM derived_score "
                    "WHERE name = 'scs_total' ORDER BY id LIMIT 1"
                )
            )
            .mappings()
            .one()
        )
    tampered = {**row, "source_updated_at": row["source_updated_at"] + dt.timedelta(days=30)}
    # A second connection, as whoever holds the database: it takes no peerlens lock.
    outside = store.engine.connect()
    real_check = integrity.check_seals
    done: list[bool] = []

    def check_then_tamper(*args: Any, **kwargs: Any) -> Any:
        found = real_check(*args, **kwargs)
        if "skip" in kwargs and not done:  # the upgrade's check (ensure_scheme) has passed
            done.append(True)
            with outside.begin():
                outside.execute(text("DELETE FROM derived_score WHERE id = :i"), {"i": row["id"]})
                outside.execute(
                    text(
                        f"INSERT INTO derived_score ({', '.join(_SCORE_COLUMNS)}) VALUES "
                        f"({', '.join(':' + c for c in _SCORE_COLUMNS)})"
                    ),
                    tampered,
                )
        return found

    monkeypatch.setattr(integrity, "check_seals", check_then_tamper)
    try:
        add_participant(store, "pilot", "C3", site="leeds", caller=ADMIN)  # the first keyed write
    finally:
        monkeypatch.undo()
        outside.close()
    assert done, "the upgrade did not run"
    log = audit_frame(store, caller=ADMIN)
    assert log[log["action"] == "data.reseal"].iloc[-1]["reason"].startswith("seal scheme")
    with store.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT source_updated_at FROM derived_score WHERE id = :i"), {"i": row["id"]}
        ).scalar_one()
    assert stored == tampered["source_updated_at"]  # the change with SQL is in the database
    seals, _ = _problems(store)
    # Expected: the change is found (or the upgrade refused). On main every check passes.
    assert any(f"derived_score, id {row['id']}" in p for p in seals), seals


# ---------------------------------------------------------------------------- finding R9-2
#
# The same gap in every keyed write, not only the upgrade (older than these commits, found while
# reviewing them): a unit is checked against its seal before the transaction first changes it
# (check_before_change) and resealed at commit from what is stored *then* (_reseal reads it
# again, every column). On PostgreSQL a column of that unit changed with SQL in between, by a
# connection that takes no peerlens lock, is sealed with the transaction's own change. Here a
# participant saves the last page of a visit; between the check of the response and the
# statements that rewrite it, the response is moved to another participant with SQL: it is
# sealed so, and every check passes. Severity: medium (PostgreSQL; for a head row the window is
# from the check to the statement that locks it; a child row, e.g. an extra response item,
# inserted after the transaction's own delete of them, is sealed with the unit at commit).


def test_r9_2_a_unit_changed_between_its_check_and_its_reseal_is_sealed_as_genuine(
    store: Store, holder: LinkHolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: a writing transaction holds the write lock (sound)")
    add_participant(store, "pilot", "B2", site="glasgow", caller=ADMIN)
    agree_to_consent(store, "v1", caller=holder)
    for page in (1, 2):
        layout = open_visit(store, caller=holder).pages[page - 1].layout
        assert save_page(store, page, {q.item: "4" for q in layout.questions}, caller=holder)
    last = open_visit(store, caller=holder).pages[2].layout
    outside = store.engine.connect()
    real_check = integrity.check_units
    done: list[bool] = []
    # The change is made from another thread: the save's check may lock the response until it
    # commits, and a change waiting for that lock in this thread would wait for ever.
    tamper: list[threading.Thread] = []

    def move(rid: int) -> None:
        with outside.begin():
            outside.execute(
                text(
                    "UPDATE response SET participant_id = "
                    "(SELECT id FROM participant WHERE study_code = 'B2') WHERE id = :r"
                ),
                {"r": rid},
            )

    def check_then_tamper(session: Any, kind: Any, keys: Any, **kwargs: Any) -> None:
        real_check(session, kind, keys, **kwargs)
        if kind.name == "response" and not done:  # the response was checked: now change it
            done.append(True)
            tamper.append(threading.Thread(target=move, args=(sorted(keys)[0],)))
            tamper[0].start()
            tamper[0].join(2)  # committed by now unless the save holds the response's lock

    monkeypatch.setattr(integrity, "check_units", check_then_tamper)
    try:
        assert save_page(store, 3, {q.item: "4" for q in last.questions}, caller=holder)
    finally:
        monkeypatch.undo()
        for t in tamper:
            t.join(30)
        outside.close()
    assert done, "the response was never checked before its change"
    with store.engine.connect() as conn:
        owner = conn.execute(
            text(
                "SELECT p.study_code FROM response r JOIN participant p ON p.id = r.participant_id"
            )
        ).scalar_one()
    assert owner == "B2"  # A1's answers now stand as B2's: the change with SQL is stored
    seals, derived = _problems(store)
    # Expected: the change is found (or the save refused). On main every check passes.
    assert seals or derived, (seals, derived)


# ---------------------------------------------------------------------------- finding R9-3
#
# Two processes (two web workers, a worker and the CLI) making their first keyed write to a
# database sealed under scheme 1 at the same time both upgrade it: neither takes a lock before
# checking, so both check, and both reseal every unit. On PostgreSQL the second one's reseal
# then fails (its seals collide with the first's, or its check read the first's new seals under
# the old scheme and calls them tampering): a legitimate write is refused, possibly as
# TamperedError, a false alarm of tampering. Severity: low (denial of service, once, at the
# first writes after upgrading to 0023; a retry succeeds).


def test_r9_3_two_first_keyed_writes_at_once_both_succeed(
    store: Store, holder: LinkHolder, db_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: writers are serialised (BEGIN IMMEDIATE): sound")
    _scored_legacy(store, holder)
    second = Store.open(db_url, blob_dir=tmp_path / "blobs")
    real_check = integrity.check_seals
    both_checked = threading.Barrier(2, timeout=15)

    def check_and_wait(*args: Any, **kwargs: Any) -> Any:
        found = real_check(*args, **kwargs)
        if "skip" in kwargs:  # an upgrade's check: let the other one check too
            with contextlib.suppress(threading.BrokenBarrierError):
                both_checked.wait()
        return found

    monkeypatch.setattr(integrity, "check_seals", check_and_wait)
    errors: list[BaseException] = []

    def write(st: Store, code: str) -> None:
        try:
            add_participant(st, "pilot", code, site="leeds", caller=ADMIN)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(st, code))
        for st, code in ((store, "C3"), (second, "D4"))
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        monkeypatch.undo()
        second.close()
    assert not both_checked.broken, "the two upgrades did not overlap (serialised: sound)"
    # Expected: both legitimate writes succeed (or one waits for the other's upgrade).
    assert errors == [], [f"{type(e).__name__}: {str(e)[:160]}" for e in errors]
    assert _problems(store) == ([], [])


# ---------------------------------------------------------------------------- finding R9-4
#
# A completion scored into a run from before additive digests (33dcacc, rescore_response) checks
# the run whole against its sha256 digest; when the rows no longer match it (changed with SQL),
# it writes anyway and amend_run records, as a ``derive.amend`` entry, the digest of the rows as
# stored now: the tampering elsewhere in the run is then what check_derived expects ("left for
# verify to name", says the code, but it is no longer named by verify_derived). The row seals
# still name the row, so ``audit verify`` finds it: this loses the second, independent check.
# Severity: low (defence in depth; SQLite and PostgreSQL).


def test_r9_4_a_completion_into_a_run_without_a_sum_does_not_bless_tampering(
    store: Store, holder: LinkHolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from peerlens.study.derived._scores import SCORES

    add_participant(store, "pilot", "B2", site="glasgow", caller=ADMIN)
    other = LinkHolder(
        "B2", issue_link(store, "pilot", "B2", timepoint="baseline", caller=ADMIN).token
    )
    monkeypatch.setattr(SCORES, "summed", False)  # a run derived before revision 0023
    _complete(store, holder, 4)
    monkeypatch.undo()
    with store.engine.begin() as conn:
        sid = conn.execute(
            text(
                "SELECT s.id FROM derived_score s JOIN response r ON r.id = s.response_id "
                "JOIN participant p ON p.id = r.participant_id "
                "WHERE p.study_code = 'A1' AND s.name = 'scs_total'"
            )
        ).scalar_one()
        conn.execute(text("DELETE FROM derived_score WHERE id = :i"), {"i": sid})
    assert verify_derived(store, "pilot", caller=ADMIN).problems
    _complete(store, other, 2)  # scored into that run
    seals, derived = _problems(store)
    assert any(f"derived_score, id {sid}" in p for p in seals)  # the seals still name it
    # Expected: verify_derived still finds the run's rows changed. On main it passes.
    assert derived, "verify_derived now vouches for the run with A1's score deleted"


# ------------------------------------------------------------------- checked and found sound
#
# Two forms completed at once (two threads, two sessions) are each scored into the study's
# current run in place; the run's sum recorded last must be that of the rows stored (each
# completion reads the newest sum holding the study's derivation lock).


def test_sound_two_completions_at_once_leave_the_run_sum_right(
    store: Store, holder: LinkHolder
) -> None:
    add_participant(store, "pilot", "B2", site="glasgow", caller=ADMIN)
    add_participant(store, "pilot", "C3", site="leeds", caller=ADMIN)
    b2, c3 = (
        LinkHolder(c, issue_link(store, "pilot", c, timepoint="baseline", caller=ADMIN).token)
        for c in ("B2", "C3")
    )
    _complete(store, holder, 4)  # the run the others are scored into
    for who in (b2, c3):
        agree_to_consent(store, "v1", caller=who)
        for page in (1, 2):
            layout = open_visit(store, caller=who).pages[page - 1].layout
            assert save_page(store, page, {q.item: "3" for q in layout.questions}, caller=who)
    last = open_visit(store, caller=b2).pages[2].layout
    start = threading.Barrier(2, timeout=15)
    errors: list[BaseException] = []

    def finish(who: LinkHolder, value: str) -> None:
        try:
            start.wait()
            save_page(store, 3, {q.item: value for q in last.questions}, caller=who)
        except BaseException as exc:  # reported below
            errors.append(exc)

    for _ in range(3):
        threads = [threading.Thread(target=finish, args=(w, v)) for w, v in ((b2, "1"), (c3, "2"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        start.reset()
    assert errors == []
    assert _problems(store) == ([], [])
    amended = audit_frame(store, caller=ADMIN).query("action == 'derive.amend'")
    assert len(amended) >= 2

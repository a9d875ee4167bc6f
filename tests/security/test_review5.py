"""Findings of the fifth hostile review (/work/notes/review5_FINDINGS.md), each rebuilt as a test
that failed before its fix. The attacker parts use SQL only: no vault key, no password."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from peerlens.study import (
    NewParticipant,
    PermissionDenied,
    Store,
    StudyError,
    TamperedError,
    add_participants,
    add_transcript,
    create_study,
    erase_participant,
    import_responses,
    list_participants,
    verify_audit,
    withdraw_participant,
)
from peerlens.study._seal_units import BY_NAME, canon_rows
from peerlens.study.audit import row_hash
from peerlens.study.policy import Caller
from peerlens.study.users import create_user, grant_role, revoke_role, set_active, set_password
from peerlens.study.web_sessions import MAX_PER_USER, resume_session, sign_in

from ..conftest import ADMIN, make_user

GAD7 = [f"gad7_{i}" for i in range(1, 8)]
T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
_AUDIT_COLUMNS = (
    "seq, at_utc, actor, action, entity, entity_id, study, old, new, reason, prev_hash, hash"
)


@pytest.fixture
def pilot(store: Store, config_path: Path, tmp_path: Path) -> Store:
    """Study ``pilot`` with participants L1 (leeds) and G1 (glasgow), each with a GAD-7."""
    create_study(store, "pilot", config_path, caller=ADMIN)
    people = [
        NewParticipant("L1", site="leeds", identity={"name": "Lena Leeds"}),
        NewParticipant("G1", site="glasgow"),
    ]
    add_participants(store, "pilot", people, caller=ADMIN)
    f = tmp_path / "gad.csv"
    rows = [["L1", *[1] * 7], ["G1", *[2] * 7]]
    pd.DataFrame(rows, columns=["participant", *GAD7]).to_csv(f, index=False)
    import_responses(store, "pilot", f, timepoint="baseline", caller=ADMIN)
    return store


def _problems(store: Store) -> list[str]:
    rep = verify_audit(store, caller=ADMIN)
    assert rep.data_unchecked is None
    return list(rep.problems)


def _rows(store: Store, sql: str, **params: object) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(text(sql), params).mappings())


def _append_entry(conn: Any, action: str, new: Any, reason: str | None = None) -> int:
    """Append an audit row the way anyone can (the public chain is an unkeyed sha256 chain)."""
    head = conn.execute(text("SELECT seq, hash, at_utc FROM audit_log ORDER BY seq DESC LIMIT 1"))
    seq, prev, at = head.one()
    row = {
        "seq": seq + 1,
        "at_utc": at,
        "actor": "peerlens",
        "action": action,
        "entity": "data",
        "entity_id": None,
        "study": None,
        "old": None,
        "new": json.dumps(new, sort_keys=True, separators=(",", ":")),
        "reason": reason,
        "prev_hash": prev,
    }
    row["hash"] = row_hash(row)
    values = ", ".join(":" + c.strip() for c in _AUDIT_COLUMNS.split(","))
    conn.execute(text(f"INSERT INTO audit_log ({_AUDIT_COLUMNS}) VALUES ({values})"), row)
    return int(seq) + 1


def _unguard_audit_log(store: Store) -> None:
    """Drop the triggers that keep the audit log append-only, as the database's owner can."""
    with store.engine.begin() as conn:
        if store.dialect == "sqlite":
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_change ON audit_log"))


def _seal_entries(store: Store) -> list[Any]:
    return _rows(
        store,
        "SELECT seq, action, new FROM audit_log WHERE action IN ('data.seal', 'data.reseal') "
        "ORDER BY seq",
    )


# ------------------------------------------------------------------------------------ F1


def test_seal_entries_hold_keyed_running_totals_not_deltas(pilot: Store) -> None:
    entries = _seal_entries(pilot)
    assert entries
    for e in entries:
        assert set(json.loads(e["new"])) == {"totals", "mac"}
    # The newest entry's counts are the counts of seals now (running totals, not changes).
    last = json.loads(entries[-1]["new"])["totals"]
    counts = {r["kind"]: r["n"] for r in _rows(pilot, _COUNT_SEALS)}
    assert {k: v[0] for k, v in last.items() if v[0]} == counts


_COUNT_SEALS = "SELECT kind, count(*) AS n FROM row_seal GROUP BY kind"


def test_a_revoked_role_put_back_with_a_forged_seal_entry_is_named_and_grants_nothing(
    pilot: Store,
) -> None:
    # Review 5, F1a: the attacker kept the role row and its seal from before the revocation,
    # puts them back and appends a seal entry vouching for the totals from before.
    mallory = make_user(pilot, "mallory", "researcher", study="pilot", site="leeds")
    (role,) = _rows(
        pilot,
        "SELECT ra.* FROM role_assignment ra JOIN app_user u ON u.id = ra.user_id "
        "WHERE u.username = 'mallory'",
    )
    (seal,) = _rows(
        pilot,
        "SELECT kind, unit, mac FROM row_seal WHERE kind = 'role_assignment' AND unit = :u",
        u=str(role["id"]),
    )
    before = json.loads(_seal_entries(pilot)[-1]["new"])
    revoke_role(pilot, "mallory", "researcher", study="pilot", site="leeds", caller=ADMIN)
    assert _problems(pilot) == []
    with pilot.engine.begin() as conn:
        cols = ", ".join(role)
        conn.execute(
            text(
                f"INSERT INTO role_assignment ({cols}) VALUES ({', '.join(':' + c for c in role)})"
            ),
            dict(role),
        )
        conn.execute(
            text("INSERT INTO row_seal (kind, unit, mac) VALUES (:kind, :unit, :mac)"), seal
        )
        forged = _append_entry(conn, "data.seal", before)
    found = _problems(pilot)
    # Named twice: it carries no audit MAC, and its seal totals no seal-entry MAC.
    assert found[0].startswith(f"row seq {forged} (data.seal): it has no MAC")
    assert any(
        f"audit log row seq {forged} (data.seal): seal totals not made with this " in p
        for p in found
    )
    with pytest.raises(TamperedError, match=f"seq {forged}"):
        list_participants(pilot, "pilot", caller=mallory)
    # Without the forged entry the tallies give the role row away.
    _unguard_audit_log(pilot)
    with pilot.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = :s"), {"s": forged})
    assert any(p.startswith("table role_assignment: 1 row(s) added") for p in _problems(pilot))
    with pytest.raises(TamperedError, match="table role_assignment: rows removed or put back"):
        list_participants(pilot, "pilot", caller=mallory)


def test_a_table_wiped_with_a_forged_reseal_entry_is_named(pilot: Store) -> None:
    # Review 5, F1b: every response and its seals deleted, and a data.reseal appended with the
    # public running totals and responses at zero.
    last = json.loads(_seal_entries(pilot)[-1]["new"])
    last["totals"]["response"] = [0, "0" * 64]
    with pilot.engine.begin() as conn:
        conn.execute(text("DELETE FROM response_item"))
        conn.execute(text("DELETE FROM response"))
        conn.execute(text("DELETE FROM row_seal WHERE kind = 'response'"))
        forged = _append_entry(conn, "data.reseal", last, "first seal of this database")
    found = _problems(pilot)
    assert any(p.startswith(f"audit log row seq {forged} (data.reseal)") for p in found)
    assert any(p.startswith("table response: 2 row(s) removed") for p in found)
    # A lawful write on top of a forged entry is refused: it would bless what the entry hides.
    with pytest.raises(TamperedError, match=f"seq {forged}"):
        withdraw_participant(pilot, "pilot", "G1", caller=ADMIN, reason="moved")


def _unkey_chain(store: Store) -> None:
    """Rewrite the seal entries in the format of before they were keyed (data.seal: the change,
    data.reseal: the totals) and recompute the public chain, as a database sealed then holds
    (from before audit entries carried MACs too: revision 0019)."""
    _unguard_audit_log(store)
    rows = _rows(store, f"SELECT {_AUDIT_COLUMNS} FROM audit_log ORDER BY seq")
    prev_totals: dict[str, list[int]] = {}
    prev = "0" * 64
    with store.engine.begin() as conn:
        for r in rows:
            row = dict(r)
            if row["action"] in ("data.seal", "data.reseal"):
                totals = {
                    k: [int(c), int(t, 16)]
                    for k, (c, t) in json.loads(row["new"])["totals"].items()
                }
                if row["action"] == "data.seal":
                    shown = {}
                    for k, (c, t) in totals.items():
                        c0, t0 = prev_totals.get(k, [0, 0])
                        if (c, t) != (c0, t0):
                            shown[k] = [c - c0, f"{(t - t0) % (1 << 256):064x}"]
                else:
                    shown = {k: [c, f"{t:064x}"] for k, (c, t) in totals.items()}
                row["new"] = json.dumps(shown, sort_keys=True, separators=(",", ":"))
                prev_totals = totals
            row["prev_hash"] = prev
            row["hash"] = prev = row_hash(row)
            conn.execute(
                text(
                    "UPDATE audit_log SET new = :new, prev_hash = :prev_hash, hash = :hash, "
                    "mac = NULL WHERE seq = :seq"
                ),
                row,
            )


def test_a_database_sealed_before_entries_were_keyed_is_checked_then_resealed(
    pilot: Store,
) -> None:
    _unkey_chain(pilot)
    reopened = Store.open(str(pilot.engine.url.render_as_string(hide_password=False)))
    try:
        assert _problems(reopened) == []
        withdraw_participant(reopened, "pilot", "G1", caller=ADMIN, reason="moved")
        entries = _seal_entries(reopened)
        assert entries[-1]["action"] == "data.reseal"
        assert set(json.loads(entries[-1]["new"])) == {"totals", "mac"}
        assert _problems(reopened) == []
        reasons = _rows(reopened, "SELECT reason FROM audit_log ORDER BY seq DESC LIMIT 1")
        assert reasons[0]["reason"] == "seal entries keyed (upgrade)"
    finally:
        reopened.close()


def test_the_keyed_upgrade_refuses_to_bless_tampering(pilot: Store) -> None:
    _unkey_chain(pilot)
    with pilot.engine.begin() as conn:
        conn.execute(text("UPDATE participant SET status = 'completed' WHERE study_code = 'L1'"))
    pilot._sealed = False
    with pytest.raises(TamperedError, match=r"table participant, id .*: changed outside"):
        withdraw_participant(pilot, "pilot", "G1", caller=ADMIN, reason="moved")
    assert not any(e["action"] == "data.reseal" for e in _seal_entries(pilot)[1:])


def test_lawful_grants_and_revocations_keep_rights_working(pilot: Store) -> None:
    rita = make_user(pilot, "rita", "researcher", study="pilot", site="leeds")
    grant_role(pilot, "rita", "researcher", study="pilot", site="glasgow", caller=ADMIN)
    assert len(list_participants(pilot, "pilot", caller=rita)) == 2
    revoke_role(pilot, "rita", "researcher", study="pilot", site="glasgow", caller=ADMIN)
    assert len(list_participants(pilot, "pilot", caller=rita)) == 1
    revoke_role(pilot, "rita", "researcher", study="pilot", site="leeds", caller=ADMIN)
    with pytest.raises(PermissionDenied):
        list_participants(pilot, "pilot", caller=Caller("rita"))
    assert _problems(pilot) == []


# ------------------------------------------------------------------------------------ F5


def _forge_session(store: Store, username: str, token: str, mac: str | None = None) -> None:
    with store.engine.begin() as conn:
        uid = conn.execute(
            text("SELECT id FROM app_user WHERE username = :u"), {"u": username}
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO web_session (token_sha256, user_id, created_at, last_seen_at, "
                "token_mac) VALUES (:d, :u, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, :m)"
            ),
            {"d": hashlib.sha256(token.encode()).hexdigest(), "u": uid, "m": mac},
        )


def test_a_session_inserted_with_sql_is_no_session(pilot: Store) -> None:
    # Review 5, F5: any row whose token_sha256 matched the cookie was a session.
    token = secrets.token_urlsafe(32)
    _forge_session(pilot, "tester", token)
    with pytest.raises(PermissionDenied):
        resume_session(pilot, token)
    other = secrets.token_urlsafe(32)
    _forge_session(pilot, "tester", other, mac="0" * 64)
    with pytest.raises(PermissionDenied):
        resume_session(pilot, other)


def test_a_real_session_moved_to_another_user_is_no_session(pilot: Store) -> None:
    from ..conftest import PASSWORD

    make_user(pilot, "rita", "researcher", study="pilot", site="leeds")
    mine = sign_in(pilot, "rita", PASSWORD, address="10.0.0.1")
    assert resume_session(pilot, mine.token) == Caller("rita")
    with pilot.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE web_session SET user_id = (SELECT id FROM app_user "
                "WHERE username = 'tester')"
            )
        )
    with pytest.raises(PermissionDenied):
        resume_session(pilot, mine.token)


# ------------------------------------------------------------------------------------ F9


@pytest.mark.parametrize("by_admin", [True, False], ids=["admin-reset", "own-change"])
def test_changing_a_password_ends_the_accounts_sessions(pilot: Store, by_admin: bool) -> None:
    from ..conftest import PASSWORD

    rita = make_user(pilot, "rita", "researcher", study="pilot", site="leeds")
    stolen = sign_in(pilot, "rita", PASSWORD, address="10.0.0.1")
    other = sign_in(pilot, "tester", PASSWORD, address="10.0.0.2")
    if by_admin:
        set_password(pilot, "rita", "a new long password", caller=ADMIN, reason="compromised")
    else:
        set_password(pilot, "rita", "a new long password", caller=rita, current_password=PASSWORD)
    with pytest.raises(PermissionDenied):
        resume_session(pilot, stolen.token)
    assert resume_session(pilot, other.token) == ADMIN  # other accounts keep theirs
    (entry,) = _rows(
        pilot,
        "SELECT new FROM audit_log WHERE action = 'user.password' AND entity_id = 'rita'",
    )
    assert json.loads(entry["new"]) == {"web_sessions_ended": 1}


def test_deactivating_an_account_ends_its_sessions(pilot: Store) -> None:
    from ..conftest import PASSWORD

    make_user(pilot, "rita", "researcher", study="pilot", site="leeds")
    sign_in(pilot, "rita", PASSWORD, address="10.0.0.1")
    set_active(pilot, "rita", False, caller=ADMIN)
    assert (
        _rows(
            pilot,
            "SELECT count(*) AS n FROM web_session WHERE user_id = "
            "(SELECT id FROM app_user WHERE username = 'rita')",
        )[0]["n"]
        == 0
    )


# ------------------------------------------------------------------------------------ F3


def test_concurrent_sign_in_attempts_get_no_more_guesses_than_the_lockout_allows(
    pilot: Store,
) -> None:
    # Review 5, F3: attempts were counted before the slow password check and recorded after
    # it, so 12 attempts sent at once were all checked and a right 12th one signed in.
    from ..conftest import PASSWORD

    create_user(pilot, "victim", PASSWORD, caller=ADMIN)
    n = MAX_PER_USER + 4
    barrier = threading.Barrier(n)
    refused: list[int] = []

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            sign_in(pilot, "victim", f"wrong-{i}", address=f"10.0.1.{i}")
        except PermissionDenied:
            refused.append(i)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(refused) == n
    failures = _rows(
        pilot, "SELECT new FROM audit_log WHERE action = 'login.failure' AND entity_id = 'victim'"
    )
    checked = [r for r in failures if json.loads(r["new"]) == {"locked": False}]
    assert len(failures) == n and len(checked) == MAX_PER_USER
    with pytest.raises(PermissionDenied):  # locked: the right password does not help now
        sign_in(pilot, "victim", PASSWORD, address="10.0.1.200")


# ------------------------------------------------------------------------------------ F4


def test_an_answer_of_minus_zero_verifies_and_can_be_changed_and_erased(
    pilot: Store, tmp_path: Path
) -> None:
    # Review 5, F4: "-0" was sealed as -0.0 but SQLite stores 0.0: a permanent "changed
    # outside peerlens", and every later change of the response, its erasure too, refused.
    phq = [f"phq9_{i}" for i in range(1, 10)]
    f = tmp_path / "phq.csv"
    pd.DataFrame([["L1", "-0", *[1] * 8]], columns=["participant", *phq]).to_csv(f, index=False)
    import_responses(pilot, "pilot", f, timepoint="week12", caller=ADMIN)
    assert _problems(pilot) == []
    pd.DataFrame([["L1", "0", *[2] * 8]], columns=["participant", *phq]).to_csv(f, index=False)
    import_responses(pilot, "pilot", f, timepoint="week12", caller=ADMIN)
    erase_participant(pilot, "pilot", "L1", caller=ADMIN, reason="asked", purge_responses=True)
    assert _problems(pilot) == []


def test_minus_zero_stored_by_a_backend_that_keeps_it_verifies(pilot: Store) -> None:
    # PostgreSQL keeps -0.0; a value written as -0.0 outside the parser is sealed as 0.0 too.
    with pilot.transaction() as s:
        s.execute(text("UPDATE response_item SET value = :v WHERE item = 'gad7_1'"), {"v": -0.0})
        from peerlens.study.integrity import reseal_all

        reseal_all(s, pilot.vault_key(s), actor="tester", reason="test")
    assert _problems(pilot) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(allow_nan=False)), min_size=1, max_size=8))
def test_canonical_floats_are_unchanged_except_minus_zero(values: list[float | None]) -> None:
    # Units that never held -0.0 keep the content they were sealed with.
    column = BY_NAME["response"].children[0].columns
    col = next(c for c in column if c.name == "value")
    out = [r[0] for r in canon_rows([col], [[v] for v in values])]
    for v, o in zip(values, out, strict=True):
        if v is not None and v == 0.0:
            assert repr(o) == "0.0"
        else:
            assert repr(o) == repr(v)


# ------------------------------------------------------------------------------------ F11


def test_text_with_a_nul_character_is_refused_naming_the_field(pilot: Store) -> None:
    # Review 5, F11: PostgreSQL failed with a 500 whose logged message quoted the text.
    add_participants(
        pilot, "pilot", [NewParticipant("W1", site="leeds", role="ps_worker")], caller=ADMIN
    )
    with pytest.raises(StudyError, match=r"transcript\.text: text must not contain a NUL"):
        add_transcript(
            pilot, "pilot", "My story\x00 here", kind="story", participant="W1", caller=ADMIN
        )
    assert _rows(pilot, "SELECT count(*) AS n FROM transcript")[0]["n"] == 0
    assert _problems(pilot) == []


def test_database_errors_never_quote_the_values_written(pilot: Store) -> None:
    from sqlalchemy.exc import DBAPIError

    secret = "Mary Jones from 4 Hill St"
    with pytest.raises(DBAPIError) as info, pilot.engine.begin() as conn:
        conn.execute(text("INSERT INTO app_user (no_such_column) VALUES (:u)"), {"u": secret})
    assert secret not in str(info.value)
    assert "parameters hidden" in str(info.value)


# ------------------------------------------------------------------------------------ F6


def test_studio_access_added_with_sql_grants_nothing(pilot: Store) -> None:
    # Review 5, F6: worker_access rows were trusted without their seals.
    from peerlens.study import grant_studio_access, read_story, save_story

    add_participants(
        pilot, "pilot", [NewParticipant("GW", site="glasgow", role="ps_worker")], caller=ADMIN
    )
    worker = make_user(pilot, "gw_account", "ps_worker", study="pilot")
    grant_studio_access(pilot, "pilot", "GW", "gw_account", relation="worker", caller=ADMIN)
    story = save_story(
        pilot, "pilot", "I was scared at first.", told_on=dt.date(2026, 1, 5), caller=worker
    )
    trainer = make_user(pilot, "trainer_x", "trainer", study="pilot")
    with pytest.raises(PermissionDenied):
        read_story(pilot, story, caller=trainer)
    with pilot.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO worker_access (study_id, participant_id, user_id, relation, "
                "granted_at) SELECT s.id, p.id, u.id, 'trainer', CURRENT_TIMESTAMP "
                "FROM study s, participant p, app_user u WHERE s.name = 'pilot' "
                "AND p.study_code = 'GW' AND u.username = 'trainer_x'"
            )
        )
    with pytest.raises(TamperedError, match="table worker_access"):
        read_story(pilot, story, caller=trainer)
    assert read_story(pilot, story, caller=worker).sentences  # lawful access still works

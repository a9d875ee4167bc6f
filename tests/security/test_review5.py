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

from ..conftest import ADMIN, audit_rows, drop_audit_guards, insert_audit_row, make_user

GAD7 = [f"gad7_{i}" for i in range(1, 8)]
T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


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
    insert_audit_row(conn, row)
    return int(seq) + 1


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
    drop_audit_guards(pilot)
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
    (from before audit entries carried MACs too: revision 0021)."""
    drop_audit_guards(store)
    rows = audit_rows(store)
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
    assert json.loads(entry["new"]) == {"web_sessions_ended": 1, "tokens_revoked": 0}


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


# ------------------------------------------------------------- PostgreSQL concurrency (F2-F13)
# Each race is made deterministic: one transaction is held at a named point (a wrapped study
# function, in the thread of that name) while another connection acts; a thread that must wait
# for a lock is seen waiting in pg_stat_activity before the held one goes on.


def _needs_pg(store: Store) -> None:
    if store.dialect != "postgresql":
        pytest.skip("a PostgreSQL race: SQLite's BEGIN IMMEDIATE serialises every writer")


class _Hold:
    """Hold the thread called ``thread`` at its first call of ``module.name`` (before the call,
    or after it returns) for which ``when(*args)`` is true, until :meth:`release`."""

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        module: Any,
        name: str,
        thread: str,
        *,
        after: bool = True,
        when: Any = None,
    ) -> None:
        self.reached, self.go = threading.Event(), threading.Event()
        original = getattr(module, name)

        def held(*args: Any, **kwargs: Any) -> Any:
            mine = (
                threading.current_thread().name == thread
                and not self.reached.is_set()
                and (when is None or when(*args))
            )
            if mine and not after:
                self.reached.set()
                self.go.wait(60)
            out = original(*args, **kwargs)
            if mine and after:
                self.reached.set()
                self.go.wait(60)
            return out

        monkeypatch.setattr(module, name, held)

    def wait(self) -> None:
        assert self.reached.wait(60), "the held thread never got there"

    def release(self) -> None:
        self.go.set()


class _Run:
    """Run ``fn`` in a thread called ``name``, keeping its result or error."""

    def __init__(self, name: str, fn: Any) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn,), name=name)
        self.thread.start()

    def _run(self, fn: Any) -> None:
        try:
            self.value = fn()
        except Exception as exc:
            self.error = exc

    def join(self) -> None:
        self.thread.join(60)
        assert not self.thread.is_alive(), "thread still running"


def _other(store: Store) -> tuple[Store, str]:
    """Another store on ``store``'s database (another web worker or CLI), and the application
    name its connections show in pg_stat_activity."""
    name = f"peerlens-test-{secrets.token_hex(6)}"
    url = store.engine.url.render_as_string(hide_password=False)
    return Store.open(url, connect_args={"application_name": name}), name


def _waits_or_ends(store: Store, app: str, run: _Run) -> None:
    """Return once ``run`` has ended or a connection of ``app`` waits for a lock."""
    import time

    deadline = time.monotonic() + 60
    while run.thread.is_alive() and time.monotonic() < deadline:
        waiting = _rows(
            store,
            "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = :a "
            "AND wait_event_type = 'Lock'",
            a=app,
        )[0]["n"]
        if waiting:
            return
        time.sleep(0.01)
    assert not run.thread.is_alive(), "neither waiting for a lock nor done"


def test_a_write_checked_before_an_erasure_stores_nothing_after_it(
    pilot: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Review 5, F2: the writer read L1 as enrolled, the erasure committed, then the writer
    # stored identifying text for the erased participant.
    _needs_pg(pilot)
    import peerlens.study.sessions as sessions

    hold = _Hold(monkeypatch, sessions, "get_participant", "writer")
    text_ = "My name is Lena Leeds and I live at 12 Elm Road."
    writer = _Run(
        "writer",
        lambda: add_transcript(pilot, "pilot", text_, kind="story", participant="L1", caller=ADMIN),
    )
    hold.wait()
    other, _ = _other(pilot)
    try:
        erase_participant(other, "pilot", "L1", caller=ADMIN, reason="asked")
    finally:
        other.close()
    hold.release()
    writer.join()
    assert isinstance(writer.error, StudyError) and "'L1' was erased" in str(writer.error)
    assert _rows(pilot, "SELECT count(*) AS n FROM transcript")[0]["n"] == 0
    assert _problems(pilot) == []


def test_an_erasure_waits_for_a_write_in_flight_and_removes_it(
    pilot: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # F2, the other order: the transcript is written but not committed when the erasure
    # starts; the erasure must wait for it and remove it.
    _needs_pg(pilot)
    from peerlens.study import audit

    hold = _Hold(monkeypatch, audit, "record", "writer", after=False)
    writer = _Run(
        "writer",
        lambda: add_transcript(
            pilot, "pilot", "Lena Leeds, 12 Elm Road", kind="story", participant="L1", caller=ADMIN
        ),
    )
    hold.wait()
    other, app = _other(pilot)
    try:
        eraser = _Run(
            "eraser",
            lambda: erase_participant(other, "pilot", "L1", caller=ADMIN, reason="asked"),
        )
        _waits_or_ends(pilot, app, eraser)
        hold.release()
        writer.join()
        eraser.join()
    finally:
        hold.release()
        other.close()
    assert writer.error is None and eraser.error is None
    assert eraser.value.transcripts == 1
    assert _rows(pilot, "SELECT count(*) AS n FROM transcript")[0]["n"] == 0
    assert _problems(pilot) == []


def test_verify_during_a_lawful_write_reports_nothing(
    pilot: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Review 5, F7: verify read the chain's totals, the seals and the tables in separate
    # statements; a participant enrolled meanwhile was reported as added with its seal.
    _needs_pg(pilot)
    import peerlens.study.integrity as integrity

    hold = _Hold(monkeypatch, integrity, "_chain_totals", "verifier")
    verifier = _Run("verifier", lambda: verify_audit(pilot, caller=ADMIN))
    hold.wait()
    other, _ = _other(pilot)
    try:
        add_participants(other, "pilot", [NewParticipant("L2", site="leeds")], caller=ADMIN)
    finally:
        hold.release()
        other.close()
    verifier.join()
    assert verifier.error is None
    assert list(verifier.value.problems) == []
    assert _problems(pilot) == []


def test_a_seal_check_during_a_lawful_change_of_the_same_row_passes(
    pilot: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # F7, the pre-write check: it read the seal, another connection changed the row and its
    # seal, then it read the row: a lawful change was refused as tampering.
    _needs_pg(pilot)
    import peerlens.study.integrity as integrity

    make_user(pilot, "rita", "researcher", study="pilot", site="leeds")
    (rita,) = _rows(pilot, "SELECT id FROM app_user WHERE username = 'rita'")
    hold = _Hold(
        monkeypatch,
        integrity,
        "_stored",
        "writer",
        when=lambda _s, kind, units: kind.name == "app_user" and str(rita["id"]) in units,
    )
    writer = _Run(
        "writer",
        lambda: set_password(pilot, "rita", "first new password", caller=ADMIN, reason="reset"),
    )
    hold.wait()
    other, _ = _other(pilot)
    try:
        set_password(other, "rita", "second new password", caller=ADMIN, reason="reset")
    finally:
        hold.release()
        other.close()
    writer.join()
    assert writer.error is None
    assert _problems(pilot) == []


def test_a_page_save_and_an_erasure_at_once_do_not_deadlock(
    store: Store, visit_config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Review 5, F8: the page save held the participant row and wanted the audit lock; the
    # erasure held the audit lock (derive.amend) and wanted the participant row.
    _needs_pg(store)
    import peerlens.study.visits as visits
    from peerlens.study import (
        LinkHolder,
        agree_to_consent,
        derive,
        issue_link,
        open_visit,
        save_page,
    )

    create_study(store, "pilot", visit_config_path, caller=ADMIN)
    add_participants(store, "pilot", [NewParticipant("A1", site="leeds")], caller=ADMIN)
    link = issue_link(store, "pilot", "A1", timepoint="baseline", caller=ADMIN)
    holder = LinkHolder("A1", link.token)
    agree_to_consent(store, "v1", caller=holder)
    pages = open_visit(store, caller=holder).pages
    last = pages[-1].layout.questions
    save_page(store, len(pages), {q.item: "1" for q in last}, caller=holder)
    derive(store, "pilot", ["scores"], caller=ADMIN, executor="sequential")
    first = {q.item: "2" for q in pages[0].layout.questions}
    hold = _Hold(monkeypatch, visits, "_seen", "saver", after=False)
    saver = _Run("saver", lambda: save_page(store, 1, first, caller=holder))
    hold.wait()
    other, app = _other(store)
    try:
        eraser = _Run(
            "eraser",
            lambda: erase_participant(
                other, "pilot", "A1", caller=ADMIN, reason="asked", purge_responses=True
            ),
        )
        _waits_or_ends(store, app, eraser)
        hold.release()
        saver.join()
        eraser.join()
    finally:
        hold.release()
        other.close()
    assert saver.error is None, saver.error
    assert eraser.error is None, eraser.error
    assert eraser.value.responses_deleted == 2
    assert _problems(store) == []


def test_a_bulk_delete_leaves_no_seal_of_a_row_committed_meanwhile(
    pilot: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Review 5, F10: the units a bulk DELETE touches were found with a SELECT before it ran;
    # a row committed in between was deleted too but its seal stayed ("removed outside").
    _needs_pg(pilot)
    from sqlalchemy import delete

    import peerlens.study.integrity as integrity
    from peerlens.study import audit
    from peerlens.study.models import Transcript

    add_transcript(pilot, "pilot", "first story", kind="story", participant="L1", caller=ADMIN)
    hold = _Hold(
        monkeypatch,
        integrity,
        "check_before_change",
        "deleter",
        when=lambda _s, kind, _keys: kind.name == "transcript",
    )

    def delete_stories() -> None:
        with pilot.transaction() as s:
            s.execute(delete(Transcript).where(Transcript.kind == "story"))
            audit.record(s, "tester", "test.delete", "transcript")

    deleter = _Run("deleter", delete_stories)
    hold.wait()
    other, _ = _other(pilot)
    try:
        add_transcript(other, "pilot", "second", kind="story", participant="G1", caller=ADMIN)
    finally:
        hold.release()
        other.close()
    deleter.join()
    assert deleter.error is None
    assert _problems(pilot) == []


def test_two_links_issued_at_once_leave_one_valid(
    pilot: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Review 5, F12: each issue revoked the links it saw and added its own: both stayed valid.
    _needs_pg(pilot)
    import peerlens.study.links as links
    from peerlens.study import LinkHolder, issue_link, open_visit

    hold = _Hold(monkeypatch, links, "_revoke", "first")
    first = _Run(
        "first", lambda: issue_link(pilot, "pilot", "L1", timepoint="baseline", caller=ADMIN)
    )
    hold.wait()
    other, app = _other(pilot)
    try:
        second = _Run(
            "second",
            lambda: issue_link(other, "pilot", "L1", timepoint="baseline", caller=ADMIN),
        )
        _waits_or_ends(pilot, app, second)
        hold.release()
        first.join()
        second.join()
    finally:
        hold.release()
        other.close()
    assert first.error is None and second.error is None
    valid = []
    for run in (first, second):
        try:
            open_visit(pilot, caller=LinkHolder("L1", run.value.token))
            valid.append(run)
        except PermissionDenied:
            pass
    assert valid == [second]  # the later issue revoked the earlier one
    live = "SELECT count(*) AS n FROM participant_link WHERE revoked_at IS NULL"
    assert _rows(pilot, live)[0]["n"] == 1
    assert _problems(pilot) == []


def test_an_enrolment_never_seals_a_row_added_with_sql_meanwhile(
    pilot: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Review 5, F13: a keyless insert sealed every row above the largest key seen before it,
    # a participant added with SQL (no key) meanwhile too.
    _needs_pg(pilot)
    import peerlens.study.integrity as integrity

    hold = _Hold(monkeypatch, integrity, "_settle", "enrol", after=False)
    people = [NewParticipant("L2", site="leeds"), NewParticipant("L3", site="leeds")]
    enrol = _Run("enrol", lambda: add_participants(pilot, "pilot", people, caller=ADMIN))
    hold.wait()
    try:
        with pilot.engine.begin() as conn:  # the attacker: SQL only, no key
            conn.execute(
                text(
                    "INSERT INTO participant (study_id, study_code, role, site_id, status, "
                    "enrolled_at, date_shift_days) SELECT s.id, 'FAKE-1', 'service_user', x.id, "
                    "'enrolled', CURRENT_TIMESTAMP, 0 FROM study s JOIN site x ON "
                    "x.study_id = s.id WHERE s.name = 'pilot' AND x.name = 'glasgow'"
                )
            )
    finally:
        hold.release()
    enrol.join()
    assert enrol.error is None
    (fake,) = _rows(pilot, "SELECT id FROM participant WHERE study_code = 'FAKE-1'")
    assert _problems(pilot) == [
        f"table participant, id {fake['id']}: added outside peerlens (no seal)"
    ]


def test_a_deadlock_is_refused_as_a_concurrent_change_not_a_database_error(
    pilot: Store,
) -> None:
    # F8: whatever deadlock remains, the loser gets a clear StudyError (the CLI's exit 2, the
    # web app's 409 with its message), not a driver error and a 500.
    _needs_pg(pilot)
    from peerlens.study import ConcurrentChange

    holding, go = threading.Event(), threading.Event()

    def one() -> None:
        with pilot.transaction() as s:
            s.execute(text("SELECT id FROM study FOR UPDATE"))
            holding.set()
            go.wait(60)
            s.execute(text("SELECT id FROM site FOR UPDATE"))

    def two() -> None:
        with other.transaction() as s:
            s.execute(text("SELECT id FROM site FOR UPDATE"))
            s.execute(text("SELECT id FROM study FOR UPDATE"))

    other, app = _other(pilot)
    try:
        first = _Run("one", one)
        assert holding.wait(60)
        second = _Run("two", two)
        _waits_or_ends(pilot, app, second)
        go.set()
        first.join()
        second.join()
    finally:
        go.set()
        other.close()
    errors = [r.error for r in (first, second) if r.error is not None]
    assert len(errors) == 1 and isinstance(errors[0], ConcurrentChange), errors
    assert "nothing was stored" in str(errors[0])

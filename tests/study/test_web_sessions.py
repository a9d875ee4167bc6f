"""Staff sessions: sign-in, lockout after repeated failures, idle and absolute expiry,
sign-out, deactivation, and what the audit log records; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import func, select, text, update

from peerlens.study import (
    PermissionDenied,
    Store,
    audit_frame,
    end_session,
    resume_session,
    set_active,
    sign_in,
)
from peerlens.study.models import LoginFailure, WebSession
from peerlens.study.policy import token_digest
from peerlens.study.web_sessions import (
    ABSOLUTE,
    IDLE,
    MAX_PER_ADDRESS,
    MAX_PER_USER,
    SIGN_IN_REFUSED,
    WINDOW,
)

from .conftest import ACTOR, ADMIN, PASSWORD, make_user

HERE = "192.0.2.1"


def _fail(
    store: Store, username: str, password: str = "wrong password", address: str = HERE
) -> str:
    with pytest.raises(PermissionDenied) as exc:
        sign_in(store, username, password, address=address)
    return str(exc.value)


def _age(store: Store, token: str, **columns: dt.timedelta) -> None:
    """Move a session's times back by the given amounts (a start time moved back is bound
    again under the key, as if the session had started then)."""
    from peerlens.study.web_sessions import _session_mac

    with store.transaction() as s:
        row = s.scalars(
            select(WebSession).where(WebSession.token_sha256 == token_digest(token))
        ).one()
        for name, delta in columns.items():
            setattr(row, name, getattr(row, name) - delta)
        if "created_at" in columns:
            row.token_mac = _session_mac(store, s, token, row.user_id, row.created_at)


def _actions(store: Store) -> list[str]:
    return list(audit_frame(store, caller=ADMIN)["action"])


def test_sign_in_starts_a_new_session_stored_only_as_a_digest(store: Store) -> None:
    first = sign_in(store, ACTOR, PASSWORD, address=HERE)
    second = sign_in(store, ACTOR, PASSWORD, address=HERE)
    assert first.caller == second.caller == ADMIN
    assert first.token != second.token and len(first.token) >= 43  # 32 random bytes
    assert resume_session(store, first.token) == ADMIN
    with store.transaction() as s:
        stored = set(s.scalars(select(WebSession.token_sha256)))
    assert stored == {token_digest(first.token), token_digest(second.token)}
    assert first.token not in repr(first)


def test_sign_in_ends_the_session_it_replaces(store: Store) -> None:
    old = sign_in(store, ACTOR, PASSWORD, address=HERE)
    new = sign_in(store, ACTOR, PASSWORD, address=HERE, replaces=old.token)
    with pytest.raises(PermissionDenied):
        resume_session(store, old.token)
    assert resume_session(store, new.token) == ADMIN
    # An id the browser held before a failed attempt is ended too.
    with pytest.raises(PermissionDenied):
        sign_in(store, ACTOR, "wrong password", address=HERE, replaces=new.token)
    with pytest.raises(PermissionDenied):
        resume_session(store, new.token)


def test_every_refusal_reads_the_same(store: Store) -> None:
    make_user(store, "gone", "researcher")
    set_active(store, "gone", False, caller=ADMIN)
    messages = {
        _fail(store, ACTOR, "wrong password"),
        _fail(store, "nobody-of-that-name", PASSWORD),
        _fail(store, "gone", PASSWORD),
    }
    assert messages == {SIGN_IN_REFUSED}


def test_lockout_after_repeated_failures_even_with_the_right_password(store: Store) -> None:
    make_user(store, "ada", "researcher")
    for _ in range(MAX_PER_USER):
        assert _fail(store, "ada") == SIGN_IN_REFUSED
    # Locked: the right password is refused with the same words, from any address.
    assert _fail(store, "ada", PASSWORD, address="198.51.100.7") == SIGN_IN_REFUSED
    assert _fail(store, "ADA", PASSWORD, address="198.51.100.8") == SIGN_IN_REFUSED
    # Another account is not locked by it.
    assert sign_in(store, ACTOR, PASSWORD, address="198.51.100.9").caller == ADMIN
    # Once the window has passed, the right password works again.
    with store.transaction() as s:
        s.execute(update(LoginFailure).values(at=LoginFailure.at - WINDOW))
    assert sign_in(store, "ada", PASSWORD, address=HERE).caller.username == "ada"


def test_unknown_names_lock_like_known_ones(store: Store) -> None:
    for _ in range(MAX_PER_USER):
        _fail(store, "no-such-user", address="198.51.100.1")
    with store.transaction() as s:
        n = s.scalar(select(func.count()).select_from(LoginFailure))
    assert n == MAX_PER_USER


@pytest.mark.slow
def test_one_address_is_locked_after_many_failures_across_names(store: Store) -> None:
    make_user(store, "ada", "researcher")
    for i in range(MAX_PER_ADDRESS):
        _fail(store, f"guess{i}")
    assert _fail(store, "ada", PASSWORD) == SIGN_IN_REFUSED
    assert sign_in(store, "ada", PASSWORD, address="198.51.100.2").caller.username == "ada"


def test_a_success_resets_the_count_for_that_name(store: Store) -> None:
    make_user(store, "ada", "researcher")
    for _ in range(MAX_PER_USER - 1):
        _fail(store, "ada")
    sign_in(store, "ada", PASSWORD, address=HERE)
    for _ in range(MAX_PER_USER - 1):
        _fail(store, "ada")
    assert sign_in(store, "ada", PASSWORD, address=HERE).caller.username == "ada"


def test_failures_are_stored_without_the_name_or_address_typed(store: Store) -> None:
    _fail(store, "my secret password typed as a name", address="203.0.113.5")
    with store.transaction() as s:
        row = s.scalars(select(LoginFailure)).one()
    assert "secret" not in row.username_sha256 and "203.0.113" not in row.address_sha256
    frame = audit_frame(store, caller=ADMIN)
    text = frame.astype(str).to_string()
    assert "my secret password" not in text and "wrong password" not in text


def test_success_failure_and_lockout_are_audited(store: Store) -> None:
    make_user(store, "ada", "researcher")
    sign_in(store, "ada", PASSWORD, address=HERE)
    for _ in range(MAX_PER_USER + 1):
        _fail(store, "ada")
    frame = audit_frame(store, caller=ADMIN)
    logins = frame[frame["action"].str.startswith("login.")]
    assert list(logins["action"]) == [
        "login.success",
        *["login.failure"] * (MAX_PER_USER - 1),
        "login.failure",
        "login.lockout",
        "login.failure",
    ]
    assert set(logins["actor"]) == {"ada"}
    assert list(logins["new"])[-1] == '{"locked":true}'
    assert PASSWORD not in frame.astype(str).to_string()
    # An unknown name is recorded as anonymous, never as typed.
    _fail(store, "typo-name")
    last = audit_frame(store, caller=ADMIN).iloc[-1]
    assert last["actor"] == "anonymous" and pd.isna(last["entity_id"])


@pytest.mark.parametrize(
    ("column", "limit"),
    [("last_seen_at", IDLE), ("created_at", ABSOLUTE)],
    ids=["idle", "absolute"],
)
def test_sessions_expire(store: Store, column: str, limit: dt.timedelta) -> None:
    alive = sign_in(store, ACTOR, PASSWORD, address=HERE)
    ended = sign_in(store, ACTOR, PASSWORD, address=HERE)
    _age(store, alive.token, **{column: limit - dt.timedelta(minutes=2)})
    _age(store, ended.token, **{column: limit + dt.timedelta(minutes=1)})
    assert resume_session(store, alive.token) == ADMIN
    with pytest.raises(PermissionDenied, match="ended"):
        resume_session(store, ended.token)
    with store.transaction() as s:  # the expired session is deleted
        left = set(s.scalars(select(WebSession.token_sha256)))
    assert left == {token_digest(alive.token)}


def test_use_keeps_a_session_alive(store: Store) -> None:
    started = sign_in(store, ACTOR, PASSWORD, address=HERE)
    _age(store, started.token, last_seen_at=IDLE - dt.timedelta(minutes=1))
    assert resume_session(store, started.token) == ADMIN  # touched: last use is now
    _age(store, started.token, last_seen_at=dt.timedelta(minutes=2))
    assert resume_session(store, started.token) == ADMIN


def test_sign_out_and_deactivation_end_the_session(store: Store) -> None:
    make_user(store, "ada", "researcher")
    mine = sign_in(store, "ada", PASSWORD, address=HERE)
    theirs = sign_in(store, ACTOR, PASSWORD, address=HERE)
    end_session(store, theirs.token)
    with pytest.raises(PermissionDenied):
        resume_session(store, theirs.token)
    end_session(store, theirs.token)  # twice: nothing happens
    set_active(store, "ada", False, caller=ADMIN)
    with pytest.raises(PermissionDenied):
        resume_session(store, mine.token)
    assert "logout" in _actions(store)


def test_unknown_session_ids_are_refused(store: Store) -> None:
    for token in ("", "x", "a" * 43):
        with pytest.raises(PermissionDenied):
            resume_session(store, token)


def test_a_start_time_moved_without_the_key_ends_the_session(store: Store) -> None:
    started = sign_in(store, ACTOR, PASSWORD, address=HERE)
    with store.engine.begin() as conn:  # someone extends a session's life with SQL
        conn.execute(
            text("UPDATE web_session SET created_at = :t"),
            {"t": dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)},
        )
    with pytest.raises(PermissionDenied):
        resume_session(store, started.token)

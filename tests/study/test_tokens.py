"""Personal access tokens: created for oneself, shown once and stored as a digest, revoked and
expired at once, last use recorded, audited without the token; and what a token may do (the
user's current roles ∩ the token's scopes); on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import select, text

from peerlens.study import (
    Caller,
    NotFound,
    PermissionDenied,
    Store,
    StudyError,
    add_participant,
    analyse_text,
    audit_frame,
    create_study,
    create_token,
    export_frame,
    list_all_tokens,
    list_participants,
    list_studies,
    list_tokens,
    list_users,
    resume_token,
    revoke_any_token,
    revoke_role,
    revoke_token,
    set_active,
    set_password,
)
from peerlens.study.models import ApiToken
from peerlens.study.policy import POLICY, TOKEN_REFUSED, TOKEN_SCOPES, token_digest
from peerlens.study.tokens import MAX_DAYS, TOKEN_PREFIX

from .conftest import ADMIN, make_user


@pytest.fixture
def pilot(store: Store, config_path: Path) -> Store:
    create_study(store, "pilot", config_path, caller=ADMIN)
    add_participant(store, "pilot", "A1", site="leeds", caller=ADMIN)
    add_participant(store, "pilot", "B2", site="glasgow", caller=ADMIN)
    return store


def _move(store: Store, token_id: int, **columns: dt.timedelta) -> None:
    with store.transaction() as s:
        row = s.get(ApiToken, token_id)
        assert row is not None
        for name, delta in columns.items():
            setattr(row, name, getattr(row, name) - delta)


def test_a_token_is_shown_once_stored_as_its_digest_and_audited_without_it(
    store: Store,
) -> None:
    issued = create_token(store, "nightly sync", scopes=["read", "read"], days=30, caller=ADMIN)
    assert issued.token.startswith(TOKEN_PREFIX) and len(issued.token) > 40
    assert issued.token not in repr(issued)
    assert issued.scopes == ("read",)
    with store.transaction() as s:
        row = s.get(ApiToken, issued.id)
        assert row is not None and row.token_sha256 == token_digest(issued.token)
        dumped = " ".join(
            str(v) for r in s.execute(text("SELECT * FROM api_token")).all() for v in r
        )
    assert issued.token not in dumped and issued.token[len(TOKEN_PREFIX) :] not in dumped
    listed = list_tokens(store, caller=ADMIN)
    assert list(listed["name"]) == ["nightly sync"] and list(listed["state"]) == ["active"]
    assert issued.token not in listed.to_csv()
    log = audit_frame(store, caller=ADMIN)
    made = log[log["action"] == "token.create"]
    assert len(made) == 1 and made["entity_id"].iloc[0] == str(issued.id)
    assert issued.token not in log.to_csv() and issued.token[4:20] not in log.to_csv()
    expires = issued.expires_at - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=29) < expires <= dt.timedelta(days=30)


def test_resume_names_the_token_and_records_its_last_use(store: Store) -> None:
    issued = create_token(store, "t", scopes=["read"], caller=ADMIN)
    assert list_tokens(store, caller=ADMIN)["last_used_at"].isna().all()
    caller = resume_token(store, issued.token)
    assert caller == Caller(ADMIN.username, token=issued.id)
    used = list_tokens(store, caller=ADMIN)["last_used_at"].iloc[0]
    assert abs(used - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


def test_revoked_expired_unknown_and_deactivated_tokens_are_refused_alike(store: Store) -> None:
    worker = make_user(store, "res", "researcher")
    revoked = create_token(store, "a", scopes=["read"], caller=worker)
    expired = create_token(store, "b", scopes=["read"], caller=worker)
    live = create_token(store, "c", scopes=["read"], caller=worker)
    in_use = resume_token(store, revoked.token)  # a caller resumed before the revocation
    revoke_token(store, revoked.id, caller=worker)
    revoke_token(store, revoked.id, caller=worker)  # again: nothing changes
    _move(store, expired.id, expires_at=dt.timedelta(days=400))
    refused = []
    for token in (revoked.token, expired.token, live.token[:-1] + "x", "plk_", "", "Bearer"):
        with pytest.raises(PermissionDenied) as exc:
            resume_token(store, token)
        refused.append(str(exc.value))
    assert set(refused) == {TOKEN_REFUSED}
    # The study API reads the token in each operation: revoked means refused at once.
    with pytest.raises(PermissionDenied, match="not valid"):
        list_users(store, caller=in_use)
    states = dict(zip(*list_tokens(store, caller=worker)[["name", "state"]].T.values, strict=True))
    assert states == {"a": "revoked", "b": "expired", "c": "active"}
    set_active(store, "res", False, caller=ADMIN)
    with pytest.raises(PermissionDenied, match="not valid"):
        resume_token(store, live.token)
    log = audit_frame(store, caller=ADMIN)
    # Deactivating revoked the live token too (review 8, R8-2); the expired one stays expired.
    assert sorted(log[log["action"] == "token.revoke"]["entity_id"]) == sorted(
        [str(revoked.id), str(live.id)]
    )


def test_a_token_does_what_its_scopes_and_its_users_roles_both_allow(pilot: Store) -> None:
    admin_read = resume_token(pilot, create_token(pilot, "r", scopes=["read"], caller=ADMIN).token)
    assert list(list_participants(pilot, "pilot", caller=admin_read)["participant"]) == [
        "A1",
        "B2",
    ]
    with pytest.raises(PermissionDenied, match="needs the 'export' scope"):
        export_frame(pilot, "pilot", tier="deidentified", caller=admin_read)
    with pytest.raises(PermissionDenied, match="needs the 'admin' scope"):
        list_users(pilot, caller=admin_read)
    with pytest.raises(PermissionDenied, match="needs the 'write' scope"):
        add_participant(pilot, "pilot", "A3", site="leeds", caller=admin_read)
    # A scope never adds a right: a Leeds researcher's admin-scoped token lists no users and
    # sees Leeds only.
    leeds = make_user(pilot, "leeds-res", "researcher", study="pilot", site="leeds")
    everything = ["read", "write", "export", "admin"]
    wide = resume_token(pilot, create_token(pilot, "w", scopes=everything, caller=leeds).token)
    with pytest.raises(PermissionDenied, match="needs a global admin"):
        list_users(pilot, caller=wide)
    assert list(list_participants(pilot, "pilot", caller=wide)["participant"]) == ["A1"]
    assert set(export_frame(pilot, "pilot", tier="deidentified", caller=wide)["participant"]) <= {
        "A1"
    }
    # A role taken away takes effect at once for the token too.
    revoke_role(pilot, "leeds-res", "researcher", study="pilot", site="leeds", caller=ADMIN)
    with pytest.raises(PermissionDenied):
        list_participants(pilot, "pilot", caller=wide)
    # Every live token sees which studies its user holds a role in (names only).
    export_only = create_token(pilot, "e", scopes=["export"], caller=ADMIN).token
    assert [x["name"] for x in list_studies(pilot, caller=resume_token(pilot, export_only))] == [
        "pilot"
    ]


def test_a_token_never_manages_tokens_or_passwords(store: Store) -> None:
    everything = ["read", "write", "export", "admin"]
    caller = resume_token(store, create_token(store, "t", scopes=everything, caller=ADMIN).token)
    for call in (
        lambda: create_token(store, "more", scopes=["read"], caller=caller),
        lambda: list_tokens(store, caller=caller),
        lambda: revoke_token(store, caller.token or 0, caller=caller),
        lambda: set_password(store, ADMIN.username, "a new password", caller=caller),
    ):
        with pytest.raises(PermissionDenied, match="signed-in session, not a token"):
            call()
    assert analyse_text(store, "Me too.", caller=caller).summary.n_sentences == 1


def test_a_user_revokes_only_their_own_tokens(store: Store) -> None:
    other = make_user(store, "other", "auditor")
    theirs = create_token(store, "theirs", scopes=["read"], caller=other)
    with pytest.raises(NotFound, match="unknown token"):
        revoke_token(store, theirs.id, caller=ADMIN)
    with pytest.raises(NotFound, match="unknown token"):
        revoke_token(store, 10**6, caller=ADMIN)
    assert list(list_tokens(store, caller=other)["state"]) == ["active"]
    assert list_tokens(store, caller=ADMIN).empty


def test_an_admin_lists_and_revokes_any_users_token_audited(store: Store) -> None:
    other = make_user(store, "other", "auditor")
    theirs = create_token(store, "theirs", scopes=["read"], caller=other)
    mine = create_token(store, "mine", scopes=["admin"], caller=ADMIN)
    listed = list_all_tokens(store, caller=ADMIN)
    assert list(zip(listed["user"], listed["name"], listed["state"], strict=True)) == [
        (ADMIN.username, "mine", "active"),
        ("other", "theirs", "active"),
    ]
    assert theirs.token not in listed.to_csv()
    user = resume_token(store, theirs.token)
    assert revoke_any_token(store, theirs.id, caller=ADMIN, reason="left the team") == "other"
    with pytest.raises(PermissionDenied, match="not valid"):
        list_studies(store, caller=user)  # stopped at its next use
    assert list(list_tokens(store, caller=other)["state"]) == ["revoked"]
    log = audit_frame(store, caller=ADMIN)
    revoked = log[log["action"] == "token.revoke"]
    assert len(revoked) == 1 and revoked["entity_id"].iloc[0] == str(theirs.id)
    assert revoked["actor"].iloc[0] == ADMIN.username
    assert revoked["reason"].iloc[0] == "left the team"
    assert json.loads(revoked["new"].iloc[0]) == {"name": "theirs", "user": "other"}
    assert theirs.token not in log.to_csv()
    # Again: nothing changes, nothing more is audited.
    revoke_any_token(store, theirs.id, caller=ADMIN)
    assert len(audit_frame(store, caller=ADMIN)) == len(log)
    # An admin's token with the admin scope may do it too.
    scripted = resume_token(store, mine.token)
    assert set(list_all_tokens(store, caller=scripted)["name"]) == {"mine", "theirs"}
    with pytest.raises(NotFound, match="unknown token 999"):
        revoke_any_token(store, 999, caller=scripted)
    # An id beyond what the id column holds is unknown too (PostgreSQL would fail on it).
    for beyond in (2**31, 2**62, -(2**40)):
        with pytest.raises(NotFound, match=f"unknown token {beyond}"):
            revoke_any_token(store, beyond, caller=scripted)
        with pytest.raises(NotFound, match=f"unknown token {beyond}"):
            revoke_token(store, beyond, caller=ADMIN)


def test_to_anyone_but_an_admin_another_users_token_reads_as_none(store: Store) -> None:
    """A non-admin (with a session or with an admin-scoped token) gets "unknown token N" for
    an existing token as for a missing one (no oracle), and nothing changes; an admin's token
    without the admin scope is told the scope it needs."""
    other = make_user(store, "other", "auditor")
    theirs = create_token(store, "theirs", scopes=["read"], caller=other)
    researcher = make_user(store, "rita", "researcher")
    scripted = resume_token(store, create_token(store, "s", scopes=["admin"], caller=other).token)
    read_only = resume_token(store, create_token(store, "r", scopes=["read"], caller=ADMIN).token)
    before = len(audit_frame(store, caller=ADMIN))
    with pytest.raises(PermissionDenied, match="needs the 'admin' scope"):
        revoke_any_token(store, theirs.id, caller=read_only)
    for caller in (researcher, other, scripted):
        words = set()
        for token_id in (theirs.id, 10**6):
            with pytest.raises(NotFound) as refused:
                revoke_any_token(store, token_id, caller=caller)
            words.add(str(refused.value).replace(str(token_id), "N"))
        assert words == {"unknown token N"}, caller
        with pytest.raises(PermissionDenied):
            list_all_tokens(store, caller=caller)
    assert set(list_tokens(store, caller=other)["state"]) == {"active"}
    assert len(audit_frame(store, caller=ADMIN)) == before


@pytest.mark.parametrize(
    ("name", "scopes", "days", "why"),
    [
        ("t", [], 30, "at least one scope"),
        ("t", ["read", "delete"], 30, "unknown token scope.*'delete'"),
        ("t", ["any"], 30, "unknown token scope"),
        ("  ", ["read"], 30, "needs a name"),
        ("x" * 101, ["read"], 30, "name: 101 characters"),
        ("t", ["read"], 0, "1 to 366 days"),
        ("t", ["read"], MAX_DAYS + 1, "1 to 366 days"),
    ],
)
def test_bad_token_requests_are_refused_and_nothing_is_stored(
    store: Store, name: str, scopes: list[str], days: int, why: str
) -> None:
    with pytest.raises(StudyError, match=why):
        create_token(store, name, scopes=scopes, days=days, caller=ADMIN)
    with store.transaction() as s:
        assert s.scalars(select(ApiToken)).first() is None


def test_every_policy_operation_is_in_one_token_scope_or_none_on_purpose() -> None:
    placed = [op for ops in TOKEN_SCOPES.values() for op in ops]
    assert len(placed) == len(set(placed))  # no operation in two scopes
    never = set(POLICY) - set(placed)
    assert never == {
        "account.password",
        "token.create",
        "token.list",
        "token.revoke",
        "link.open",
        "link.consent",
        "link.answer",
        "link.withdraw",
    }


def test_a_token_row_written_or_widened_with_sql_is_no_token(store: Store) -> None:
    """Someone who can write the database but holds no vault key cannot mint a token (a row
    for a token of their choosing) nor widen one (other scopes, a later expiry, another user):
    the row's MAC, under a key derived from the vault key, no longer verifies."""
    worker = make_user(store, "res", "researcher")
    issued = create_token(store, "t", scopes=["read"], caller=worker)
    assert resume_token(store, issued.token) == Caller("res", token=issued.id)
    forged = TOKEN_PREFIX + "chosen-by-the-attacker"
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO api_token (user_id, name, token_sha256, scopes, created_at, "
                "expires_at) SELECT user_id, 'x', :digest, 'admin export read write', "
                "created_at, expires_at FROM api_token WHERE id = :id"
            ),
            {"digest": token_digest(forged), "id": issued.id},
        )
    with pytest.raises(PermissionDenied, match="not valid"):
        resume_token(store, forged)
    for change in ("scopes = 'admin export read write'", "user_id = 1"):
        with store.engine.begin() as conn:
            conn.execute(text(f"UPDATE api_token SET {change} WHERE id = :id"), {"id": issued.id})
        with pytest.raises(PermissionDenied, match="not valid"):
            resume_token(store, issued.token)


def test_a_revocation_undone_or_a_token_changed_with_sql_is_refused_and_named(
    store: Store,
) -> None:
    """Revocation, scopes, expiry and owner are all bound by the row's MAC (remade when a token
    is revoked): undoing a revocation with SQL, or widening a token, leaves a row that no
    request accepts and that ``audit verify`` names."""
    from peerlens.study import verify_audit

    worker = make_user(store, "res", "researcher")
    revoked = create_token(store, "gone", scopes=["read"], caller=worker)
    live = create_token(store, "live", scopes=["read"], caller=worker)
    in_use = resume_token(store, live.token)  # resumed before the change below
    revoke_token(store, revoked.id, caller=worker)
    assert verify_audit(store, caller=ADMIN).ok
    with store.engine.begin() as conn:
        undo = text("UPDATE api_token SET revoked_at = NULL WHERE id = :i")
        conn.execute(undo, {"i": revoked.id})
    with pytest.raises(PermissionDenied, match="not valid"):
        resume_token(store, revoked.token)
    report = verify_audit(store, caller=ADMIN)
    assert [p for p in report.problems if "api_token" in p] == [
        f"table api_token, id {revoked.id}: changed outside peerlens (its user, scopes, expiry "
        "or revocation differ from what its MAC binds); the token is refused"
    ]
    later = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE api_token SET scopes = 'admin read', expires_at = :e WHERE id = :i"),
            {"e": later, "i": live.id},
        )
    # Refused at the door and, for a caller resumed before the change, in the operation itself.
    with pytest.raises(PermissionDenied, match="not valid"):
        resume_token(store, live.token)
    with pytest.raises(PermissionDenied, match="not valid"):
        list_users(store, caller=in_use)
    named = [p for p in verify_audit(store, caller=ADMIN).problems if "api_token" in p]
    assert [p.split(":")[0] for p in named] == [
        f"table api_token, id {revoked.id}",
        f"table api_token, id {live.id}",
    ]

"""Audit and accounts: verifying the audit chain, reading the audit log, the users with their
roles (by study and site), and every user's access tokens, as on the dashboard's admin pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from peerlens.study import (
    audit_frame,
    create_user,
    grant_role,
    list_all_tokens,
    list_users,
    revoke_any_token,
    revoke_role,
    verify_audit,
)
from peerlens.web.api.deps import ApiCaller, BoundedRoute
from peerlens.web.api.models import (
    AuditReportOut,
    Done,
    RoleIn,
    Row,
    TokenRevokeIn,
    TokenRow,
    UserIn,
    UserRow,
)
from peerlens.web.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, paginate
from peerlens.web.api.rows import records
from peerlens.web.deps import StoreDep

router = APIRouter(route_class=BoundedRoute, tags=["admin"])

Username = Annotated[str, Path(min_length=1, max_length=100, description="A user name.")]
TokenId = Annotated[int, Path(ge=1, le=2**62, description="A token's id (from GET /tokens).")]
_LOG = ["seq", "at_utc", "actor", "action", "entity", "entity_id", "study", "reason"]


@router.get("/audit/verify", response_model=AuditReportOut)
def verify(caller: ApiCaller, store: StoreDep) -> AuditReportOut:
    """Verify the audit hash chain, the data seals and the stored files now."""
    r = verify_audit(store, caller=caller)
    return AuditReportOut(
        ok=r.ok,
        rows=r.rows,
        head_seq=r.head_seq,
        head_hash=r.head_hash,
        problems=list(r.problems),
        erasures=r.erasures,
        data_units=r.data_units,
        data_unchecked=r.data_unchecked,
        files_checked=r.files_checked,
        macs_checked=r.macs_checked,
        macs_unchecked=r.macs_unchecked,
    )


@router.get("/audit/log", response_model=Page[Row])
def log(
    caller: ApiCaller,
    store: StoreDep,
    study: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[Row]:
    """The audit log, newest first (no identifying values, changed answers as keyed hashes)."""
    frame = audit_frame(store, caller=caller, study=study)
    newest = frame.sort_values("seq", ascending=False)
    return paginate(records(newest, _LOG), limit, cursor)


@router.get("/users", response_model=Page[UserRow])
def users(
    caller: ApiCaller, store: StoreDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[UserRow]:
    """Every account with its roles: one row per role (study, site, export tier)."""
    rows = [UserRow.model_validate(r) for r in records(list_users(store, caller=caller))]
    return paginate(rows, limit, cursor)


@router.post("/users", response_model=Done, status_code=201)
def add_user(body: UserIn, caller: ApiCaller, store: StoreDep) -> Done:
    """Create an account (no roles yet)."""
    create_user(store, body.username, body.password, caller=caller, reason=body.reason)
    return Done()


@router.post("/users/{username}/roles", response_model=Done)
def grant(username: Username, body: RoleIn, caller: ApiCaller, store: StoreDep) -> Done:
    """Give a user a role, globally, in a study, or at one site of it."""
    grant_role(
        store,
        username,
        body.role,
        study=body.study,
        site=body.site,
        export_tier=body.export_tier,
        caller=caller,
        reason=body.reason,
    )
    return Done()


@router.post("/users/{username}/roles/revoke", response_model=Done)
def revoke(username: Username, body: RoleIn, caller: ApiCaller, store: StoreDep) -> Done:
    """Take a role (at exactly that scope) from a user; ``count`` says how many were removed."""
    removed = revoke_role(
        store,
        username,
        body.role,
        study=body.study,
        site=body.site,
        caller=caller,
        reason=body.reason,
    )
    return Done(count=removed)


@router.get("/tokens", response_model=Page[TokenRow])
def tokens(
    caller: ApiCaller, store: StoreDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[TokenRow]:
    """Every user's personal access tokens, newest first (never the tokens): a global admin's,
    with a token of the ``admin`` scope."""
    rows = [TokenRow.model_validate(r) for r in records(list_all_tokens(store, caller=caller))]
    return paginate(rows, limit, cursor)


@router.post("/tokens/{token_id}/revoke", response_model=Done)
def revoke_token(
    token_id: TokenId, caller: ApiCaller, store: StoreDep, body: TokenRevokeIn | None = None
) -> Done:
    """Revoke any user's token at once (audited with the reason); to a caller who may not,
    every token id is unknown (404), whether it exists or not."""
    revoke_any_token(store, token_id, caller=caller, reason=body.reason if body else None)
    return Done()

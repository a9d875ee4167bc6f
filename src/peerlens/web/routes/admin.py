"""Audit verification, the audit log, users, roles and sites, and every user's access tokens:
the admins' and auditors' pages.

As everywhere, the caller goes to the study functions, which decide: verifying the audit chain
needs a global admin or auditor, reading the log, managing users and revoking other users'
tokens a global admin. Every change is a CSRF-checked POST, audited by the study function it
calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from peerlens.study import (
    ROLES,
    TIERS,
    Caller,
    NotFound,
    Store,
    audit_frame,
    create_user,
    grant_role,
    list_all_tokens,
    list_users,
    revoke_any_token,
    revoke_role,
    verify_audit,
)
from peerlens.web.deps import StaffCaller, StaffForm, StoreDep
from peerlens.web.pages import render
from peerlens.web.tables import rows_of

router = APIRouter()

#: How many of the newest audit entries the log page shows.
LOG_ROWS = 200
#: The columns of the audit log, users and tokens pages.
LOG = ["seq", "at_utc", "actor", "action", "entity", "entity_id", "study", "reason"]
USERS = ["user", "active", "role", "study", "site", "export_tier"]
TOKENS = ["id", "user", "name", "scopes", "state", "created_at", "expires_at", "last_used_at"]


@router.get("/audit", response_class=HTMLResponse, name="audit")
def audit(request: Request, caller: StaffCaller, store: StoreDep) -> HTMLResponse:
    """Verify the audit chain and the data seals now, and show the result."""
    report = verify_audit(store, caller=caller)
    return render(request, "audit.html", title="Audit verification", report=report)


def _table_page(
    request: Request,
    template: str,
    title: str,
    table: str,
    rows: tuple[pd.DataFrame, list[str], str],
    **more: Any,
) -> HTMLResponse:
    """``template`` showing ``rows`` (a frame, its columns shown, the caption) as the table it
    calls ``table``, with ``more`` of what it shows."""
    context: dict[str, Any] = {"title": title, table: rows_of(*rows), **more}
    return render(request, template, 200, **context)


@router.get("/audit/log", response_class=HTMLResponse, name="audit_log")
def audit_log(request: Request, caller: StaffCaller, store: StoreDep) -> HTMLResponse:
    """The newest entries of the audit log (it holds no identifying values)."""
    frame = audit_frame(store, caller=caller)
    newest = frame.sort_values("seq", ascending=False).head(LOG_ROWS)
    caption = f"The newest {min(LOG_ROWS, len(frame))} of {len(frame)} entries"
    return _table_page(request, "audit_log.html", "Audit log", "log", (newest, LOG, caption))


def _optional(value: object) -> str | None:
    text = str(value or "").strip()
    return text or None


@router.get("/users", response_class=HTMLResponse, name="users")
def users(request: Request, caller: StaffCaller, store: StoreDep) -> HTMLResponse:
    """Every account with its roles, and the forms to add accounts and change roles."""
    rows = (list_users(store, caller=caller), USERS, "Accounts and roles")
    return _table_page(
        request, "users.html", "Users and roles", "users", rows, roles=ROLES, tiers=TIERS
    )


@router.post("/users", name="create_user")
async def add_user(caller: StaffCaller, store: StoreDep, form: StaffForm) -> RedirectResponse:
    """Create an account (no roles yet)."""
    await run_in_threadpool(
        create_user,
        store,
        str(form.get("username", "")).strip(),
        str(form.get("password", "")),
        caller=caller,
        reason=_optional(form.get("reason")),
    )
    return RedirectResponse("/users", status_code=303)


async def _change_role(
    change: Callable[..., object], caller: Caller, store: Store, form: FormData, **more: object
) -> RedirectResponse:
    """Give or take the role the form names (``change``: :func:`grant_role` or
    :func:`revoke_role`, with ``more`` of its arguments), then the users page again."""
    await run_in_threadpool(
        lambda: change(
            store,
            str(form.get("username", "")).strip(),
            str(form.get("role", "")),
            study=_optional(form.get("study")),
            site=_optional(form.get("site")),
            caller=caller,
            reason=_optional(form.get("reason")),
            **more,
        )
    )
    return RedirectResponse("/users", status_code=303)


@router.post("/users/grant", name="grant_role")
async def grant(caller: StaffCaller, store: StoreDep, form: StaffForm) -> RedirectResponse:
    """Give a user a role, globally, in a study, or at one site of it."""
    tier = _optional(form.get("export_tier"))
    return await _change_role(grant_role, caller, store, form, export_tier=tier)


@router.post("/users/revoke", name="revoke_role")
async def revoke(caller: StaffCaller, store: StoreDep, form: StaffForm) -> RedirectResponse:
    """Take a role (at exactly that scope) from a user."""
    return await _change_role(revoke_role, caller, store, form)


@router.get("/users/tokens", response_class=HTMLResponse, name="all_tokens")
def all_tokens(request: Request, caller: StaffCaller, store: StoreDep) -> HTMLResponse:
    """Every user's access tokens (never the tokens), and the form to revoke one."""
    caption = "Access tokens of every user (never the tokens themselves)"
    rows = (list_all_tokens(store, caller=caller), TOKENS, caption)
    return _table_page(request, "all_tokens.html", "Every user's access tokens", "tokens", rows)


@router.post("/users/tokens/revoke", name="revoke_any_token")
async def revoke_users_token(
    caller: StaffCaller, store: StoreDep, form: StaffForm
) -> RedirectResponse:
    """Revoke any user's token (a global admin's; to anyone else every id is unknown)."""
    raw = str(form.get("token_id", "")).strip()
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"unknown token {raw[:20]!r}")
    await run_in_threadpool(
        lambda: revoke_any_token(
            store, int(raw), caller=caller, reason=_optional(form.get("reason"))
        )
    )
    return RedirectResponse("/users/tokens", status_code=303)

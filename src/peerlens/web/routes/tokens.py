"""A staff member's own personal access tokens for the JSON API: the list, making one (shown
once on the page that answers the form) and revoking one.

As everywhere, the signed-in caller goes to :mod:`peerlens.study.tokens`, which acts on the
caller's own tokens only; every change is a CSRF-checked POST, audited by the study function.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from peerlens.study import (
    Caller,
    IssuedToken,
    NotFound,
    Store,
    create_token,
    list_tokens,
    revoke_token,
)
from peerlens.study.tokens import DEFAULT_DAYS, MAX_DAYS
from peerlens.web.deps import StaffCaller, StaffForm, StoreDep
from peerlens.web.pages import render
from peerlens.web.tables import rows_of

router = APIRouter()

#: The scopes offered, with what each allows (docs/web.md has the full list).
SCOPES = (
    ("read", "read study data, results, recordings and stories"),
    ("write", "enrol, import, derive and save stories"),
    ("export", "export data and read answers and identity fields"),
    ("admin", "manage users and roles, studies, erasure, the audit log"),
)
_COLUMNS = ["id", "name", "scopes", "state", "created_at", "expires_at", "last_used_at"]


def _page(
    request: Request, caller: Caller, store: Store, issued: IssuedToken | None = None
) -> HTMLResponse:
    frame = list_tokens(store, caller=caller)
    return render(
        request,
        "tokens.html",
        title="Access tokens",
        tokens=rows_of(frame, _COLUMNS, "Your tokens (never the tokens themselves)"),
        scopes=SCOPES,
        issued=issued,
        max_days=MAX_DAYS,
        default_days=DEFAULT_DAYS,
    )


@router.get("/tokens", response_class=HTMLResponse, name="tokens")
def tokens(request: Request, caller: StaffCaller, store: StoreDep) -> HTMLResponse:
    """The caller's tokens and the forms to make or revoke one."""
    return _page(request, caller, store)


@router.post("/tokens", response_class=HTMLResponse, name="create_token")
async def make(
    request: Request, caller: StaffCaller, store: StoreDep, form: StaffForm
) -> HTMLResponse:
    """Make a token and show it, this once (the page is never cached)."""
    days = str(form.get("days", "")).strip()
    issued = await run_in_threadpool(
        lambda: create_token(
            store,
            str(form.get("name", "")),
            scopes=[str(x) for x in form.getlist("scope")],
            days=int(days) if days.isdigit() and len(days) < 6 else 0,
            caller=caller,
        )
    )
    return await run_in_threadpool(_page, request, caller, store, issued)


@router.post("/tokens/revoke", name="revoke_token")
async def revoke(caller: StaffCaller, store: StoreDep, form: StaffForm) -> RedirectResponse:
    """Revoke one of the caller's tokens."""
    raw = str(form.get("token_id", "")).strip()
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"unknown token {raw[:20]!r}")
    await run_in_threadpool(revoke_token, store, int(raw), caller=caller)
    return RedirectResponse("/tokens", status_code=303)

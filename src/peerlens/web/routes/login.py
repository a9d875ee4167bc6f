"""Staff sign-in and sign-out.

The password is checked only by :func:`peerlens.study.sign_in` (argon2id, rate limit and
lockout, audited); the browser then holds a new random session id in an ``HttpOnly``,
``SameSite=Strict`` cookie (``Secure`` behind TLS). The sign-in form's CSRF token is bound to a
random cookie set when the form is shown (there is no session yet); sign-out's to the session.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from peerlens.study import PermissionDenied, StaffSession, end_session, sign_in
from peerlens.web.deps import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Settings,
    StaffForm,
    StoreDep,
    read_form,
)
from peerlens.web.pages import render
from peerlens.web.security import csrf_token, csrf_valid
from peerlens.web.settings import WebSettings
from peerlens.web.urls import local_path

router = APIRouter()


def _set_cookie(response: Response, name: str, value: str, settings: WebSettings) -> None:
    response.set_cookie(
        name, value, path="/", httponly=True, samesite="strict", secure=settings.hsts
    )


def _form(
    request: Request,
    settings: WebSettings,
    nonce: str,
    target: str,
    *,
    error: str | None = None,
    username: str = "",
) -> HTMLResponse:
    response = render(
        request,
        "login.html",
        title="Sign in",
        csrf=csrf_token(settings.secret, nonce),
        next=target,
        error=error,
        username=username,
    )
    _set_cookie(response, LOGIN_COOKIE, nonce, settings)
    return response


@router.get("/login", response_class=HTMLResponse, name="login")
def login_form(request: Request, settings: Settings, next: str | None = None) -> HTMLResponse:
    """The sign-in form (``next``: the page to go to afterwards, a path on this site)."""
    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    return _form(request, settings, nonce, local_path(next))


@router.post("/login", name="sign_in")
async def login(request: Request, store: StoreDep, settings: Settings) -> Response:
    """Sign in: on to ``next`` with a new session, or the form again with one message for
    every failure (unknown name, wrong password, deactivated, locked)."""
    form = await read_form(request)
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not csrf_valid(settings.secret, nonce, form):
        raise HTTPException(403, "This form has expired or did not come from this site.")
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    target = local_path(str(form.get("next", "")))
    address = request.client.host if request.client is not None else "unknown"
    try:
        started: StaffSession = await run_in_threadpool(
            sign_in,
            store,
            username,
            password,
            address=address,
            replaces=request.cookies.get(SESSION_COOKIE),
            limits=settings.sign_in,
        )
    except PermissionDenied as exc:
        # A new form nonce too: nothing from before a failed attempt is reused.
        again = _form(
            request, settings, secrets.token_urlsafe(32), target, error=str(exc), username=username
        )
        again.delete_cookie(SESSION_COOKIE, path="/")
        return again
    response = RedirectResponse(target, status_code=303)
    _set_cookie(response, SESSION_COOKIE, started.token, settings)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/logout", name="sign_out")
async def logout(request: Request, store: StoreDep, form: StaffForm) -> Response:
    """Sign out: the session is deleted on the server and the cookie cleared."""
    await run_in_threadpool(end_session, store, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response

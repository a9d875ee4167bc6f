"""Typed dependencies of the routes: the store, the settings, the participant's link as the
caller, and a submitted form whose CSRF token was checked."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from starlette.datastructures import FormData

from peerlens.study import Caller, LinkHolder, Store
from peerlens.web.security import csrf_token, csrf_valid
from peerlens.web.settings import WebSettings
from peerlens.web.uploads import MAX_UPLOAD_BYTES

__all__ = [
    "CheckedForm",
    "Holder",
    "Settings",
    "StaffCaller",
    "StaffForm",
    "StoreDep",
    "staff_csrf",
]


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _settings(request: Request) -> WebSettings:
    settings: WebSettings = request.app.state.settings
    return settings


def _holder(code: str, token: str) -> LinkHolder:
    """The caller of a participant route: whoever presents this link (checked by the study
    functions, never here)."""
    return LinkHolder(code, token)


StoreDep = Annotated[Store, Depends(_store)]
Settings = Annotated[WebSettings, Depends(_settings)]
Holder = Annotated[LinkHolder, Depends(_holder)]


async def _checked_form(request: Request, holder: Holder, settings: Settings) -> FormData:
    """The submitted form, refused with 403 unless it carries this link's CSRF token."""
    form = await request.form()
    if not csrf_valid(settings.secret, holder.token, form):
        raise HTTPException(403, "This form has expired or did not come from this site.")
    return form


CheckedForm = Annotated[FormData, Depends(_checked_form)]


# -- staff (provisional until staff login lands: the signed-in account and its forms' CSRF)


def _staff_caller(request: Request) -> Caller:
    """The signed-in staff account (provisional: none until staff login is merged; tests
    override this dependency)."""
    raise HTTPException(401, "Please sign in first.")


StaffCaller = Annotated[Caller, Depends(_staff_caller)]


def staff_csrf(settings: WebSettings, caller: Caller) -> str:
    """The CSRF token of the forms shown to ``caller`` (provisional: keyed to the account)."""
    return csrf_token(settings.secret, _staff_key(caller))


def _staff_key(caller: Caller) -> str:
    return f"staff\x00{caller.username}"


#: The largest staff form accepted (an uploaded transcript with the form's fields).
MAX_FORM_BYTES = MAX_UPLOAD_BYTES + 64 * 1024


async def _staff_form(request: Request, caller: StaffCaller, settings: Settings) -> FormData:
    """The submitted staff form, refused with 403 unless it carries the caller's CSRF token.

    A body larger than :data:`MAX_FORM_BYTES` (or of unstated length) is refused before it is
    read, so that an oversized upload is never spooled to disk."""
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        raise HTTPException(411, "The form was sent without its length; please send it again.")
    if int(length) > MAX_FORM_BYTES:
        raise HTTPException(
            413,
            f"The form is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB: nothing was saved.",
        )
    form = await request.form(max_files=1, max_fields=20)
    if not csrf_valid(settings.secret, _staff_key(caller), form):
        raise HTTPException(403, "This form has expired or did not come from this site.")
    return form


StaffForm = Annotated[FormData, Depends(_staff_form)]

"""Typed dependencies of the routes: the store, the settings, the caller (a participant's link,
or a signed-in staff member), and a submitted form whose CSRF token was checked.

A staff route takes :data:`StaffCaller` (the :class:`~peerlens.study.Caller` of the session's
user; an anonymous browser is sent to ``/login?next=...`` instead) and, for a POST,
:data:`StaffForm` (refused with 403 unless it carries the session's CSRF token). It passes the
caller to the study functions, which decide what it may do; no route checks rights itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from starlette.datastructures import FormData

from peerlens.study import Caller, LinkHolder, PermissionDenied, Store, resume_session
from peerlens.web.security import csrf_token, csrf_valid
from peerlens.web.settings import WebSettings
from peerlens.web.uploads import MAX_UPLOAD_BYTES

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "CheckedForm",
    "Holder",
    "LoginRequired",
    "Settings",
    "Staff",
    "StaffCaller",
    "StaffForm",
    "StaffMember",
    "StaffUpload",
    "StoreDep",
    "read_form",
    "refuse_oversized",
]

#: The cookie holding a staff member's session id.
SESSION_COOKIE = "peerlens_session"
#: The cookie the sign-in form's CSRF token is bound to (set when the form is shown).
LOGIN_COOKIE = "peerlens_login"


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


#: The largest form without a file accepted (sign-in, a participant's page, a staff form): a
#: story of :data:`peerlens.study.stories.MAX_STORY_CHARS` characters fits, URL-encoded.
MAX_FORM_BYTES = 2 * 1024 * 1024


def refuse_oversized(request: Request, max_bytes: int) -> None:
    """Refuse (413) a request whose declared body is over ``max_bytes``, and (411) one that
    sends a body without declaring its length, before any of it is read.

    Every body is read before anything else is checked (a form's CSRF token is in it; FastAPI
    reads a JSON body before the caller's token): without this, anyone could make the server
    hold a body of any size, in memory or in temporary files, before being refused. A server
    never reads more than a declared ``Content-Length``."""
    length = request.headers.get("content-length")
    if length is None:
        if "transfer-encoding" in request.headers:
            raise HTTPException(411, "The request was sent without its length; send it again.")
        return
    if not length.isdigit() or int(length) > max_bytes:
        raise HTTPException(
            413, f"The request is larger than {max_bytes // 1024} kB: nothing was saved."
        )


async def read_form(request: Request, max_bytes: int = MAX_FORM_BYTES) -> FormData:
    """The submitted form of a page without a file input, refused (413, 411; 400 for a file
    part) before it is read when it is larger than ``max_bytes`` (see
    :func:`refuse_oversized`)."""
    refuse_oversized(request, max_bytes)
    return await request.form(max_files=0)


StoreDep = Annotated[Store, Depends(_store)]
Settings = Annotated[WebSettings, Depends(_settings)]
Holder = Annotated[LinkHolder, Depends(_holder)]


async def _checked_form(request: Request, holder: Holder, settings: Settings) -> FormData:
    """The submitted form, refused with 403 unless it carries this link's CSRF token."""
    form = await read_form(request)
    if not csrf_valid(settings.secret, holder.token, form):
        raise HTTPException(403, "This form has expired or did not come from this site.")
    return form


CheckedForm = Annotated[FormData, Depends(_checked_form)]


class LoginRequired(Exception):
    """Raised by :data:`StaffCaller` without a live session; the app answers with a redirect to
    the sign-in page, which comes back to ``next_path`` afterwards."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass(frozen=True)
class Staff:
    """The signed-in staff member of a request: their caller and the CSRF token of their
    session's forms (templates find it as ``staff.csrf``)."""

    caller: Caller
    csrf: str = field(repr=False)


def _staff(request: Request, store: StoreDep, settings: Settings) -> Staff:
    token = request.cookies.get(SESSION_COOKIE, "")
    caller: Caller | None = None
    if token:
        try:
            caller = resume_session(store, token)
        except PermissionDenied:
            caller = None
    if caller is None:
        query = request.url.query
        raise LoginRequired(request.url.path + (f"?{query}" if query else ""))
    staff = Staff(caller, csrf_token(settings.secret, token))
    request.state.staff = staff  # for the pages' navigation and sign-out form
    return staff


StaffMember = Annotated[Staff, Depends(_staff)]


def _staff_caller(staff: StaffMember) -> Caller:
    return staff.caller


StaffCaller = Annotated[Caller, Depends(_staff_caller)]


async def _staff_form(request: Request, staff: StaffMember, settings: Settings) -> FormData:
    """The submitted form of a signed-in staff member, refused with 403 unless it carries the
    CSRF token of their session."""
    form = await read_form(request)
    _refuse_forged(request, settings, form)
    return form


StaffForm = Annotated[FormData, Depends(_staff_form)]

#: The largest form with an uploaded file accepted (the file and the form's other fields).
MAX_UPLOAD_FORM_BYTES = MAX_UPLOAD_BYTES + 64 * 1024


async def _staff_upload(request: Request, staff: StaffMember, settings: Settings) -> FormData:
    """As :data:`StaffForm`, for a form with one uploaded file: a body larger than
    :data:`MAX_UPLOAD_FORM_BYTES` (or of unstated length) is refused (413, 411) before it is
    read, so an oversized upload is never spooled to disk."""
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        raise HTTPException(411, "The form was sent without its length; please send it again.")
    if int(length) > MAX_UPLOAD_FORM_BYTES:
        mb = MAX_UPLOAD_BYTES // (1024 * 1024)
        raise HTTPException(413, f"The form is larger than {mb} MB: nothing was saved.")
    form = await request.form(max_files=1, max_fields=20)
    _refuse_forged(request, settings, form)
    return form


StaffUpload = Annotated[FormData, Depends(_staff_upload)]


def _refuse_forged(request: Request, settings: WebSettings, form: FormData) -> None:
    """403 unless ``form`` carries the CSRF token of the request's staff session."""
    if not csrf_valid(settings.secret, request.cookies.get(SESSION_COOKIE, ""), form):
        raise HTTPException(403, "This form has expired or did not come from this site.")

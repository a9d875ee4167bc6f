"""Typed dependencies of the routes: the store, the settings, the participant's link as the
caller, and a submitted form whose CSRF token was checked."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from starlette.datastructures import FormData

from peerlens.study import LinkHolder, Store
from peerlens.web.security import csrf_valid
from peerlens.web.settings import WebSettings

__all__ = ["CheckedForm", "Holder", "Settings", "StoreDep"]


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

"""The JSON API of peerlens, served under ``/api/v1``: what the dashboard can do, for scripts.

An app of its own (:func:`create_api`), mounted by :func:`peerlens.web.create_app`, with its own
OpenAPI schema (``/api/v1/openapi.json``, only to a valid token or a signed-in staff session,
and not at all when the settings' ``api_schema`` is off) and error object (:mod:`.errors`).
Callers present a personal access token (``Authorization: Bearer plk_...``; no cookies, so no
CSRF); every endpoint passes the token's caller to the :mod:`peerlens.study` functions, which
allow what both the user's roles and the token's scopes allow. Lists are paginated
(:mod:`.pagination`). See ``docs/web.md``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from peerlens import __version__
from peerlens.study import Store
from peerlens.web.api import admin, recording_upload, results, stories, studies
from peerlens.web.api.deps import SchemaReader
from peerlens.web.api.errors import ERROR_RESPONSES, install_error_handlers
from peerlens.web.settings import WebSettings

__all__ = ["PREFIX", "create_api"]

#: Where the API is mounted.
PREFIX = "/api/v1"


def create_api(store: Store, settings: WebSettings) -> FastAPI:
    """The API app over ``store`` (mounted at :data:`PREFIX` by the web app)."""
    api = FastAPI(
        title="peerlens API",
        version=__version__,
        description=(
            "The peerlens study API. Authenticate with a personal access token "
            "(Authorization: Bearer plk_...). Lists are paginated with limit and cursor; "
            'errors are {"error": {"code", "message", "where"}}.'
        ),
        docs_url=None,  # the documentation pages load scripts from a CDN: the schema only
        redoc_url=None,
        openapi_url=None,  # served below, to signed-in callers only
        servers=[{"url": PREFIX}],
        responses=ERROR_RESPONSES,
    )
    api.state.store = store
    api.state.settings = settings
    for module in (studies, results, recording_upload, stories, admin):
        api.include_router(module.router)
    if settings.api_schema:

        @api.get("/openapi.json", include_in_schema=False)
        def openapi(reader: SchemaReader) -> JSONResponse:
            """The API's OpenAPI schema (names every endpoint and the version: not public)."""
            return JSONResponse(api.openapi())

    install_error_handlers(api)
    return api

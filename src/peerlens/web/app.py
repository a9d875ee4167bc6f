"""The app factory: routes, static files, security headers and error pages."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from peerlens import PeerlensError
from peerlens.narrative import ModelArtifactError
from peerlens.study import NotFound, PermissionDenied, Store, StudyError, TamperedError
from peerlens.web.api import PREFIX, create_api
from peerlens.web.deps import LoginRequired
from peerlens.web.pages import environment, render
from peerlens.web.routes import admin, home, imports, login, participant, studies, studio, tokens
from peerlens.web.security import SecurityHeaders
from peerlens.web.settings import WebSettings
from peerlens.web.upload_area import sweep_stale, upload_root

__all__ = ["create_app"]

_log = logging.getLogger("peerlens.web")

STATIC = Path(__file__).parent / "static"


def create_app(store: Store, settings: WebSettings | None = None) -> FastAPI:
    """The web app over ``store``.

    Parameters
    ----------
    store
        An open study database (the app does not close it).
    settings
        How it is served (default :meth:`WebSettings.from_env`).

    Examples
    --------
    Tests drive it with FastAPI's ``TestClient(create_app(store))``.
    """
    settings = settings or WebSettings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The threads sync routes and run_in_threadpool share (see WebSettings.threads).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        # Folders of uploads a crash or a restart cut short (see peerlens.web.upload_area).
        await run_in_threadpool(sweep_stale, upload_root(settings, store), settings.upload_max_age)
        yield

    app = FastAPI(
        title="peerlens",
        docs_url=None,  # the API documentation pages load scripts from a CDN; none for now
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.settings = settings
    app.state.templates = environment()
    app.include_router(home.router)
    app.include_router(participant.router)
    app.include_router(login.router)
    app.include_router(studies.router)
    app.include_router(imports.router)
    app.include_router(admin.router)
    app.include_router(studio.router)
    app.include_router(tokens.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount(PREFIX, create_api(store, app.state.settings), name="api")
    _error_pages(app)
    app.add_middleware(SecurityHeaders, hsts=app.state.settings.hsts)
    return app


def _error_pages(app: FastAPI) -> None:
    """Plain pages for every error (never a traceback, never an oracle)."""

    @app.exception_handler(LoginRequired)
    async def sign_in_first(request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/login?{urlencode({'next': exc.next_path})}", status_code=303)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> HTMLResponse:
        if getattr(request.state, "staff", None) is not None:
            # The same words whether it does not exist or the caller may not see it.
            return render(request, "message.html", 404, title="Not found", message=str(exc))
        return render(request, "refused.html", 404)

    @app.exception_handler(PermissionDenied)
    async def refused(request: Request, exc: PermissionDenied) -> HTMLResponse:
        if getattr(request.state, "staff", None) is not None:
            # The study API's refusal, written not to reveal other sites' participants.
            return render(request, "message.html", 403, title="Not allowed", message=str(exc))
        # One page for every bad link: unknown, expired, revoked or another participant's.
        return render(request, "refused.html", 404)

    @app.exception_handler(TamperedError)
    async def tampered(request: Request, exc: TamperedError) -> HTMLResponse:
        # What was tampered with is for the study team (audit verify), not the participant.
        return render(
            request,
            "message.html",
            500,
            title="Something went wrong",
            message="Nothing was saved. Please contact the study team.",
        )

    @app.exception_handler(StudyError)
    async def not_possible(request: Request, exc: StudyError) -> HTMLResponse:
        return render(request, "message.html", 409, title="Not possible", message=str(exc))

    @app.exception_handler(ModelArtifactError)
    async def model_missing(request: Request, exc: ModelArtifactError) -> HTMLResponse:
        # a server installation problem (model or encoder weights missing or not the pinned
        # ones): the details, with paths and the fix, are for the server's log
        _log.error("story analysis unavailable: %s", exc)
        return render(
            request,
            "message.html",
            503,
            title="Story analysis is not available",
            message="Nothing was saved. The story analysis is not installed correctly on this "
            "server; please tell the study team.",
        )

    @app.exception_handler(PeerlensError)
    async def bad_input(request: Request, exc: PeerlensError) -> HTMLResponse:
        return render(request, "message.html", 400, title="Not possible", message=str(exc))

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> HTMLResponse:
        return render(request, "refused.html", 404)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> HTMLResponse:
        if exc.status_code == 404:
            return render(request, "refused.html", 404)
        titles = {403: "Form refused", 405: "Not possible"}
        return render(
            request,
            "message.html",
            exc.status_code,
            title=titles.get(exc.status_code, "Not possible"),
            message=str(exc.detail),
        )

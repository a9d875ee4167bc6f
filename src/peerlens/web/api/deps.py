"""Typed dependencies of the API: the caller of a request (a personal access token, never a
cookie) and the study it names (404 alike for a study that does not exist and one the caller
has no role in).

The token is the credential: :func:`~peerlens.study.resume_token` finds its user and returns a
:class:`~peerlens.study.Caller` naming the token, and every study function then allows only what
both the user's current roles and the token's scopes allow. No endpoint checks rights itself.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from peerlens.study import Caller, PermissionDenied, list_studies, resume_session, resume_token
from peerlens.web.api.errors import ApiError
from peerlens.web.deps import SESSION_COOKIE, StoreDep, refuse_oversized

__all__ = ["MAX_BODY_BYTES", "ApiCaller", "BoundedRoute", "SchemaReader", "StudyName"]

#: The largest JSON body an endpoint accepts (a batch of 10,000 response rows fits).
MAX_BODY_BYTES = 32 * 1024 * 1024


class BoundedRoute(APIRoute):
    """An endpoint whose JSON body is refused (413, 411) from its declared length when over
    :data:`MAX_BODY_BYTES`: FastAPI reads a body whole, into memory, before it resolves the
    caller's token, so an unbounded one would let anyone make the server hold any amount."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The endpoint's handler, behind the length check when it takes a body."""
        handler = super().get_route_handler()
        if self.body_field is None:  # no body read (GET, or an endpoint streaming its own)
            return handler

        async def bounded(request: Request) -> Response:
            refuse_oversized(request, MAX_BODY_BYTES)
            return await handler(request)

        return bounded


_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="plk_...",
    description="A personal access token (peerlens user token create, or the Tokens page).",
)


def _api_caller(
    request: Request,
    store: StoreDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer":
        if request.cookies.get(SESSION_COOKIE):
            # A browser's session cookie would make every endpoint a CSRF target: refused.
            message = "the API takes no sign-in cookie: send Authorization: Bearer <token>"
        else:
            message = "send a personal access token: Authorization: Bearer <token>"
        raise ApiError(401, "unauthenticated", message)
    try:
        return resume_token(store, credentials.credentials)
    except PermissionDenied as exc:
        raise ApiError(401, "unauthenticated", str(exc)) from exc


ApiCaller = Annotated[Caller, Depends(_api_caller)]


def _schema_reader(
    request: Request,
    store: StoreDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Whoever may read the API's schema: a valid access token's caller, or a signed-in staff
    member (the schema is read, never changed: a session cookie carries no CSRF risk here)."""
    if credentials is not None and credentials.scheme.lower() == "bearer":
        return _api_caller(request, store, credentials)
    session = request.cookies.get(SESSION_COOKIE, "")
    if session:
        try:
            return resume_session(store, session)
        except PermissionDenied:
            pass
    raise ApiError(
        401,
        "unauthenticated",
        "the API schema is for signed-in staff: send Authorization: Bearer <token>",
    )


SchemaReader = Annotated[Caller, Depends(_schema_reader)]


def _study_name(
    study: Annotated[str, Path(min_length=1, max_length=100, description="The study's name.")],
    caller: ApiCaller,
    store: StoreDep,
) -> str:
    """``study`` when the caller holds a role in it; else the same 404 as for no such study,
    so that the API is no oracle for the studies of others (the study API decides which
    studies the caller sees)."""
    try:
        visible = {x["name"] for x in list_studies(store, caller=caller)}
    except PermissionDenied:
        visible = set()
    if study not in visible:
        raise ApiError(
            404,
            "not_found",
            f"no study called {study!r} among yours",
            {"study": study},
        )
    return study


StudyName = Annotated[str, Depends(_study_name)]

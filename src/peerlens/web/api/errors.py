"""The API's one error object, and how study errors map onto HTTP statuses.

Every refusal or failure of the API answers with the same JSON shape::

    {"error": {"code": "forbidden", "message": "...", "where": {...}}}

``code`` is stable (clients branch on it), ``message`` says what was wrong in words, and
``where`` names the parameter, row or column at fault when there is one. Never a traceback: an
unexpected failure answers ``500`` with code ``internal`` and no detail (the log has it).

=====================================  ======  ===================
study error                            status  code
- 401 ``unauthenticated``: no token, a malformed, unknown, expired or revoked one, or a cookie
  instead of a token;
- 403 ``forbidden``: :class:`~peerlens.study.PermissionDenied` (the user's roles or the token's
  scopes do not allow it);
- 404 ``not_found``: no such endpoint, a study the caller holds no role in, or
  :class:`~peerlens.study.NotFound` (another site's participant, recording or story, another
  user's token: the same answer as for one that does not exist);
- 422 ``invalid_request``: a parameter or body of the wrong form (``where.errors``: each
  location and message; the values sent are not echoed);
- 422 ``rejected``: :class:`~peerlens.study.ImportRejected` (``where.problems``: 1-based row,
  column and reason of each problem; nothing was stored);
- 409 ``consent_needed``, ``tampered``, ``not_possible``: :class:`~peerlens.study.ConsentNeeded`,
  :class:`~peerlens.study.TamperedError`, any other :class:`~peerlens.study.StudyError` (the
  request is well formed but the study's state does not allow it);
- 503 ``unavailable``: :class:`~peerlens.narrative.ModelArtifactError` (the story model or the
  encoder weights are missing or not the pinned ones on the server; the details go to the log);
- 400 ``bad_input``: any other :class:`~peerlens.PeerlensError` (e.g. a text that cannot be
  analysed).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from peerlens import PeerlensError
from peerlens.narrative import ModelArtifactError
from peerlens.study import (
    ConsentNeeded,
    ImportRejected,
    NotFound,
    PermissionDenied,
    StudyError,
    TamperedError,
    describe_error,
)

__all__ = ["ERROR_RESPONSES", "ApiError", "ErrorBody", "ErrorDetail", "install_error_handlers"]

_log = logging.getLogger("peerlens.web.api")


class ErrorDetail(BaseModel):
    """What went wrong: a stable code, a message in words, and where (parameter, row, ...)."""

    code: str = Field(description="Stable machine-readable code, e.g. 'forbidden'.")
    message: str = Field(description="What was wrong, in words.")
    where: dict[str, Any] = Field(
        default_factory=dict, description="The parameter, row or column at fault, if any."
    )


class ErrorBody(BaseModel):
    """The body of every error response of the API."""

    error: ErrorDetail


#: The error statuses every operation documents (each with :class:`ErrorBody`).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "Bad input"),
        (401, "No valid access token"),
        (403, "Not allowed"),
        (404, "Not found (or not visible to the caller)"),
        (409, "Not possible in the current state"),
        (422, "A parameter or body of the wrong form, or a rejected import"),
    )
}


class ApiError(Exception):
    """An error the API answers with :class:`ErrorBody` at ``status``."""

    def __init__(
        self, status: int, code: str, message: str, where: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.where = where or {}


def _answer(
    status: int,
    code: str,
    message: str,
    where: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, where=where or {}))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _unauthenticated_headers(status: int) -> dict[str, str] | None:
    return {"WWW-Authenticate": "Bearer"} if status == 401 else None


def as_response(exc: Exception) -> JSONResponse:
    """The error response for ``exc`` (see the table in the module docstring)."""
    if isinstance(exc, ApiError):
        return _answer(
            exc.status, exc.code, exc.message, exc.where, _unauthenticated_headers(exc.status)
        )
    if isinstance(exc, NotFound):
        # What the caller may not see reads as what does not exist, as on the dashboard.
        return _answer(404, "not_found", str(exc))
    if isinstance(exc, PermissionDenied):
        return _answer(403, "forbidden", str(exc))
    if isinstance(exc, ImportRejected):
        problems = [
            {"row": p.row, "column": p.column, "reason": p.reason} for p in exc.problems[:200]
        ]
        return _answer(
            422,
            "rejected",
            f"{len(exc.problems)} problem(s), nothing was stored",
            {"problems": problems},
        )
    if isinstance(exc, ConsentNeeded):
        return _answer(409, "consent_needed", str(exc))
    if isinstance(exc, TamperedError):
        # What was tampered with is for ``audit verify``; the client learns that nothing changed.
        return _answer(409, "tampered", "stored data were changed outside peerlens: nothing done")
    if isinstance(exc, StudyError):
        return _answer(409, "not_possible", str(exc))
    if isinstance(exc, ModelArtifactError):
        # the server's installation, not the request: details (paths, the fix) go to the log
        _log.error("story analysis unavailable: %s", exc)
        return _answer(
            503, "unavailable", "story analysis is not installed correctly on this server"
        )
    if isinstance(exc, PeerlensError):
        return _answer(400, "bad_input", str(exc))
    return _answer(500, "internal", "something went wrong; nothing was saved from this request")


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with :class:`ErrorBody`."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return as_response(exc)

    @app.exception_handler(PeerlensError)
    async def study_error(request: Request, exc: PeerlensError) -> JSONResponse:
        return as_response(exc)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The offending values are not echoed back (they may be answers or names).
        errors = [
            {"location": ".".join(str(x) for x in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"location": "request", "message": "malformed"}
        return _answer(
            422,
            "invalid_request",
            f"{first['location']}: {first['message']}",
            {"errors": errors},
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        codes = {
            404: "not_found",
            405: "method_not_allowed",
            401: "unauthenticated",
            411: "length_required",
            413: "too_large",
        }
        message = "no such endpoint" if exc.status_code == 404 else str(exc.detail)
        return _answer(
            exc.status_code,
            codes.get(exc.status_code, "bad_request"),
            message,
            headers=_unauthenticated_headers(exc.status_code),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Never the error's message or traceback: a database error quotes the failing row.
        _log.error(
            "API request %s %s failed: %s", request.method, request.url.path, describe_error(exc)
        )
        return as_response(exc)

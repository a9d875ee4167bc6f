"""Security headers on every response, CSRF tokens for every form, and a plain page instead of
a traceback when something unexpected fails.

The headers: a Content-Security-Policy allowing nothing but this origin's own files (no inline
script or style, no framing, forms posting only here), ``nosniff``, ``Referrer-Policy:
no-referrer`` (a personal link's token is in its URL and must never leave in a Referer header),
``Cache-Control: no-store`` on every page (pages show a participant's answers), and HSTS when
the app is served behind TLS.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from peerlens.study import describe_error

__all__ = ["CSP", "SecurityHeaders", "csrf_token", "csrf_valid", "security_headers"]

CSP = (
    "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)
_log = logging.getLogger("peerlens.web")
_FAILED = (
    b'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Something went wrong'
    b'</title><link rel="stylesheet" href="/static/peerlens.css"></head><body><main>'
    b"<h1>Something went wrong</h1><p>Nothing was saved from this request. Please try again "
    b"later, or contact the study team.</p></main></body></html>"
)


def security_headers(path: str, *, hsts: bool) -> dict[str, str]:
    """The headers every response to ``path`` carries.

    Examples
    --------
    >>> security_headers("/p/A1/x", hsts=False)["Cache-Control"]
    'no-store'
    """
    headers = {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    }
    if not path.startswith("/static/"):
        headers["Cache-Control"] = "no-store"
    if hsts:
        headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
    return headers


class SecurityHeaders:
    """ASGI middleware: :func:`security_headers` on every response, and a plain 500 page (with
    the same headers, never a traceback) when the app fails before it answered."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in security_headers(scope.get("path", ""), hsts=self.hsts).items()
        ]
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {k for k, _ in extra}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + extra}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            # Logged without the request's path (a personal link's token is in it) and without
            # the error's message or traceback (a database error quotes the failing row).
            _log.error(
                "request %s failed (%s): %s",
                secrets.token_hex(8),
                scope.get("method", "?"),
                describe_error(exc),
            )
            if started:
                return  # too late for the error page; the client sees the response cut short
            await send_with_headers(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"text/html; charset=utf-8")],
                }
            )
            await send_with_headers({"type": "http.response.body", "body": _FAILED})


def csrf_token(secret: bytes, link_token: str) -> str:
    """The CSRF token of the forms opened through one personal link (an HMAC of the link's
    token, so it is bound to that link and unknown to anyone without the app's secret)."""
    return hmac.new(
        secret, b"csrf\x00" + link_token.encode("utf-8", "replace"), hashlib.sha256
    ).hexdigest()


def csrf_valid(secret: bytes, link_token: str, form: Mapping[str, object]) -> bool:
    """True when ``form`` carries the CSRF token of ``link_token`` (compared in constant time)."""
    given = form.get("csrf")
    return isinstance(given, str) and hmac.compare_digest(given, csrf_token(secret, link_token))

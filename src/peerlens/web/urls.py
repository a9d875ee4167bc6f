"""The addresses of the web app's pages that are handed out (a participant's personal link), and
the one check of where a page may send the browser after sign-in."""

from __future__ import annotations

from urllib.parse import quote

__all__ = ["DEFAULT_BASE_URL", "HOME", "local_path", "participant_url"]

#: Where ``peerlens serve`` listens by default.
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
#: Where a staff member goes after sign-in when no (valid) page was asked for.
HOME = "/studies"


def participant_url(base_url: str, code: str, token: str) -> str:
    """The personal link of participant ``code`` with ``token``.

    Examples
    --------
    >>> participant_url("https://study.example.org/", "P-001", "abc")
    'https://study.example.org/p/P-001/abc'
    """
    return f"{base_url.rstrip('/')}/p/{quote(code, safe='')}/{quote(token, safe='')}"


def local_path(target: str | None) -> str:
    """``target`` when it is a path on this site, else :data:`HOME` (so that a ``next=`` link
    can never send a browser elsewhere after sign-in: no scheme, no host, no ``//``).

    Examples
    --------
    >>> local_path("/studies/pilot?tab=1")
    '/studies/pilot?tab=1'
    >>> local_path("//evil.example/x"), local_path("https://evil.example/"), local_path(None)
    ('/studies', '/studies', '/studies')
    """
    if (
        not target
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or "\\" in target
        or any(ord(c) < 32 or ord(c) == 127 for c in target)
        or len(target) > 2000
    ):
        return HOME
    return target

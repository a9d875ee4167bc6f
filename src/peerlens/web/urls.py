"""The addresses of the web app's pages that are handed out (a participant's personal link)."""

from __future__ import annotations

from urllib.parse import quote

__all__ = ["DEFAULT_BASE_URL", "participant_url"]

#: Where ``peerlens serve`` listens by default.
DEFAULT_BASE_URL = "http://127.0.0.1:8000"


def participant_url(base_url: str, code: str, token: str) -> str:
    """The personal link of participant ``code`` with ``token``.

    Examples
    --------
    >>> participant_url("https://study.example.org/", "P-001", "abc")
    'https://study.example.org/p/P-001/abc'
    """
    return f"{base_url.rstrip('/')}/p/{quote(code, safe='')}/{quote(token, safe='')}"

"""Fixtures of the API tests: the web app's test study (``tests/web/conftest.py``: A1 at Leeds,
B2 at Glasgow) and personal access tokens of its users, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi.testclient import TestClient

from peerlens.study import Caller, create_token

from ..conftest import ADMIN, PASSWORD, Site, make_user, walk_routes

__all__ = ["ADMIN", "PASSWORD", "Site", "api", "bearer", "make_user", "token", "walk_routes"]


def token(site: Site, caller: Caller = ADMIN, scopes: Iterable[str] = ("read",)) -> str:
    """A new personal access token of ``caller`` with ``scopes``."""
    return create_token(site.store, "test", scopes=list(scopes), caller=caller).token


def bearer(value: str) -> dict[str, str]:
    """The ``Authorization`` header presenting token ``value``."""
    return {"Authorization": f"Bearer {value}"}


def api(site: Site, caller: Caller = ADMIN, scopes: Iterable[str] = ("read",)) -> TestClient:
    """A client of the app sending a new token of ``caller`` with ``scopes`` on every request."""
    client = TestClient(
        site.client.app, base_url="https://testserver", raise_server_exceptions=False
    )
    client.headers.update(bearer(token(site, caller, scopes)))
    return client

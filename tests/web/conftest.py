"""Fixtures of the web tests: a study with two participants at two sites, a personal link for
each, and a client of the app over the same store (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from peerlens.study import Store, add_participant, create_study, issue_link
from peerlens.web import WebSettings, create_app

from ..conftest import ACTOR, ADMIN, PASSWORD, make_user

__all__ = [
    "ACTOR",
    "ADMIN",
    "PASSWORD",
    "Site",
    "browser",
    "csrf_of",
    "make_user",
    "signed_in",
    "walk_routes",
]


@dataclass
class Site:
    """The app under test: its client, its store, and one link path per participant."""

    client: TestClient
    store: Store
    links: dict[str, str]
    tokens: dict[str, str]


@pytest.fixture
def site(store: Store, visit_config_path: Path) -> Iterator[Site]:
    create_study(store, "pilot", visit_config_path, caller=ADMIN)
    links: dict[str, str] = {}
    tokens: dict[str, str] = {}
    for code, where in (("A1", "leeds"), ("B2", "glasgow")):
        add_participant(store, "pilot", code, site=where, caller=ADMIN)
        issued = issue_link(store, "pilot", code, timepoint="baseline", caller=ADMIN)
        links[code] = f"/p/{code}/{issued.token}"
        tokens[code] = issued.token
    app = create_app(store, WebSettings(hsts=True, secret=b"test secret, protects nothing"))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Site(client, store, links, tokens)


def browser(site: Site) -> TestClient:
    """A new browser on the app (over HTTPS: the app is set up as behind TLS, so its cookies
    are ``Secure`` and a client sends them back only over HTTPS)."""
    return TestClient(site.client.app, base_url="https://testserver", raise_server_exceptions=False)


def signed_in(site: Site, username: str = ACTOR, password: str = PASSWORD) -> TestClient:
    """A browser in which ``username`` signed in through the sign-in form."""
    client = browser(site)
    form = client.get("/login")
    done = client.post(
        "/login",
        data={"csrf": csrf_of(form.text), "username": username, "password": password},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    return client


def walk_routes(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every route and mount with the prefix it is served under; routers included in the app
    (FastAPI keeps them as included-router entries) are walked into."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from walk_routes(included.routes, prefix + route.include_context.prefix)
        else:
            yield prefix, route


def csrf_of(html: str) -> str:
    """The CSRF token in a page's form."""
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found is not None, "no CSRF field in the page"
    return found.group(1)

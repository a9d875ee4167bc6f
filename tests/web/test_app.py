"""Every route of the app answers with the security headers, errors are plain pages, and no
page carries inline script or style."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount

from peerlens.study import Store
from peerlens.web import WebSettings, create_app
from peerlens.web.security import CSP

from .conftest import Site, csrf_of, walk_routes

HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def _requests(site: Site) -> list[tuple[str, str, dict[str, str] | None]]:
    """One request per method of every route of the app, built from the route table (a new
    route is requested here without anyone listing it)."""
    first = site.client.get(site.links["A1"]).text
    params = {
        "code": "A1",
        "token": site.tokens["A1"],
        "number": "1",
        "study": "pilot",
        "story_id": "1",
        "participant": "A1",
        "recording": "0" * 16,
    }
    out: list[tuple[str, str, dict[str, str] | None]] = []
    for prefix, route in walk_routes(site.client.app.routes):  # type: ignore[attr-defined]
        if isinstance(route, Mount) and route.path == "/api/v1":
            # The JSON API (api/test_endpoint_security.py enumerates its endpoints): here one
            # refused request, for the headers.
            out.append(("GET", f"{prefix}{route.path}/studies", None))
            continue
        if isinstance(route, Mount):
            out.append(("GET", f"{prefix}{route.path}/peerlens.css", None))
            continue
        assert isinstance(route, APIRoute), f"unexpected route {route!r}"
        path = re.sub(r"\{(\w+)\}", lambda m: params[m.group(1)], prefix + route.path)
        for method in sorted(route.methods):
            data = {"csrf": csrf_of(first), "version": "v1"} if method == "POST" else None
            out.append((method, path, data))
    return out


def test_every_route_sends_the_security_headers(site: Site) -> None:
    seen = set()
    for method, path, data in _requests(site):
        for bad in (False, True):  # the page itself, and its refusal with a wrong token
            where = path.replace(site.tokens["A1"], "wrong") if bad else path
            r = site.client.request(method, where, data=data)
            assert r.status_code < 500, (method, where, r.status_code)
            for name, value in HEADERS.items():
                assert r.headers.get(name) == value, (method, where, name)
            assert "unsafe-inline" not in r.headers["content-security-policy"]
            assert r.headers["strict-transport-security"].startswith("max-age=")
            if not where.startswith("/static/"):
                assert r.headers["cache-control"] == "no-store", where
            seen.add((method, path.split("/")[-1] if "/p/" in path else path))
    assert len(seen) >= 7  # /, landing, consent, page GET/POST, withdraw GET/POST, static


def test_pages_hold_no_inline_script_or_style(site: Site) -> None:
    for method, path, _data in _requests(site):
        if method != "GET" or path.startswith(("/static/", "/api/")):
            continue
        body = site.client.get(path).text
        assert "<script" not in body and "style=" not in body and "<style" not in body
        assert body.count("<h1>") == 1 and '<html lang="en">' in body


def test_unknown_routes_and_methods_are_plain_pages(site: Site) -> None:
    for r in (
        site.client.get("/nothing/here"),
        site.client.get(f"{site.links['A1']}/page/not-a-number"),
        site.client.delete(site.links["A1"]),
        site.client.get("/docs"),
        site.client.get("/openapi.json"),
    ):
        assert r.status_code in (404, 405) and r.headers["content-type"].startswith("text/html")
        assert "Traceback" not in r.text and r.headers["referrer-policy"] == "no-referrer"


def test_an_unexpected_failure_is_a_plain_500_with_the_headers(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    from peerlens.web.routes import participant

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(participant, "open_visit", broken)
    r = site.client.get(site.links["A1"])
    assert r.status_code == 500 and "Something went wrong" in r.text
    assert "secret internals" not in r.text and "Traceback" not in r.text
    assert r.headers["content-security-policy"] == CSP


def test_hsts_only_when_served_behind_tls(store: Store) -> None:
    with TestClient(create_app(store, WebSettings(hsts=False))) as client:
        r = client.get("/")
    assert r.status_code == 200 and "strict-transport-security" not in r.headers
    assert r.headers["cache-control"] == "no-store"

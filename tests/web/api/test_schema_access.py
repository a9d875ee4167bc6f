"""The API's OpenAPI schema (review finding R6-11): served only to a valid access token or a
signed-in staff member's browser, never to an anonymous client, a revoked token or a
participant's link; no documentation pages; and not served at all when the settings turn it
off. On SQLite and PostgreSQL."""

from __future__ import annotations

from fastapi.testclient import TestClient

from peerlens.study import resume_token, revoke_token
from peerlens.web import WebSettings, create_app

from ..conftest import browser, signed_in
from .conftest import ADMIN, Site, api, bearer, token

SCHEMA = "/api/v1/openapi.json"


def test_the_schema_needs_a_token_or_a_staff_session(site: Site) -> None:
    anonymous = browser(site)
    refused = anonymous.get(SCHEMA)
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert refused.json()["error"]["code"] == "unauthenticated"
    assert "/studies" not in refused.text and "peerlens API" not in refused.text
    # A participant's link is no staff session.
    participant = browser(site)
    assert participant.get(site.links["A1"]).status_code == 200
    assert participant.get(SCHEMA).status_code == 401
    client = api(site, scopes=("read",))
    schema = client.get(SCHEMA)
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "peerlens API"
    assert "/studies/{study}/participants/{participant}/recordings" in schema.json()["paths"]
    staff = signed_in(site)
    assert staff.get(SCHEMA).json() == schema.json()
    caller = resume_token(site.store, client.headers["authorization"].split()[1])
    revoke_token(site.store, caller.token or 0, caller=ADMIN)
    assert client.get(SCHEMA).status_code == 401
    for docs in ("/api/v1/docs", "/api/v1/redoc", "/docs", "/openapi.json"):
        assert staff.get(docs).status_code == 404, docs


def test_the_setting_turns_the_schema_off_for_everyone(site: Site) -> None:
    app = create_app(
        site.store, WebSettings(secret=b"test secret, protects nothing", api_schema=False)
    )
    client = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    client.headers.update(bearer(token(site, scopes=("read", "write", "export", "admin"))))
    off = client.get(SCHEMA)
    assert off.status_code == 404 and off.json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/studies").status_code == 200  # the API itself still answers

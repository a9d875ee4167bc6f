"""The access tokens page over HTTP: a staff member makes a token (shown once), sees it listed
without the token, uses it on the API and revokes it; another user's token cannot be revoked
here (404, as for no such token); bad input is refused with nothing stored. On SQLite and
PostgreSQL."""

from __future__ import annotations

import re

from peerlens.study import Caller, create_token, list_tokens

from ..conftest import Site, csrf_of, make_user, signed_in


def _token_in(html: str) -> str:
    found = re.search(r'id="token-value" type="text" readonly value="(plk_[\w-]+)"', html)
    assert found is not None, "no token shown"
    return found.group(1)


def test_make_use_and_revoke_a_token(site: Site) -> None:
    client = signed_in(site)
    page = client.get("/tokens")
    assert page.status_code == 200 and "no tokens yet" in page.text
    csrf = csrf_of(page.text)
    made = client.post(
        "/tokens", data={"csrf": csrf, "name": "sync", "scope": ["read", "export"], "days": "7"}
    )
    assert made.status_code == 200, made.text
    assert made.headers["cache-control"] == "no-store"
    token = _token_in(made.text)
    again = client.get("/tokens")
    assert token not in again.text and "sync" in again.text and "export read" in again.text
    api = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/studies", headers=api).status_code == 200
    number = str(list_tokens(site.store, caller=Caller("tester"))["id"].iloc[0])
    done = client.post(
        "/tokens/revoke", data={"csrf": csrf, "token_id": number}, follow_redirects=False
    )
    assert done.status_code == 303
    assert client.get("/api/v1/studies", headers=api).status_code == 401
    assert "revoked" in client.get("/tokens").text


def test_another_users_token_and_bad_input_are_refused(site: Site) -> None:
    other = make_user(site.store, "other", "auditor")
    theirs = create_token(site.store, "theirs", scopes=["read"], caller=other)
    client = signed_in(site)
    csrf = csrf_of(client.get("/tokens").text)
    for value in (str(theirs.id), "0", "-1", "x", "9" * 40):
        refused = client.post("/tokens/revoke", data={"csrf": csrf, "token_id": value})
        assert refused.status_code == 404, value  # another user's token: as if there were none
        assert "unknown token" in refused.text, value
    assert list(list_tokens(site.store, caller=other)["state"]) == ["active"]
    for data in (
        {"name": "t", "days": "7"},  # no scope
        {"name": "t", "scope": "root", "days": "7"},
        {"name": "t", "scope": "read", "days": "1000"},
        {"name": "t", "scope": "read", "days": "soon"},
        {"name": " ", "scope": "read", "days": "7"},
    ):
        bad = client.post("/tokens", data={"csrf": csrf, **data})
        assert bad.status_code == 409, (data, bad.text)
        assert "plk_" not in bad.text
    assert list_tokens(site.store, caller=Caller("tester")).empty

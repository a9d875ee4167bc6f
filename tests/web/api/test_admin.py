"""Every user's access tokens through the API: a global admin's ``admin`` token lists them and
revokes one (audited, stopped at its next use); to anyone else another user's token reads as
one that does not exist (404, the same words), and nothing changes. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json

from peerlens.study import audit_frame, create_token, list_tokens

from .conftest import ADMIN, Site, api, bearer, make_user


def test_an_admin_token_lists_and_revokes_another_users_token(site: Site) -> None:
    other = make_user(site.store, "other", "researcher", study="pilot")
    theirs = create_token(site.store, "nightly", scopes=["read"], caller=other)
    client = api(site, ADMIN, ("admin",))
    listed = client.get("/api/v1/tokens")
    assert listed.status_code == 200, listed.text
    rows = {r["id"]: r for r in listed.json()["items"]}
    assert rows[theirs.id]["user"] == "other" and rows[theirs.id]["name"] == "nightly"
    assert rows[theirs.id]["state"] == "active" and theirs.token not in listed.text
    assert client.get("/api/v1/studies", headers=bearer(theirs.token)).status_code == 200
    done = client.post(f"/api/v1/tokens/{theirs.id}/revoke", json={"reason": "left the team"})
    assert done.status_code == 200 and done.json()["done"] is True
    stopped = client.get("/api/v1/studies", headers=bearer(theirs.token))
    assert stopped.status_code == 401
    assert list(list_tokens(site.store, caller=other)["state"]) == ["revoked"]
    log = audit_frame(site.store, caller=ADMIN)
    entry = log[(log["action"] == "token.revoke") & (log["entity_id"] == str(theirs.id))]
    assert list(entry["actor"]) == [ADMIN.username] and list(entry["reason"]) == ["left the team"]
    assert json.loads(entry["new"].iloc[0]) == {"name": "nightly", "user": "other"}
    # Without a body (no reason) it works too; revoking again changes nothing.
    assert client.post(f"/api/v1/tokens/{theirs.id}/revoke").status_code == 200
    assert len(audit_frame(site.store, caller=ADMIN)) == len(log)


def test_to_a_non_admin_any_token_id_is_not_found_and_nothing_changes(site: Site) -> None:
    other = make_user(site.store, "other", "researcher", study="pilot")
    theirs = create_token(site.store, "nightly", scopes=["read"], caller=ADMIN)
    client = api(site, other, ("read", "write", "export", "admin"))
    before = len(audit_frame(site.store, caller=ADMIN))
    answers = []
    for token_id in (theirs.id, 10**6):
        refused = client.post(f"/api/v1/tokens/{token_id}/revoke", json={})
        assert refused.status_code == 404, refused.text
        error = refused.json()["error"]
        answers.append((error["code"], error["message"].replace(str(token_id), "N")))
    assert answers == [("not_found", "unknown token N")] * 2
    assert client.get("/api/v1/tokens").json()["error"]["code"] == "forbidden"
    assert list(list_tokens(site.store, caller=ADMIN)["state"]) == ["active"]
    assert len(audit_frame(site.store, caller=ADMIN)) == before
    assert list(list_tokens(site.store, caller=other)["state"]) == ["active"]
    # An admin's token without the admin scope is told which scope it needs.
    read_only = api(site, ADMIN, ("read",))
    refused = read_only.post(f"/api/v1/tokens/{theirs.id}/revoke")
    assert refused.status_code == 403 and "'admin' scope" in refused.json()["error"]["message"]
    for bad in ("0", "-1", "x", "9" * 30):
        malformed = client.post(f"/api/v1/tokens/{bad}/revoke")
        assert malformed.status_code == 422, bad

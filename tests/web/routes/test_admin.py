"""Audit verification, the audit log, users and roles, and every user's access tokens over
HTTP: who may open them, and every change made through the study functions with a CSRF-checked
form; on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pandas as pd
from fastapi.testclient import TestClient

from peerlens.study import audit_frame, create_token, list_tokens, list_users

from ..conftest import ADMIN, PASSWORD, Site, csrf_of, make_user, signed_in


def _post(client: TestClient, page: str, action: str, **data: str) -> object:
    form = client.get(page)
    assert form.status_code == 200, form.text
    return client.post(action, data={"csrf": csrf_of(form.text), **data}, follow_redirects=False)


def _roles(site: Site, user: str) -> set[tuple[str, str | None, str | None]]:
    frame = list_users(site.store, caller=ADMIN)
    rows = frame[(frame["user"] == user) & frame["role"].notna()]
    return {
        (r.role, None if pd.isna(r.study) else r.study, None if pd.isna(r.site) else r.site)
        for r in rows.itertuples()
    }


def test_an_admin_adds_a_user_and_gives_and_takes_a_site_role(site: Site) -> None:
    admin = signed_in(site)
    done = _post(admin, "/users", "/users", username="ada", password=PASSWORD)
    assert done.status_code == 303 and done.headers["location"] == "/users"  # type: ignore[attr-defined]
    granted = _post(
        admin,
        "/users",
        "/users/grant",
        username="ada",
        role="researcher",
        study="pilot",
        site="leeds",
        export_tier="",
        reason="joins the Leeds team",
    )
    assert granted.status_code == 303  # type: ignore[attr-defined]
    assert _roles(site, "ada") == {("researcher", "pilot", "leeds")}
    page = admin.get("/users")
    assert '<th scope="row">ada</th>' in page.text
    # The new account signs in and sees its site only.
    ada = signed_in(site, "ada")
    overview = ada.get("/studies/pilot")
    assert overview.status_code == 200 and "A1" in overview.text and "B2" not in overview.text
    revoked = _post(
        admin,
        "/users",
        "/users/revoke",
        username="ada",
        role="researcher",
        study="pilot",
        site="leeds",
    )
    assert revoked.status_code == 303 and _roles(site, "ada") == set()  # type: ignore[attr-defined]
    # Taken away at once: the next page is refused, the session notwithstanding (no role in
    # the study is left: it reads as one that does not exist).
    assert ada.get("/studies/pilot").status_code == 404


def test_a_bad_request_is_shown_and_changes_nothing(site: Site) -> None:
    admin = signed_in(site)
    short = _post(admin, "/users", "/users", username="bob", password="short")
    assert short.status_code == 409 and "at least 8 characters" in short.text  # type: ignore[attr-defined]
    unknown_site = _post(
        admin,
        "/users",
        "/users/grant",
        username="tester",
        role="researcher",
        study="pilot",
        site="paris",
    )
    assert unknown_site.status_code == 409  # type: ignore[attr-defined]
    assert set(list_users(site.store, caller=ADMIN)["user"]) == {"tester"}


def test_only_global_admins_manage_users(site: Site) -> None:
    make_user(site.store, "res", "researcher", study="pilot")
    make_user(site.store, "leeds-admin", "admin", study="pilot", site="leeds")
    for name in ("res", "leeds-admin"):
        client = signed_in(site, name)
        assert client.get("/users").status_code == 403
        page = client.get("/studies")
        token = csrf_of(page.text)
        for action, data in (
            ("/users", {"username": "mallory", "password": PASSWORD}),
            ("/users/grant", {"username": name, "role": "admin"}),
        ):
            refused = client.post(action, data={"csrf": token, **data}, follow_redirects=False)
            assert refused.status_code == 403, (name, action)
    assert "mallory" not in set(list_users(site.store, caller=ADMIN)["user"])
    assert _roles(site, "res") == {("researcher", "pilot", None)}


def test_audit_verification_for_admins_and_auditors(site: Site) -> None:
    make_user(site.store, "aud", "auditor")
    make_user(site.store, "res", "researcher", study="pilot")
    for name in ("tester", "aud"):
        page = signed_in(site, name).get("/audit")
        assert page.status_code == 200 and "The audit chain is intact" in page.text
    assert signed_in(site, "res").get("/audit").status_code == 403


def test_the_audit_log_page_is_for_global_admins(site: Site) -> None:
    make_user(site.store, "aud", "auditor")
    log = signed_in(site).get("/audit/log")
    assert log.status_code == 200 and "login.success" in log.text
    assert PASSWORD not in log.text
    assert signed_in(site, "aud").get("/audit/log").status_code == 403


def test_an_admin_sees_every_users_tokens_and_revokes_one(site: Site) -> None:
    other = make_user(site.store, "other", "researcher", study="pilot")
    theirs = create_token(site.store, "nightly <sync>", scopes=["read"], caller=other)
    admin = signed_in(site)
    assert 'href="/users/tokens"' in admin.get("/users").text
    page = admin.get("/users/tokens")
    assert page.status_code == 200 and "nightly &lt;sync&gt;" in page.text
    assert theirs.token not in page.text
    done = _post(
        admin,
        "/users/tokens",
        "/users/tokens/revoke",
        token_id=str(theirs.id),
        reason="left the team",
    )
    assert done.status_code == 303 and done.headers["location"] == "/users/tokens"  # type: ignore[attr-defined]
    assert list(list_tokens(site.store, caller=other)["state"]) == ["revoked"]
    assert "revoked" in admin.get("/users/tokens").text
    assert (
        admin.get(
            "/api/v1/studies", headers={"Authorization": f"Bearer {theirs.token}"}
        ).status_code
        == 401
    )
    log = audit_frame(site.store, caller=ADMIN)
    entry = log[log["action"] == "token.revoke"]
    assert list(entry["actor"]) == ["tester"] and list(entry["reason"]) == ["left the team"]


def test_only_a_global_admin_revokes_others_tokens_and_ids_tell_nothing(site: Site) -> None:
    theirs = create_token(site.store, "nightly", scopes=["read"], caller=ADMIN)
    make_user(site.store, "res", "researcher", study="pilot")
    make_user(site.store, "leeds-admin", "admin", study="pilot", site="leeds")
    before = len(audit_frame(site.store, caller=ADMIN))
    for name in ("res", "leeds-admin"):
        client = signed_in(site, name)
        assert client.get("/users/tokens").status_code == 403
        token = csrf_of(client.get("/tokens").text)
        answers = set()
        for value in (str(theirs.id), "999999", "x"):
            refused = client.post("/users/tokens/revoke", data={"csrf": token, "token_id": value})
            assert refused.status_code == 404, (name, value)
            if value.isdigit():
                shown = re.search(r"<main[^>]*>(.*)</main>", refused.text, re.S)
                assert shown is not None
                answers.add(re.sub(rf"\b{value}\b", "N", shown.group(1)))
        assert len(answers) == 1, name  # the same page for an existing and a missing token
    assert list(list_tokens(site.store, caller=ADMIN)["state"]) == ["active"]
    after = audit_frame(site.store, caller=ADMIN).sort_values("seq")
    assert set(after["action"].iloc[before:]) == {"login.success"}  # the sign-ins only

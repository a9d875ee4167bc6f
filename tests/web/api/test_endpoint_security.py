"""Every endpoint of the JSON API, enumerated: each has an entry in :data:`CALLS` (a request
aimed at site B's data), and a new endpoint without one fails
:func:`test_every_endpoint_has_a_case`.

Over HTTP, for every endpoint: no token, a sign-in cookie instead of a token (but for the
schema, which signed-in staff may read), a revoked or an expired token are refused (401) and
nothing happens; a site-A (Leeds) user's token, with every
scope, reads, exports or changes nothing of site B (Glasgow) through any endpoint; a global
admin's read-only token changes nothing. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from fastapi.routing import APIRoute
from sqlalchemy import select
from starlette.routing import Mount, Route

from peerlens.study import Caller, Store, list_users, resume_token, revoke_token
from peerlens.study.models import ApiToken, AuditLog

from ..conftest import browser, signed_in
from .conftest import ADMIN, Glasgow, Site, api, make_user, walk_routes

EVERY_SCOPE = ("read", "write", "export", "admin")
PHQ9 = {f"phq9_{i}": 1 for i in range(1, 10)}


#: A real RR recording, uploaded for B2 (multipart: the form's fields and its file).
RR = "\n".join(f"{800 + 40 * (i % 5)}" for i in range(300)).encode()


@dataclass(frozen=True)
class Call:
    """One request: its path (under /api/v1), JSON body (or, with ``files``, form fields) and
    query, and the statuses a Leeds user's token may get. ``staff_session``: a signed-in staff
    member's browser may read it too (the schema)."""

    path: str
    leeds: frozenset[int]
    body: dict[str, Any] | None = None
    params: dict[str, str] | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    staff_session: bool = False


def _ok(*codes: int) -> frozenset[int]:
    return frozenset(codes)


#: (method, path template) -> the request aimed at Glasgow's data and what Leeds may get.
CALLS: dict[tuple[str, str], Callable[[Glasgow], Call]] = {
    ("GET", "/openapi.json"): lambda g: Call("/openapi.json", _ok(200), staff_session=True),
    ("GET", "/studies"): lambda g: Call("/studies", _ok(200)),
    ("GET", "/studies/{study}"): lambda g: Call("/studies/pilot", _ok(200)),
    ("GET", "/studies/{study}/progress"): lambda g: Call("/studies/pilot/progress", _ok(200)),
    ("GET", "/studies/{study}/participants"): lambda g: Call(
        "/studies/pilot/participants", _ok(200)
    ),
    ("GET", "/studies/{study}/participants/{participant}/identity"): lambda g: Call(
        "/studies/pilot/participants/B2/identity", _ok(403, 404)
    ),
    ("POST", "/studies/{study}/participants/{participant}/recordings"): lambda g: Call(
        "/studies/pilot/participants/B2/recordings",
        _ok(404),
        {"kind": "rr", "device": "strap"},
        files=[("files", ("b2.rr.txt", RR, "text/plain"))],
    ),
    ("GET", "/studies/{study}/derived"): lambda g: Call("/studies/pilot/derived", _ok(200)),
    ("GET", "/studies/{study}/responses"): lambda g: Call(
        "/studies/pilot/responses", _ok(200), params={"tier": "deidentified"}
    ),
    ("POST", "/studies/{study}/responses"): lambda g: Call(
        "/studies/pilot/responses",
        _ok(422),
        {"timepoint": "baseline", "instrument": "phq9", "rows": [{"participant": "B2", **PHQ9}]},
    ),
    ("GET", "/studies/{study}/results/{what}"): lambda g: Call(
        "/studies/pilot/results/hrv", _ok(200)
    ),
    ("GET", "/studies/{study}/recordings"): lambda g: Call("/studies/pilot/recordings", _ok(200)),
    ("GET", "/studies/{study}/recordings/{participant}/{recording}/windows"): lambda g: Call(
        f"/studies/pilot/recordings/B2/{g.recording}/windows", _ok(404)
    ),
    ("GET", "/studies/{study}/recordings/{participant}/{recording}/beats"): lambda g: Call(
        f"/studies/pilot/recordings/B2/{g.recording}/beats", _ok(404)
    ),
    ("POST", "/studies/{study}/exports"): lambda g: Call(
        "/studies/pilot/exports", _ok(200, 403), {"tier": "full", "format": "tidy-csv"}
    ),
    ("GET", "/studies/{study}/studio/workers"): lambda g: Call(
        "/studies/pilot/studio/workers", _ok(200)
    ),
    ("GET", "/studies/{study}/studio/workers/{worker}/connection"): lambda g: Call(
        f"/studies/pilot/studio/workers/{g.worker}/connection", _ok(404)
    ),
    ("POST", "/studies/{study}/stories"): lambda g: Call(
        "/studies/pilot/stories",
        _ok(403),
        {"text": "Me too.", "told_on": "2026-03-02", "revises": g.story},
    ),
    ("GET", "/stories/{story_id}"): lambda g: Call(f"/stories/{g.story}", _ok(404)),
    ("POST", "/stories/{story_id}/disagreements"): lambda g: Call(
        f"/stories/{g.story}/disagreements", _ok(404), {"position": 0, "label": "neutral"}
    ),
    ("POST", "/stories/analyse"): lambda g: Call("/stories/analyse", _ok(200), {"text": "Me too."}),
    ("GET", "/audit/verify"): lambda g: Call("/audit/verify", _ok(403)),
    ("GET", "/audit/log"): lambda g: Call("/audit/log", _ok(403)),
    ("GET", "/users"): lambda g: Call("/users", _ok(403)),
    ("POST", "/users"): lambda g: Call(
        "/users", _ok(403), {"username": "mallory", "password": "a long password"}
    ),
    ("POST", "/users/{username}/roles"): lambda g: Call(
        "/users/leeds-res/roles", _ok(403), {"role": "admin"}
    ),
    ("POST", "/users/{username}/roles/revoke"): lambda g: Call(
        "/users/tester/roles/revoke", _ok(403), {"role": "admin"}
    ),
    ("GET", "/tokens"): lambda g: Call("/tokens", _ok(403)),
    ("POST", "/tokens/{token_id}/revoke"): lambda g: Call(
        f"/tokens/{g.token}/revoke", _ok(404), {"reason": "left"}
    ),
}


def _api_app(site: Site) -> Any:
    for _, route in walk_routes(site.client.app.routes):  # type: ignore[attr-defined]
        if isinstance(route, Mount) and route.path == "/api/v1":
            return route.app
    raise AssertionError("the API is not mounted at /api/v1")


def _endpoints(site: Site) -> set[tuple[str, str]]:
    found = set()
    for prefix, route in walk_routes(_api_app(site).routes):
        if isinstance(route, APIRoute | Route):
            found |= {(m, prefix + route.path) for m in (route.methods or set()) - {"HEAD"}}
        else:
            raise AssertionError(f"an API route of an unknown kind: {route!r}")
    return found


def _calls(g: Glasgow) -> list[tuple[str, Call]]:
    return [(method, build(g)) for (method, _), build in CALLS.items()]


def _send(client: Any, method: str, call: Call) -> Any:
    if call.files is not None:
        return client.request(
            method, "/api/v1" + call.path, data=call.body, files=call.files, params=call.params
        )
    return client.request(method, "/api/v1" + call.path, json=call.body, params=call.params)


def _audit_rows(store: Store) -> list[str]:
    with store.transaction() as s:
        return list(s.scalars(select(AuditLog.action).order_by(AuditLog.seq)))


def _error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "where"} <= set(body["error"])
    error: dict[str, Any] = body["error"]
    return error


def test_every_endpoint_has_a_case(site: Site) -> None:
    assert _endpoints(site) == set(CALLS)


def test_no_valid_token_no_answer_and_nothing_happens(site: Site, glasgow: Glasgow) -> None:
    revoked = api(site, scopes=EVERY_SCOPE)
    caller = resume_token(site.store, revoked.headers["authorization"].split()[1])
    revoke_token(site.store, caller.token or 0, caller=ADMIN)
    expired = api(site, scopes=EVERY_SCOPE)
    with site.store.transaction() as s:
        row = s.scalars(select(ApiToken).order_by(ApiToken.id.desc())).first()
        assert row is not None
        row.expires_at = row.expires_at - dt.timedelta(days=400)
    cookie_only = signed_in(site)  # a signed-in browser: its session cookie is no API credential
    anonymous = browser(site)
    wrong_scheme = browser(site)
    wrong_scheme.headers["Authorization"] = "Basic dGVzdGVyOnBhc3N3b3Jk"
    before = _audit_rows(site.store)
    for method, call in _calls(glasgow):
        for who, client in (
            ("revoked", revoked),
            ("expired", expired),
            ("cookie", cookie_only),
            ("anonymous", anonymous),
            ("basic", wrong_scheme),
        ):
            response = _send(client, method, call)
            if who == "cookie" and call.staff_session:
                assert response.status_code == 200, (method, call.path, response.text)
                continue
            assert response.status_code == 401, (who, method, call.path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            error = _error_of(response)
            assert error["code"] == "unauthenticated", (who, call.path)
            if who == "cookie":
                assert "takes no sign-in cookie" in error["message"]
    # Sign-in left its own audit rows before; the refused requests none.
    assert _audit_rows(site.store) == before


def test_a_site_a_token_gets_nothing_of_site_b(site: Site, glasgow: Glasgow) -> None:
    make_user(site.store, "leeds-res", "researcher", study="pilot", site="leeds")
    make_user(site.store, "leeds-admin", "admin", study="pilot", site="leeds", tier="full")
    users_before = list_users(site.store, caller=ADMIN)
    before = _audit_rows(site.store)
    secrets = ("B2", glasgow.name, glasgow.recording[:12], glasgow.worker, "felt the same")
    for name in ("leeds-res", "leeds-admin"):
        client = api(site, Caller(name), EVERY_SCOPE)
        for method, call in _calls(glasgow):
            response = _send(client, method, call)
            where = (name, method, call.path, response.status_code, response.text[:300])
            assert response.status_code in call.leeds, where
            assert response.status_code < 500, where
            quoted = [x for x in secrets if x in call.path + str(call.body)]
            for secret in secrets:
                if secret not in quoted:  # a refusal may quote back what was asked for
                    assert secret not in response.text, (secret, *where)
            if response.status_code >= 400:
                _error_of(response)
            if method == "POST" and call.path.endswith("/exports"):
                if response.status_code == 200:
                    exported = pd.read_csv(io.BytesIO(response.content))
                    assert set(exported["participant"]) <= {"A1"}, where
                else:
                    assert name == "leeds-res", where  # a researcher has no full tier
    # Nothing changed: the only new audit rows are the tokens made and the exports.
    new = _audit_rows(site.store)[len(before) :]
    assert set(new) <= {"token.create", "export"}, new
    pd.testing.assert_frame_equal(list_users(site.store, caller=ADMIN), users_before)


def test_a_global_admins_read_token_changes_nothing(site: Site, glasgow: Glasgow) -> None:
    client = api(site, ADMIN, ("read",))
    before = _audit_rows(site.store)
    for method, call in _calls(glasgow):
        response = _send(client, method, call)
        where = (method, call.path, response.status_code, response.text[:200])
        assert response.status_code < 500, where
        if method == "POST" and call.path.startswith(f"/stories/{glasgow.story}"):
            # A story of a worker the admin is not tied to: as if there were none.
            assert response.status_code == 404, where
        elif method == "POST" and call.path != "/stories/analyse":
            assert response.status_code == 403, where
            assert "scope" in _error_of(response)["message"] or call.path.startswith("/stories/"), (
                where
            )
    # Nothing changed; the only new audit rows are the reads of study data (audited as exports).
    after = _audit_rows(site.store)
    assert after[: len(before)] == before and set(after[len(before) :]) <= {"export"}
    # With the scopes, the same admin reads Glasgow (the refusals above were the scopes').
    full = api(site, ADMIN, EVERY_SCOPE)
    assert full.get("/api/v1/studies/pilot/participants/B2/identity").json() == {
        "name": glasgow.name
    }

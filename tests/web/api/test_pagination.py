"""Pagination over HTTP: walking a list page by page with ``next`` gives every item once, in
order; a cursor the API did not give is refused with the error object; on SQLite and
PostgreSQL."""

from __future__ import annotations

import base64

from peerlens.study import add_participants
from peerlens.study.participants import NewParticipant

from .conftest import ADMIN, Site, api


def test_walking_the_pages_gives_every_item_once_in_order(site: Site) -> None:
    codes = [f"L{i:02d}" for i in range(1, 12)]
    add_participants(
        site.store, "pilot", [NewParticipant(c, site="leeds") for c in codes], caller=ADMIN
    )
    client = api(site)
    whole = client.get("/api/v1/studies/pilot/participants", params={"limit": 1000}).json()
    assert whole["next"] is None and whole["total"] == 13
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/studies/pilot/participants", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        assert set(body) == {"items", "next", "total"} and body["total"] == 13
        assert len(body["items"]) == (4 if body["next"] else 13 - 4 * pages)
        seen += [x["participant"] for x in body["items"]]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            break
    assert pages == 4
    assert seen == [x["participant"] for x in whole["items"]] == sorted(["A1", "B2", *codes])


def test_a_cursor_not_given_by_the_api_or_a_bad_limit_is_refused(site: Site) -> None:
    client = api(site)
    forged = [
        "not-base64!",
        base64.urlsafe_b64encode(b"x:3").decode(),
        base64.urlsafe_b64encode(b"o:-1").decode(),
        base64.urlsafe_b64encode(b"o:" + b"9" * 20).decode(),
        "x" * 65,
    ]
    for cursor in forged:
        response = client.get("/api/v1/studies/pilot/participants", params={"cursor": cursor})
        assert response.status_code == 422, cursor
        error = response.json()["error"]
        assert error["code"] == "invalid_request" and "cursor" in error["message"], cursor
    for limit in ("0", "1001", "ten"):
        response = client.get("/api/v1/studies", params={"limit": limit})
        assert response.status_code == 422
        assert response.json()["error"]["where"]["errors"][0]["location"] == "query.limit"
    # A cursor past the end is an empty last page, not an error.
    end = base64.urlsafe_b64encode(b"o:500").decode().rstrip("=")
    past = client.get("/api/v1/studies/pilot/participants", params={"cursor": end}).json()
    assert past == {"items": [], "next": None, "total": 2}

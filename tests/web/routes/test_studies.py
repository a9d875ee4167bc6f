"""The dashboard over HTTP: the studies list, a study's overview and its export by tier, as
each role and site sees them; on SQLite and PostgreSQL."""

from __future__ import annotations

import io

import pandas as pd
from markupsafe import escape

from peerlens.study import set_identity

from ..conftest import ADMIN, Site, csrf_of, make_user, signed_in


def _export(site: Site, username: str, tier: str, fmt: str = "tidy-csv") -> object:
    client = signed_in(site, username)
    form = client.get("/studies/pilot/export")
    assert form.status_code == 200
    return client.post(
        "/studies/pilot/export", data={"csrf": csrf_of(form.text), "tier": tier, "format": fmt}
    )


def test_an_admin_sees_the_whole_study(site: Site) -> None:
    client = signed_in(site)
    listing = client.get("/studies")
    assert listing.status_code == 200 and 'href="/studies/pilot"' in listing.text
    page = client.get("/studies/pilot")
    assert page.status_code == 200
    assert "<h1>Peer connection pilot</h1>" in page.text
    for code in ("A1", "B2"):
        assert f'<th scope="row">{code}</th>' in page.text
    assert "Scheduled questionnaires by timepoint and state" in page.text
    # Both participants' baseline questionnaires are due (nothing answered yet).
    assert '<th scope="row">baseline</th><td class="number">0</td>' in page.text


def test_a_site_scoped_researcher_sees_and_exports_their_site_only(site: Site) -> None:
    make_user(site.store, "leeds", "researcher", study="pilot", site="leeds")
    page = signed_in(site, "leeds").get("/studies/pilot")
    assert page.status_code == 200
    assert '<th scope="row">A1</th>' in page.text and "B2" not in page.text
    done = _export(site, "leeds", "deidentified")
    assert done.status_code == 200  # type: ignore[attr-defined]
    assert "attachment" in done.headers["content-disposition"]  # type: ignore[attr-defined]
    frame = pd.read_csv(io.BytesIO(done.content))  # type: ignore[attr-defined]
    assert set(frame["participant"]) <= {"A1"}


def test_the_identity_tier_only_where_the_role_allows(site: Site) -> None:
    set_identity(site.store, "pilot", "A1", {"name": "Ann Example"}, caller=ADMIN)
    full = _export(site, "tester", "full")
    assert full.status_code == 200 and b"Ann Example" in full.content  # type: ignore[attr-defined]
    make_user(site.store, "res", "researcher", study="pilot")
    refused = _export(site, "res", "full")
    assert refused.status_code == 403  # type: ignore[attr-defined]
    assert b"Ann Example" not in refused.content  # type: ignore[attr-defined]
    lower = _export(site, "res", "remove_identifiers", "redcap-csv")
    assert lower.status_code == 200 and b"Ann Example" not in lower.content  # type: ignore[attr-defined]


def test_roles_without_participant_data_get_a_refusal(site: Site) -> None:
    make_user(site.store, "worker", "ps_worker", study="pilot")
    make_user(site.store, "auditor", "auditor")
    for name in ("worker", "auditor"):
        client = signed_in(site, name)
        refused = client.get("/studies/pilot")
        assert refused.status_code == 403 and "<h1>Not allowed</h1>" in refused.text
        assert "A1" not in refused.text


def test_an_unknown_study_is_not_possible(site: Site) -> None:
    page = signed_in(site).get("/studies/nope")
    assert page.status_code == 404 and escape("no study called 'nope'") in page.text

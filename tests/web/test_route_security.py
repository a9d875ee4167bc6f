"""Every route of the app, enumerated: each has an entry in :data:`ROUTES` saying how its
security is tested, and a new route without one fails :func:`test_every_route_has_an_entry`.

For the staff routes this file checks, over HTTP: an anonymous browser is sent to sign in and
nothing happens; a POST without or with a wrong CSRF token is refused (403) and nothing is
recorded; a site-scoped user reading, exporting or changing through any route gets nothing of
the other site; text stored by users comes back escaped (no stored XSS). Session fixation and
brute-force lockout are tested in ``routes/test_login.py``, the participant links (another
participant's token, a revoked link, CSRF) in ``routes/test_participant.py``. On SQLite and
PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
from pathlib import Path

import pandas as pd
from fastapi.routing import APIRoute
from sqlalchemy import func, select
from starlette.routing import Mount

from peerlens.study import (
    Caller,
    Store,
    add_participant,
    add_recording,
    create_study,
    derive,
    derived_frame,
    grant_studio_access,
    list_users,
    save_story,
)
from peerlens.study.models import AuditLog, Recording, Response, User

from .conftest import ADMIN, PASSWORD, Site, browser, csrf_of, make_user, signed_in, walk_routes

#: How each route is tested. ``staff``: a signed-in page (anonymous -> sign-in; site scope
#: where it shows participants); ``staff-post``: also CSRF; ``public``: no rights involved;
#: ``participant``: a personal link's page (routes/test_participant.py); ``login``: the sign-in
#: form (routes/test_login.py: CSRF, one message, lockout, fixation); ``static``: files;
#: ``api``: the JSON API (api/test_endpoint_security.py enumerates its endpoints).
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/"): "public",
    ("GET", "/login"): "login",
    ("POST", "/login"): "login",
    ("POST", "/logout"): "staff-post",
    ("GET", "/studies"): "staff",
    ("GET", "/studies/{study}"): "staff",
    ("GET", "/studies/{study}/export"): "staff",
    ("POST", "/studies/{study}/export"): "staff-post",
    ("POST", "/studies/{study}/derive"): "staff-post",
    ("GET", "/studies/{study}/import"): "staff",
    ("POST", "/studies/{study}/import/responses"): "staff-post",
    ("POST", "/studies/{study}/import/dictionary"): "staff-post",
    ("POST", "/studies/{study}/import/redcap"): "staff-post",
    ("POST", "/studies/{study}/import/recording"): "staff-post",
    ("GET", "/studies/{study}/hrv"): "staff",
    ("GET", "/studies/{study}/hrv/{participant}/{recording}"): "staff",
    ("GET", "/audit"): "staff",
    ("GET", "/audit/log"): "staff",
    ("GET", "/users"): "staff",
    ("POST", "/users"): "staff-post",
    ("POST", "/users/grant"): "staff-post",
    ("POST", "/users/revoke"): "staff-post",
    ("GET", "/users/tokens"): "staff",
    ("POST", "/users/tokens/revoke"): "staff-post",
    ("GET", "/p/{code}/{token}"): "participant",
    ("POST", "/p/{code}/{token}/consent"): "participant",
    ("GET", "/p/{code}/{token}/page/{number}"): "participant",
    ("POST", "/p/{code}/{token}/page/{number}"): "participant",
    ("GET", "/p/{code}/{token}/withdraw"): "participant",
    ("POST", "/p/{code}/{token}/withdraw"): "participant",
    ("GET", "/studio"): "staff",
    ("GET", "/studio/{study}"): "staff",
    ("POST", "/studio/{study}/stories"): "staff-post",
    ("GET", "/studio/{study}/stories/{story_id}"): "staff",
    ("POST", "/studio/{study}/stories/{story_id}/disagree"): "staff-post",
    ("GET", "/studio/{study}/workers/{code}"): "staff",
    ("GET", "/tokens"): "staff",
    ("POST", "/tokens"): "staff-post",
    ("POST", "/tokens/revoke"): "staff-post",
    ("MOUNT", "/static"): "static",
    # The JSON API: every endpoint enumerated and tested in api/test_endpoint_security.py.
    ("MOUNT", "/api/v1"): "api",
}

#: What a staff POST sends besides its CSRF token (a change that would succeed for an admin).
FORMS: dict[str, dict[str, str]] = {
    "/logout": {},
    "/studies/pilot/export": {"tier": "deidentified", "format": "tidy-csv"},
    "/studies/pilot/derive": {"what": "hrv"},
    # The imports' files are sent by test_imports_reach_only_the_callers_studies_and_sites.
    "/studies/pilot/import/responses": {"timepoint": "baseline"},
    "/studies/pilot/import/dictionary": {},
    "/studies/pilot/import/redcap": {"create_participants": "yes"},
    "/studies/pilot/import/recording": {"participant": "A1"},
    "/users": {"username": "mallory", "password": PASSWORD},
    "/users/grant": {"username": "tester", "role": "researcher", "study": "pilot"},
    "/users/revoke": {"username": "tester", "role": "admin"},
    # Any user's token, a global admin's (routes/test_admin.py has the flows).
    "/users/tokens/revoke": {"token_id": "1", "reason": "left"},
    # The story studio (routes/test_studio.py has its own flows, XSS and other-worker refusals).
    "/studio/pilot/stories": {"text": "Me too.", "told_on": "2026-03-02"},
    "/studio/pilot/stories/1/disagree": {"position": "0", "label": "neutral"},
    # Access tokens: the caller's own (routes/test_tokens.py has the flows).
    "/tokens": {"name": "t", "scope": "read", "days": "30"},
    "/tokens/revoke": {"token_id": "1"},
}


def _routes(site: Site) -> set[tuple[str, str]]:
    found = set()
    for prefix, route in walk_routes(site.client.app.routes):  # type: ignore[attr-defined]
        if isinstance(route, APIRoute):
            found |= {(m, prefix + route.path) for m in route.methods - {"HEAD"}}
        elif isinstance(route, Mount):
            found.add(("MOUNT", prefix + route.path))
        else:
            raise AssertionError(f"a route of an unknown kind: {route!r}")
    return found


def _staff(
    kinds: tuple[str, ...], recording: str = "0" * 64, story: str = "1", worker: str = "A1"
) -> list[tuple[str, str]]:
    return [
        (
            m,
            p.format(
                study="pilot", participant="B2", recording=recording, story_id=story, code=worker
            ),
        )
        for (m, p), k in ROUTES.items()
        if k in kinds
    ]


def _glasgow_recording(site: Site, tmp_path: Path) -> str:
    """A derived RR recording of B2 (Glasgow); its sha256."""
    rr = tmp_path / "rr.txt"
    rr.write_text("\n".join(f"{800 + 40 * math.sin(i / 3):.3f}" for i in range(300)) + "\n")
    add_recording(site.store, "pilot", rr, participant="B2", kind="rr", caller=ADMIN)
    derive(site.store, "pilot", ["hrv"], caller=ADMIN)
    frame = derived_frame(site.store, "pilot", "hrv", caller=ADMIN)
    return str(frame["recording"].iloc[0])


def _practice_story(site: Site) -> tuple[str, str]:
    """A Leeds PS worker with a practice story saved through their own account: the worker's
    code and the story's id."""
    add_participant(site.store, "pilot", "W1", site="leeds", role="ps_worker", caller=ADMIN)
    make_user(site.store, "own-w1", "ps_worker", study="pilot", site="leeds")
    grant_studio_access(site.store, "pilot", "W1", "own-w1", relation="worker", caller=ADMIN)
    story = save_story(
        site.store, "pilot", "Me too.", told_on=dt.date(2026, 3, 2), caller=Caller("own-w1")
    )
    return "W1", str(story)


def _audit_rows(store: Store) -> int:
    with store.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(AuditLog)) or 0)


def test_every_route_has_an_entry(site: Site) -> None:
    assert _routes(site) == set(ROUTES)


def test_an_anonymous_browser_is_sent_to_sign_in_and_nothing_happens(site: Site) -> None:
    client = browser(site)
    before = _audit_rows(site.store)
    for method, path in _staff(("staff", "staff-post")):
        response = client.request(method, path, data=FORMS.get(path), follow_redirects=False)
        assert response.status_code == 303, (method, path)
        assert response.headers["location"].startswith("/login?next=%2F"), (method, path)
    assert _audit_rows(site.store) == before


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(site: Site) -> None:
    client = signed_in(site)
    other = signed_in(site)  # another session's token is wrong for this one
    wrong = csrf_of(other.get("/studies").text)
    before = _audit_rows(site.store)
    for _, path in _staff(("staff-post",)):
        for token in (None, "", "0" * 64, wrong):
            data = dict(FORMS[path]) | ({} if token is None else {"csrf": token})
            response = client.post(path, data=data, follow_redirects=False)
            assert response.status_code == 403, (path, token)
    assert _audit_rows(site.store) == before
    with site.store.transaction() as s:
        assert s.scalar(select(User.id).where(User.username == "mallory")) is None
    assert client.get("/studies").status_code == 200  # still signed in: /logout was refused


def test_a_site_scoped_user_gets_nothing_of_the_other_site(site: Site, tmp_path: Path) -> None:
    glasgow = _glasgow_recording(site, tmp_path)
    make_user(site.store, "leeds-res", "researcher", study="pilot", site="leeds")
    make_user(site.store, "leeds-admin", "admin", study="pilot", site="leeds", tier="full")
    users_before = list_users(site.store, caller=ADMIN)
    for name in ("leeds-res", "leeds-admin"):
        client = signed_in(site, name)
        token = csrf_of(client.get("/studies").text)
        for method, path in _staff(("staff", "staff-post"), glasgow):
            if path == "/logout":
                continue
            data = {"csrf": token, **FORMS.get(path, {})}
            response = client.request(
                method, path, data=data if method == "POST" else None, follow_redirects=False
            )
            if glasgow not in path:  # a refusal may quote back the address asked for
                assert "B2" not in response.text, (name, method, path)
                assert glasgow[:12] not in response.text, (name, method, path)
            if (method, path) == ("POST", "/studies/pilot/export"):
                assert response.status_code == 200
                frame = pd.read_csv(io.BytesIO(response.content))
                assert set(frame["participant"]) <= {"A1"}
            elif path.startswith("/studies/pilot/hrv/") or path == "/users/tokens/revoke":
                # Another site's recording, or any token id: as if there were none.
                assert response.status_code == 404, (name, method, path)
            elif path.startswith("/users") or path == "/audit/log":
                assert response.status_code == 403, (name, method, path)
        for tier in ("full", "remove_identifiers"):
            out = client.post(
                "/studies/pilot/export", data={"csrf": token, "tier": tier, "format": "tidy-csv"}
            )
            if out.status_code == 200:
                assert set(pd.read_csv(io.BytesIO(out.content))["participant"]) <= {"A1"}
            else:
                assert out.status_code == 403 and name == "leeds-res" and tier == "full"
    pd.testing.assert_frame_equal(list_users(site.store, caller=ADMIN), users_before)


def test_stored_text_comes_back_escaped(site: Site, tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    config = tmp_path / "xss.yaml"
    config.write_text(
        f'title: "{evil}"\nsites: [leeds]\ntimepoints:\n  - name: baseline\n'
        "    instruments: [phq9]\n",
        encoding="utf-8",
    )
    create_study(site.store, "xss", config, caller=ADMIN)
    admin = signed_in(site)
    token = csrf_of(admin.get("/users").text)
    for action, data in (
        ("/users", {"username": evil, "password": PASSWORD}),
        ("/users/grant", {"username": evil, "role": "auditor", "reason": evil}),
    ):
        done = admin.post(action, data={"csrf": token, **data}, follow_redirects=False)
        assert done.status_code == 303, done.text
    pages = [admin.get(p) for p in ("/studies", "/studies/xss", "/users", "/audit/log")]
    for page in pages:
        assert page.status_code == 200, page.url
        assert evil not in page.text, page.url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text, page.url
    # The account with that name signs in and is shown escaped in the navigation too.
    own = signed_in(site, evil).get("/audit")
    assert evil not in own.text and "&lt;script&gt;" in own.text


def test_staff_pages_have_one_heading_no_inline_script_or_style_and_the_headers(
    site: Site, tmp_path: Path
) -> None:
    glasgow = _glasgow_recording(site, tmp_path)
    worker, story = _practice_story(site)
    admin = signed_in(site)
    for method, path in _staff(("staff",), glasgow, story, worker):
        page = admin.request(method, path)
        assert page.status_code == 200, (path, page.text)
        body = page.text
        # Scripts only as files of this site (the import page's progress), never inline.
        scripts = re.findall(r"<script[^>]*>(.*?)</script>", body, re.S)
        assert all(not code for code in scripts), path
        assert len(scripts) == body.count('<script src="/static/'), path
        assert "style=" not in body and "<style" not in body, path
        assert body.count("<h1>") == 1 and '<main id="main"' in body, path
        assert page.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_imports_reach_only_the_callers_studies_and_sites(site: Site, tmp_path: Path) -> None:
    """A Leeds researcher of the pilot sends real files through every import route: into a
    study where they hold no role (Glasgow only) everything is refused as if the study did not
    exist (404); into the pilot, anything for Glasgow's B2 or study-wide (the data dictionary)
    is refused; nothing is stored either way."""
    config = tmp_path / "glasgow.yaml"
    config.write_text(
        "title: Glasgow only\nsites: [glasgow]\ntimepoints:\n  - name: baseline\n"
        "    instruments: [phq9]\n",
        encoding="utf-8",
    )
    create_study(site.store, "glasgow-only", config, caller=ADMIN)
    add_participant(site.store, "glasgow-only", "G1", site="glasgow", caller=ADMIN)
    make_user(site.store, "leeds-res", "researcher", study="pilot", site="leeds")
    client = signed_in(site, "leeds-res")
    token = csrf_of(client.get("/studies").text)
    phq9 = ",".join(f"phq9_{i}" for i in range(1, 10))
    edf = (Path(__file__).parents[2] / "src/peerlens/examples/session_ecg.edf").read_bytes()
    dictionary = (Path(__file__).parents[1] / "study/data/redcap_dictionary.csv").read_bytes()

    def sends(code: str) -> dict[str, tuple[dict[str, str], tuple[str, bytes]]]:
        rows = f"{code},{','.join(['1'] * 9)}\n"
        return {
            "responses": (
                {"timepoint": "baseline"},
                ("r.csv", f"participant,{phq9}\n{rows}".encode()),
            ),
            "dictionary": ({}, ("d.csv", dictionary)),
            "redcap": (
                {"create_participants": "yes"},
                (
                    "rc.csv",
                    f"record_id,redcap_event_name,{phq9}\n{code},baseline,{rows[3:]}".encode(),
                ),
            ),
            "recording": ({"participant": code}, ("s.edf", edf)),
        }

    def stored() -> tuple[int, int]:
        with site.store.transaction() as s:
            n_rec = s.scalar(select(func.count()).select_from(Recording)) or 0
            n_resp = s.scalar(select(func.count()).select_from(Response)) or 0
        return int(n_rec), int(n_resp)

    before = stored()
    # A study the caller holds no role in reads as one that does not exist (404).
    assert client.get("/studies/glasgow-only/import").status_code == 404
    for study, code in (("glasgow-only", "G1"), ("pilot", "B2")):
        for form, (data, upload) in sends(code).items():
            name = "files" if form == "recording" else "file"
            response = client.post(
                f"/studies/{study}/import/{form}",
                data={"csrf": token, **data},
                files={name: (upload[0], upload[1], "application/octet-stream")},
            )
            if study == "glasgow-only" or form == "recording":  # B2 is Glasgow's: not seen
                assert response.status_code == 404, (study, form, response.text)
            elif form == "dictionary":
                assert response.status_code == 403, (study, form, response.text)
            else:  # rows of another site's participant are problems of the file
                assert response.status_code == 400, (study, form, response.text)
                assert "nothing was imported" in response.text, (study, form)
    assert stored() == before


#: The path parameters naming something a caller may not see, and a value naming nothing.
_MISSING = {
    "study": "no-such-study",
    "participant": "ZZ9",
    "code": "ZZ9",
    "recording": "f" * 16,
    "story_id": "999999",
}


def test_what_a_caller_may_not_see_reads_as_what_does_not_exist(
    site: Site, tmp_path: Path, visit_config_path: Path
) -> None:
    """For every staff route naming a study, participant, recording or story, a caller without
    rights to it gets the same status and the same page (the names aside) as for a name that
    does not exist: a refusal never tells what exists."""
    glasgow = _glasgow_recording(site, tmp_path)
    worker, story = _practice_story(site)  # in Leeds
    add_participant(site.store, "pilot", "W2", site="glasgow", role="ps_worker", caller=ADMIN)
    make_user(site.store, "own-w2", "ps_worker", study="pilot", site="glasgow")
    grant_studio_access(site.store, "pilot", "W2", "own-w2", relation="worker", caller=ADMIN)
    their = save_story(
        site.store, "pilot", "Me too.", told_on=dt.date(2026, 3, 2), caller=Caller("own-w2")
    )
    create_study(site.store, "other", visit_config_path, caller=ADMIN)
    make_user(site.store, "outsider", "admin", study="other", tier="full")
    make_user(site.store, "leeds-res", "researcher", study="pilot", site="leeds")
    # Each caller with the names it may not see: a study of which it holds no role; another
    # site's participant, their recording, PS worker and story.
    invisible = {
        "outsider": {"study": "pilot"},
        "leeds-res": {
            "participant": "B2",
            "code": "W2",
            "recording": glasgow[:16],
            "story_id": str(their),
        },
    }
    known = {"study": "pilot", "participant": "A1", "code": worker, "story_id": story}
    known |= {"recording": glasgow[:16]}
    compared = 0
    for name, hidden in invisible.items():
        client = signed_in(site, name)
        token = csrf_of(client.get("/studies").text)
        for (method, pattern), kind in ROUTES.items():
            named = [k for k in hidden if "{" + k + "}" in pattern]
            if kind not in ("staff", "staff-post") or not named:
                continue
            seen = {}
            for values in ({**known, **hidden}, {**known, **{k: _MISSING[k] for k in hidden}}):
                path = pattern.format(**values)
                form = FORMS.get(pattern.format(**known), {})
                response = client.request(
                    method,
                    path,
                    data={"csrf": token, **form} if method == "POST" else None,
                    follow_redirects=False,
                )
                body = response.text
                for k in named:  # the name asked for may be quoted back
                    body = re.sub(rf"\b{re.escape(values[k])}\b", "<" + k + ">", body)
                seen[path] = (response.status_code, body)
            (shown, hidden_page), (_, missing_page) = seen.items()
            assert hidden_page == missing_page, (name, method, shown)
            assert hidden_page[0] == 404, (name, method, shown)
            compared += 1
    assert compared >= 12  # every study route for the outsider, the named ones for leeds-res

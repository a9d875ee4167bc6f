"""Staff sign-in over HTTP: the form, cookies, CSRF, the ``next`` page, one message for every
failure, lockout, session fixation and sign-out; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from http.cookies import SimpleCookie

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from peerlens.study import SignInLimits, resume_session
from peerlens.study.models import LoginFailure, WebSession, utcnow
from peerlens.study.web_sessions import MAX_PER_USER, SIGN_IN_REFUSED
from peerlens.web import WebSettings, create_app

from ..conftest import ACTOR, PASSWORD, Site, browser, csrf_of, make_user, signed_in


def _post_login(
    client: TestClient, username: str = ACTOR, password: str = PASSWORD, **extra: str
) -> object:
    form = client.get("/login")
    data = {"csrf": csrf_of(form.text), "username": username, "password": password, **extra}
    return client.post("/login", data=data, follow_redirects=False)


def _set_cookie(response: object, name: str) -> str | None:
    for header in response.headers.get_list("set-cookie"):  # type: ignore[attr-defined]
        if header.startswith(f"{name}="):
            return str(header)
    return None


def _sessions(site: Site) -> int:
    with site.store.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(WebSession)) or 0)


def test_the_form_is_plain_and_labelled(site: Site) -> None:
    page = browser(site).get("/login")
    assert page.status_code == 200
    assert '<label class="typed" for="username">' in page.text
    assert '<label class="typed" for="password">' in page.text
    assert 'autocomplete="current-password"' in page.text and "<script" not in page.text
    login_cookie = _set_cookie(page, "peerlens_login")
    assert login_cookie is not None and "HttpOnly" in login_cookie


def test_signing_in_sets_a_strict_http_only_secure_cookie(site: Site) -> None:
    client = browser(site)
    done = _post_login(client, next="/studies?x=1")
    assert done.status_code == 303 and done.headers["location"] == "/studies?x=1"  # type: ignore[attr-defined]
    header = _set_cookie(done, "peerlens_session")
    assert header is not None
    for part in ("HttpOnly", "SameSite=strict", "Path=/", "Secure"):
        assert part.lower() in header.lower(), part
    token = SimpleCookie(header)["peerlens_session"].value
    assert resume_session(site.store, token).username == ACTOR
    assert client.get("/studies").status_code == 200


def test_without_tls_the_cookie_is_not_marked_secure(site: Site) -> None:
    app = create_app(site.store, WebSettings(hsts=False, secret=b"another test secret"))
    client = TestClient(app, raise_server_exceptions=False)
    done = _post_login(client)
    header = _set_cookie(done, "peerlens_session")
    assert header is not None and "secure" not in header.lower()
    assert client.get("/studies").status_code == 200


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "studies", "/\\x"])
def test_next_never_leaves_the_site(site: Site, target: str) -> None:
    done = _post_login(browser(site), next=target)
    assert done.headers["location"] == "/studies"  # type: ignore[attr-defined]
    page = browser(site).get("/login", params={"next": target})
    assert 'name="next" value="/studies"' in page.text


def test_an_anonymous_browser_is_sent_to_sign_in_and_back(site: Site) -> None:
    client = browser(site)
    first = client.get("/studies", params={"a": "b"}, follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/login?next=%2Fstudies%3Fa%3Db"
    form = client.get(first.headers["location"])
    assert 'name="next" value="/studies?a=b"' in form.text
    done = client.post(
        "/login",
        data={
            "csrf": csrf_of(form.text),
            "username": ACTOR,
            "password": PASSWORD,
            "next": "/studies?a=b",
        },
        follow_redirects=True,
    )
    assert done.status_code == 200 and "<h1>Studies</h1>" in done.text


def test_a_sign_in_without_or_with_a_wrong_csrf_token_is_refused(site: Site) -> None:
    client = browser(site)
    client.get("/login")
    for data in (
        {"username": ACTOR, "password": PASSWORD},
        {"username": ACTOR, "password": PASSWORD, "csrf": "0" * 64},
    ):
        refused = client.post("/login", data=data, follow_redirects=False)
        assert refused.status_code == 403 and _set_cookie(refused, "peerlens_session") is None
    # A token from another browser's form is refused too (bound to that browser's cookie).
    other = browser(site).get("/login")
    refused = client.post(
        "/login",
        data={"csrf": csrf_of(other.text), "username": ACTOR, "password": PASSWORD},
        follow_redirects=False,
    )
    assert refused.status_code == 403
    assert _sessions(site) == 0


def test_every_failure_reads_the_same_and_sets_no_session(site: Site) -> None:
    texts = []
    for username, password in ((ACTOR, "wrong password"), ("nobody", PASSWORD)):
        page = _post_login(browser(site), username, password)
        assert page.status_code == 200  # type: ignore[attr-defined]
        assert _set_cookie(page, "peerlens_session") is None or "Max-Age=0" in str(
            _set_cookie(page, "peerlens_session")
        )
        texts.append(page.text)  # type: ignore[attr-defined]
        assert 'role="alert"' in page.text  # type: ignore[attr-defined]
    assert all(SIGN_IN_REFUSED in t for t in texts)
    assert _sessions(site) == 0


def test_brute_force_locks_the_account(site: Site) -> None:
    make_user(site.store, "ada", "researcher")
    client = browser(site)
    for _ in range(MAX_PER_USER):
        assert SIGN_IN_REFUSED in _post_login(client, "ada", "guess").text  # type: ignore[attr-defined]
    locked = _post_login(browser(site), "ada", PASSWORD)
    assert SIGN_IN_REFUSED in locked.text  # type: ignore[attr-defined]
    assert _set_cookie(locked, "peerlens_session") is None or "Max-Age=0" in str(
        _set_cookie(locked, "peerlens_session")
    )


def test_a_session_id_known_before_sign_in_is_never_valid_after(site: Site) -> None:
    # An attacker signs in, then plants their own live session id in the victim's browser.
    attacker = signed_in(site)
    planted = attacker.cookies["peerlens_session"]
    victim = browser(site)
    victim.cookies.set("peerlens_session", planted, domain="testserver.local")
    assert victim.get("/studies").status_code == 200  # the planted id is sent, and live
    done = _post_login(victim)
    fresh = SimpleCookie(str(_set_cookie(done, "peerlens_session")))["peerlens_session"].value
    assert fresh != planted
    assert attacker.get("/studies", follow_redirects=False).status_code == 303  # ended
    # A made-up id set before sign-in is never accepted either.
    made_up = browser(site)
    made_up.cookies.set("peerlens_session", "chosen-by-attacker", domain="testserver.local")
    assert made_up.get("/studies", follow_redirects=False).status_code == 303


def test_sign_out_ends_the_session_on_the_server(site: Site) -> None:
    client = signed_in(site)
    token = client.cookies["peerlens_session"]
    replay = browser(site)
    replay.cookies.set("peerlens_session", token, domain="testserver.local")
    assert replay.get("/studies", follow_redirects=False).status_code == 200
    page = client.get("/studies")
    refused = client.post("/logout", data={"csrf": "0" * 64}, follow_redirects=False)
    assert refused.status_code == 403
    done = client.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/login"
    assert replay.get("/studies", follow_redirects=False).status_code == 303
    assert _sessions(site) == 0


def _app_with(site: Site, limits: SignInLimits) -> TestClient:
    app = create_app(site.store, WebSettings(hsts=True, secret=b"test", sign_in=limits))
    return TestClient(app, base_url="https://testserver", raise_server_exceptions=False)


def test_the_lockout_follows_the_settings(site: Site) -> None:
    make_user(site.store, "ada", "researcher")
    make_user(site.store, "bob", "researcher")
    # Two failures lock a name when the settings say two (the default takes five).
    strict = _app_with(site, SignInLimits(max_per_user=2))
    for _ in range(2):
        assert SIGN_IN_REFUSED in _post_login(strict, "ada", "guess").text  # type: ignore[attr-defined]
    assert SIGN_IN_REFUSED in _post_login(strict, "ada", PASSWORD).text  # type: ignore[attr-defined]
    lenient = _app_with(site, SignInLimits())
    for _ in range(2):
        _post_login(lenient, "bob", "guess")
    assert _post_login(lenient, "bob", PASSWORD).status_code == 303  # type: ignore[attr-defined]
    # Failures older than the window are not counted: with a one-minute window, failures
    # moved two minutes back unlock the name; with the default 15 minutes they still count.
    with site.store.transaction() as s:
        s.execute(update(LoginFailure).values(at=utcnow() - dt.timedelta(minutes=2)))
    assert SIGN_IN_REFUSED in _post_login(strict, "ada", PASSWORD).text  # type: ignore[attr-defined]
    short = _app_with(site, SignInLimits(window=dt.timedelta(minutes=1), max_per_user=2))
    assert _post_login(short, "ada", PASSWORD).status_code == 303  # type: ignore[attr-defined]

"""CSRF tokens: bound to one link and one secret, checked in constant time."""

from __future__ import annotations

import logging
import re

import pytest
import typer
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from peerlens._commands._common import user_errors
from peerlens.study import Store
from peerlens.web.security import SecurityHeaders, csrf_token, csrf_valid, security_headers


def test_a_csrf_token_fits_only_its_link_and_secret() -> None:
    token = csrf_token(b"k1", "link-a")
    assert csrf_valid(b"k1", "link-a", {"csrf": token})
    assert not csrf_valid(b"k1", "link-b", {"csrf": token})
    assert not csrf_valid(b"k2", "link-a", {"csrf": token})
    assert not csrf_valid(b"k1", "link-a", {})
    assert not csrf_valid(b"k1", "link-a", {"csrf": ""})
    assert "link-a" not in token


def test_static_files_may_be_cached_pages_may_not() -> None:
    assert "Cache-Control" not in security_headers("/static/peerlens.css", hsts=False)
    assert security_headers("/", hsts=True)["Strict-Transport-Security"].startswith("max-age=")


#: Identifying text a failing statement carries (PostgreSQL's error detail quotes the row).
_SECRET = "Mary Jones, 4 Hill Street"


def _failing_insert(store: Store) -> None:
    """A NOT NULL violation whose row holds :data:`_SECRET`."""
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO study (name, title, missing_codes_json, created_at) "
                "VALUES (:n, :t, '[]', NULL)"
            ),
            {"n": "s1", "t": _SECRET},
        )


def test_the_database_error_itself_quotes_the_row_on_postgresql(store: Store) -> None:
    # What the log must not carry (so the next test can fail): the driver's detail quotes it.
    with pytest.raises(IntegrityError) as info:
        _failing_insert(store)
    if store.dialect == "postgresql":
        assert _SECRET in str(info.value)


def test_a_failing_request_is_logged_without_the_row_or_the_parameters(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    async def fails(scope: Scope, receive: Receive, send: Send) -> None:
        _failing_insert(store)

    client = TestClient(SecurityHeaders(fails, hsts=False), raise_server_exceptions=False)
    with caplog.at_level(logging.DEBUG):
        response = client.post("/p/some-link-token/page", data={"story": _SECRET})
    assert response.status_code == 500 and _SECRET not in response.text
    logged = [r for r in caplog.records if r.name.startswith("peerlens")]
    assert len(logged) == 1 and logged[0].exc_info is None and logged[0].exc_text is None
    line = logged[0].getMessage()
    assert _SECRET not in line and "some-link-token" not in line
    assert re.fullmatch(r"request [0-9a-f]{16} failed \(POST\): IntegrityError, .*", line)
    if store.dialect == "postgresql":
        assert "SQLSTATE 23502, table study, column created_at" in line
    else:
        assert "SQLSTATE SQLITE_CONSTRAINT_NOTNULL" in line
    assert re.search(r", at \w+\.py:\d+ in \w+$", line)  # where, for whoever debugs it


def test_the_cli_reports_a_database_error_without_its_detail(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as info, user_errors():
        _failing_insert(store)
    assert info.value.exit_code == 1
    err = capsys.readouterr().err
    assert "the database refused the operation (IntegrityError" in err
    assert _SECRET not in err and "Failing row" not in err

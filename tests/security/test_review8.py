"""Review 8 (hostile review of issues 9 and 12): regressions and gaps found after reviews 1-7."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from peerlens.study import (
    Caller,
    PermissionDenied,
    Store,
    add_participant,
    audit_frame,
    create_study,
    create_token,
    export_study,
    issue_link,
    resume_token,
    set_active,
    set_password,
    verify_audit,
)
from peerlens.web import WebSettings, create_app

from ..conftest import ADMIN, PASSWORD, make_user

BIG = 20 * 1024 * 1024


@dataclass
class Counted:
    """A client of the web app that counts the request body bytes the app read."""

    client: TestClient
    read: list[int]
    link: str


@pytest.fixture
def counted(store: Store, visit_config_path: Path) -> Iterator[Counted]:
    create_study(store, "pilot", visit_config_path, caller=ADMIN)
    add_participant(store, "pilot", "A1", site="leeds", caller=ADMIN)
    issued = issue_link(store, "pilot", "A1", timepoint="baseline", caller=ADMIN)
    app = create_app(store, WebSettings(hsts=True, secret=b"test secret, protects nothing"))
    read = [0]

    async def counting(scope: Scope, receive: Receive, send: Send) -> None:
        async def counted_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                read[0] += len(message.get("body", b""))
            return message

        await app(scope, counted_receive, send)

    with TestClient(
        counting, base_url="https://testserver", raise_server_exceptions=False
    ) as client:
        yield Counted(client, read, f"/p/A1/{issued.token}")


def test_an_anonymous_sign_in_form_with_a_huge_file_is_refused_unread(counted: Counted) -> None:
    """R8-1: the sign-in form was read whole (files spooled to disk, fields to memory) before
    its CSRF token was checked: anyone could make the server hold any amount."""
    r = counted.client.post("/login", files={"f": ("a.bin", b"x" * BIG)}, data={"username": "x"})
    assert r.status_code == 413
    assert counted.read[0] < 1024 * 1024


def test_an_anonymous_huge_form_to_a_participant_page_is_refused_unread(counted: Counted) -> None:
    fields = {f"k{i}": "y" * 1_000_000 for i in range(20)}
    r = counted.client.post(f"{counted.link}/page/1", data=fields)
    assert r.status_code == 413
    assert counted.read[0] < 1024 * 1024
    # A form without its length (chunked) is refused as well.
    r = counted.client.post(
        f"{counted.link}/page/1",
        content=iter([b"csrf=x&", b"a=1"]),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 411


def test_an_anonymous_huge_json_body_is_refused_before_it_is_read(counted: Counted) -> None:
    """FastAPI reads a JSON body whole, into memory, before it resolves the caller's token."""
    body = b'{"rows": [' + b'{"a": 1},' * (40 * 1024 * 1024 // 9) + b'{"a": 1}]}'
    r = counted.client.post(
        "/api/v1/studies/pilot/responses",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "too_large"
    assert counted.read[0] < 1024 * 1024


def test_an_ordinary_form_still_arrives(counted: Counted) -> None:
    """The limit leaves ordinary forms alone: a wrong password is refused as such."""
    form = counted.client.get("/login")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', form.text)
    assert csrf is not None
    r = counted.client.post(
        "/login", data={"csrf": csrf.group(1), "username": "nobody", "password": "x" * 100}
    )
    assert r.status_code == 200
    assert "Sign in" in r.text


@pytest.mark.parametrize("remedy", ["admin reset", "own change", "deactivate and reactivate"])
def test_a_token_minted_by_a_thief_ends_with_the_password_reset(store: Store, remedy: str) -> None:
    """R8-2: someone who had a staff member's password (or session) for a while mints a
    366-day token with every scope; the remedy that ends their web sessions (a password reset,
    or deactivating the account) must end that token too, and the audit chain must say so (a
    row copied back from before the reset must not revive it: review 7, R7-2)."""
    victim = make_user(store, "vic", "admin")
    stolen = create_token(store, "backup job", scopes=["read", "export"], days=366, caller=victim)
    assert resume_token(store, stolen.token) == Caller("vic", stolen.id)
    if remedy == "admin reset":
        set_password(store, "vic", "a brand new passphrase", caller=ADMIN)
    elif remedy == "own change":
        set_password(
            store, "vic", "a brand new passphrase", caller=victim, current_password=PASSWORD
        )
    else:
        set_active(store, "vic", False, caller=ADMIN)
        set_active(store, "vic", True, caller=ADMIN)
    with pytest.raises(PermissionDenied):
        resume_token(store, stolen.token)
    log = audit_frame(store, caller=ADMIN)
    revoked = log[(log.action == "token.revoke") & (log.entity_id == str(stolen.id))]
    assert len(revoked) == 1
    assert verify_audit(store, caller=ADMIN).ok


def test_the_export_manifest_never_follows_a_planted_symlink(
    store: Store, config_path: Path, tmp_path: Path
) -> None:
    """R8-3: the data file is written through a private temporary file (review 6, R6-7), but
    its manifest was written with ``write_text``: a symlink planted at ``<out>.manifest.json``
    by someone who can write the folder sent the manifest to a file of their choosing
    (overwriting it), and the manifest was readable by everyone (the umask's 0644)."""
    create_study(store, "pilot", config_path, caller=ADMIN)
    add_participant(store, "pilot", "P1", site="leeds", caller=ADMIN)
    victim = tmp_path / "victim.txt"
    victim.write_text("the exporter's own file\n")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "out.csv.manifest.json").symlink_to(victim)
    result = export_study(store, "pilot", shared / "out.csv", caller=ADMIN)
    assert victim.read_text() == "the exporter's own file\n"
    assert not result.manifest.is_symlink()
    assert result.manifest.stat().st_mode & 0o077 == 0
    assert json.loads(result.manifest.read_text())["sha256"] == result.sha256

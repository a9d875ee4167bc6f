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
    DICTIONARY_COLUMNS,
    Caller,
    NotFound,
    PermissionDenied,
    Store,
    StudyError,
    add_participant,
    add_recording,
    audit_frame,
    check_operation,
    create_study,
    create_token,
    export_study,
    import_data_dictionary,
    issue_link,
    resume_token,
    set_active,
    set_password,
    verify_audit,
)
from peerlens.web import WebSettings, create_app
from peerlens.web.deps import SESSION_COOKIE
from peerlens.web.security import csrf_token

from ..conftest import ADMIN, PASSWORD, make_user

BIG = 20 * 1024 * 1024
SECRET = b"test secret, protects nothing"


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
    app = create_app(store, WebSettings(hsts=True, secret=SECRET))
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


#: The dashboard's import forms: form -> (the fields sent with the file, the file's input).
IMPORT_FORMS = {
    "responses": ({"timepoint": "baseline"}, "file"),
    "dictionary": ({}, "file"),
    "redcap": ({}, "file"),
    "recording": ({"participant": "A1", "kind": "rr"}, "file"),
}
UPLOAD = 8_000_000


def _signed_in(counted: Counted, username: str) -> str:
    """Sign ``username`` in on the counted client; return the CSRF token of their session."""
    form = counted.client.get("/login")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', form.text)
    assert csrf is not None
    done = counted.client.post(
        "/login",
        data={"csrf": csrf.group(1), "username": username, "password": PASSWORD},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    return csrf_token(SECRET, counted.client.cookies[SESSION_COOKIE])


def _uploads_left(store: Store) -> list[Path]:
    root = store.blob_dir / ".uploads"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.parametrize("form", sorted(IMPORT_FORMS))
@pytest.mark.parametrize(
    ("role", "site"), [("auditor", None), ("ps_worker", None), ("researcher", "leeds")]
)
def test_an_import_the_caller_may_not_make_is_refused_unread(
    counted: Counted, store: Store, form: str, role: str, site: str | None
) -> None:
    """R8-4: a signed-in staff member without the right to import (an auditor, a PS worker;
    a site-scoped researcher for the study-wide data dictionary) had the whole upload streamed
    to the upload area before the study API refused it. The refusal (403, as the import's own)
    now comes before a byte of the form is read; a site-scoped researcher's other imports are
    still received."""
    make_user(store, "staff", role, study="pilot", site=site)
    csrf = _signed_in(counted, "staff")
    fields, file_input = IMPORT_FORMS[form]
    counted.read[0] = 0
    r = counted.client.post(
        f"/studies/pilot/import/{form}",
        data={"csrf": csrf, **fields},
        files={file_input: ("big.csv", b"1" * UPLOAD, "text/csv")},
    )
    allowed = role == "researcher" and form != "dictionary"
    if allowed:
        assert r.status_code != 403 and counted.read[0] > UPLOAD
    else:
        assert r.status_code == 403
        assert counted.read[0] == 0
    assert _uploads_left(store) == []


@pytest.mark.parametrize(
    ("who", "scopes", "participant", "status", "code"),
    [
        ("researcher", ["read"], "A1", 403, "forbidden"),
        ("auditor", ["read", "write"], "A1", 403, "forbidden"),
        ("researcher-leeds", ["read", "write"], "B2", 404, "not_found"),
        ("researcher-leeds", ["read", "write"], "Z9", 404, "not_found"),
    ],
)
def test_a_recording_upload_the_token_may_not_make_is_refused_unread(
    counted: Counted,
    store: Store,
    tmp_path: Path,
    who: str,
    scopes: list[str],
    participant: str,
    status: int,
    code: str,
) -> None:
    """R8-4: a token without the ``write`` scope (or whose user may not add recordings, or not
    for that participant) had the whole recording streamed to the upload area before the study
    API refused it. It is now refused before the body is read, with the API's error object and
    the words the study API gives for the operation itself."""
    add_participant(store, "pilot", "B2", site="glasgow", caller=ADMIN)
    role, _, site = who.partition("-")
    user = make_user(store, who, role, study="pilot", site=site or None)
    token = create_token(store, "script", scopes=scopes, caller=user)
    counted.read[0] = 0
    r = counted.client.post(
        f"/api/v1/studies/pilot/participants/{participant}/recordings",
        data={"kind": "rr"},
        files={"files": ("rr.txt", b"800\n" * (UPLOAD // 4), "text/plain")},
        headers={"Authorization": f"Bearer {token.token}"},
    )
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert counted.read[0] == 0
    assert _uploads_left(store) == []
    rr = tmp_path / "rr.txt"
    rr.write_text("800\n810\n790\n805\n")
    with pytest.raises(PermissionDenied) as refused:
        add_recording(
            store,
            "pilot",
            rr,
            participant=participant,
            kind="rr",
            caller=resume_token(store, token.token),
        )
    assert r.json()["error"]["message"] == str(refused.value)


def test_asking_first_answers_in_the_operations_own_words(
    store: Store, config_path: Path, tmp_path: Path
) -> None:
    """The probe the upload routes call decides by the operation's own rule (no second copy):
    a site-scoped researcher may add a recording for their site's participant, not for another
    site's, and may not replace the study-wide data dictionary, refused as the import is."""
    create_study(store, "pilot", config_path, caller=ADMIN)
    add_participant(store, "pilot", "L1", site="leeds", caller=ADMIN)
    add_participant(store, "pilot", "G1", site="glasgow", caller=ADMIN)
    leeds = make_user(store, "leeds", "researcher", study="pilot", site="leeds")
    grant = check_operation(store, "pilot", add_recording, participant="L1", caller=leeds)
    assert grant.operation == "recording.add" and grant.sites == frozenset({"leeds"})
    with pytest.raises(NotFound, match="outside your site"):
        check_operation(store, "pilot", "recording.add", participant="G1", caller=leeds)
    dictionary = tmp_path / "dict.csv"
    header = ",".join(f'"{c}"' for c in DICTIONARY_COLUMNS)
    dictionary.write_text(f"{header}\nrecord_id,contact,,text,ID{',' * 13}\n", encoding="utf-8")
    with pytest.raises(PermissionDenied) as real:
        import_data_dictionary(store, "pilot", dictionary, caller=leeds)
    with pytest.raises(PermissionDenied) as probe:
        check_operation(store, "pilot", import_data_dictionary, caller=leeds)
    assert str(probe.value) == str(real.value)
    with pytest.raises(StudyError, match="not an operation"):
        check_operation(store, "pilot", "no.such.operation", caller=leeds)

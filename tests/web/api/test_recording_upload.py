"""Uploading a recording through the API over HTTP: real records (an EDF+, WFDB records as their
header and signal files, an RR file) stored and answered with 201 and the stored recording;
files the ECG readers cannot read refused with the readers' words (the dashboard's and the
CLI's); another site's participant, a token without the ``write`` scope, a body over the size
limit and a malformed form refused; nothing stored, nothing audited and no upload left behind
on any refusal. On SQLite and PostgreSQL."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from peerlens import PeerlensError
from peerlens.hrv import read_ecg
from peerlens.study import Caller, Store
from peerlens.study.models import AuditLog, Recording
from peerlens.web import WebSettings, create_app

from ..._recordings import EXAMPLE_EDF, broken, readable
from .conftest import Site, api, bearer, make_user, token

URL = "/api/v1/studies/pilot/participants/{}/recordings"


def _files(*paths: Path) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]


def _audit_rows(store: Store) -> list[str]:
    with store.transaction() as s:
        return list(s.scalars(select(AuditLog.action).order_by(AuditLog.seq)))


def _stored(store: Store) -> list[tuple[int, str, str]]:
    with store.transaction() as s:
        rows = s.execute(select(Recording.id, Recording.sha256, Recording.suffix))
        return sorted((int(a), str(b), str(c)) for a, b, c in rows)


def _uploads_left(store: Store) -> list[Path]:
    root = store.blob_dir / ".uploads"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _nothing_happened(store: Store, before: list[str]) -> None:
    assert _stored(store) == []
    assert _audit_rows(store) == before
    assert _uploads_left(store) == []
    assert [p for p in store.blob_dir.rglob("*") if p.is_file()] == []


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "where"}
    assert body["error"]["code"] == code, body
    error: dict[str, Any] = body["error"]
    return error


def test_real_records_are_stored_and_answered_with_the_recording(
    site: Site, tmp_path: Path
) -> None:
    client = api(site, scopes=("write",))
    records = readable(tmp_path / "in")
    wfdb = client.post(
        URL.format("A1"),
        data={
            "kind": "ecg",
            "device": "MIT-BIH",
            "windows": "rest:0:300\nsession:300:900",
            "reason": "lab visit",
        },
        files=_files(*records["mitdb-100"].files),
    )
    assert wfdb.status_code == 201, wfdb.text
    body = wfdb.json()
    assert body["file"] == "100.hea" and body["participant"] == "A1" and body["kind"] == "ecg"
    assert body["device"] == "MIT-BIH" and body["sampling_rate_hz"] is None
    assert body["windows"] == [
        {"label": "rest", "start_s": 0.0, "end_s": 300.0},
        {"label": "session", "start_s": 300.0, "end_s": 900.0},
    ]
    edf = client.post(URL.format("B2"), files=_files(*records["example-edf"].files))
    assert edf.status_code == 201, edf.text
    assert edf.json()["file"] == EXAMPLE_EDF.name and edf.json()["windows"] == []
    # What was answered is what was stored: the WFDB record whole, the EDF as a file.
    assert _stored(site.store) == sorted(
        [(body["id"], body["sha256"], ".wfdb"), (edf.json()["id"], edf.json()["sha256"], ".edf")]
    )
    stored = site.store.blob_dir / body["sha256"][:2] / f"{body['sha256']}.wfdb"
    assert sorted(p.suffix for p in stored.iterdir()) == [".dat", ".hea"]
    # The same record again: the recording stored before.
    again = client.post(URL.format("A1"), files=_files(*records["mitdb-100"].files))
    assert again.status_code == 201 and again.json()["id"] == body["id"]
    assert _audit_rows(site.store).count("recording.add") == 2
    assert _uploads_left(site.store) == []


def test_an_rr_file_with_its_kind_and_rate(site: Site, tmp_path: Path) -> None:
    rr = tmp_path / "visit.rr.txt"
    rr.write_text("\n".join(f"{800 + 40 * math.sin(i / 3):.3f}" for i in range(300)) + "\n")
    client = api(site, scopes=("write",))
    done = client.post(
        URL.format("A1"), data={"kind": "rr", "timepoint": "baseline"}, files=_files(rr)
    )
    assert done.status_code == 201, done.text
    assert done.json()["kind"] == "rr" and done.json()["timepoint"] == "baseline"
    bad_rate = client.post(URL.format("A1"), data={"sampling_rate": "fast"}, files=_files(rr))
    error = _error(bad_rate, 422, "invalid_upload")
    assert error["message"] == "sampling rate 'fast': give a number of Hz"
    assert error["where"] == {"field": "sampling_rate"}
    assert len(_stored(site.store)) == 1


def test_a_damaged_file_is_refused_with_the_readers_words_and_nothing_is_stored(
    site: Site, tmp_path: Path
) -> None:
    client = api(site, scopes=("write",))
    before = _audit_rows(site.store)
    for case, upload in broken(tmp_path / "in").items():
        refused = client.post(URL.format("A1"), files=_files(*upload.files))
        error = _error(refused, 422, "unreadable")
        with pytest.raises(PeerlensError) as reader:
            read_ecg(upload.path)
        assert str(reader.value) in error["message"], (case, error)
        assert upload.refused is not None and upload.refused in error["message"], case
        assert error["where"] == {"field": "files", "file": upload.path.name}, case
        assert str(tmp_path) not in refused.text and ".uploads" not in refused.text, case
    _nothing_happened(site.store, before)


def test_a_wfdb_record_needs_its_header_and_its_signal_files(site: Site, tmp_path: Path) -> None:
    records = readable(tmp_path / "in")
    hea, dat = records["mitdb-100"].files
    client = api(site, scopes=("write",))
    before = _audit_rows(site.store)
    no_header = _error(
        client.post(URL.format("A1"), files=_files(dat, EXAMPLE_EDF)), 422, "invalid_upload"
    )
    assert no_header["message"].startswith("Recording: choose one recording file, or a WFDB")
    assert no_header["where"] == {"field": "files"}
    nothing = _error(client.post(URL.format("A1"), data={"kind": "ecg"}), 422, "invalid_upload")
    assert nothing["where"] == {"field": "files"}
    twice = _error(
        client.post(URL.format("A1"), files=_files(hea, dat, dat)), 422, "invalid_upload"
    )
    assert "100.dat: two files of this name were sent" in twice["message"]
    header_alone = _error(client.post(URL.format("A1"), files=_files(hea)), 422, "unreadable")
    assert header_alone["where"]["file"] == "100.hea"
    assert str(site.store.blob_dir) not in header_alone["message"]
    _nothing_happened(site.store, before)


def test_another_sites_participant_reads_as_not_there(site: Site) -> None:
    make_user(site.store, "leeds-res", "researcher", study="pilot", site="leeds")
    client = api(site, Caller("leeds-res"), ("write",))
    before = _audit_rows(site.store)
    other = _error(client.post(URL.format("B2"), files=_files(EXAMPLE_EDF)), 404, "not_found")
    unknown = _error(client.post(URL.format("Z9"), files=_files(EXAMPLE_EDF)), 404, "not_found")
    assert other["message"].replace("B2", "Z9") == unknown["message"]
    _nothing_happened(site.store, before)
    own = client.post(URL.format("A1"), files=_files(EXAMPLE_EDF))
    assert own.status_code == 201 and own.json()["participant"] == "A1"


def test_a_token_without_the_write_scope_stores_nothing(site: Site) -> None:
    client = api(site, scopes=("read", "export"))
    before = _audit_rows(site.store)
    error = _error(client.post(URL.format("A1"), files=_files(EXAMPLE_EDF)), 403, "forbidden")
    assert "'write' scope" in error["message"]
    _nothing_happened(site.store, before)
    anonymous = TestClient(site.client.app, raise_server_exceptions=False)
    _error(anonymous.post(URL.format("A1"), files=_files(EXAMPLE_EDF)), 401, "unauthenticated")
    _nothing_happened(site.store, before)


def test_a_body_over_the_size_limit_is_refused_as_on_the_dashboard(site: Site) -> None:
    small = create_app(
        site.store, WebSettings(secret=b"test secret, protects nothing", max_import_bytes=2**20)
    )
    client = TestClient(small, base_url="https://testserver", raise_server_exceptions=False)
    client.headers.update(bearer(token(site, scopes=("write",))))
    before = _audit_rows(site.store)
    error = _error(
        client.post(URL.format("A1"), files={"files": ("big.edf", b"0" * (2**20 + 1))}),
        413,
        "too_large",
    )
    # The dashboard's words (tests/web/routes/test_imports.py).
    assert error["message"] == "the upload is larger than 1 MB; nothing was imported"
    _nothing_happened(site.store, before)

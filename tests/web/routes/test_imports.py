"""Imports in the browser over HTTP: responses (CSV and Excel), a REDCap project (data
dictionary, then records), ECG recordings (EDF, a WFDB record as its files), each streamed to a
private folder that is gone afterwards; refusals shown on the page, nothing stored; on SQLite and
PostgreSQL."""

from __future__ import annotations

import html
import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from peerlens.study import Store, create_study, derived_frame, export_frame, get_identity
from peerlens.study.models import AuditLog, Recording
from peerlens.web import WebSettings, create_app

from ...conftest import DATA
from ..conftest import ADMIN, Site, csrf_of, make_user, signed_in

EXAMPLES = Path(__file__).resolve().parents[3] / "src" / "peerlens" / "examples"
PHQ9 = ",".join(f"phq9_{i}" for i in range(1, 10))


def _client(site: Site, username: str = "tester") -> tuple[TestClient, str]:
    client = signed_in(site, username)
    page = client.get("/studies/pilot/import")
    assert page.status_code == 200, page.text
    return client, csrf_of(page.text)


def _audit_rows(store: Store) -> int:
    with store.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(AuditLog)) or 0)


def _uploads_left(store: Store) -> list[Path]:
    root = store.blob_dir / ".uploads"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _items(store: Store, code: str) -> dict[str, float]:
    frame = export_frame(store, "pilot", tier="deidentified", caller=ADMIN)
    mine = frame[(frame["participant"] == code) & (frame["kind"] == "item")]
    return {r["name"]: float(r["value"]) for _, r in mine.iterrows()}


def test_a_response_csv_and_an_excel_file_are_imported(site: Site) -> None:
    client, token = _client(site)
    csv = f"participant,{PHQ9}\nA1,{','.join(['1'] * 9)}\n"
    done = client.post(
        "/studies/pilot/import/responses",
        data={"csrf": token, "timepoint": "baseline"},
        files={"file": ("baseline.csv", csv.encode(), "text/csv")},
    )
    assert done.status_code == 200, done.text
    assert 'role="status"' in done.text and "baseline.csv: 1 row(s)" in done.text
    assert _items(site.store, "A1") == {f"phq9_{i}": 1.0 for i in range(1, 10)}
    excel = io.BytesIO()
    pd.DataFrame([{"participant": "A1", **{f"phq9_{i}": 2 for i in range(1, 10)}}]).to_excel(
        excel, index=False
    )
    again = client.post(
        "/studies/pilot/import/responses",
        data={"csrf": token, "timepoint": "baseline"},
        files={"file": ("baseline.xlsx", excel.getvalue(), "application/octet-stream")},
    )
    assert again.status_code == 200 and "1 updated" in again.text, again.text
    assert _items(site.store, "A1") == {f"phq9_{i}": 2.0 for i in range(1, 10)}
    assert _uploads_left(site.store) == []


def test_a_bad_file_is_refused_next_to_its_form_naming_row_and_column(site: Site) -> None:
    client, token = _client(site)
    before = _audit_rows(site.store)
    csv = f"participant,{PHQ9}\nA1,{','.join(['1'] * 9)}\nB2,{','.join(['7'] + ['1'] * 8)}\n"
    refused = client.post(
        "/studies/pilot/import/responses",
        data={"csrf": token, "timepoint": "baseline", "reason": "typo <b>"},
        files={"file": ("week1.csv", csv.encode(), "text/csv")},
    )
    assert refused.status_code == 400
    html = refused.text
    assert "<title>Error: Import" in html
    box = html[
        html.index('id="responses-problems"') : html.index("</div>", html.index('role="alert"'))
    ]
    assert "week1.csv: 1 problem(s), nothing was imported" in box
    assert "row 2, column &#39;phq9_1&#39;" in box
    assert 'aria-describedby="responses-problems" aria-invalid="true"' in html
    # The typed fields are kept (escaped); the server's folder never appears.
    assert 'value="typo &lt;b&gt;"' in html and ".uploads" not in html
    assert _audit_rows(site.store) == before and _items(site.store, "A1") == {}
    assert _uploads_left(site.store) == []


def test_a_redcap_project_dictionary_then_records(site: Site, tmp_path: Path) -> None:
    for name in ("redcap_study.yaml", "redcap_dictionary.csv"):
        shutil.copy(DATA / name, tmp_path / name)
    create_study(site.store, "rc", tmp_path / "redcap_study.yaml", caller=ADMIN)
    client = signed_in(site)
    token = csrf_of(client.get("/studies/rc/import").text)
    dictionary = client.post(
        "/studies/rc/import/dictionary",
        data={"csrf": token},
        files={"file": ("dict.csv", (DATA / "redcap_dictionary.csv").read_bytes(), "text/csv")},
    )
    n_fields = len(pd.read_csv(DATA / "redcap_dictionary.csv"))
    assert dictionary.status_code == 200 and f"dict.csv: {n_fields} field(s)" in dictionary.text
    records = (DATA / "redcap_records.csv").read_bytes()
    refused = client.post(  # unknown record ids without "enrol"
        "/studies/rc/import/redcap",
        data={"csrf": token},
        files={"file": ("records.csv", records, "text/csv")},
    )
    assert refused.status_code == 400 and "records.csv:" in refused.text
    done = client.post(
        "/studies/rc/import/redcap",
        data={"csrf": token, "create_participants": "yes", "date_format": "YMD"},
        files={"file": ("records.csv", records, "text/csv")},
    )
    assert done.status_code == 200, done.text
    assert get_identity(site.store, "rc", "1", caller=ADMIN)["name"] == "Ana Ruiz"


def _wfdb_record(folder: Path) -> list[Path]:
    """A 30 s, 250 Hz single-lead WFDB record written by the ``wfdb`` package."""
    import wfdb

    fs = 250
    t = np.arange(30 * fs) / fs
    signal = np.zeros_like(t)
    for beat in np.arange(0.4, 30, 0.8):
        signal += np.exp(-(((t - beat) / 0.012) ** 2))
    wfdb.wrsamp(
        "ana",
        fs=fs,
        units=["mV"],
        sig_name=["MLII"],
        p_signal=signal[:, None],
        fmt=["16"],
        write_dir=str(folder),
    )
    return [folder / "ana.hea", folder / "ana.dat"]


def test_ecg_recordings_edf_and_wfdb_then_derived(site: Site, tmp_path: Path) -> None:
    client, token = _client(site)
    edf = (EXAMPLES / "session_ecg.edf").read_bytes()
    done = client.post(
        "/studies/pilot/import/recording",
        data={"csrf": token, "participant": "A1", "windows": "baseline:0:300\nsession:300:900"},
        files={"files": ("session_ecg.edf", edf, "application/octet-stream")},
    )
    assert done.status_code == 200 and "session_ecg.edf: stored as recording" in done.text
    hea, dat = _wfdb_record(tmp_path)
    wfdb = client.post(
        "/studies/pilot/import/recording",
        data={"csrf": token, "participant": "A1"},
        files=[
            ("files", (hea.name, hea.read_bytes(), "text/plain")),
            ("files", (dat.name, dat.read_bytes(), "application/octet-stream")),
        ],
    )
    assert wfdb.status_code == 200 and "ana.hea: stored as recording" in wfdb.text, wfdb.text
    with site.store.transaction() as s:
        assert sorted(s.scalars(select(Recording.suffix))) == [".edf", ".wfdb"]
    hrv = client.get("/studies/pilot/hrv")
    assert "2 recording(s) not analysed" in hrv.text
    derived = client.post(
        "/studies/pilot/derive",
        data={"csrf": csrf_of(hrv.text), "what": "hrv"},
        follow_redirects=False,
    )
    assert derived.status_code == 303 and derived.headers["location"].endswith("/studies/pilot/hrv")
    frame = derived_frame(site.store, "pilot", "hrv", caller=ADMIN)
    assert {"whole", "baseline", "session"} <= set(frame["label"])
    assert "not analysed" not in client.get("/studies/pilot/hrv").text
    assert _uploads_left(site.store) == []


def test_recording_refusals_store_nothing(site: Site) -> None:
    client, token = _client(site)
    before = _audit_rows(site.store)
    edf = (EXAMPLES / "session_ecg.edf").read_bytes()
    for data, files, why in (
        ({"participant": "A1"}, [], "choose one recording file"),
        (
            {"participant": "A1"},
            [("files", ("a.edf", edf, "x")), ("files", ("b.edf", edf, "x"))],
            "choose one recording file, or a WFDB",
        ),
        ({"participant": "A1", "windows": "talk:9"}, [("files", ("a.edf", edf, "x"))], "LABEL"),
    ):
        page = client.post(
            "/studies/pilot/import/recording", data={"csrf": token, **data}, files=files or None
        )
        assert page.status_code in (400, 409), (why, page.status_code)
        assert why in page.text and 'role="alert"' in page.text, why
    # An unknown participant is refused as another site's would be (the same 404).
    page = client.post(
        "/studies/pilot/import/recording",
        data={"csrf": token, "participant": "Z9"},
        files=[("files", ("a.edf", edf, "x"))],
    )
    assert page.status_code == 404
    with site.store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Recording)) == 0
    assert _audit_rows(site.store) == before and _uploads_left(site.store) == []


def test_a_recording_the_readers_cannot_read_is_refused_as_the_cli_says_it(
    site: Site, tmp_path: Path
) -> None:
    """Each broken file is read where it was streamed to and refused next to the form with the
    ECG readers' own message (the CLI's, tests/study/test_cli.py): nothing is stored, nothing
    audited, no upload left behind."""
    from peerlens import PeerlensError
    from peerlens.hrv import read_ecg

    from ..._recordings import broken

    client, token = _client(site)
    before = _audit_rows(site.store)
    for case, upload in broken(tmp_path / "in").items():
        files = [
            ("files", (f.name, f.read_bytes(), "application/octet-stream")) for f in upload.files
        ]
        page = client.post(
            "/studies/pilot/import/recording",
            data={"csrf": token, "participant": "A1"},
            files=files,
        )
        assert page.status_code == 400, (case, page.status_code)
        with pytest.raises(PeerlensError) as reader:
            read_ecg(upload.path)
        assert str(reader.value) in html.unescape(page.text), case
        assert 'role="alert"' in page.text and "<title>Error: Import" in page.text, case
        assert str(tmp_path) not in page.text and ".uploads" not in page.text, case
    with site.store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Recording)) == 0
    assert _audit_rows(site.store) == before and _uploads_left(site.store) == []
    assert [p for p in site.store.blob_dir.rglob("*") if p.is_file()] == []


@pytest.fixture
def small_site(site: Site) -> Site:
    """The same study served with a 1 MB import limit."""
    app = create_app(
        site.store, WebSettings(secret=b"test secret, protects nothing", max_import_bytes=2**20)
    )
    client = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    return Site(client, site.store, site.links, site.tokens)


def test_an_upload_over_the_limit_is_refused_and_nothing_is_kept(small_site: Site) -> None:
    client, token = _client(small_site)
    page = client.post(
        "/studies/pilot/import/recording",
        data={"csrf": token, "participant": "A1"},
        files={"files": ("big.edf", b"0" * (2**20 + 1), "application/octet-stream")},
    )
    assert page.status_code == 413 and "larger than 1 MB; nothing was imported" in page.text
    with small_site.store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Recording)) == 0
    assert _uploads_left(small_site.store) == []


def test_a_file_before_the_csrf_token_is_refused_before_it_is_written(site: Site) -> None:
    client, token = _client(site)
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="a.edf"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\nECGDATA\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{token}\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    refused = client.post(
        "/studies/pilot/import/recording",
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert refused.status_code == 403
    assert _uploads_left(site.store) == []


def test_a_site_scoped_researcher_imports_for_their_site_only(site: Site) -> None:
    make_user(site.store, "leeds-res", "researcher", study="pilot", site="leeds")
    client, token = _client(site, "leeds-res")
    csv = f"participant,{PHQ9}\nB2,{','.join(['1'] * 9)}\n"
    rows = client.post(
        "/studies/pilot/import/responses",
        data={"csrf": token, "timepoint": "baseline"},
        files={"file": ("b.csv", csv.encode(), "text/csv")},
    )
    assert rows.status_code == 400 and "nothing was imported" in rows.text
    edf = (EXAMPLES / "session_ecg.edf").read_bytes()
    other = client.post(
        "/studies/pilot/import/recording",
        data={"csrf": token, "participant": "B2"},
        files={"files": ("s.edf", edf, "application/octet-stream")},
    )
    assert other.status_code == 404  # another site's participant reads as one that is not there
    own = client.post(
        "/studies/pilot/import/recording",
        data={"csrf": token, "participant": "A1"},
        files={"files": ("s.edf", edf, "application/octet-stream")},
    )
    assert own.status_code == 200
    assert _items(site.store, "B2") == {}

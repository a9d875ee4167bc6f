"""Findings of the sixth hostile review (/work/notes/review6_FINDINGS.md), each rebuilt as a test
that failed before its fix."""

from __future__ import annotations

import datetime as dt
import json
import math
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import peerlens.hrv
from peerlens._tables import TableReadError, _excel
from peerlens._tables._excel import read_workbook
from peerlens.analysis._files import write_via
from peerlens.analysis.plots import means_plot
from peerlens.study import (
    ImportRejected,
    NotFound,
    PermissionDenied,
    Store,
    add_consent,
    add_participant,
    add_recording,
    analysis_dataset,
    audit_frame,
    create_study,
    create_token,
    derive,
    derived_frame,
    erase_participant,
    export_frame,
    export_study,
    get_identity,
    import_responses,
    issue_link,
    recording_beats,
    resume_token,
    revoke_links,
    set_identity,
    set_status,
)
from peerlens.study.models import Recording

from ..conftest import ADMIN, make_user

GAD7 = [f"gad7_{i}" for i in range(1, 8)]
T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
SECRET = "Gordon Glasgow DOB 1980-02-02"


@pytest.fixture
def pilot(store: Store, config_path: Path, tmp_path: Path) -> Store:
    """Study ``pilot``: L1 (leeds) with a GAD-7 and two RR recordings (one quoting a name)."""
    create_study(store, "pilot", config_path, caller=ADMIN)
    add_participant(store, "pilot", "L1", site="leeds", caller=ADMIN)
    add_participant(store, "pilot", "G1", site="glasgow", caller=ADMIN)
    f = tmp_path / "gad.csv"
    pd.DataFrame([["L1", *[1] * 7]], columns=["participant", *GAD7]).to_csv(f, index=False)
    import_responses(store, "pilot", f, timepoint="baseline", caller=ADMIN)
    good = tmp_path / "good_rr.csv"
    good.write_text("\n".join(f"{800 + 40 * math.sin(i / 3):.3f}" for i in range(300)) + "\n")
    bad = tmp_path / "bad_rr.csv"
    bad.write_text(f"rr_ms\n800\n810\n{SECRET}\n790\n")
    add_recording(store, "pilot", good, participant="L1", kind="rr", caller=ADMIN)
    # A file stored before recordings were read at upload (the readers refuse it now, quoting
    # the bad cell to the person uploading it): its derive-time error text quotes the name.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(peerlens.hrv, "read_ecg", lambda *args, **kwargs: None)
        add_recording(store, "pilot", bad, participant="L1", kind="rr", caller=ADMIN)
    derive(store, "pilot", ["hrv"], caller=ADMIN, executor="sequential")
    return store


def _reads(store: Store) -> pd.DataFrame:
    log = audit_frame(store, caller=ADMIN)
    return log[log["action"] == "export"].reset_index(drop=True)


def test_r6_1_in_memory_reads_of_study_data_are_audited_like_exports(pilot: Store) -> None:
    assert _reads(pilot).empty
    frame = export_frame(pilot, "pilot", tier="full", caller=ADMIN)
    hrv = derived_frame(pilot, "pilot", "hrv", caller=ADMIN)
    with pilot.transaction() as s:
        first = str(s.query(Recording.sha256).order_by(Recording.id).first()[0])
    beats = recording_beats(pilot, "pilot", "L1", first, caller=ADMIN)
    assert len(beats) == 301  # the first beat, then one per stored interval
    log = _reads(pilot)
    assert len(log) == 3
    entries = [json.loads(e) for e in log["new"]]
    assert [e["format"] for e in entries] == ["read:responses", "read:derived:hrv", "read:beats"]
    assert [e["rows"] for e in entries] == [len(frame), len(hrv), len(beats)]
    assert entries[0]["tier"] == "full" and all(len(e["sha256"]) == 64 for e in entries)
    assert set(log["actor"]) == {ADMIN.username} and set(log["study"]) == {"pilot"}


def test_r6_2_a_token_without_export_scope_gets_no_full_tier_texts(pilot: Store) -> None:
    full = derived_frame(pilot, "pilot", "hrv", caller=ADMIN)
    assert full["error"].astype(str).str.contains("Gordon").any()  # the admin's own view
    read_only = resume_token(pilot, create_token(pilot, "r", scopes=["read"], caller=ADMIN).token)
    seen = derived_frame(pilot, "pilot", "hrv", caller=read_only)
    assert not seen["error"].astype(str).str.contains("Gordon|1980").any()
    assert set(seen["error"].dropna()) == {"error"}
    both = create_token(pilot, "e", scopes=["read", "export"], caller=ADMIN).token
    shown = derived_frame(pilot, "pilot", "hrv", caller=resume_token(pilot, both))
    assert shown["error"].astype(str).str.contains("Gordon").any()
    # The tier recorded for the read-only token's read is the capped one.
    assert json.loads(_reads(pilot)["new"].iloc[1])["tier"] == "deidentified"


def _xlsx(path: Path, rows: list[str]) -> Path:
    """A minimal workbook whose first sheet ``S`` holds ``rows`` (sheet XML ``<row>`` bodies)."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006/relationships"
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{ct}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{ct}.worksheet+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": f'<Relationships xmlns="{pkg}"><Relationship Id="rId1" '
        f'Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
        '<sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{pkg}"><Relationship Id="rId1" '
        f'Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": f'<worksheet xmlns="{main}"><sheetData>'
        + "".join(rows)
        + "</sheetData></worksheet>",
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in parts.items():
            z.writestr(name, text)
    return path


def _cell(ref: str, value: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'


def test_r6_4_an_xlsx_sheet_beyond_the_cell_limits_is_refused_before_it_is_read(
    pilot: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    far = _xlsx(
        tmp_path / "far.xlsx", [f'<row r="{r}"><c r="XFD{r}"><v>1</v></c></row>' for r in (1, 2)]
    )
    with pytest.raises(
        TableReadError, match=r"sheet 'S' is too large: sheet row 1 reaches column XFD"
    ):
        read_workbook(far)
    header = (
        '<row r="1">'
        + "".join(
            _cell(f"{c}1", n) for c, n in zip("ABCDEFGH", ["participant", *GAD7], strict=True)
        )
        + "</row>"
    )
    body = [f'<row r="{r}">' + _cell(f"A{r}", "L1") + "</row>" for r in range(2, 40)]
    tall = _xlsx(tmp_path / "tall.xlsx", [header, *body])
    monkeypatch.setattr(_excel, "MAX_CELLS", 30)
    before = export_frame(pilot, "pilot", tier="full", caller=ADMIN)
    with pytest.raises(
        ImportRejected,
        match=r"sheet 'S' is too large: by sheet row \d+ it holds more than the 30 cells",
    ):
        import_responses(pilot, "pilot", tall, timepoint="week12", caller=ADMIN)
    monkeypatch.setattr(_excel, "MAX_CELLS", 5_000_000)
    monkeypatch.setattr(_excel, "MAX_UNZIPPED_BYTES", 1000)
    with pytest.raises(
        ImportRejected, match=r"the workbook unzips to [\d,]+ bytes, more than the 1,000"
    ):
        import_responses(pilot, "pilot", tall, timepoint="week12", caller=ADMIN)
    after = export_frame(pilot, "pilot", tier="full", caller=ADMIN)
    assert after.equals(before)  # nothing stored


def test_r6_5_another_sites_participant_reads_as_one_that_does_not_exist(
    pilot: Store, tmp_path: Path
) -> None:
    sam = make_user(pilot, "sam", "admin", study="pilot", site="leeds")
    rr = tmp_path / "rr.csv"
    rr.write_text("rr_ms\n800\n810\n790\n805\n")
    calls: dict[str, Callable[[str], object]] = {
        "identity read": lambda c: get_identity(pilot, "pilot", c, caller=sam),
        "identity write": lambda c: set_identity(pilot, "pilot", c, {"name": "X"}, caller=sam),
        "status": lambda c: set_status(pilot, "pilot", c, "completed", caller=sam),
        "consent": lambda c: add_consent(
            pilot, "pilot", c, version="v1", consented_at=T0, caller=sam
        ),
        "link": lambda c: issue_link(pilot, "pilot", c, timepoint="baseline", caller=sam),
        "revoke": lambda c: revoke_links(pilot, "pilot", c, caller=sam),
        "recording": lambda c: add_recording(
            pilot, "pilot", rr, participant=c, kind="rr", caller=sam
        ),
        "erasure": lambda c: erase_participant(pilot, "pilot", c, caller=sam, reason="asked"),
    }
    for what, call in calls.items():
        seen = []
        for code in ("G1", "Z9"):  # G1 is Glasgow's; Z9 does not exist
            with pytest.raises(PermissionDenied) as exc:
                call(code)
            seen.append((type(exc.value), str(exc.value).replace(code, "<code>")))
        assert seen[0] == seen[1], what
        assert seen[0][0] is NotFound, what
        assert seen[0][1] == "unknown participant '<code>' or outside your site(s) leeds", what


def test_r6_7_a_planted_part_symlink_never_receives_an_output(pilot: Store, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    theirs = tmp_path / "colleague_owned.txt"
    theirs.write_text("")
    for name in ("report.html", "export.csv"):
        (shared / f".{name}.part").symlink_to(theirs)
    write_via(shared / "report.html", lambda tmp: tmp.write_bytes(b"<html>study data</html>"))
    export_study(pilot, "pilot", shared / "export.csv", caller=ADMIN)
    for name in ("report.html", "export.csv"):
        assert not (shared / name).is_symlink() and (shared / name).stat().st_size > 0
        assert (shared / name).stat().st_mode & 0o777 == 0o600
    assert theirs.read_text() == ""
    left = sorted(p.name for p in shared.iterdir() if p.name.endswith(".part"))
    assert left == [".export.csv.part", ".report.html.part"]  # only the planted links


def test_r6_10_arm_names_with_dollar_signs_are_drawn_as_text() -> None:
    arm = r"peer $\oops$ arm"
    means = pd.DataFrame(
        {
            "arm": [arm, arm, "$x^2$", "$x^2$"],
            "timepoint": ["t0", "t1", "t0", "t1"],
            "mean": [1.0, 2.0, 1.5, 1.7],
            "ci_low": [0.5, 1.5, 1.0, 1.2],
            "ci_high": [1.5, 2.5, 2.0, 2.2],
        }
    )
    svg = means_plot(means, outcome="y", arms=[arm, "$x^2$"], timepoints=["t0", "t1"])
    assert r"peer $\oops$ arm" in svg and "$x^2$" in svg


def test_r6_8_a_site_scoped_dataset_names_only_the_callers_sites(pilot: Store) -> None:
    leeds = make_user(pilot, "lee", "researcher", study="pilot", site="leeds")
    assert analysis_dataset(pilot, "pilot", caller=leeds).sites == ("leeds",)
    assert analysis_dataset(pilot, "pilot", caller=ADMIN).sites == ("leeds", "glasgow")

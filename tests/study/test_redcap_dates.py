"""REDCap dates (``peerlens.study._redcap_dates`` and the date rule of ``_catalog``), checked on
real REDCap files: REDCapTidieR's export of every date validation (all written YYYY-MM-DD) and
PHPCap's record file written for REDCap's import with ``dateFormat=MDY``."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerlens.study import ImportRejected, Store, create_study, get_identity
from peerlens.study._catalog import field_rules
from peerlens.study._redcap_dates import iso_from_import
from peerlens.study.export import export_study
from peerlens.study.models import Field
from peerlens.study.redcap import import_records

from .conftest import ACTOR, ADMIN, PASSWORD, REAL_REDCAP, needs_real_redcap

REAL = REAL_REDCAP
KITCHEN = REAL / "redcaptidier" / "kitchen-sink"
PHPCAP = REAL / "phpcap" / "longitudinal"


def _study(store: Store, tmp_path: Path, folder: Path, events: list[str]) -> None:
    dictionary = folder / "dictionary.csv"
    forms = pd.read_csv(dictionary, dtype=str, keep_default_na=False).iloc[:, 1].unique()
    lines = [f'data_dictionary: "{dictionary}"', "timepoints:"]
    for i, event in enumerate(events):
        lines += [
            f"  - name: e{i}",
            f"    redcap_event: {event}",
            "    instruments: [" + ", ".join(forms) + "]",
        ]
    config = tmp_path / "study.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    create_study(store, "s", config, caller=ADMIN)


def _events(records: Path) -> list[str]:
    frame = pd.read_csv(records, dtype=str, keep_default_na=False)
    return list(dict.fromkeys(frame["redcap_event_name"]))


@needs_real_redcap("redcaptidier", "kitchen-sink")
def test_every_date_validation_comes_back_as_the_export_wrote_it(
    store: Store, tmp_path: Path
) -> None:
    # REDCap writes date_dmy, date_mdy and date_ymd fields alike, as YYYY-MM-DD (and date-times
    # as YYYY-MM-DD HH:MM[:SS]); none is read day- or month-first, none is rewritten.
    _study(store, tmp_path, KITCHEN, ["event_1_arm_1"])
    import_records(store, "s", KITCHEN / "data.csv", create_participants=True, caller=ADMIN)
    out = tmp_path / "out.csv"
    export_study(store, "s", out, format="redcap", tier="full", raw_values=True, caller=ADMIN)
    want = pd.read_csv(KITCHEN / "data.csv", dtype=str, keep_default_na=False)
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    dated = [c for c in want.columns if c.startswith("text_") and c.endswith(("dmy", "mdy", "ymd"))]
    dated += [c for c in want.columns if c.endswith(("_hm", "_hms"))]
    assert len(dated) >= 9
    assert got.loc[0, "text_dmy"] == "2022-08-03" == got.loc[0, "text_mdy"]
    pd.testing.assert_frame_equal(got[dated], want[dated])


@needs_real_redcap("phpcap", "longitudinal")
def test_month_first_import_file_is_stored_as_redcap_stores_it(
    store: Store, tmp_path: Path
) -> None:
    # PHPCap imports this file into REDCap with dateFormat=MDY: dob 4/12/1982 is 12 April.
    _study(store, tmp_path, PHPCAP, _events(PHPCAP / "data.csv"))
    records = PHPCAP / "data.csv"
    with pytest.raises(ImportRejected) as info:
        import_records(store, "s", records, create_participants=True, caller=ADMIN)
    first = info.value.problems[0]
    assert (first.row, first.column) == (1, "dob")
    assert "date format (MDY or DMY)" in first.reason and "4/12/1982" not in str(info.value)
    import_records(store, "s", records, create_participants=True, date_format="MDY", caller=ADMIN)
    # dob is an identifier: it is in the vault, as YYYY-MM-DD.
    assert get_identity(store, "s", "1101", caller=ADMIN)["dob"] == "1982-04-12"


@needs_real_redcap("phpcap", "longitudinal")
def test_the_same_file_read_day_first_gives_the_day_first_dates(
    store: Store, tmp_path: Path
) -> None:
    # The order is the import's, never guessed from the text: 4/12/1982 is 4 December under DMY.
    _study(store, tmp_path, PHPCAP, _events(PHPCAP / "data.csv"))
    import_records(
        store, "s", PHPCAP / "data.csv", create_participants=True, date_format="DMY", caller=ADMIN
    )
    assert get_identity(store, "s", "1101", caller=ADMIN)["dob"] == "1982-12-04"
    assert get_identity(store, "s", "1102", caller=ADMIN)["dob"] == "1984-07-01"


@needs_real_redcap("phpcap", "longitudinal")
def test_a_month_past_12_is_refused_by_row_and_column(store: Store, tmp_path: Path) -> None:
    _study(store, tmp_path, PHPCAP, _events(PHPCAP / "data.csv"))
    text = (PHPCAP / "data.csv").read_text(encoding="utf-8").replace("4/12/1982", "13/12/1982")
    records = tmp_path / "records.csv"
    records.write_text(text, encoding="utf-8")
    with pytest.raises(ImportRejected) as info:
        import_records(
            store, "s", records, create_participants=True, date_format="MDY", caller=ADMIN
        )
    (problem,) = info.value.problems
    assert (problem.row, problem.column) == (1, "dob")
    assert "month-first" in problem.reason and "13/12/1982" not in problem.reason


@needs_real_redcap("phpcap", "longitudinal")
def test_an_unknown_date_format_is_refused(store: Store, tmp_path: Path) -> None:
    _study(store, tmp_path, PHPCAP, _events(PHPCAP / "data.csv"))
    with pytest.raises(ImportRejected, match="not one of YMD, MDY, DMY"):
        import_records(store, "s", PHPCAP / "data.csv", date_format="M/D/Y", caller=ADMIN)


@needs_real_redcap("phpcap", "longitudinal")
def test_cli_takes_the_date_format(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from peerlens.cli import app

    _study(store, tmp_path, PHPCAP, _events(PHPCAP / "data.csv"))
    monkeypatch.setenv("PEERLENS_DB", store.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("PEERLENS_USER", ACTOR)
    monkeypatch.setenv("PEERLENS_PASSWORD", PASSWORD)
    records = tmp_path / "records.csv"
    shutil.copy(PHPCAP / "data.csv", records)
    args = ["responses", "import-redcap", str(records), "--study", "s", "--create-participants"]
    res = CliRunner().invoke(app, [*args, "--date-format", "xyz"])
    assert res.exit_code == 2 and "not one of YMD, MDY, DMY" in res.output
    assert "Traceback" not in res.output
    res = CliRunner().invoke(app, [*args, "--date-format", "mdy"])
    assert res.exit_code == 0, res.output


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2099, 12, 31)))
def test_slashed_dates_read_in_the_named_order(day: dt.date) -> None:
    # Checked against datetime.strftime, not against the code's own output.
    mdy, dmy = f"{day.month}/{day.day}/{day.year}", f"{day.day:02d}/{day.month:02d}/{day.year}"
    assert iso_from_import(mdy, "MDY") == (day.isoformat(), None)
    assert iso_from_import(dmy, "DMY") == (day.isoformat(), None)
    assert iso_from_import(day.isoformat(), "DMY") == (day.isoformat(), None)
    stamp = dt.datetime.combine(day, dt.time(7, 5, 9))
    assert iso_from_import(f"{mdy} 7:05:09", "MDY") == (stamp.strftime("%Y-%m-%d %H:%M:%S"), None)


@pytest.mark.parametrize(
    ("validation", "raw"),
    [
        ("date_dmy", "20220803"),  # ISO basic form: REDCap writes the extended form only
        ("date_ymd", "2022-08-03 15:15"),  # a date-time in a date field would lose its time
        ("date_mdy", "2022-02-30"),
        ("date_dmy", "03/08/2022"),
        ("datetime_dmy", "2022-08-03T15:15"),
        ("datetime_ymd", "2022-08-03"),
        ("datetime_mdy", "2022-08-03 25:00"),
        ("datetime_ymd", "2022-08-03 15:15:04"),  # seconds belong to datetime_seconds_*
        ("datetime_seconds_dmy", "2022-08-03 15:15"),
        ("time", "24:00"),
        ("time", "15:15:49"),
        ("time_hh_mm_ss", "15:15"),
        ("time_mm_ss", "60:00"),
        ("time_mm_ss", "1:05"),
    ],
)
def test_only_redcaps_stored_forms_are_taken(validation: str, raw: str) -> None:

    (rule,) = field_rules(Field(field_name="d", field_type="text", validation=validation))
    _value, text, problem = rule.check(raw)
    assert text is None and problem is not None and raw in problem


@needs_real_redcap("redcaptidier", "kitchen-sink")
def test_the_real_export_of_every_date_and_time_validation_is_taken_as_written() -> None:

    dictionary = pd.read_csv(KITCHEN / "dictionary.csv", dtype=str, keep_default_na=False)
    record = pd.read_csv(KITCHEN / "data.csv", dtype=str, keep_default_na=False).iloc[0]
    checked = 0
    for name, validation in zip(
        dictionary["field_name"],
        dictionary["text_validation_type_or_show_slider_number"],
        strict=True,
    ):
        if validation.startswith(("date", "time")):
            (rule,) = field_rules(Field(field_name=name, field_type="text", validation=validation))
            assert rule.check(record[name]) == (None, record[name], None), name
            checked += 1
    assert checked == 12


@pytest.mark.parametrize(
    ("raw", "this_year", "want"),
    [
        # REDCap's window: a two-digit year up to ten years past the current one is 20yy, any
        # later one 19yy (the year of the import, as REDCap reads it at import time).
        ("6/17/19", 2019, "2019-06-17"),
        ("6/17/19", 2026, "2019-06-17"),
        ("6/17/36", 2026, "2036-06-17"),  # 26 + 10: the last year of the window
        ("6/17/37", 2026, "1937-06-17"),  # one past it
        ("6/17/00", 2026, "2000-06-17"),
        ("6/17/99", 2026, "1999-06-17"),
        ("6/17/99", 2089, "2099-06-17"),  # the window slides with the current year
        ("6/17/37 14:05", 2026, "1937-06-17 14:05"),
    ],
)
def test_two_digit_years_take_redcaps_century(raw: str, this_year: int, want: str) -> None:
    assert iso_from_import(raw, "MDY", this_year=this_year) == (want, None)
    day_first = "/".join([raw.split("/")[1], raw.split("/")[0], raw.split("/", 2)[2]])
    assert iso_from_import(day_first, "DMY", this_year=this_year) == (want, None)


def test_a_two_digit_year_is_still_refused_under_ymd() -> None:
    _text, why = iso_from_import("6/17/19", "YMD", this_year=2026)
    assert _text is None and why is not None and "date format (MDY or DMY)" in why


@needs_real_redcap("redcap-cypress", "reporting")
def test_the_real_two_digit_year_file_imports_as_redcaps_own_test_shows(
    store: Store, tmp_path: Path
) -> None:
    # REDCap's validation suite imports this file with the Data Import Tool and then sees DOB
    # 06-17-2019 on record 1's form (tests/features/core/22_reporting.feature in the REDCap
    # Cypress test framework): 6/17/19 is 17 June 2019.
    folder = REAL / "redcap-cypress" / "reporting"
    _study(store, tmp_path, folder, _events(folder / "data.csv"))
    import_records(
        store, "s", folder / "data.csv", create_participants=True, date_format="MDY", caller=ADMIN
    )
    out = tmp_path / "out.csv"
    export_study(store, "s", out, format="redcap", tier="full", raw_values=True, caller=ADMIN)
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    dobs = [d for d in got["dob"] if d]
    assert dobs == [f"2019-06-{day}" for day in range(17, 25)]

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pandas as pd
import pytest

from peerlens.study import ImportRejected, Store, create_study, get_identity
from peerlens.study.export import export_study, tidy_frame
from peerlens.study.redcap import (
    DICTIONARY_COLUMNS,
    export_dictionary,
    import_records,
    parse_data_dictionary,
)

from .conftest import ACTOR, ADMIN, DATA, PASSWORD, REAL_REDCAP, needs_real_redcap


@pytest.fixture
def rc_store(store: Store, tmp_path: Path) -> Store:
    for name in ("redcap_study.yaml", "redcap_dictionary.csv"):
        shutil.copy(DATA / name, tmp_path / name)
    create_study(store, "rc", tmp_path / "redcap_study.yaml", caller=ADMIN)
    return store


def _read(path: Path | str) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_dictionary_has_the_18_standard_columns_and_round_trips(rc_store: Store) -> None:
    assert len(DICTIONARY_COLUMNS) == 18
    text = export_dictionary(rc_store, "rc", caller=ADMIN)
    original = _read(DATA / "redcap_dictionary.csv")
    again = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(again, original)


def test_dictionary_problems_are_all_reported() -> None:
    header = ",".join(f'"{c}"' for c in DICTIONARY_COLUMNS)
    empty = "," * 13
    bad = "\n".join(
        [
            header,
            "record_id,enrol,,text,ID,,,,,,,,,,,,,",
            'Mood,enrol,,radio,Mood,"1, Low | 2, High",,,,,,,,,,,,',
            "mood2,enrol,,slidr,Mood,,,,,,,,,,,,,",
            "mood3,enrol,,radio,Mood,Low or high,,,,,,,,,,,,",
            f"record_id,,,text,again{empty}",
        ]
    )
    with pytest.raises(ImportRejected) as info:
        parse_data_dictionary(bad, "dict.csv")
    got = {(p.row, p.column) for p in info.value.problems}
    assert got == {
        (2, "Variable / Field Name"),
        (3, "Field Type"),
        (4, "Choices, Calculations, OR Slider Labels"),
        (5, "Variable / Field Name"),
        (5, "Form Name"),
    }


def test_records_round_trip_exactly(rc_store: Store, tmp_path: Path) -> None:
    summary = import_records(
        rc_store, "rc", DATA / "redcap_records.csv", create_participants=True, caller=ADMIN
    )
    # enrolment x3, phq9 x3 at baseline + x1 at week 12, session_log instances 1 and 2.
    assert (summary.rows, summary.new) == (6, 9)
    out = tmp_path / "rc_out.csv"
    export_study(rc_store, "rc", out, format="redcap", tier="full", caller=ADMIN)
    pd.testing.assert_frame_equal(_read(out), _read(DATA / "redcap_records.csv"))
    # Identifier fields were held only in the vault.
    assert get_identity(rc_store, "rc", "1", caller=ADMIN) == {
        "name": "Ana Ruiz",
        "dob": "1990-04-12",
    }
    with rc_store.engine.connect() as conn:
        items = {r[0] for r in conn.exec_driver_sql("SELECT item FROM response_item")}
    assert not {"name", "dob"} & items
    # Importing the export again changes nothing.
    again = import_records(rc_store, "rc", out, caller=ADMIN)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 9)


def test_tiers_in_redcap_export(rc_store: Store, tmp_path: Path) -> None:
    import_records(
        rc_store, "rc", DATA / "redcap_records.csv", create_participants=True, caller=ADMIN
    )
    original = _read(DATA / "redcap_records.csv")
    ri = tmp_path / "ri.csv"
    export_study(rc_store, "rc", ri, format="redcap", tier="remove_identifiers", caller=ADMIN)
    ri_frame = _read(ri)
    assert "name" not in ri_frame and "dob" not in ri_frame
    assert "comments" in ri_frame and "sess_notes" in ri_frame
    de = tmp_path / "de.csv"
    export_study(rc_store, "rc", de, format="redcap", tier="deidentified", caller=ADMIN)
    de_frame = _read(de)
    assert not {"name", "dob", "comments", "sess_notes"} & set(de_frame.columns)
    assert list(de_frame["record_id"]) == list(original["record_id"])
    for frame in (de_frame, original):
        frame["enrol"] = pd.to_datetime(frame["enrol_date"].replace("", None))
        frame["sess"] = pd.to_datetime(frame["sess_date"].replace("", None))
    # Every date moved back by one per-participant offset (0..364 days): intervals are kept.
    for rec in ("1", "2", "3"):
        o = original[original.record_id == rec]
        d = de_frame[de_frame.record_id == rec]
        shift = (o["enrol"] - d["enrol"]).dropna().unique()
        assert len(shift) == 1 and pd.Timedelta(0) <= shift[0] <= pd.Timedelta(days=364)
        if o["sess"].notna().any():
            assert ((o["sess"] - d["sess"]).dropna() == shift[0]).all()


def test_tidy_scores_computed_from_items(rc_store: Store) -> None:
    import_records(
        rc_store, "rc", DATA / "redcap_records.csv", create_participants=True, caller=ADMIN
    )
    with rc_store.transaction() as s:
        from peerlens.study._lookup import get_study

        tidy = tidy_frame(s, get_study(s, "rc"), tier="full")
    totals = tidy[(tidy.kind == "score") & (tidy.name == "phq9_total")]
    got = {(r.participant, r.timepoint): r.value for r in totals.itertuples()}
    # Hand sums of the file: 1+2+1+0+3+2+1+0+0 = 10; 0+1+1+0+1+1+0+0+0 = 4; record 2 has
    # 8 items summing to 17 with item 5 blank -> prorated 17 / 8 * 9 = 19.125 -> 19; record 3: 0.
    assert got == {
        ("1", "baseline"): 10.0,
        ("1", "week12"): 4.0,
        ("2", "baseline"): 19.0,
        ("3", "baseline"): 0.0,
    }
    assert totals["scoring_version"].str.startswith("phq9 spec ").all()
    names = tidy[tidy.kind == "identity"].set_index(["participant", "name"])["text"]
    assert names[("2", "name")] == "Sam O'Neill"


def test_record_problems_all_reported(rc_store: Store, tmp_path: Path) -> None:
    bad = _read(DATA / "redcap_records.csv")
    bad.loc[0, "gender"] = "7"
    bad.loc[0, "age"] = "twelve"
    bad.loc[4, "enrol_date"] = "09/01/2026"
    bad.loc[2, "redcap_event_name"] = "week_99_arm_1"
    bad.loc[5, "phq9_3"] = "4"
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(ImportRejected) as info:
        import_records(rc_store, "rc", path, create_participants=True, caller=ADMIN)
    got = {(p.row, p.column) for p in info.value.problems}
    assert got == {
        (1, "gender"),
        (1, "age"),
        (3, "redcap_event_name"),
        (5, "enrol_date"),
        (6, "phq9_3"),
    }
    assert "'7' is not one of the allowed codes (1, 2, 3, 4)" in str(info.value)
    assert "'twelve' is not a number" in str(info.value)
    with rc_store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM participant").scalar() == 0


def test_redcap_bookkeeping_columns_are_ignored(rc_store: Store, tmp_path: Path) -> None:
    frame = _read(DATA / "redcap_records.csv")
    frame.insert(4, "redcap_data_access_group", "leeds")
    frame.insert(5, "redcap_survey_identifier", "")
    # REDCap writes a survey timestamp on the rows that hold its form.
    frame["phq9_timestamp"] = ""
    frame.loc[frame["phq9_complete"] != "", "phq9_timestamp"] = "2026-01-05 10:00:00"
    path = tmp_path / "with_extras.csv"
    frame.to_csv(path, index=False)
    summary = import_records(rc_store, "rc", path, create_participants=True, caller=ADMIN)
    assert summary.new == 9
    # The group, survey identifier and timestamp columns come back as they were.
    out = tmp_path / "out.csv"
    export_study(rc_store, "rc", out, format="redcap", tier="full", caller=ADMIN)
    pd.testing.assert_frame_equal(_read(out), _read(path))
    frame.insert(6, "favourite_colour", "")
    frame.to_csv(path, index=False)
    with pytest.raises(ImportRejected, match="'favourite_colour': not a field"):
        import_records(rc_store, "rc", path, caller=ADMIN)


def test_data_access_groups_map_to_sites(
    rc_store: Store, tmp_path: Path, config_path: Path
) -> None:
    from peerlens.study import add_participant, list_participants

    frame = _read(DATA / "redcap_records.csv")
    records = frame["record_id"].unique().tolist()
    frame.insert(1, "redcap_data_access_group", "")
    first = frame["record_id"] == records[0]
    frame.loc[first, "redcap_data_access_group"] = "york"
    path = tmp_path / "dag.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ImportRejected) as info:
        import_records(rc_store, "rc", path, create_participants=True, caller=ADMIN)
    msg = str(info.value)
    assert "column 'redcap_data_access_group': data access group 'york' matches no site" in msg
    assert "(sites: leeds)" in msg
    # One row of a record disagreeing with the others is reported where it is.
    frame.loc[first, "redcap_data_access_group"] = "leeds"
    frame.loc[frame.index[first][-1], "redcap_data_access_group"] = "Leeds "
    frame.loc[frame.index[first][0], "redcap_data_access_group"] = "LEEDS"
    frame.to_csv(path, index=False)
    summary = import_records(rc_store, "rc", path, create_participants=True, caller=ADMIN)
    people = list_participants(rc_store, "rc", caller=ADMIN).set_index("participant")["site"]
    assert people[records[0]] == "leeds"  # REDCap group names compare case-insensitively
    assert people.drop(records[0]).isna().all()  # no group, no site
    assert summary.new > 0
    add_participant(rc_store, "rc", "X9", caller=ADMIN)
    clash = tmp_path / "clash.csv"
    clash.write_text(
        "record_id,redcap_data_access_group,redcap_event_name,phq9_1,phq9_complete\n"
        f"{records[1]},leeds,baseline_arm_1,1,0\nX9,leeds,baseline_arm_1,1,0\n",
        encoding="utf-8",
    )
    import_records(rc_store, "rc", clash, caller=ADMIN)
    people = list_participants(rc_store, "rc", caller=ADMIN).set_index("participant")["site"]
    assert people["X9"] == "leeds" and people[records[1]] == "leeds"  # placed, audited
    with rc_store.engine.connect() as conn:
        moved = conn.exec_driver_sql(
            "SELECT count(*) FROM audit_log WHERE action = 'participant.site'"
        ).scalar()
    assert moved == 2
    # A participant enrolled at another site is not moved by a group: the file is refused.
    create_study(rc_store, "pilot", config_path, caller=ADMIN)
    add_participant(rc_store, "pilot", "L1", site="leeds", caller=ADMIN)
    moved_file = tmp_path / "moved.csv"
    moved_file.write_text(
        "record_id,redcap_data_access_group,redcap_event_name,phq9_1,phq9_complete\n"
        "L1,glasgow,baseline_arm_1,1,0\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected, match="'L1' is at site 'leeds', not 'glasgow'"):
        import_records(rc_store, "pilot", moved_file, caller=ADMIN)


def test_unknown_record_without_create_is_a_problem(rc_store: Store) -> None:
    with pytest.raises(ImportRejected, match="unknown participant '1'"):
        import_records(rc_store, "rc", DATA / "redcap_records.csv", caller=ADMIN)


def test_cli_dictionary_export_and_redcap_import(
    rc_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from peerlens.cli import app

    monkeypatch.setenv("PEERLENS_DB", rc_store.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("PEERLENS_USER", ACTOR)
    monkeypatch.setenv("PEERLENS_PASSWORD", PASSWORD)
    runner = CliRunner()
    out = tmp_path / "dict.csv"
    res = runner.invoke(app, ["study", "dictionary-export", "--study", "rc", "--out", str(out)])
    assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(_read(out), _read(DATA / "redcap_dictionary.csv"))
    args = ["responses", "import-redcap", str(DATA / "redcap_records.csv"), "--study", "rc"]
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "unknown participant '1'" in res.output
    res = runner.invoke(app, [*args, "--create-participants"])
    assert res.exit_code == 0 and "9 new" in res.output, res.output


def test_redcap_features_round_trip_exactly(store: Store, tmp_path: Path) -> None:
    """Letter codes, an identifier in a repeating instrument, a huge HTML label, a dictionary
    whose first header cell is another name, CR-only line endings, comma decimals, a value
    outside min/max (kept, flagged), numbers as written and text with inner spaces."""
    header = ",".join(f'"{c}"' for c in DICTIONARY_COLUMNS[1:])
    label = '"<p>' + "x" * 200_000 + '</p>"'

    def field(name: str, form: str, kind: str, text: str, *rest: str) -> str:
        cells = [name, form, "", kind, text, *rest]
        return ",".join(cells + [""] * (18 - len(cells)))

    dictionary = "\r".join(
        [
            f'"\ufeffVariable",{header}',
            field("record_id", "intake", "text", "ID"),
            field("sex", "intake", "radio", "Sex", '"M, Male | F, Female | O, Other"'),
            field("intro", "intake", "descriptive", label),
            field("height", "intake", "text", "Height", "", "", "number_comma_decimal", "1", "2"),
            field("score", "intake", "text", "Score", "", "", "number", "0", "10"),
            field("note", "intake", "notes", "Note"),
            field("contact", "calls", "text", "Phone", "", "", "", "", "", "y"),
            field("country", "calls", "dropdown", "Country", '"GB, UK | ES, Spain"'),
        ]
    )
    (tmp_path / "dict.csv").write_bytes(dictionary.encode("utf-8"))
    (tmp_path / "study.yaml").write_text(
        "data_dictionary: dict.csv\ntimepoints:\n  - name: t\n    instruments: [intake, calls]\n"
    )
    create_study(store, "feat", tmp_path / "study.yaml", caller=ADMIN)
    cols = "record_id,redcap_repeat_instrument,redcap_repeat_instance,sex,height,score,note,"
    cols += "intake_complete,contact,country,calls_complete"
    records = "\r".join(
        [
            cols,
            'A1,,,F,"1,54",.34,"two  spaces ",2,,,',
            "A1,calls,1,,,,,,555 0101,GB,2",
            "A1,calls,2,,,,,,555 0202,ES,1",
            'B2,,,O,"2,5",1.0,,0,,,',
        ]
    )
    (tmp_path / "records.csv").write_bytes(records.encode("utf-8"))
    summary = import_records(
        store, "feat", tmp_path / "records.csv", create_participants=True, caller=ADMIN
    )
    assert [(w.row, w.column) for w in summary.warnings] == [(4, "height")]
    out = tmp_path / "out.csv"
    export_study(store, "feat", out, format="redcap", tier="full", raw_values=True, caller=ADMIN)
    pd.testing.assert_frame_equal(_read(out), _read(tmp_path / "records.csv"))
    # The identifier's values are in the vault only: the first under its name, the other by place.
    assert get_identity(store, "feat", "A1", caller=ADMIN) == {
        "contact": "555 0101",
        "contact@t_arm_1#calls#2": "555 0202",
    }
    text = export_dictionary(store, "feat", caller=ADMIN)
    assert "x" * 200_000 in text


REAL = REAL_REDCAP


@needs_real_redcap("redcaptidier")
def test_real_dictionary_keeps_a_choiceless_radio_and_a_one_space_section_header(
    store: Store, tmp_path: Path
) -> None:
    # REDCapTidieR's projects, as a REDCap server exported them: a radio field saved without
    # choices, and section headers of one space (an unlabelled section).
    from peerlens.study.redcap import read_dictionary

    rows, _ = read_dictionary(REAL / "redcaptidier" / "kitchen-sink" / "dictionary.csv")
    radio = next(r for r in rows if r["field_name"] == "radio_dtxt_error")
    assert radio["field_type"] == "radio" and radio["choices"] is None
    rows, _ = read_dictionary(REAL / "redcaptidier" / "clinical-trial" / "dictionary.csv")
    assert rows[1]["section_header"] == " "
    # The choiceless radio holds no value: a record giving it one is refused, by row and column.
    study = tmp_path / "study.yaml"
    dictionary = REAL / "redcaptidier" / "kitchen-sink" / "dictionary.csv"
    study.write_text(
        f'data_dictionary: "{dictionary}"\n'
        "timepoints:\n  - name: t1\n    instruments: [data_field_types]\n",
        encoding="utf-8",
    )
    create_study(store, "ks", study, caller=ADMIN)
    records = tmp_path / "records.csv"
    records.write_text("record_id,radio_dtxt_error\n1,\n2,1\n", encoding="utf-8")
    with pytest.raises(ImportRejected) as info:
        import_records(store, "ks", records, create_participants=True, caller=ADMIN)
    assert [(p.row, p.column) for p in info.value.problems] == [(2, "radio_dtxt_error")]
    assert "no choices in the data dictionary" in info.value.problems[0].reason


@pytest.mark.parametrize("ftype", ["radio", "dropdown"])
@pytest.mark.parametrize("raw", ["1", "0", "a", "yes"])
def test_a_choiceless_field_takes_no_value_as_redcaps_import_takes_none(
    ftype: str, raw: str
) -> None:
    # REDCap's import takes only a field's choice codes (REDCap's validated requirement
    # B.3.16.500: "The system shall import only valid choice codes for radio buttons,
    # dropdowns, and checkboxes"; its message "The value is not a valid category for <field>"):
    # a field with no choices has none, so any value is refused, whatever it looks like.
    from peerlens.study._catalog import field_rules
    from peerlens.study.models import Field

    (rule,) = field_rules(Field(field_name="q", field_type=ftype, choices=None))
    value, text, why = rule.check(raw)
    assert value is None and text is None and why is not None
    assert "no choices in the data dictionary" in why and "blank" in why


def test_erasure_with_purged_responses_drops_the_records_layout_rows(
    rc_store: Store, tmp_path: Path
) -> None:
    """The layout kept to give the file back as it came holds each record's rows: once an
    erasure purges a participant's responses, none of their rows stays there or is exported."""
    import json

    from peerlens.study import erase_participant, verify_audit

    import_records(
        rc_store, "rc", DATA / "redcap_records.csv", create_participants=True, caller=ADMIN
    )

    def layout_records() -> list[str]:
        with rc_store.engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT rows_json FROM redcap_layout").scalar_one()
        return [str(r[0]) for r in json.loads(rows)]

    before = layout_records()
    assert "1" in before and set(before) - {"1"}
    erase_participant(rc_store, "rc", "1", caller=ADMIN, reason="request", purge_responses=True)
    assert layout_records() == [r for r in before if r != "1"]
    out = tmp_path / "after.csv"
    export_study(rc_store, "rc", out, format="redcap", tier="full", caller=ADMIN)
    exported = _read(out)
    original = _read(DATA / "redcap_records.csv")
    assert "1" not in set(exported["record_id"])
    pd.testing.assert_frame_equal(
        exported, original[original["record_id"] != "1"].reset_index(drop=True)
    )
    assert verify_audit(rc_store, caller=ADMIN).ok

"""Review finding L5: values that do not fit their column (over-long labels, huge integers) are
refused before anything is written or copied, naming where they came from; never a traceback
from the database, never a recording file left behind."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from peerlens.cli import app
from peerlens.study import (
    ImportRejected,
    NewParticipant,
    Store,
    StudyError,
    add_consent,
    add_participants,
    add_recording,
    add_relationship,
    add_session,
    add_transcript,
    create_study,
    import_records,
)
from peerlens.study.models import AuditLog, Recording, Response

from ..conftest import ACTOR, ADMIN, DATA, PASSWORD

T0 = dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC)
LONG = "x" * 101


@pytest.fixture
def pilot(store: Store, config_path: Path) -> Store:
    create_study(store, "pilot", config_path, caller=ADMIN)
    people = [NewParticipant("P1", site="leeds"), NewParticipant("W1", role="ps_worker")]
    add_participants(store, "pilot", people, caller=ADMIN)
    return store


def _state(store: Store) -> tuple[int, int]:
    """Audit rows and recordings stored."""
    with store.transaction() as s:
        audit_rows = s.scalar(select(func.count()).select_from(AuditLog)) or 0
        recordings = s.scalar(select(func.count()).select_from(Recording)) or 0
    return audit_rows, recordings


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.mark.parametrize(
    ("device", "windows", "named"),
    [
        (LONG, None, "device"),
        ("Polar H10", [(LONG, 0.0, 60.0)], "window"),
    ],
)
def test_an_over_long_recording_label_stores_and_copies_nothing(
    pilot: Store,
    tmp_path: Path,
    device: str,
    windows: list[tuple[str, float, float]] | None,
    named: str,
) -> None:
    rr = tmp_path / "rr.txt"
    rr.write_text("800\n810\n790\n")
    before = _state(pilot)
    with pytest.raises(StudyError, match=rf"{named}.*101 characters; at most 100"):
        add_recording(
            pilot, "pilot", rr, participant="P1", kind="rr", device=device, windows=windows,
            caller=ADMIN,
        )  # fmt: skip
    assert _state(pilot) == before
    assert _files(pilot.blob_dir) == []


def test_over_long_labels_versions_and_names_are_refused(pilot: Store) -> None:
    rid = add_relationship(pilot, "pilot", "W1", "P1", started_at=T0, caller=ADMIN)
    before = _state(pilot)
    with pytest.raises(StudyError, match=r"label: 101 characters; at most 100"):
        add_session(pilot, "pilot", rid, LONG, started_at=T0, mode="phone", caller=ADMIN)
    with pytest.raises(StudyError, match=r"version: 51 characters; at most 50"):
        add_consent(pilot, "pilot", "P1", version="v" * 51, consented_at=T0, caller=ADMIN)
    for option in ("speaker", "author"):
        with pytest.raises(StudyError, match=rf"{option}: 101 characters; at most 100"):
            add_transcript(
                pilot, "pilot", "Hello.", participant="P1", caller=ADMIN, **{option: LONG}
            )
    assert _state(pilot) == before


@pytest.mark.parametrize("rid", [2**31, 10**20, -(2**63) - 1])
def test_an_id_beyond_the_integer_columns_is_refused(pilot: Store, rid: int) -> None:
    before = _state(pilot)
    with pytest.raises(StudyError, match=r"relationship: .* is outside the range"):
        add_session(pilot, "pilot", rid, "s1", started_at=T0, mode="phone", caller=ADMIN)
    with pytest.raises(StudyError, match=r"session: .* is outside the range"):
        add_transcript(pilot, "pilot", "Hello.", session_id=rid, caller=ADMIN)
    assert _state(pilot) == before


@pytest.mark.parametrize("instance", [str(2**31), str(10**30)])
def test_a_repeat_instance_beyond_the_integer_column_is_a_problem_of_its_cell(
    store: Store, tmp_path: Path, instance: str
) -> None:
    for name in ("redcap_study.yaml", "redcap_dictionary.csv"):
        shutil.copy(DATA / name, tmp_path / name)
    create_study(store, "rc", tmp_path / "redcap_study.yaml", caller=ADMIN)
    f = tmp_path / "records.csv"
    f.write_text(
        "record_id,redcap_event_name,redcap_repeat_instrument,redcap_repeat_instance,sess_minutes\n"
        f"1,baseline_arm_1,session_log,{instance},5\n"
    )
    before = _state(store)
    with pytest.raises(ImportRejected) as caught:
        import_records(store, "rc", f, create_participants=True, caller=ADMIN)
    (only,) = caught.value.problems
    assert (only.row, only.column) == (1, "redcap_repeat_instance")
    assert "outside the range" in only.reason
    assert str(f) in str(caught.value)
    assert _state(store) == before
    with store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Response)) == 0


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("offset_days", "100000000000000000000000", "timepoints.0.offset_days"),
        ("window_after_days", str(2**31), "timepoints.0.window_after_days"),
        ("redcap_event", "e" * 101, "timepoints.0.redcap_event"),
    ],
)
def test_a_study_config_value_beyond_its_column_is_refused_naming_the_key(
    store: Store, tmp_path: Path, key: str, value: str, named: str
) -> None:
    config = tmp_path / "study.yaml"
    config.write_text(f"timepoints:\n  - name: t0\n    {key}: {value}\n    instruments: [gad7]\n")
    with pytest.raises(StudyError, match=rf"{config}: invalid study config:\n  {named}: "):
        create_study(store, "s", config, caller=ADMIN)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("Variable / Field Name", "f" * 101),
        ("Text Validation Min", "1" * 51),
        ("Question Number (surveys only)", "q" * 51),
    ],
)
def test_a_dictionary_cell_longer_than_its_column_is_a_problem_of_its_cell(
    store: Store, tmp_path: Path, column: str, value: str
) -> None:
    from peerlens.study import import_data_dictionary

    for name in ("redcap_study.yaml", "redcap_dictionary.csv"):
        shutil.copy(DATA / name, tmp_path / name)
    create_study(store, "rc", tmp_path / "redcap_study.yaml", caller=ADMIN)
    rows = list(csv.DictReader((DATA / "redcap_dictionary.csv").open(encoding="utf-8")))
    rows[7][column] = value  # data row 8 (the phq9 intro field)
    f = tmp_path / "dictionary.csv"
    with f.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    before = _state(store)
    with pytest.raises(ImportRejected) as caught:
        import_data_dictionary(store, "rc", f, caller=ADMIN)
    assert [(p.row, p.column) for p in caught.value.problems] == [(8, column)]
    assert "characters; at most" in caught.value.problems[0].reason
    assert _state(store) == before


@pytest.mark.parametrize("key", ["arms", "sites"])
def test_an_over_long_arm_or_site_name_is_refused(store: Store, tmp_path: Path, key: str) -> None:
    config = tmp_path / "study.yaml"
    config.write_text(f"{key}: [{LONG}]\ntimepoints:\n  - name: t0\n    instruments: [gad7]\n")
    with pytest.raises(StudyError, match=rf"{key}.0: .*at most 100 characters"):
        create_study(store, "s", config, caller=ADMIN)


def test_cli_recording_with_an_over_long_device_exits_2_and_leaves_no_file(
    pilot: Store, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEERLENS_PASSWORD", PASSWORD)
    rr = tmp_path / "rr.txt"
    rr.write_text("800\n810\n790\n")
    before = _state(pilot)
    base = ["--study", "pilot", "--db", db_url, "--user", ACTOR]
    runner = CliRunner()
    for extra in (["--device", LONG], ["--window", f"{LONG}:0:60"]):
        args = ["recordings", "add", str(rr), "--participant", "P1", "--kind", "rr"]
        result = runner.invoke(app, [*args, *base, *extra])
        assert result.exit_code == 2, result.output
        assert "at most 100" in result.output
    session = ["participant", "session", str(10**20), "s1", "--mode", "phone"]
    result = runner.invoke(app, [*session, "--start", "2026-03-01T10:00+00:00", *base])
    assert result.exit_code == 2, result.output
    assert "relationship" in result.output
    assert _state(pilot) == before
    assert _files(pilot.blob_dir) == []

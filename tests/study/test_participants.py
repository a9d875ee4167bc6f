from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import text

from peerlens.study import (
    ImportRejected,
    NewParticipant,
    Store,
    StudyError,
    add_consent,
    add_participant,
    add_participants,
    create_study,
    list_participants,
    study_design,
    withdraw_participant,
)

from .conftest import ADMIN


def test_design_is_stored(store: Store, config_path: Path) -> None:
    create_study(store, "pilot", config_path, caller=ADMIN)
    d = study_design(store, "pilot", caller=ADMIN)
    assert d["arms"] == ["intervention", "control"] and d["sites"] == ["leeds", "glasgow"]
    assert [(t["name"], t["redcap_event"], t["offset_days"]) for t in d["timepoints"]] == [
        ("baseline", "baseline_arm_1", 0),
        ("week12", "week_12_arm_1", 84),
        ("week24", "week24_arm_1", 168),
    ]
    assert d["timepoints"][0]["instruments"] == ["phq9", "gad7"]
    with pytest.raises(StudyError, match="already exists"):
        create_study(store, "pilot", config_path, caller=ADMIN)


def test_config_errors_name_the_key(store: Store, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("arms: [a]\ntimepoint:\n  - name: baseline\n", encoding="utf-8")
    with pytest.raises(StudyError) as info:
        create_study(store, "x", bad, caller=ADMIN)
    assert "timepoints: Field required" in str(info.value)
    assert "timepoint: Extra inputs are not permitted" in str(info.value)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("timepoints:\n  - name: t0\n    instruments: [phq9, phq99]\n", "utf-8")
    with pytest.raises(StudyError, match=r"unknown instrument\(s\) phq99"):
        create_study(store, "x", unknown, caller=ADMIN)
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM study")).scalar_one() == 0


def test_add_list_withdraw_and_consent(store: Store, config_path: Path) -> None:
    create_study(store, "pilot", config_path, caller=ADMIN)
    assert add_participant(store, "pilot", "P1", arm="control", site="leeds", caller=ADMIN)
    assert not add_participant(store, "pilot", "P1", arm="control", site="leeds", caller=ADMIN)
    with pytest.raises(StudyError, match="already enrolled differently"):
        add_participant(store, "pilot", "P1", arm="intervention", caller=ADMIN)
    with pytest.raises(ImportRejected) as info:
        add_participants(
            store,
            "pilot",
            [
                NewParticipant("P2", arm="placebo"),
                NewParticipant("Jane Doe"),
                NewParticipant("P3", role="peer"),
                NewParticipant("P4"),
                NewParticipant("P4"),
            ],
            caller=ADMIN,
        )
    assert [(p.row, p.column) for p in info.value.problems] == [
        (1, "arm"),
        (2, "participant"),
        (3, "role"),
        (5, "participant"),
    ]
    withdraw_participant(store, "pilot", "P1", caller=ADMIN, reason="moved")
    frame = list_participants(store, "pilot", caller=ADMIN)
    assert frame.loc[0, "status"] == "withdrawn" and frame.loc[0, "arm"] == "control"
    with pytest.raises(StudyError, match="time zone"):
        add_consent(
            store, "pilot", "P1", version="v2", consented_at=dt.datetime(2026, 1, 1), caller=ADMIN
        )
    add_consent(
        store,
        "pilot",
        "P1",
        version="v2.1",
        consented_at=dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC),
        scope="questionnaires, ECG",
        caller=ADMIN,
    )
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT version, scope FROM consent")).one() == (
            "v2.1",
            "questionnaires, ECG",
        )
        actions = [r[0] for r in conn.execute(text("SELECT action FROM audit_log ORDER BY seq"))]
    # Between them, data-seal checkpoints (peerlens.study.integrity).
    assert [a for a in actions if not a.startswith("data.")] == [
        "user.bootstrap",
        "study.create",
        "participant.add",
        "participant.withdraw",
        "consent.add",
    ]

"""Questionnaire progress per participant, timepoint and instrument: states judged against each
timepoint's window, site scope, and who may read it; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from peerlens.study import (
    PermissionDenied,
    Store,
    add_participant,
    create_study,
    import_responses,
    list_participants,
    study_progress,
    withdraw_participant,
)
from peerlens.study.progress import PROGRESS_COLUMNS

from .conftest import ADMIN, make_user

GAD7 = [f"gad7_{i}" for i in range(1, 8)]
PHQ9 = [f"phq9_{i}" for i in range(1, 10)]


@pytest.fixture
def pilot(store: Store, config_path: Path, tmp_path: Path) -> dt.datetime:
    """L1 (Leeds) answered the whole GAD-7 and part of the PHQ-9 at baseline; G1 (Glasgow)
    nothing; G2 (Glasgow) withdrew; LW is a PS worker. Returns L1's enrolment time."""
    create_study(store, "pilot", config_path, caller=ADMIN)
    for code, site in (("L1", "leeds"), ("G1", "glasgow"), ("G2", "glasgow")):
        add_participant(store, "pilot", code, site=site, arm="control", caller=ADMIN)
    add_participant(store, "pilot", "LW", site="leeds", role="ps_worker", caller=ADMIN)
    withdraw_participant(store, "pilot", "G2", caller=ADMIN)
    f = tmp_path / "baseline.csv"
    f.write_text(
        f"participant,{','.join(GAD7)},{','.join(PHQ9)}\nL1,{','.join(['1'] * 7)},1,2,,,,,,,\n",
        encoding="utf-8",
    )
    import_responses(store, "pilot", f, timepoint="baseline", caller=ADMIN)
    people = list_participants(store, "pilot", caller=ADMIN).set_index("participant")
    return pd.Timestamp(people.loc["L1", "enrolled_at"]).to_pydatetime()


def _states(frame: pd.DataFrame) -> dict[tuple[str, str, str], str]:
    return {
        (r.participant, r.timepoint, r.instrument): r.state for r in frame.itertuples(index=False)
    }


def test_states_follow_the_windows(store: Store, pilot: dt.datetime) -> None:
    soon = study_progress(store, "pilot", caller=ADMIN, now=pilot + dt.timedelta(hours=1))
    assert list(soon.columns) == PROGRESS_COLUMNS
    # Three timepoints: phq9+gad7, phq9+gad7, phq9 -> 5 scheduled per service user; LW is not one.
    assert sorted(set(soon["participant"])) == ["G1", "G2", "L1"] and len(soon) == 15
    states = _states(soon)
    assert states["L1", "baseline", "gad7"] == "complete"
    assert states["L1", "baseline", "phq9"] == "started"
    assert states["G1", "baseline", "phq9"] == "due"
    assert states["G1", "week12", "phq9"] == "upcoming"
    assert states["G2", "baseline", "phq9"] == "stopped"  # withdrew before answering
    row = soon[(soon["participant"] == "L1") & (soon["instrument"] == "gad7")].iloc[0]
    assert row["completion"] == 2
    later = _states(study_progress(store, "pilot", caller=ADMIN, now=pilot + dt.timedelta(days=2)))
    assert later["L1", "baseline", "gad7"] == "complete"
    assert later["L1", "baseline", "phq9"] == "overdue"
    assert later["G1", "baseline", "gad7"] == "overdue"
    # week12: offset 84 days, open from 7 days before to 14 days after (L1's enrolment).
    for days, state in ((76.9, "upcoming"), (77, "due"), (98.9, "due"), (99, "overdue")):
        now = pilot + dt.timedelta(days=days)
        assert (
            _states(study_progress(store, "pilot", caller=ADMIN, now=now))["L1", "week12", "phq9"]
            == state
        ), days


def test_windows_are_given_in_utc(store: Store, pilot: dt.datetime) -> None:
    frame = study_progress(store, "pilot", caller=ADMIN)
    week12 = frame[(frame["participant"] == "L1") & (frame["timepoint"] == "week12")].iloc[0]
    assert week12["due_from"] == pilot + dt.timedelta(days=77)
    assert week12["due_until"] == pilot + dt.timedelta(days=99)


def test_a_site_scoped_researcher_sees_their_site_only(store: Store, pilot: dt.datetime) -> None:
    leeds = make_user(store, "leeds-researcher", "researcher", study="pilot", site="leeds")
    frame = study_progress(store, "pilot", caller=leeds)
    assert set(frame["participant"]) == {"L1"} and set(frame["site"]) == {"leeds"}


@pytest.mark.parametrize("role", ["auditor", "ps_worker"])
def test_roles_without_participant_data_are_refused(
    store: Store, pilot: dt.datetime, role: str
) -> None:
    caller = make_user(store, f"a-{role}", role, study="pilot")
    with pytest.raises(PermissionDenied):
        study_progress(store, "pilot", caller=caller)

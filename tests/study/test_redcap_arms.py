"""REDCap arms (``peerlens.study._redcap_arms``), on a real longitudinal project with two arms:
REDCapTidieR's recorded REDCap export (events ``event_1_arm_1``, ``event_2_arm_1``,
``event_1_arm_2``, ``event_3_arm_2``; record 4 in arm 2)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from peerlens.study import ImportRejected, Store, add_participant, create_study
from peerlens.study.export import export_study
from peerlens.study.participants import list_participants
from peerlens.study.redcap import import_records

from .conftest import ADMIN, REAL_REDCAP, needs_real_redcap

PROJECT = REAL_REDCAP / "redcaptidier" / "longitudinal-arms"
pytestmark = needs_real_redcap("redcaptidier", "longitudinal-arms")
RECORDS = PROJECT / "data.csv"


def _study(store: Store, tmp_path: Path, arms: list[str]) -> None:
    frame = pd.read_csv(RECORDS, dtype=str, keep_default_na=False)
    events = list(dict.fromkeys(frame["redcap_event_name"]))
    lines = [f'data_dictionary: "{PROJECT / "dictionary.csv"}"']
    if arms:
        lines.append("arms: [" + ", ".join(arms) + "]")
    lines.append("timepoints:")
    for i, event in enumerate(events):
        lines += [
            f"  - name: e{i}",
            f"    redcap_event: {event}",
            "    instruments: [nonrepeated, nonrepeated2, repeated]",
        ]
    config = tmp_path / "study.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    create_study(store, "s", config, caller=ADMIN)


def _arms_by_record() -> dict[str, set[int]]:
    frame = pd.read_csv(RECORDS, dtype=str, keep_default_na=False)
    out: dict[str, set[int]] = {}
    for record, event in zip(frame["record_id"], frame["redcap_event_name"], strict=True):
        out.setdefault(record, set()).add(int(event.rsplit("_arm_", 1)[1]))
    return out


def test_records_take_the_study_arm_of_their_events_and_round_trip(
    store: Store, tmp_path: Path
) -> None:
    _study(store, tmp_path, ["drug", "placebo"])
    import_records(store, "s", RECORDS, create_participants=True, caller=ADMIN)
    got = list_participants(store, "s", caller=ADMIN).set_index("participant")["arm"]
    want = {
        record: ["drug", "placebo"][min(arms) - 1] for record, arms in _arms_by_record().items()
    }
    assert set(want.values()) == {"drug", "placebo"}
    assert got.to_dict() == want
    out = tmp_path / "out.csv"
    export_study(store, "s", out, format="redcap", tier="full", raw_values=True, caller=ADMIN)
    pd.testing.assert_frame_equal(
        pd.read_csv(out, dtype=str, keep_default_na=False),
        pd.read_csv(RECORDS, dtype=str, keep_default_na=False),
    )


def test_a_participant_without_an_arm_is_placed_in_their_events_arm(
    store: Store, tmp_path: Path
) -> None:
    _study(store, tmp_path, ["drug", "placebo"])
    add_participant(store, "s", "4", caller=ADMIN)
    import_records(store, "s", RECORDS, create_participants=True, caller=ADMIN)
    arms = list_participants(store, "s", caller=ADMIN).set_index("participant")["arm"]
    assert arms["4"] == "placebo"


def test_an_event_of_another_arm_than_the_participants_is_refused_by_row_and_column(
    store: Store, tmp_path: Path
) -> None:
    _study(store, tmp_path, ["drug", "placebo"])
    add_participant(store, "s", "4", arm="drug", caller=ADMIN)
    with pytest.raises(ImportRejected) as info:
        import_records(store, "s", RECORDS, create_participants=True, caller=ADMIN)
    frame = pd.read_csv(RECORDS, dtype=str, keep_default_na=False)
    rows = [i + 1 for i, r in enumerate(frame["record_id"]) if r == "4"]
    assert [(p.row, p.column) for p in info.value.problems] == [
        (n, "redcap_event_name") for n in rows
    ]
    assert "participant '4' is in arm 'drug'" in info.value.problems[0].reason
    assert list_participants(store, "s", caller=ADMIN)["participant"].tolist() == ["4"]


def test_an_arm_the_study_does_not_have_is_refused(store: Store, tmp_path: Path) -> None:
    _study(store, tmp_path, ["drug"])
    with pytest.raises(ImportRejected) as info:
        import_records(store, "s", RECORDS, create_participants=True, caller=ADMIN)
    assert {p.column for p in info.value.problems} == {"redcap_event_name"}
    assert "REDCap arm 2 but the study has 1 arms" in info.value.problems[0].reason


def test_a_study_without_arms_keeps_the_event_names_only(store: Store, tmp_path: Path) -> None:
    _study(store, tmp_path, [])
    import_records(store, "s", RECORDS, create_participants=True, caller=ADMIN)
    assert list_participants(store, "s", caller=ADMIN)["arm"].isna().all()


def test_a_record_in_several_arms_is_kept_as_redcap_keeps_it(store: Store, tmp_path: Path) -> None:
    # REDCap lets one record be in several arms: here record 4's rows become record 1's.
    frame = pd.read_csv(RECORDS, dtype=str, keep_default_na=False)
    frame["record_id"] = frame["record_id"].replace("4", "1")
    frame = frame.sort_values("record_id", kind="stable")
    records = tmp_path / "records.csv"
    frame.to_csv(records, index=False)
    _study(store, tmp_path, ["drug", "placebo"])
    import_records(store, "s", records, create_participants=True, caller=ADMIN)
    arms = list_participants(store, "s", caller=ADMIN).set_index("participant")["arm"]
    assert pd.isna(arms["1"]) and arms["2"] == "drug"
    out = tmp_path / "out.csv"
    export_study(store, "s", out, format="redcap", tier="full", raw_values=True, caller=ADMIN)
    pd.testing.assert_frame_equal(
        pd.read_csv(out, dtype=str, keep_default_na=False),
        pd.read_csv(records, dtype=str, keep_default_na=False),
    )

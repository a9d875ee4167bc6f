"""A REDCap form scored as a bundled instrument through the study's field-to-item map
(``peerlens.study._form_scoring``, the config's ``scoring``): PHQ-9 kept in REDCap as radio
fields named by their content, scored by the published rule (Kroenke et al. 2001: total = the
sum of the nine 0-3 answers; severity 5/10/15/20)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from peerlens.study import Store, StudyError, create_study
from peerlens.study._lookup import get_study
from peerlens.study.derived import derivation_status, derive, derived_frame
from peerlens.study.export import export_study, tidy_frame
from peerlens.study.redcap import DICTIONARY_COLUMNS, import_records

from .conftest import ADMIN

FIELDS = [
    "interest", "down", "sleep", "tired", "appetite", "failure", "concentrate", "slow", "harm",
]  # fmt: skip
CHOICES = "0, Not at all | 1, Several days | 2, More than half the days | 3, Nearly every day"
#: Answers of three records (record 3 leaves one item blank).
ANSWERS = {
    "101": [0, 1, 2, 3, 0, 1, 2, 3, 0],
    "102": [3, 3, 3, 3, 3, 3, 3, 3, 2],
    "103": [1, 1, 1, 1, 1, 1, 1, 1, None],
}
SEVERITY = [(0, "none"), (5, "mild"), (10, "moderate"), (15, "moderately_severe"), (20, "severe")]


def _dictionary(path: Path, choices: str = CHOICES) -> None:
    rows = [["record_id", "mood", "", "text", "Record ID", *[""] * 13]]
    rows += [[f"mood_{f}", "mood", "", "radio", f, choices, *[""] * 12] for f in FIELDS]
    rows += [["mood_notes", "mood", "", "notes", "Notes", *[""] * 13]]
    pd.DataFrame(rows, columns=list(DICTIONARY_COLUMNS)).to_csv(path, index=False)


def _config(tmp_path: Path, items: dict[str, str]) -> Path:
    mapping = "\n".join(f"      {field}: {item}" for field, item in items.items())
    config = tmp_path / "study.yaml"
    config.write_text(
        f'data_dictionary: "{tmp_path / "dict.csv"}"\n'
        "timepoints:\n  - name: baseline\n    redcap_event: baseline_arm_1\n"
        "    instruments: [mood]\n"
        f"scoring:\n  - form: mood\n    instrument: phq9\n    items:\n{mapping}\n",
        encoding="utf-8",
    )
    return config


MAP = {f"mood_{f}": f"phq9_{i}" for i, f in enumerate(FIELDS, start=1)}


def test_a_mapped_redcap_form_derives_the_instruments_scores(store: Store, tmp_path: Path) -> None:
    _dictionary(tmp_path / "dict.csv")
    create_study(store, "s", _config(tmp_path, MAP), caller=ADMIN)
    records = tmp_path / "records.csv"
    rows = [
        [code, "baseline_arm_1", *("" if v is None else str(v) for v in answers), "", "2"]
        for code, answers in ANSWERS.items()
    ]
    columns = ["record_id", "redcap_event_name", *MAP, "mood_notes", "mood_complete"]
    pd.DataFrame(rows, columns=columns).to_csv(records, index=False)
    import_records(store, "s", records, create_participants=True, caller=ADMIN)

    (summary,) = derive(store, "s", ["scores"], caller=ADMIN)
    assert summary.inputs == 3 and summary.errors == 0
    stored = derived_frame(store, "s", "scores", caller=ADMIN)
    assert set(stored["instrument"]) == {"mood"} and set(stored["derivation"]) == {"current"}
    totals = stored[stored.name == "phq9_total"].set_index("participant")["value"]
    for code in ("101", "102"):
        assert totals[code] == sum(ANSWERS[code])  # type: ignore[arg-type]
    # One of nine unanswered: the PHQ manual prorates (mean of the answered x 9).
    assert totals["103"] == 9
    bands = stored[stored.name == "phq9_severity"].set_index("participant")["text"]
    for code, total in totals.items():
        assert bands[code] == [label for low, label in SEVERITY if total >= low][-1]
    status = derivation_status(store, "s", caller=ADMIN).set_index("what").loc["scores"]
    assert (status["inputs"], status["current"], status["missing"]) == (3, 3, 0)
    # The tidy export scores the form alike and sees the stored scores as current.
    with store.transaction() as session:
        tidy = tidy_frame(session, get_study(session, "s"), tier="full")
    scored = tidy[(tidy["kind"] == "score") & (tidy["name"] == "phq9_total")]
    assert scored.set_index("participant")["value"].to_dict() == totals.to_dict()
    assert set(scored["derivation"]) == {"current"}
    # The REDCap export is unchanged by the scoring.
    out = tmp_path / "out.csv"
    export_study(store, "s", out, format="redcap", tier="full", raw_values=True, caller=ADMIN)
    pd.testing.assert_frame_equal(
        pd.read_csv(out, dtype=str, keep_default_na=False),
        pd.read_csv(records, dtype=str, keep_default_na=False),
    )


@pytest.mark.parametrize(
    ("items", "choices", "message"),
    [
        ({**MAP, "mood_harm": "phq9_8"}, CHOICES, "scoring[0].items.mood_harm: item 'phq9_8'"),
        (dict(list(MAP.items())[:8]), CHOICES, "scoring[0].items: no field for item(s) phq9_9"),
        ({**MAP, "mood_notes": "phq9_9"}, CHOICES, "scoring[0].items.mood_notes: field"),
        ({**MAP, "mood_x": "phq9_9"}, CHOICES, "'mood_x' is not a field of form 'mood'"),
        ({**MAP, "mood_harm": "phq9_10"}, CHOICES, "'phq9_10' is not an item of 'phq9'"),
        # REDCap forms often code 1-4: scored as 0-3 they would be wrong, so they are refused.
        (MAP, "1, a | 2, b | 3, c | 4, d", "choice codes 4 are outside the range 0..3 of 'phq9'"),
        # REDCap allows letter codes: they cannot be scored as numbers (refused, not a crash).
        (MAP, "a, a | b, b | c, c | d, d", "choice codes a, b, c, d are not numbers"),
    ],
)
def test_a_map_that_would_score_wrongly_is_refused_naming_its_key(
    store: Store, tmp_path: Path, items: dict[str, str], choices: str, message: str
) -> None:
    _dictionary(tmp_path / "dict.csv", choices)
    with pytest.raises(StudyError, match="study config: ") as info:
        create_study(store, "s", _config(tmp_path, items), caller=ADMIN)
    assert message in str(info.value)
    with pytest.raises(StudyError, match="no study"):
        derived_frame(store, "s", "scores", caller=ADMIN)


def _records(tmp_path: Path) -> Path:
    records = tmp_path / "records.csv"
    rows = [
        [code, "baseline_arm_1", *("" if v is None else str(v) for v in answers), "", "2"]
        for code, answers in ANSWERS.items()
    ]
    columns = ["record_id", "redcap_event_name", *MAP, "mood_notes", "mood_complete"]
    pd.DataFrame(rows, columns=columns).to_csv(records, index=False)
    return records


def _flags(store: Store) -> dict[str, float | None]:
    """PHQ-9 item 9's flag per record (``None``: item 9 unanswered)."""
    stored = derived_frame(store, "s", "scores", caller=ADMIN)
    assert set(stored["derivation"]) == {"current"}
    flags = stored[stored.name == "phq9_item9_flag"].set_index("participant")["value"]
    return {code: None if pd.isna(v) else float(v) for code, v in flags.items()}


def test_changing_the_map_after_import_rederives_the_scores_and_is_audited(
    store: Store, tmp_path: Path
) -> None:
    from peerlens.study import audit_frame, scoring_maps, set_scoring_map

    _dictionary(tmp_path / "dict.csv")
    create_study(store, "s", _config(tmp_path, MAP), caller=ADMIN)
    import_records(store, "s", _records(tmp_path), create_participants=True, caller=ADMIN)
    derive(store, "s", ["scores"], caller=ADMIN)
    # PHQ-9 item 9 (thoughts of self-harm) raises its own flag (Kroenke et al. 2001).
    assert _flags(store) == {"101": 0.0, "102": 1.0, "103": None}
    # The form's last two fields were mapped the wrong way round: item 9 is mood_slow here.
    fixed = {**MAP, "mood_slow": "phq9_9", "mood_harm": "phq9_8"}
    summary = set_scoring_map(store, "s", "mood", "phq9", fixed, caller=ADMIN, reason="swap")
    assert summary is not None and summary.inputs == 3
    # Record 101 answered 3 to mood_slow: its flag is raised now; 103 answered 1.
    assert _flags(store) == {"101": 1.0, "102": 1.0, "103": 1.0}
    assert scoring_maps(store, "s", caller=ADMIN) == [
        {"form": "mood", "instrument": "phq9", "items": fixed}
    ]
    log = audit_frame(store, caller=ADMIN)
    entry = log[log["action"] == "scoring.map"].iloc[-1]
    assert entry["entity_id"] == "mood" and entry["reason"] == "swap"
    assert '"mood_harm":"phq9_9"' in entry["old"] and '"mood_harm":"phq9_8"' in entry["new"]


def test_a_map_set_before_any_derivation_derives_nothing_yet(store: Store, tmp_path: Path) -> None:
    from peerlens.study import set_scoring_map

    _dictionary(tmp_path / "dict.csv")
    config = tmp_path / "study.yaml"
    config.write_text(
        f'data_dictionary: "{tmp_path / "dict.csv"}"\n'
        "timepoints:\n  - name: baseline\n    redcap_event: baseline_arm_1\n"
        "    instruments: [mood]\n",
        encoding="utf-8",
    )
    create_study(store, "s", config, caller=ADMIN)
    import_records(store, "s", _records(tmp_path), create_participants=True, caller=ADMIN)
    assert set_scoring_map(store, "s", "mood", "phq9", MAP, caller=ADMIN) is None
    (summary,) = derive(store, "s", ["scores"], caller=ADMIN)
    assert summary.inputs == 3
    assert _flags(store) == {"101": 0.0, "102": 1.0, "103": None}


@pytest.mark.parametrize(
    ("choices", "items", "message"),
    [
        # Letter codes cannot be scored as the instrument's numbers: refused, saying how to fix.
        ("a, a | b, b | c, c | d, d", MAP, "choice codes a, b, c, d are not numbers"),
        (CHOICES, {**MAP, "mood_harm": "phq9_8"}, "item 'phq9_8' is also field"),
        (CHOICES, MAP | {"mood_x": "phq9_9"}, "'mood_x' is not a field of form 'mood'"),
    ],
)
def test_a_bad_new_map_is_refused_and_nothing_changes(
    store: Store, tmp_path: Path, choices: str, items: dict[str, str], message: str
) -> None:
    from peerlens.study import audit_frame, scoring_maps, set_scoring_map

    _dictionary(tmp_path / "dict.csv", choices)
    config = tmp_path / "study.yaml"
    config.write_text(
        f'data_dictionary: "{tmp_path / "dict.csv"}"\n'
        "timepoints:\n  - name: baseline\n    instruments: [mood]\n",
        encoding="utf-8",
    )
    create_study(store, "s", config, caller=ADMIN)
    before = len(audit_frame(store, caller=ADMIN))
    with pytest.raises(StudyError) as info:
        set_scoring_map(store, "s", "mood", "phq9", items, caller=ADMIN)
    assert message in str(info.value)
    if "not numbers" in message:
        assert "recode" in str(info.value)
    assert scoring_maps(store, "s", caller=ADMIN) == []
    assert len(audit_frame(store, caller=ADMIN)) == before
    with pytest.raises(StudyError, match="not a form of the data dictionary"):
        set_scoring_map(store, "s", "nope", "phq9", items, caller=ADMIN)
    with pytest.raises(StudyError, match="not a bundled instrument"):
        set_scoring_map(store, "s", "mood", "phq99", items, caller=ADMIN)

"""A study of bundled instruments exported for REDCap (``peerlens.study._redcap_instruments``):
the dictionary export defines every column of the ``--format redcap`` record export, by REDCap's
rules, and a project made from the two gives the same records and scores back."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest

from peerlens.instruments import load_spec
from peerlens.study import Store, add_participant, create_study
from peerlens.study.derived import derive, derived_frame
from peerlens.study.export import export_study
from peerlens.study.redcap import export_dictionary, import_records, parse_data_dictionary
from peerlens.study.responses import import_responses

from .conftest import ADMIN

#: REDCap's rule for variable names (REDCap data dictionary documentation): lower-case letters,
#: digits and underscores, starting with a letter, at most 100 characters.
REDCAP_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
META = {"record_id", "redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance"}
CONFIG = """
timepoints:
  - name: baseline
    instruments: [phq9, gad7]
  - name: week12
    redcap_event: week_12_arm_1
    instruments: [phq9]
"""


@pytest.fixture
def bundled(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setenv("PEERLENS_HOME", str(tmp_path / "home"))  # no loaded wording
    (tmp_path / "study.yaml").write_text(CONFIG, encoding="utf-8")
    create_study(store, "b", tmp_path / "study.yaml", caller=ADMIN)
    for code in ("P1", "P2", "P3"):
        add_participant(store, "b", code, caller=ADMIN)
    answers = {
        ("baseline", "phq9"): [[1, 2, 0, 3, 1, 0, 2, 1, 0], [3, 3, 2, 2, 1, 1, 0, 0, 1], None],
        ("baseline", "gad7"): [[0, 1, 2, 3, 2, 1, 0], None, [1, 1, 1, 1, 1, 1, 1]],
        ("week12", "phq9"): [[0, 0, 0, 1, 0, 0, 0, 0, 0], None, [2, 2, 2, 2, 2, 2, 2, 2, 2]],
    }
    for (timepoint, inst), rows in answers.items():
        items = list(load_spec(inst).item_columns)
        table = [
            [code, *values] for code, values in zip(("P1", "P2", "P3"), rows, strict=True) if values
        ]
        path = tmp_path / f"{timepoint}_{inst}.csv"
        pd.DataFrame(table, columns=["participant", *items]).to_csv(path, index=False)
        import_responses(store, "b", path, timepoint=timepoint, instrument=inst, caller=ADMIN)
    return store


def _read(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def test_the_dictionary_defines_every_exported_column_by_redcaps_rules(
    bundled: Store, tmp_path: Path
) -> None:
    text = export_dictionary(bundled, "b", caller=ADMIN)
    rows = parse_data_dictionary(text, "dictionary.csv")  # REDCap's dictionary rules
    names = [str(r["field_name"]) for r in rows]
    assert names[0] == "record_id"
    assert all(REDCAP_NAME.match(n) for n in names)
    for inst in ("phq9", "gad7"):
        spec = load_spec(inst)
        form = [r for r in rows if r["form_name"] == inst and r["field_type"] == "radio"]
        assert [r["field_name"] for r in form] == list(spec.item_columns)
        codes = {str(c) for c in range(spec.response_min, spec.response_max + 1)}
        for r in form:
            assert {p.split(",")[0].strip() for p in str(r["choices"]).split("|")} == codes
            assert "stand-in wording" in str(r["field_label"])
    out = tmp_path / "records.csv"
    export_study(bundled, "b", out, format="redcap", tier="full", raw_values=True, caller=ADMIN)
    records = pd.read_csv(out, dtype=str, keep_default_na=False)
    forms = {str(r["form_name"]) for r in rows}
    allowed = set(names) | META | {f"{f}_complete" for f in forms}
    assert set(records.columns) <= allowed
    assert set(records["redcap_event_name"]) == {"baseline_arm_1", "week_12_arm_1"}


def test_a_project_made_from_the_export_gives_the_same_records_and_scores(
    bundled: Store, tmp_path: Path
) -> None:
    dictionary = tmp_path / "dictionary.csv"
    dictionary.write_text(export_dictionary(bundled, "b", caller=ADMIN), encoding="utf-8")
    first = tmp_path / "first.csv"
    export_study(bundled, "b", first, format="redcap", tier="full", raw_values=True, caller=ADMIN)
    config = tmp_path / "again.yaml"
    config.write_text(
        f'data_dictionary: "{dictionary}"\n' + CONFIG.replace("\ntimepoints:", "timepoints:"),
        encoding="utf-8",
    )
    create_study(bundled, "again", config, caller=ADMIN)
    import_records(bundled, "again", first, create_participants=True, caller=ADMIN)
    second = tmp_path / "second.csv"
    export_study(
        bundled, "again", second, format="redcap", tier="full", raw_values=True, caller=ADMIN
    )
    pd.testing.assert_frame_equal(
        pd.read_csv(second, dtype=str, keep_default_na=False),
        pd.read_csv(first, dtype=str, keep_default_na=False),
    )
    scores = {}
    for study in ("b", "again"):
        derive(bundled, study, ["scores"], caller=ADMIN)
        frame = derived_frame(bundled, study, "scores", caller=ADMIN)
        keyed = frame.set_index(["participant", "timepoint", "instrument", "name"])
        scores[study] = keyed["value"].sort_index()
    assert len(scores["b"]) > 0
    pd.testing.assert_series_equal(scores["again"], scores["b"])


CLASSIC = """
timepoints:
  - name: baseline
    instruments: [phq9, gad7]
"""


@pytest.fixture
def classic(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A study of one timepoint: REDCap's classic (non-longitudinal) project."""
    monkeypatch.setenv("PEERLENS_HOME", str(tmp_path / "home"))
    (tmp_path / "classic.yaml").write_text(CLASSIC, encoding="utf-8")
    create_study(store, "c", tmp_path / "classic.yaml", caller=ADMIN)
    for code in ("P1", "P2"):
        add_participant(store, "c", code, caller=ADMIN)
    path = tmp_path / "phq9.csv"
    rows = [["P1", 1, 2, 0, 3, 1, 0, 2, 1, 0], ["P2", 3, 3, 2, 2, 1, 1, 0, 0, 1]]
    pd.DataFrame(rows, columns=["participant", *load_spec("phq9").item_columns]).to_csv(
        path, index=False
    )
    import_responses(store, "c", path, timepoint="baseline", instrument="phq9", caller=ADMIN)
    return store


def test_a_classic_project_export_has_no_event_column_and_round_trips(
    classic: Store, tmp_path: Path
) -> None:
    # REDCap's classic projects have no events: their exports and import template have no
    # redcap_event_name column (only longitudinal projects have one).
    dictionary = tmp_path / "dictionary.csv"
    dictionary.write_text(export_dictionary(classic, "c", caller=ADMIN), encoding="utf-8")
    first = tmp_path / "first.csv"
    export_study(classic, "c", first, format="redcap", tier="full", raw_values=True, caller=ADMIN)
    records = pd.read_csv(first, dtype=str, keep_default_na=False)
    assert "redcap_event_name" not in records.columns
    assert list(records["record_id"]) == ["P1", "P2"]
    assert list(records["phq9_4"]) == ["3", "2"]
    # Back in through a classic project made from the exported dictionary: the same file.
    config = tmp_path / "again.yaml"
    config.write_text(f'data_dictionary: "{dictionary}"\n' + CLASSIC, encoding="utf-8")
    create_study(classic, "again", config, caller=ADMIN)
    import_records(classic, "again", first, create_participants=True, caller=ADMIN)
    second = tmp_path / "second.csv"
    export_study(
        classic, "again", second, format="redcap", tier="full", raw_values=True, caller=ADMIN
    )
    pd.testing.assert_frame_equal(pd.read_csv(second, dtype=str, keep_default_na=False), records)


def test_a_longitudinal_export_keeps_the_event_column_even_with_one_event_filled(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEERLENS_HOME", str(tmp_path / "home"))
    (tmp_path / "study.yaml").write_text(CONFIG, encoding="utf-8")
    create_study(store, "l", tmp_path / "study.yaml", caller=ADMIN)
    add_participant(store, "l", "P1", caller=ADMIN)
    path = tmp_path / "phq9.csv"
    row = [["P1", 1, 2, 0, 3, 1, 0, 2, 1, 0]]
    pd.DataFrame(row, columns=["participant", *load_spec("phq9").item_columns]).to_csv(
        path, index=False
    )
    import_responses(store, "l", path, timepoint="baseline", instrument="phq9", caller=ADMIN)
    out = tmp_path / "out.csv"
    export_study(store, "l", out, format="redcap", tier="full", raw_values=True, caller=ADMIN)
    records = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(records.columns[:2]) == ["record_id", "redcap_event_name"]
    assert list(records["redcap_event_name"]) == ["baseline_arm_1"]
    # And back in: the event column names the timepoint.
    dictionary = tmp_path / "dictionary.csv"
    dictionary.write_text(export_dictionary(store, "l", caller=ADMIN), encoding="utf-8")
    config = tmp_path / "again.yaml"
    config.write_text(
        f'data_dictionary: "{dictionary}"\n' + CONFIG.replace("\ntimepoints:", "timepoints:"),
        encoding="utf-8",
    )
    create_study(store, "again", config, caller=ADMIN)
    import_records(store, "again", out, create_participants=True, caller=ADMIN)
    second = tmp_path / "second.csv"
    export_study(
        store, "again", second, format="redcap", tier="full", raw_values=True, caller=ADMIN
    )
    pd.testing.assert_frame_equal(pd.read_csv(second, dtype=str, keep_default_na=False), records)

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from peerlens.study import (
    ImportRejected,
    NewParticipant,
    Store,
    StudyError,
    add_participants,
    create_study,
    import_responses,
)
from peerlens.study.audit import check_chain

from .conftest import ACTOR, ADMIN

GAD7 = [f"gad7_{i}" for i in range(1, 8)]


def _setup(store: Store, config_path: Path, n: int = 3) -> None:
    create_study(store, "pilot", config_path, caller=ADMIN)
    people = [
        NewParticipant(f"P{i:03d}", arm="intervention", site="leeds") for i in range(1, n + 1)
    ]
    add_participants(store, "pilot", people, caller=ADMIN)


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    lines = [",".join(header)] + [",".join("" if v is None else str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _items(store: Store) -> list[tuple[object, ...]]:
    with store.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT p.study_code, t.name, r.instrument, r.completion, i.item, i.value, "
                    "i.missing_code FROM response_item i JOIN response r ON r.id = i.response_id "
                    "JOIN participant p ON p.id = r.participant_id "
                    "JOIN timepoint t ON t.id = r.timepoint_id ORDER BY 1, 2, 3, 5"
                )
            )
        ]


def _counts(store: Store) -> tuple[int, int, int]:
    with store.engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("response", "response_item", "audit_log")
        )


def test_import_stores_values_missing_codes_and_completion(
    store: Store, config_path: Path, tmp_path: Path
) -> None:
    _setup(store, config_path)
    f = _write(
        tmp_path / "gad.csv",
        ["participant", *GAD7],
        [["P001", 0, 1, 2, 3, 0, 1, 2], ["P002", 3, 3, -99, 3, 3, None, 1]],
    )
    summary = import_responses(store, "pilot", f, timepoint="baseline", caller=ADMIN)
    assert (summary.rows, summary.new, summary.updated, summary.unchanged) == (2, 2, 0, 0)
    got = _items(store)
    # P001: all 7 answered -> complete (2); P002: gad7_6 empty (not stored), gad7_3 coded -99.
    assert len(got) == 7 + 6
    assert got[0] == ("P001", "baseline", "gad7", 2, "gad7_1", 0.0, None)
    p2 = {row[4]: row for row in got if row[0] == "P002"}
    assert p2["gad7_3"][5:] == (None, "-99")
    assert "gad7_6" not in p2
    assert p2["gad7_1"][3] == 0  # incomplete: one item neither answered nor coded


def test_every_problem_reported_and_nothing_stored(
    store: Store, config_path: Path, tmp_path: Path
) -> None:
    _setup(store, config_path)
    before = _counts(store)
    f = _write(
        tmp_path / "bad.csv",
        ["participant", *GAD7, "gad7_complete", "mood"],
        [
            ["P001", 0, 1, 2, 3, 0, 1, 2, 2, "ok"],
            ["P404", 0, 0, 0, 0, 0, 0, 0, 2, ""],
            ["P002", 4, 0, 0, 0, 0, 0, 0, 2, ""],
            ["P001", 0, 0, 0, 0, 0, 0, 0, 2, ""],
            ["P003", "two", 0, 0, 0, 0, 0, 1.5, 7, ""],
        ],
    )
    with pytest.raises(ImportRejected) as info:
        import_responses(store, "pilot", f, timepoint="baseline", caller=ADMIN)
    found = {(p.row, p.column) for p in info.value.problems}
    assert found == {
        (0, "mood"),
        (2, "participant"),
        (3, "gad7_1"),
        (4, "participant"),
        (5, "gad7_1"),
        (5, "gad7_7"),
        (5, "gad7_complete"),
    }
    msg = str(info.value)
    assert "unknown participant 'P404'" in msg
    assert "4 is outside the allowed range 0..3" in msg
    assert "'P001' also on row 1" in msg
    assert "7 problem(s), nothing was imported" in msg
    assert _counts(store) == before


def test_reimport_is_idempotent_and_changes_are_audited(
    store: Store, config_path: Path, tmp_path: Path
) -> None:
    _setup(store, config_path)
    rows = [["P001", 1, 1, 1, 1, 1, 1, 1], ["P002", 2, 2, 2, 2, 2, 2, 2]]
    f = _write(tmp_path / "gad.csv", ["participant", *GAD7], rows)
    import_responses(store, "pilot", f, timepoint="baseline", caller=ADMIN)
    first = _items(store)
    again = import_responses(store, "pilot", f, timepoint="baseline", caller=ADMIN)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 2)
    assert _items(store) == first
    rows[1][3] = 0  # P002 gad7_3: 2 -> 0
    f2 = _write(tmp_path / "gad_fixed.csv", ["participant", *GAD7], rows)
    fixed = import_responses(
        store, "pilot", f2, timepoint="baseline", caller=ADMIN, reason="data entry error"
    )
    assert (fixed.new, fixed.updated, fixed.unchanged) == (0, 1, 1)
    with store.engine.connect() as conn:
        ev = conn.execute(
            text(
                "SELECT actor, entity_id, old, new, reason FROM audit_log "
                "WHERE action = 'response.update'"
            )
        ).one()
    assert ev.actor == ACTOR and ev.entity_id.startswith("P002/")
    # Changed items are logged as keyed hashes of the old and new values, never the values.
    old, new = json.loads(ev.old), json.loads(ev.new)
    assert old["completion"] == new["completion"] == 2
    assert list(old["items"]) == list(new["items"]) == ["gad7_3"]
    assert len(old["items"]["gad7_3"]) == 32 and old["items"]["gad7_3"] != new["items"]["gad7_3"]
    assert ev.reason == "data entry error"
    with store.transaction() as s:
        assert check_chain(s).ok


def test_instrument_option_and_unscheduled_instrument(
    store: Store, config_path: Path, tmp_path: Path
) -> None:
    _setup(store, config_path)
    phq = [f"phq9_{i}" for i in range(1, 10)]
    f = _write(
        tmp_path / "both.csv",
        ["participant", *GAD7, *phq],
        [["P001", *[1] * 7, *[0] * 9]],
    )
    s = import_responses(store, "pilot", f, timepoint="baseline", instrument="phq9", caller=ADMIN)
    assert s.new == 1
    assert {r[2] for r in _items(store)} == {"phq9"}
    with pytest.raises(StudyError, match="'gad7' is not scheduled at 'week24'"):
        import_responses(store, "pilot", f, timepoint="week24", instrument="gad7", caller=ADMIN)
    with pytest.raises(StudyError, match="no timepoint 'week6'"):
        import_responses(store, "pilot", f, timepoint="week6", caller=ADMIN)


_KILL_SCRIPT = """
import sys, time
from pathlib import Path
from peerlens.study import Caller, Store, import_responses
from peerlens.study import audit

def stall(*a, **k):
    # Every row is inserted but not committed when the import reaches the audit log.
    Path(sys.argv[3]).write_text("inserted")
    time.sleep(600)

audit.record = stall
store = Store.open(sys.argv[1])
import_responses(store, "pilot", sys.argv[2], timepoint="baseline", caller=Caller("tester"))
"""


def test_killed_import_leaves_database_as_before(
    store: Store, config_path: Path, tmp_path: Path
) -> None:
    _setup(store, config_path, n=300)
    f = _write(
        tmp_path / "gad.csv",
        ["participant", *GAD7],
        [[f"P{i:03d}", *[i % 4] * 7] for i in range(1, 301)],
    )
    before, items_before = _counts(store), _items(store)
    marker = tmp_path / "marker"
    script = tmp_path / "kill_me.py"
    script.write_text(_KILL_SCRIPT, encoding="utf-8")
    url = str(store.engine.url.render_as_string(hide_password=False))
    proc = subprocess.Popen([sys.executable, str(script), url, str(f), str(marker)])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, "import process ended before it was killed"
            assert time.monotonic() < deadline, "import never reached the audit step"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    store.engine.dispose()
    if store.dialect == "postgresql":
        time.sleep(0.5)  # let the server notice the dead connection and roll back
    assert _counts(store) == before
    assert _items(store) == items_before
    with store.transaction() as s:
        assert check_chain(s).ok
    if store.dialect == "sqlite":
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    # The same file then imports in full.
    done = import_responses(store, "pilot", f, timepoint="baseline", caller=ADMIN)
    assert done.new == 300 and _counts(store)[0] == 300


def test_session_linked_responses(store: Store, config_path: Path, tmp_path: Path) -> None:
    import datetime as dt

    from peerlens.study.sessions import add_relationship, add_session

    _setup(store, config_path)
    add_participants(store, "pilot", [NewParticipant("W1", role="ps_worker")], caller=ADMIN)
    t0 = dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC)
    rel = add_relationship(store, "pilot", "W1", "P001", started_at=t0, caller=ADMIN)
    add_session(store, "pilot", rel, "s1", started_at=t0, mode="phone", caller=ADMIN)
    f = _write(
        tmp_path / "after_s1.csv",
        ["participant", *GAD7],
        [["P001", 1, 1, 1, 1, 1, 1, 1], ["P002", 0, 0, 0, 0, 0, 0, 0]],
    )
    with pytest.raises(ImportRejected) as info:
        import_responses(store, "pilot", f, session="s1", instrument="gad7", caller=ADMIN)
    assert [(p.row, p.column) for p in info.value.problems] == [(2, "participant")]
    assert "no session 's1'" in info.value.problems[0].reason
    ok = _write(tmp_path / "ok.csv", ["participant", *GAD7], [["P001", 1, 1, 1, 1, 1, 1, 1]])
    assert import_responses(store, "pilot", ok, session="s1", instrument="gad7", caller=ADMIN).new
    again = import_responses(store, "pilot", ok, session="s1", instrument="gad7", caller=ADMIN)
    assert again.unchanged == 1
    # The same instrument at a timepoint is a different response.
    assert import_responses(store, "pilot", ok, timepoint="baseline", caller=ADMIN).new == 1
    with store.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT timepoint_id IS NULL, session_id IS NULL FROM response ORDER BY id")
        ).all()
    assert [tuple(r) for r in rows] == [(True, False), (False, True)]
    with pytest.raises(StudyError, match="either a timepoint or a session"):
        import_responses(store, "pilot", ok, caller=ADMIN)
    from peerlens.study._lookup import get_study
    from peerlens.study.export import tidy_frame

    with store.transaction() as s:
        tidy = tidy_frame(s, get_study(s, "pilot"), tier="deidentified")
    totals = tidy[tidy.name == "gad7_total"][["timepoint", "session", "value"]]
    rows = {tuple(r) for r in totals.astype("object").where(totals.notna(), None).values}
    assert rows == {(None, "s1", 7.0), ("baseline", None, 7.0)}


def test_qualtrics_export_with_mapped_columns_imports_and_reports_file_rows(
    store: Store, config_path: Path, tmp_path: Path
) -> None:
    from peerlens.instruments.columns import pattern_column_map

    _setup(store, config_path)
    header = ["participant", *(f"Q7_{n}" for n in range(1, 8))]
    wording = ["Participant", *(f"Worry item {n}" for n in range(1, 8))]
    import_ids = [
        '{"ImportId":"participant"}',
        *(f'{{"ImportId":"QID7_{n}"}}' for n in range(1, 8)),
    ]
    path = tmp_path / "qualtrics.csv"
    rows = [wording, import_ids, ["P001", 1, 2, 3, 0, 1, 2, 3], ["P002", 0, 0, 0, 0, 0, 0, 5]]
    # Qualtrics quotes every cell; the JSON cells hold commas-free quotes doubled.
    path.write_text(
        "\n".join(
            ",".join('"' + str(c).replace('"', '""') + '"' for c in r) for r in [header, *rows]
        )
        + "\n",
        encoding="utf-8",
    )
    mapping = pattern_column_map(["gad7=Q7_{n}"])
    with pytest.raises(ImportRejected) as info:
        import_responses(
            store,
            "pilot",
            path,
            timepoint="baseline",
            instrument="gad7",
            columns=mapping,
            caller=ADMIN,
        )
    # The out-of-range 5 is on the 4th data row of the file (after the two Qualtrics rows).
    assert [(p.row, p.column) for p in info.value.problems] == [(4, "gad7_7")]
    assert _counts(store)[0] == 0
    path.write_text(path.read_text(encoding="utf-8").replace('"5"', '"3"'), encoding="utf-8")
    summary = import_responses(
        store, "pilot", path, timepoint="baseline", instrument="gad7", columns=mapping, caller=ADMIN
    )
    assert summary.new == 2
    stored = [r for r in _items(store) if r[0] == "P001"]
    assert [v for *_, v, _code in stored] == [1, 2, 3, 0, 1, 2, 3]


def test_semicolon_delimited_export_is_read(
    store: Store, config_path: Path, tmp_path: Path
) -> None:
    _setup(store, config_path)
    path = tmp_path / "excel_eu.csv"
    path.write_text(
        "participant;" + ";".join(GAD7) + "\nP001;1;1;1;1;1;1;1\n", encoding="utf-8-sig"
    )
    summary = import_responses(
        store, "pilot", path, timepoint="baseline", instrument="gad7", caller=ADMIN
    )
    assert summary.new == 1


def test_rows_with_a_trailing_delimiter_are_refused_not_shifted(
    store: Store, config_path: Path, tmp_path: Path
) -> None:
    # Finding: each row ending with an extra delimiter made pandas use the first column as the
    # index, so every value moved one column left: wrong participants, wrong scores, no error.
    _setup(store, config_path, n=2)
    f = tmp_path / "shifted.csv"
    f.write_text(
        "participant," + ",".join(GAD7) + "\nP001,1,1,1,1,1,1,1,\nP002,2,2,2,2,2,2,2,\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as info:
        import_responses(store, "pilot", f, timepoint="baseline", caller=ADMIN)
    assert "has 9 cells, the header has 8" in str(info.value)
    assert _items(store) == []


def test_a_nul_character_in_a_parquet_cell_is_refused_naming_file_row_and_column(
    store: Store, config_path: Path, tmp_path: Path
) -> None:
    import pandas as pd

    _setup(store, config_path)
    f = tmp_path / "gad.parquet"
    frame = pd.DataFrame(
        [["P001", *["1"] * 7], ["P002", *["2"] * 7]], columns=["participant", *GAD7]
    )
    frame.loc[1, "gad7_3"] = "2\x00"
    frame.to_parquet(f)
    before = _counts(store)
    with pytest.raises(ImportRejected) as info:
        import_responses(store, "pilot", f, timepoint="baseline", caller=ADMIN)
    assert [(p.row, p.column) for p in info.value.problems] == [(2, "gad7_3")]
    assert str(f) in str(info.value) and "NUL character" in str(info.value)
    assert _counts(store) == before

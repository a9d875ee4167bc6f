"""Resealing many units in one transaction: the stored seals of more units than one look-up
statement takes are all found, so that a large re-import replaces every old seal (a missed one
would be inserted twice, or counted twice in the tallies)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import text

from peerlens.study import (
    NewParticipant,
    Store,
    add_participants,
    create_study,
    import_responses,
    verify_audit,
)

from ..conftest import ADMIN

PHQ9 = [f"phq9_{i}" for i in range(1, 10)]
GAD7 = [f"gad7_{i}" for i in range(1, 8)]
#: Two responses each: more units than SQLite takes parameters in one statement (999).
PEOPLE = 520


def _file(path: Path, value: int) -> Path:
    rows = [[f"P{i:04d}", *[value] * len(PHQ9), *[value] * len(GAD7)] for i in range(PEOPLE)]
    pd.DataFrame(rows, columns=["participant", *PHQ9, *GAD7]).to_csv(path, index=False)
    return path


def test_a_reimport_changing_over_a_thousand_responses_reseals_each_once(
    store: Store, config_path: Path, tmp_path: Path
) -> None:
    create_study(store, "pilot", config_path, caller=ADMIN)
    people = [NewParticipant(f"P{i:04d}", site="leeds") for i in range(PEOPLE)]
    add_participants(store, "pilot", people, caller=ADMIN)
    first = import_responses(
        store, "pilot", _file(tmp_path / "a.csv", 1), timepoint="baseline", caller=ADMIN
    )
    assert first.new == 2 * PEOPLE
    again = import_responses(
        store, "pilot", _file(tmp_path / "b.csv", 2), timepoint="baseline", caller=ADMIN
    )
    assert (again.new, again.updated) == (0, 2 * PEOPLE)
    with store.engine.connect() as conn:
        seals = conn.execute(
            text("SELECT count(*) FROM row_seal WHERE kind = 'response'")
        ).scalar_one()
    assert seals == 2 * PEOPLE
    report = verify_audit(store, caller=ADMIN)
    assert report.ok, report.problems
    assert report.data_unchecked is None

"""Resealing many units in one transaction: the stored seals of more units than one look-up
statement takes are all found, so that a large re-import replaces every old seal (a missed one
would be inserted twice, or counted twice in the tallies); on PostgreSQL the look-up is planned
with the units it is given, never as a prepared statement."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select, text

from peerlens.study import (
    NewParticipant,
    Store,
    add_participants,
    create_study,
    import_responses,
    verify_audit,
)
from peerlens.study.integrity import BY_NAME, _stored
from peerlens.study.models import RowSeal

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


@pytest.mark.postgres
def test_postgresql_seal_look_ups_are_never_prepared_statements(
    store: Store, config_path: Path, tmp_path: Path
) -> None:
    """psycopg prepares a statement on its sixth run on a connection, and PostgreSQL's generic
    plan for ``unit = ANY($2)`` cannot hash the array: with stale statistics it compared every
    seal of the kind with every unit looked up, seconds per import file (issue 9)."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("prepared statements are psycopg's on PostgreSQL")
    create_study(store, "pilot", config_path, caller=ADMIN)
    add_participants(store, "pilot", [NewParticipant("P0001", site="leeds")], caller=ADMIN)
    path = tmp_path / "a.csv"
    pd.DataFrame([["P0001", *[1] * len(PHQ9)]], columns=["participant", *PHQ9]).to_csv(
        path, index=False
    )
    import_responses(store, "pilot", path, timepoint="baseline", instrument="phq9", caller=ADMIN)
    kind = BY_NAME["response"]
    with store.transaction() as s:
        rows = s.execute(select(RowSeal.unit, RowSeal.mac).where(RowSeal.kind == kind.name))
        stored = {unit: bytes(mac) for unit, mac in rows}
        assert len(stored) == 1
        units = [*stored, "999999"]
        looked_up = [_stored(s, kind, units) for _ in range(8)]
        prepared = s.execute(text("SELECT statement FROM pg_prepared_statements")).scalars()
        assert [p for p in prepared if "row_seal" in p] == []
    assert looked_up == [stored] * 8

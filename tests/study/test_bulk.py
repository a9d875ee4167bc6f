"""Bulk inserts store every row exactly, whatever the number of rows per statement."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from peerlens.study import NewParticipant, add_participants, create_study, import_responses
from peerlens.study._bulk import _MAX_PARAMETERS, _NULL_STAND_IN, bulk_insert
from peerlens.study.integrity import check_seals
from peerlens.study.models import ResponseItem, RowSeal
from peerlens.study.storage import Store

from .conftest import ADMIN

PER = _MAX_PARAMETERS // 3  # rows per statement for row_seal's three columns


@pytest.mark.parametrize("n", [0, 1, PER - 1, PER, PER + 1, 2 * PER + 3])
def test_every_row_stored_once_and_exactly(store: Store, n: int) -> None:
    rows = [("kind", f"unit {i:05d} é'\"", bytes([i % 256]) * 32) for i in range(n)]
    with store.transaction() as s:
        bulk_insert(s, RowSeal, ("kind", "unit", "mac"), iter(rows))
    with store.transaction() as s:
        got = s.execute(
            select(RowSeal.kind, RowSeal.unit, RowSeal.mac)
            .where(RowSeal.kind == "kind")
            .order_by(RowSeal.unit)
        ).all()
    assert [(k, u, bytes(m)) for k, u, m in got] == rows


def test_text_with_a_nul_is_refused_before_the_database_sees_it(store: Store) -> None:
    """Both backends refuse it alike, naming the table, column and row of the write (PostgreSQL
    would fail on it with an error quoting the value; SQLite would store it)."""
    from peerlens.study._text_guard import NulInText

    rows = [("nul", f"unit {i}", bytes(32)) for i in range(2 * PER)]
    rows[PER + 4] = ("nul", "unit\x00 with a NUL", bytes(32))
    with (
        pytest.raises(NulInText, match=rf"^row_seal\.unit \(row {PER + 5} of the write\): text "),
        store.transaction() as s,
    ):
        bulk_insert(s, RowSeal, ("kind", "unit", "mac"), iter(rows))
    with store.transaction() as s:
        assert s.execute(select(RowSeal.unit).where(RowSeal.kind == "nul")).all() == []


def test_nulls_stored_as_nulls_whatever_else_the_statement_holds(
    store: Store, config_path: Path, tmp_path: Path
) -> None:
    """Columns NULL in every row of a statement, in some rows, in none, and mixing NULLs with
    the very value SQLite's statements bind for them: every value comes back as written (and the
    response they were added to is sealed over them)."""
    create_study(store, "pilot", config_path, caller=ADMIN)
    add_participants(
        store, "pilot", [NewParticipant("P001", arm="intervention", site="leeds")], caller=ADMIN
    )
    f = tmp_path / "gad.csv"
    items = [f"gad7_{i}" for i in range(1, 8)]
    f.write_text(f"participant,{','.join(items)}\nP001,{','.join('1' * 7)}\n", encoding="utf-8")
    import_responses(store, "pilot", f, timepoint="baseline", caller=ADMIN)
    per = _MAX_PARAMETERS // 5  # rows per statement for response_item's five columns
    rows: list[tuple[object, ...]] = []
    for i in range(3 * per + 7):
        part = i // per  # the statement the row goes into
        value = None if part == 2 or i % 3 == 0 else float(i)
        text = f"t{i} é" if part == 1 or (part == 3 and i % 2) else None
        missing = "-99" if value is None and part != 2 else None
        rows.append((1, f"extra_{i:04d}", value, text, missing))
    # Equal to what is bound for NULLs: as a float (SQLite compares it with that integer), and
    # as that integer (stored as a float in this column).
    rows[5] = (1, "extra_0005", float(_NULL_STAND_IN), None, None)
    rows[8] = (1, "extra_0008", _NULL_STAND_IN, None, None)
    with store.transaction() as s:
        bulk_insert(s, ResponseItem, ("response_id", "item", "value", "text", "missing_code"), rows)
    with store.transaction() as s:
        got = s.execute(
            select(
                ResponseItem.response_id,
                ResponseItem.item,
                ResponseItem.value,
                ResponseItem.text,
                ResponseItem.missing_code,
            )
            .where(ResponseItem.item.like("extra_%"))
            .order_by(ResponseItem.item)
        ).all()
        rows[8] = (1, "extra_0008", float(_NULL_STAND_IN), None, None)
        assert [tuple(r) for r in got] == rows
        assert [type(r[2]) for r in got] == [type(r[2]) for r in rows]
        key = store.vault_key(s)
        assert check_seals(s, key).problems == ()

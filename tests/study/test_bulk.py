"""Bulk inserts store every row exactly, whatever the number of rows per statement."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from peerlens.study._bulk import _MAX_PARAMETERS, bulk_insert
from peerlens.study.models import RowSeal
from peerlens.study.storage import Store

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

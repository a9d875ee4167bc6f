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

"""Between a check of sealed data and the seal made of it: nothing changed with SQL in that window
is sealed as genuine (follow-ups of review 9's R9-1 and R9-2)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import text

from peerlens.study import (
    LinkHolder,
    Store,
    TamperedError,
    agree_to_consent,
    keys,
    open_visit,
    rotate_vault_key,
    save_page,
    verify_audit,
)
from peerlens.study._bulk import bulk_insert
from peerlens.study.models import ResponseItem
from peerlens.study.vault import generate_key

from ..conftest import ADMIN


def _first_page(store: Store, holder: LinkHolder) -> int:
    """Save the first page of A1's visit; return the id of the response it wrote."""
    agree_to_consent(store, "v1", caller=holder)
    layout = open_visit(store, caller=holder).pages[0].layout
    assert save_page(store, 1, {q.item: "4" for q in layout.questions}, caller=holder)
    with store.engine.connect() as conn:
        return int(conn.execute(text("SELECT id FROM response")).scalar_one())


def test_rotation_seals_what_it_checked_not_a_row_changed_since(
    store: Store,
    holder: LinkHolder,
    db_url: str,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Key rotation checks every unit under the old key and reseals every unit under the new
    # one. A row changed with SQL after the check (a connection taking no peerlens lock) must
    # keep the seal of what was checked, and be named afterwards.
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: the rotating transaction holds the write lock (sound)")
    rid = _first_page(store, holder)
    outside = store.engine.connect()
    real_check = keys.check_seals
    done: list[bool] = []

    def check_then_tamper(*args: Any, **kwargs: Any) -> Any:
        found = real_check(*args, **kwargs)
        if not done:
            done.append(True)
            with outside.begin():
                outside.execute(
                    text("UPDATE response SET source = 'by hand' WHERE id = :r"), {"r": rid}
                )
        return found

    monkeypatch.setattr(keys, "check_seals", check_then_tamper)
    new = generate_key()
    try:
        rotate_vault_key(store, new, caller=ADMIN)
    finally:
        monkeypatch.undo()
        outside.close()
    assert done
    monkeypatch.setenv("PEERLENS_VAULT_KEY", new)
    rotated = Store.open(db_url, blob_dir=tmp_path / "blobs")
    try:
        problems = verify_audit(rotated, caller=ADMIN).problems
    finally:
        rotated.close()
    assert any(f"table response, id {rid}: changed" in p for p in problems), problems


def test_a_child_row_added_while_a_save_holds_its_unit_is_refused_not_sealed(
    store: Store, holder: LinkHolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A save checks the response (locking its rows), deletes its items and writes them anew.
    # An item inserted with SQL after that delete is no row the check could lock: sealing
    # finds a child row written by another transaction since the check, and refuses; verify
    # names the response.
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite: a writing transaction holds the write lock (sound)")
    from peerlens.study import integrity

    rid = _first_page(store, holder)
    page = open_visit(store, caller=holder).pages[1].layout
    outside = store.engine.connect()
    real_note = integrity.note_rows
    added: list[threading.Thread] = []
    waited: list[bool] = []

    def add_item() -> None:
        with outside.begin():
            outside.execute(
                text("INSERT INTO response_item (response_id, item, value) VALUES (:r, 'x', 1)"),
                {"r": rid},
            )

    def add_then_note(session: Any, table: Any, *args: Any) -> Any:
        if table.name == "response_item" and not added:  # the save's own items come next
            added.append(threading.Thread(target=add_item))
            added[0].start()
            added[0].join(2)
            waited.append(added[0].is_alive())
        return real_note(session, table, *args)

    monkeypatch.setattr(integrity, "note_rows", add_then_note)
    try:
        with pytest.raises(TamperedError, match=f"table response, id {rid} was changed"):
            save_page(store, 2, {q.item: "3" for q in page.questions}, caller=holder)
    finally:
        monkeypatch.undo()
        for t in added:
            t.join(30)
        outside.close()
    assert waited == [False]  # the insert did not wait: the response's row is not held for it
    problems = verify_audit(store, caller=ADMIN).problems
    assert any(f"table response, id {rid}: changed" in p for p in problems), problems


def test_child_rows_bulk_inserted_into_a_stored_unit_check_it_first(
    store: Store, holder: LinkHolder
) -> None:
    # Adding child rows to a unit stored before is a change to it: a unit changed with SQL is
    # refused, not sealed with the new rows.
    rid = _first_page(store, holder)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE response_item SET value = 0 WHERE response_id = :r"), {"r": rid})
    with (
        pytest.raises(TamperedError, match=f"table response, id {rid} was changed"),
        store.transaction() as s,
    ):
        bulk_insert(
            s,
            ResponseItem,
            ("response_id", "item", "value", "text", "missing_code"),
            [(rid, "x", 1.0, None, None)],
        )
    problems = verify_audit(store, caller=ADMIN).problems
    assert any(f"table response, id {rid}: changed" in p for p in problems), problems

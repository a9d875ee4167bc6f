"""Item values always belong to an existing response, on both backends (a foreign key on SQLite,
statement-level constraint triggers on PostgreSQL since revision 0015)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError

from peerlens.study import NewParticipant, Store, add_participants, create_study, import_responses

from .conftest import ADMIN

_ITEM = "INSERT INTO response_item (response_id, item, value) VALUES (:r, :item, 1)"
#: A second response of the participant, written without items (to delete or renumber).
_COPY_RESPONSE = (
    "INSERT INTO response (id, participant_id, timepoint_id, session_id, instrument, "
    "repeat_instance, completion, source, updated_at) SELECT :id, participant_id, timepoint_id, "
    "session_id, 'gad7', repeat_instance, completion, source, updated_at FROM response "
    "WHERE id = 1"
)


@pytest.fixture
def engine(store: Store, config_path: Path, tmp_path: Path) -> Iterator[Engine]:
    """The store's engine, after importing one PHQ-9 response (id 1) with its nine items."""
    create_study(store, "pilot", config_path, caller=ADMIN)
    add_participants(
        store, "pilot", [NewParticipant("P001", arm="intervention", site="leeds")], caller=ADMIN
    )
    f = tmp_path / "phq.csv"
    f.write_text(
        "participant," + ",".join(f"phq9_{i}" for i in range(1, 10)) + "\nP001,1,1,1,1,1,1,1,1,1\n",
        encoding="utf-8",
    )
    import_responses(store, "pilot", f, timepoint="baseline", caller=ADMIN)
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM response")).scalar_one() == 1
    yield store.engine


def _items(eng: Engine) -> int:
    with eng.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM response_item")).scalar_one())


def test_an_item_of_a_missing_response_is_refused_with_the_whole_statement(engine: Engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text(_ITEM), [{"r": 1, "item": "extra"}, {"r": 42, "item": "phq9_1"}])
    assert _items(engine) == 9  # the good row of the refused statement is not kept either


def test_moving_an_item_to_a_missing_response_is_refused(engine: Engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE response_item SET response_id = 7 WHERE item = 'phq9_1'"))
    with engine.connect() as conn:
        held = conn.execute(text("SELECT DISTINCT response_id FROM response_item")).scalars()
        assert list(held) == [1]


def test_a_response_with_items_cannot_be_deleted_or_renumbered(engine: Engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("DELETE FROM response WHERE id = 1"))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE response SET id = 9 WHERE id = 1"))
    with engine.begin() as conn:  # other changes to the response are allowed
        conn.execute(text("UPDATE response SET completion = 0 WHERE id = 1"))
        # and a response without items can go
        conn.execute(text(_COPY_RESPONSE), {"id": 2})
        conn.execute(text("DELETE FROM response WHERE id = 2"))
    with engine.begin() as conn:  # items first, then their response: allowed
        conn.execute(text("DELETE FROM response_item WHERE response_id = 1"))
        conn.execute(text("DELETE FROM response WHERE id = 1"))


@pytest.mark.postgres
def test_postgresql_refuses_truncating_responses_that_items_refer_to(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's")
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("TRUNCATE response CASCADE"))
    assert _items(engine) == 9


@pytest.mark.postgres
def test_postgresql_a_concurrent_delete_waits_and_then_fails(engine: Engine) -> None:
    """Items written for a response lock it as a foreign key would: a delete of that response in
    another transaction waits for the writer and, once the items are committed, is refused."""
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks between two PostgreSQL sessions")
    other = create_engine(engine.url, poolclass=None)
    with engine.begin() as conn:
        conn.execute(text(_COPY_RESPONSE), {"id": 3})
    outcome: list[BaseException | None] = []
    writer = engine.connect()
    tx = writer.begin()
    writer.execute(text(_ITEM), {"r": 3, "item": "phq9_1"})

    def delete() -> None:
        try:
            with other.begin() as conn:
                conn.execute(text("SET lock_timeout = '20s'"))
                conn.execute(text("DELETE FROM response WHERE id = 3"))
            outcome.append(None)
        except (IntegrityError, OperationalError) as exc:
            outcome.append(exc)

    deleter = threading.Thread(target=delete)
    deleter.start()
    time.sleep(1.0)
    assert deleter.is_alive(), "the delete did not wait for the transaction writing items"
    tx.commit()
    writer.close()
    deleter.join(30)
    other.dispose()
    assert len(outcome) == 1 and isinstance(outcome[0], IntegrityError)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM response WHERE id = 3")).scalar_one() == 1

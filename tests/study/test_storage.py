from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from peerlens.study.errors import StudyError
from peerlens.study.models import Base
from peerlens.study.storage import (
    PG_TRIGGER_CHECKED,
    Store,
    create_study_engine,
    current_revision,
    head_revision,
    resolve_url,
    upgrade,
)


def test_resolve_url_env_and_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PEERLENS_DB", raising=False)
    assert resolve_url(None) == "sqlite:///peerlens.db"
    monkeypatch.setenv("PEERLENS_DB", "postgres://a:b@h:5432/d")
    assert resolve_url(None) == "postgresql+psycopg://a:b@h:5432/d"
    assert resolve_url("sqlite:///x.db") == "sqlite:///x.db"
    with pytest.raises(StudyError, match="only sqlite and postgresql"):
        resolve_url("mysql://h/d")


def _drift(conn: Connection) -> list[Any]:
    """What differs between the migrated schema and the models, except the foreign keys that
    PostgreSQL enforces with statement-level triggers instead (revision 0015)."""
    diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    if conn.dialect.name != "postgresql":
        return list(diff)

    def trigger_checked(entry: Any) -> bool:
        if not (isinstance(entry, tuple) and entry[0] == "add_fk"):
            return False
        fk = entry[1]
        (column,) = fk.columns
        return (fk.table.name, column.name, fk.referred_table.name) in PG_TRIGGER_CHECKED

    return [d for d in diff if not trigger_checked(d)]


def test_open_empty_database_runs_every_migration(db_url: str) -> None:
    engine = create_study_engine(db_url)
    assert current_revision(engine) is None
    with pytest.raises(StudyError, match="not a peerlens database"):
        Store.open(db_url)  # an empty database is never turned into a study by accident
    store = Store.open(db_url, create=True)
    assert current_revision(store.engine) == head_revision() == "0023"
    names = set(inspect(store.engine).get_table_names())
    assert set(Base.metadata.tables) <= names
    # The migrated schema is exactly what the models declare (no drift between the two).
    with store.engine.connect() as conn:
        assert _drift(conn) == []
    store.close()
    engine.dispose()


@pytest.mark.parametrize(
    "previous",
    [
        *("0001", "0002", "0003", "0004", "0005", "0006", "0008", "0009", "0010", "0011"),
        *("0012", "0013", "0014", "0015", "0016", "0017", "0018", "0019", "0020", "0022"),
    ],
)
def test_upgrade_from_previous_revision_keeps_data(db_url: str, previous: str) -> None:
    engine = create_study_engine(db_url)
    upgrade(engine, previous)
    assert current_revision(engine) == previous
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO study (id, name, title, missing_codes_json, created_at) "
                "VALUES (1, 'old', 'made at 0001', '[]', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO audit_log (seq, at_utc, actor, action, entity, prev_hash, hash) "
                "VALUES (1, 'x', 'a', 'b', 'c', 'p', 'h')"
            )
        )
        if previous == "0001":  # at 0001 the audit log was not yet protected
            conn.execute(text("UPDATE audit_log SET actor = 'z' WHERE seq = 1"))
    store = Store.open(db_url)
    assert current_revision(store.engine) == "0023"
    with store.engine.connect() as conn:
        assert _drift(conn) == []
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT title FROM study WHERE name='old'")).scalar_one() == (
            "made at 0001"
        )
    # After the upgrade the audit log is append-only.
    with pytest.raises(Exception, match="append-only"), store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'y' WHERE seq = 1"))
    store.close()
    engine.dispose()


def test_open_without_migrate_refuses_old_schema(db_url: str) -> None:
    engine = create_study_engine(db_url)
    upgrade(engine, "0001")
    with pytest.raises(StudyError, match="revision 0001"):
        Store.open(db_url, migrate=False)
    engine.dispose()


def test_sqlite_wal_and_foreign_keys(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'x.db'}", create=True)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    with pytest.raises(Exception, match="FOREIGN KEY"), store.engine.begin() as conn:
        conn.execute(text("INSERT INTO arm (study_id, name) VALUES (999, 'x')"))
    assert store.blob_dir == tmp_path / "x_recordings"
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    store.close()


def test_a_mistyped_sqlite_path_is_refused_and_not_created(tmp_path: Path) -> None:
    typo = tmp_path / "pilto.db"
    with pytest.raises(StudyError, match="no peerlens database at"):
        Store.open(f"sqlite:///{typo}")
    assert not typo.exists()


def test_recordings_folder_is_stored_absolute_and_found_from_anywhere(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Finding: with PostgreSQL the folder was resolved against the current directory, so
    # derive or erase run from elsewhere lost (or left behind) the ECG files.
    monkeypatch.chdir(tmp_path)
    Store.open(db_url, create=True, blob_dir="rel/blobs").close()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("PEERLENS_RECORDINGS", str(elsewhere / "other"))  # new databases only
    store = Store.open(db_url)
    assert store.blob_dir == tmp_path / "rel" / "blobs" and store.blob_dir.is_absolute()
    store.close()
    with pytest.raises(StudyError, match="keeps its recordings in"):
        Store.open(db_url, blob_dir=elsewhere / "other")


def test_upgrade_to_0010_keeps_item_values_and_seals_under_their_keys(db_url: str) -> None:
    """0010 drops response_item's surrogate id and stores items and seals by their keys: every
    value survives, and a second value for the same response and item is refused."""
    engine = create_study_engine(db_url)
    upgrade(engine, "0009")
    rows = [
        (1, "a_1", 2.0, None, None),
        (1, "a_2", None, "text", None),
        (2, "a_1", None, None, "-9"),
    ]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO study (id, name, title, missing_codes_json, created_at) "
                "VALUES (1, 's', 't', '[]', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO participant (id, study_id, study_code, role, status, enrolled_at, "
                "date_shift_days) VALUES (1, 1, 'P1', 'service_user', 'enrolled', "
                "CURRENT_TIMESTAMP, 0)"
            )
        )
        for rid in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO response (id, participant_id, instrument, repeat_instance, "
                    "source, updated_at) VALUES (:r, 1, :i, 0, 'x', CURRENT_TIMESTAMP)"
                ),
                {"r": rid, "i": f"inst{rid}"},
            )
        for n, row in enumerate(rows, start=10):
            conn.execute(
                text(
                    "INSERT INTO response_item (id, response_id, item, value, text, missing_code)"
                    " VALUES (:n, :r, :i, :v, :t, :m)"
                ),
                dict(zip("nrivtm", (n, *row), strict=True)),
            )
        conn.execute(
            text("INSERT INTO row_seal (kind, unit, mac) VALUES ('response', '1', :m)"),
            {"m": b"\x01" * 32},
        )
    upgrade(engine, "head")
    with engine.begin() as conn:
        got = conn.execute(
            text(
                "SELECT response_id, item, value, text, missing_code FROM response_item "
                "ORDER BY response_id, item"
            )
        ).all()
        assert [tuple(r) for r in got] == rows
        seal = conn.execute(text("SELECT kind, unit, mac FROM row_seal")).one()
        assert tuple(seal) == ("response", "1", b"\x01" * 32)
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"), engine.begin() as conn:
        conn.execute(
            text("INSERT INTO response_item (response_id, item, value) VALUES (1, 'a_1', 3.0)")
        )
    engine.dispose()


def _one_response(store: Store, config: Path, tmp_path: Path) -> None:
    from peerlens.study import NewParticipant, add_participants, create_study, import_responses

    from .conftest import ADMIN

    create_study(store, "pilot", config, caller=ADMIN)
    add_participants(
        store, "pilot", [NewParticipant("P1", arm="control", site="leeds")], caller=ADMIN
    )
    f = tmp_path / "gad.csv"
    f.write_text(
        "participant," + ",".join(f"gad7_{i}" for i in range(1, 8)) + "\nP1,1,1,1,1,1,1,1\n"
    )
    import_responses(store, "pilot", f, timepoint="baseline", caller=ADMIN)


_COPY = (
    "INSERT INTO response (participant_id, timepoint_id, session_id, instrument, "
    "repeat_instance, completion, source, updated_at) SELECT participant_id, timepoint_id, "
    "session_id, instrument, repeat_instance, completion, source, updated_at FROM response"
)


def test_a_response_cannot_be_stored_twice(store: Store, config_path: Path, tmp_path: Path) -> None:
    """Finding: the unique key of a response includes timepoint_id and session_id, one of which
    is always NULL, so it never refused a copy (revision 0016 counts a missing id as 0)."""
    _one_response(store, config_path, tmp_path)
    with pytest.raises(IntegrityError), store.engine.begin() as conn:
        conn.execute(text(_COPY))
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM response")).scalar_one() == 1


def test_upgrade_names_responses_stored_twice_and_changes_nothing(
    db_url: str, config_path: Path, tmp_path: Path
) -> None:
    store = Store.open(db_url, create=True, blob_dir=tmp_path / "blobs")
    from peerlens.study import bootstrap_admin

    from .conftest import ACTOR, PASSWORD

    bootstrap_admin(store, ACTOR, PASSWORD)
    _one_response(store, config_path, tmp_path)
    store.close()
    engine = create_study_engine(db_url)
    with engine.begin() as conn:  # as a database before revision 0016 could be
        conn.execute(text("DROP INDEX uq_response_key"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0015'"))
        conn.execute(text(_COPY))
    with pytest.raises(StudyError, match=r"1 response\(s\) stored more than once.*gad7"):
        Store.open(db_url)
    assert current_revision(engine) == "0015"
    engine.dispose()


def test_a_reading_transaction_refuses_to_write(store: Store) -> None:
    """Store.reading takes no write lock, so it may not write: a write through it is refused
    (by peerlens on SQLite, by PostgreSQL's READ ONLY transaction) and nothing is stored."""
    from sqlalchemy import select
    from sqlalchemy.exc import DBAPIError

    from peerlens.study.models import Setting

    with pytest.raises((RuntimeError, DBAPIError)), store.reading() as s:
        s.add(Setting(key="written_while_reading", value="x"))
    with store.reading() as s:
        assert s.scalar(select(Setting.value).where(Setting.key == "database_id"))
        assert s.get(Setting, "written_while_reading") is None


def test_a_sqlite_reading_transaction_begins_deferred(store: Store) -> None:
    """On SQLite a reading transaction is not BEGIN IMMEDIATE: it takes no write lock, so a
    writer of another connection goes on meanwhile (a busy timeout of 0 would fail at once)."""
    if store.dialect != "sqlite":
        pytest.skip("SQLite's transaction modes")
    from sqlalchemy import select

    from peerlens.study.models import Setting

    with store.reading() as s:
        assert s.scalar(select(Setting.value).where(Setting.key == "database_id"))
        with store.engine.connect() as other:
            other.exec_driver_sql("PRAGMA busy_timeout=0")
            other.exec_driver_sql("UPDATE setting SET value = value WHERE key = 'nothing'")
            other.commit()

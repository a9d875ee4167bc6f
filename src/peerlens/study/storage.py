"""Opening a study database: URL resolution, engine set-up, migrations, transactions.

SQLite is the embedded default (``sqlite:///peerlens.db``) with WAL journaling, foreign keys on and
``BEGIN IMMEDIATE`` transactions (so the audit chain is appended by one writer at a time);
PostgreSQL (psycopg 3) serves multi-site use. Opening a store upgrades the schema to the newest
Alembic revision, in one transaction.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session

from peerlens.study.errors import StudyError

#: The database used when neither ``--db`` nor ``PEERLENS_DB`` says otherwise.
DEFAULT_URL = "sqlite:///peerlens.db"
_MIGRATIONS = Path(__file__).parent / "migrations"


def resolve_url(db: str | None = None) -> str:
    """The SQLAlchemy URL to use: ``db``, else ``$PEERLENS_DB``, else :data:`DEFAULT_URL`.

    ``postgresql://`` and ``postgres://`` URLs are pointed at the psycopg 3 driver.

    Examples
    --------
    >>> resolve_url("postgresql://u:p@host/db")
    'postgresql+psycopg://u:p@host/db'
    >>> resolve_url("sqlite:///x.db")
    'sqlite:///x.db'
    """
    url = db or os.environ.get("PEERLENS_DB") or DEFAULT_URL
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix) :]
    backend = url.split(":", 1)[0].split("+", 1)[0]
    if backend not in ("sqlite", "postgresql"):
        raise StudyError(f"database URL {url.split(':', 1)[0]!r}: only sqlite and postgresql work")
    return url


def create_study_engine(url: str, **kwargs: Any) -> Engine:
    """A SQLAlchemy engine with peerlens's per-backend settings (see module docstring)."""
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take over transaction control from pysqlite so that BEGIN IMMEDIATE is used.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            if engine.url.database not in (None, "", ":memory:"):
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _alembic_config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema of ``engine``'s database to ``revision``, in one transaction."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Two processes opening a fresh database at once must not both migrate it.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727273)")
        command.upgrade(_alembic_config(conn), revision)


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (``None`` for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest Alembic revision shipped with this version of peerlens."""
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def _default_blob_dir(url: str) -> Path:
    env = os.environ.get("PEERLENS_RECORDINGS")
    if env:
        return Path(env)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        db_path = Path(str(parsed.database))
        return db_path.with_name(db_path.stem + "_recordings")
    return Path("peerlens_recordings")


class Store:
    """An open study database plus the content-addressed folder holding recording files.

    Use :meth:`open`; work happens inside :meth:`transaction` blocks, each of which commits as a
    whole or not at all.
    """

    def __init__(self, engine: Engine, blob_dir: Path) -> None:
        self.engine = engine
        self.blob_dir = blob_dir

    @classmethod
    def open(
        cls,
        db: str | None = None,
        *,
        blob_dir: str | os.PathLike[str] | None = None,
        migrate: bool = True,
        **engine_kwargs: Any,
    ) -> Store:
        """Open (creating and upgrading if needed) the study database at ``db``.

        Parameters
        ----------
        db
            SQLAlchemy or plain ``postgresql://`` URL; default ``$PEERLENS_DB`` or
            ``sqlite:///peerlens.db``.
        blob_dir
            Folder for recording files; default ``$PEERLENS_RECORDINGS``, else
            ``<db name>_recordings`` beside a SQLite file, else ``./peerlens_recordings``.
        migrate
            Upgrade the schema to the newest revision (default). Without it, a database that is
            not at the newest revision is refused.
        """
        url = resolve_url(db)
        engine = create_study_engine(url, **engine_kwargs)
        if migrate:
            upgrade(engine)
        else:
            have, want = current_revision(engine), head_revision()
            if have != want:
                raise StudyError(f"database is at schema revision {have}, peerlens needs {want}")
        blobs = Path(blob_dir) if blob_dir is not None else _default_blob_dir(url)
        return cls(engine, blobs)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits on normal exit and rolls back on any exception."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

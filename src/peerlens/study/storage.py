"""Opening a study database: URL resolution, engine set-up, migrations, transactions.

SQLite is the embedded default (``sqlite:///peerlens.db``) with WAL journaling, foreign keys on and
``BEGIN IMMEDIATE`` transactions (so the audit chain is appended by one writer at a time),
except the read-only ones of :meth:`Store.reading`, which begin deferred and read a snapshot
beside the writer; PostgreSQL (psycopg 3) serves multi-site use. Opening a store upgrades the
schema to the newest Alembic revision, in one transaction.
"""

from __future__ import annotations

import hmac
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from peerlens.study._catalog_cache import CatalogCache
from peerlens.study.errors import ConcurrentChange, StudyError
from peerlens.study.models import Setting
from peerlens.study.vault import VaultKey, VaultKeyError, load_key

#: The database used when neither ``--db`` nor ``PEERLENS_DB`` says otherwise.
DEFAULT_URL = "sqlite:///peerlens.db"

#: Foreign keys (table, column, referred table) that PostgreSQL enforces with statement-level
#: constraint triggers instead of a per-row foreign key check (revision 0015); the models declare
#: them and SQLite keeps them as foreign keys.
PG_TRIGGER_CHECKED = frozenset({("response_item", "response_id", "response")})
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
    """A SQLAlchemy engine with peerlens's per-backend settings (see module docstring).

    Statement parameters are never put into error messages (``hide_parameters``): they hold
    free text and identifying values, and error messages end up in logs.
    """
    from peerlens.study import _text_guard  # noqa: F401  (refuses NUL in text on every write)

    kwargs.setdefault("hide_parameters", True)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take over transaction control from pysqlite so that BEGIN IMMEDIATE is used.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            # Deleted content is overwritten, not left in free pages (erasure must remove it).
            cur.execute("PRAGMA secure_delete=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            if engine.url.database not in (None, "", ":memory:"):
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # A read-only transaction (Store.reading) begins deferred: in WAL mode it reads a
            # snapshot while a writer works, and never takes the write lock.
            reader = conn.get_execution_options().get(_READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if reader else "BEGIN IMMEDIATE")

    return engine


def _alembic_config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def pg_lock(conn: Connection | Session, name: str) -> None:
    """On PostgreSQL, wait for and take the transaction-level advisory lock ``name`` (released at
    commit or rollback); on SQLite do nothing (``BEGIN IMMEDIATE`` already serialises writers).

    Advisory locks are shared by the whole database: the key is derived from the current schema
    and ``name``, so that peerlens stores kept in different schemas of one database never wait for
    (or deadlock with) each other. Lock order, wherever two are held: ``audit`` first (see
    :func:`peerlens.study.audit.lock_chain`), then any other.
    """
    dialect = conn.dialect if isinstance(conn, Connection) else conn.get_bind().dialect
    if dialect.name != "postgresql":
        return
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ':' || :n, 0))"),
        {"n": name},
    )


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema of ``engine``'s database to ``revision``, in one transaction."""
    with engine.begin() as conn:
        # Two processes opening a fresh database at once must not both migrate it.
        pg_lock(conn, "migrate")
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
    """Where a new database keeps its recordings unless told: ``$PEERLENS_RECORDINGS``, else
    ``<db name>_recordings`` beside a SQLite file, else ``./peerlens_recordings`` (absolute)."""
    env = os.environ.get("PEERLENS_RECORDINGS")
    if env:
        return Path(env).expanduser().resolve()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        db_path = Path(str(parsed.database)).expanduser().resolve()
        return db_path.with_name(db_path.stem + "_recordings")
    return Path("peerlens_recordings").resolve()


def _sqlite_file(url: str) -> Path | None:
    """The file of a file-backed SQLite URL (``None`` for other URLs and in-memory SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def _schema_of(engine: Engine) -> tuple[bool, list[str]]:
    """Whether the database is a peerlens one (has Alembic's version table), and its tables."""
    with engine.connect() as conn:
        tables = inspect(conn).get_table_names()
    return "alembic_version" in tables, tables


def shown_url(url: str) -> str:
    """``url`` without its password, for messages.

    Examples
    --------
    >>> shown_url("postgresql+psycopg://u:secret@host/db")
    'postgresql+psycopg://u:***@host/db'
    """
    return make_url(url).render_as_string(hide_password=True)


#: Execution option marking the connection of a :meth:`Store.reading` transaction.
_READ_ONLY = "peerlens_read_only"

#: PostgreSQL SQLSTATEs of a transaction undone so that a concurrent one can finish: deadlock
#: detected, serialisation failure.
_CONFLICTS = frozenset({"40P01", "40001"})


def describe_error(exc: BaseException) -> str:
    """What may be logged or shown of an unexpected error: its class, where in peerlens it was
    raised and, for a database error, its SQLSTATE and the table, column and constraint named.

    Never its message: PostgreSQL's detail quotes the failing row ("Failing row contains
    (...)", "Key (...)=(...) already exists") and a driver's message may quote the statement's
    parameters, which can hold answers, stories or identifying values.

    Examples
    --------
    >>> describe_error(KeyError("Mary Jones"))
    'KeyError'
    """
    parts = [type(exc).__name__]
    db = getattr(exc, "orig", None) or exc
    sqlstate = getattr(db, "sqlstate", None) or getattr(db, "sqlite_errorname", None)
    if sqlstate:
        parts.append(f"SQLSTATE {sqlstate}")
    diag = getattr(db, "diag", None)
    for label in ("table", "column", "constraint"):
        name = getattr(diag, f"{label}_name", None)
        if name:
            parts.append(f"{label} {name}")
    import traceback

    package = str(Path(__file__).parents[1])
    ours = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(package)]
    if ours:
        where = ours[-1]
        parts.append(f"at {Path(where.filename).name}:{where.lineno} in {where.name}")
    return ", ".join(parts)


_RECORDINGS_KEY = "recordings_dir"
#: ``session.info`` key under which a transaction's :class:`Store` is kept.
STORE_KEY = "peerlens_store"


def _recordings_folder(engine: Engine, url: str, blob_dir: str | os.PathLike[str] | None) -> Path:
    """The database's stored recordings folder; stored now if the database has none yet."""
    wanted = None if blob_dir is None else Path(blob_dir).expanduser().resolve()
    with Session(engine) as session, session.begin():
        if session.get(Setting, "database_id") is None:
            session.add(Setting(key="database_id", value=uuid.uuid4().hex))
        row = session.get(Setting, _RECORDINGS_KEY)
        if row is None:
            folder = wanted or _default_blob_dir(url)
            session.add(Setting(key=_RECORDINGS_KEY, value=str(folder)))
            return folder
        stored = Path(row.value)
        if wanted is not None and wanted != stored:
            raise StudyError(
                f"this database keeps its recordings in {stored}, not {wanted}; open it without "
                "naming a recordings folder"
            )
        return stored


class Store:
    """An open study database plus the content-addressed folder holding recording files.

    Use :meth:`open`; work happens inside :meth:`transaction` blocks, each of which commits as a
    whole or not at all.
    """

    def __init__(
        self,
        engine: Engine,
        blob_dir: Path,
        database_id: str = "",
        key_file: Path | None = None,
    ) -> None:
        self.engine = engine
        self.blob_dir = blob_dir
        #: Random id of this database, stored in it (names its default vault key file).
        self.database_id = database_id
        self._key_file = key_file
        self._key: VaultKey | None = None
        #: Whether the audit chain is known to record seals (see :mod:`.integrity`).
        self._sealed = False
        #: On SQLite, held around each transaction (see :meth:`transaction`).
        self._writer = threading.RLock()
        #: Study-level data built for participants' requests (see :mod:`._catalog_cache`).
        self.catalog = CatalogCache()
        #: The engine of :meth:`reading` transactions (the same pool, read-only options).
        self._reader = engine.execution_options(
            **{_READ_ONLY: True},
            **({"postgresql_readonly": True} if engine.dialect.name == "postgresql" else {}),
        )

    @classmethod
    def open(
        cls,
        db: str | None = None,
        *,
        create: bool = False,
        blob_dir: str | os.PathLike[str] | None = None,
        key_file: str | os.PathLike[str] | None = None,
        migrate: bool = True,
        **engine_kwargs: Any,
    ) -> Store:
        """Open the study database at ``db`` (upgrading its schema), or create a new one.

        Parameters
        ----------
        db
            SQLAlchemy or plain ``postgresql://`` URL; default ``$PEERLENS_DB`` or
            ``sqlite:///peerlens.db``.
        create
            Create the database (a new SQLite file, or the peerlens schema in an empty PostgreSQL
            database). Without it a database that does not exist, or is not a peerlens
            database, is refused: a mistyped path never becomes a new, empty study.
        blob_dir
            For a new database: the folder for recording files, stored (absolute) in the
            database; default ``$PEERLENS_RECORDINGS``, else ``<db name>_recordings`` beside a
            SQLite file, else ``./peerlens_recordings``. For an existing database it must be
            the stored folder (recordings are never looked for anywhere else).
        key_file
            The identity-vault key file; default ``$PEERLENS_VAULT_KEY`` /
            ``$PEERLENS_VAULT_KEY_FILE`` or the file ``peerlens init`` wrote (see
            :mod:`peerlens.study.vault`). The key is read only when the vault is used.
        migrate
            Upgrade the schema to the newest revision (default). Without it, a database that is
            not at the newest revision is refused.

        Raises
        ------
        StudyError
            The database does not exist (and ``create`` is false), is not a peerlens database, or
            keeps its recordings elsewhere than ``blob_dir``.
        """
        url = resolve_url(db)
        file = _sqlite_file(url)
        if file is not None and not create and not file.is_file():
            raise StudyError(
                f"no peerlens database at {file} (check --db or PEERLENS_DB); create one with "
                "peerlens init"
            )
        engine = create_study_engine(url, **engine_kwargs)
        try:
            try:
                peerlens_db, tables = _schema_of(engine)
            except DBAPIError as exc:
                first = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
                raise StudyError(
                    f"{shown_url(url)}: cannot open it as a database ({first})"
                ) from None
            if not create and not peerlens_db:
                raise StudyError(
                    f"{shown_url(url)} is not a peerlens database (no schema); create one with "
                    "peerlens init"
                )
            if create and not peerlens_db and tables:
                raise StudyError(
                    f"{shown_url(url)} already holds other tables ({', '.join(sorted(tables)[:5])}"
                    "): not a peerlens database; give peerlens a database of its own"
                )
            if migrate:
                upgrade(engine)
            else:
                have, want = current_revision(engine), head_revision()
                if have != want:
                    raise StudyError(
                        f"database is at schema revision {have}, peerlens needs {want}"
                    )
            folder = _recordings_folder(engine, url, blob_dir)
            with Session(engine) as session:
                database_id = str(session.get(Setting, "database_id").value)  # type: ignore[union-attr]
            store = cls(engine, folder, database_id, None if key_file is None else Path(key_file))
            store._encrypt_clear_vault_rows()
        except Exception:
            engine.dispose()
            raise
        return store

    def vault_key(self, session: Session) -> VaultKey:
        """The identity-vault key, loaded once and checked against the database (in ``session``,
        the caller's transaction: the first use of a key records its check value).

        Raises
        ------
        VaultKeyError
            No key, a malformed key, or another database's key.
        """
        if self._key is None:
            key = load_key(self.database_id, self._key_file)
            stored = session.get(Setting, "vault_key_check")
            if stored is None:
                session.add(Setting(key="vault_key_check", value=key.check))
                session.flush()
            elif not hmac.compare_digest(stored.value, key.check):
                raise VaultKeyError(f"the vault key from {key.source} is not this database's key")
            self._key = key
        return self._key

    def forget_key(self) -> None:
        """Drop the cached vault key (after a rotation the new key is read on next use)."""
        self._key = None

    def _encrypt_clear_vault_rows(self) -> None:
        """Encrypt identity-vault rows written in clear before schema revision 0006."""
        from peerlens.study._identity import encrypt_clear_rows

        with self.transaction() as s:
            encrypt_clear_rows(s)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits on normal exit and rolls back on any exception.

        Before it commits, the seals of the data it wrote are brought up to date (see
        :mod:`peerlens.study.integrity`), which needs the vault key when anything was written.
        """
        from peerlens.study import integrity

        # SQLite lets one transaction at a time in (BEGIN IMMEDIATE). The others of this
        # process wait here, woken as soon as it ends, rather than in SQLite's busy handler,
        # which polls with sleeps of up to 100 ms: the lock then often sat free while every
        # waiter slept (the web app's threads waited seconds under load).
        writer = self._writer if self.dialect == "sqlite" else nullcontext()
        try:
            with (
                writer,
                Session(self.engine, expire_on_commit=False) as session,
                session.begin(),
            ):
                session.info[STORE_KEY] = self
                integrity.start(session)
                yield session
                integrity.settle(session, self.vault_key)
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) not in _CONFLICTS:
                raise
            raise ConcurrentChange(
                "another change to the same data was being made at the same moment; nothing "
                "was stored. Please try again"
            ) from exc

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A transaction that only reads, for the many requests that write nothing (a
        participant opening a page).

        On SQLite it neither waits for this process's writer (see :meth:`transaction`) nor takes
        SQLite's write lock: it begins deferred and, in WAL mode, reads the state committed when
        its first statement ran while a writer goes on. On PostgreSQL it is a ``READ ONLY``
        transaction. Nothing is sealed or audited, as nothing may be written: a write through
        the session is refused and the transaction rolled back.

        Raises
        ------
        RuntimeError
            The block wrote through the session (a programming error: use :meth:`transaction`).
        """
        from peerlens.study import integrity

        with Session(self._reader, expire_on_commit=False) as session, session.begin():
            session.info[STORE_KEY] = self
            tracker = integrity.start(session)
            yield session
            session.flush()
            if tracker:
                raise RuntimeError("a read-only transaction wrote: use Store.transaction")

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read-only session whose statements all see one state of the database.

        For checks that read many tables and compare them (``audit verify``): on PostgreSQL
        a ``REPEATABLE READ, READ ONLY`` transaction (under READ COMMITTED each statement would
        see what others committed meanwhile, and a lawful write would look like tampering); on
        SQLite a transaction like any other (writers are serialised).
        """
        writer = self._writer if self.dialect == "sqlite" else nullcontext()
        engine = self.engine
        if self.dialect == "postgresql":
            engine = engine.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        with writer, Session(engine) as session, session.begin():
            session.info[STORE_KEY] = self
            yield session

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

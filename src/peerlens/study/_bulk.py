"""Writing many rows at once in the caller's transaction (item responses, derived scores).

Hundreds of thousands of rows: the ORM's (and even Core's) per-row work would dominate, so rows
go to the driver as plain tuples: ``COPY ... FROM STDIN`` on PostgreSQL (psycopg adapts each
value), multi-row ``INSERT`` statements on SQLite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from peerlens.study._gc_pause import collection_paused
from peerlens.study._text_guard import nul_checked
from peerlens.study.models import Base

#: Python types the sqlite3 driver stores exactly as SQLAlchemy would; values of other types
#: (dates) go through the column's bind processor, so that they are stored in the form that
#: SQLAlchemy writes and compares.
_NATIVE = (int, float, str, bytes, bool)


def bulk_insert(
    session: Session, model: type[Base], columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Insert ``rows`` (tuples of ``columns``' values, in that order) into ``model``'s table in
    the session's transaction."""
    with collection_paused():
        _bulk_insert(session, model, columns, rows)


def allocate_ids(session: Session, model: type[Base], n: int) -> list[int]:
    """``n`` fresh ids of ``model``'s table, for rows a bulk insert writes with their ids (a
    sealed table's unit keys must be known before the rows are written; the transaction holds
    the write lock on SQLite, and PostgreSQL's sequence hands each id out once)."""
    table = cast(Table, model.__table__).name
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        ids = conn.exec_driver_sql(
            "SELECT array_agg(nextval(pg_get_serial_sequence(%(t)s, 'id'))) "
            "FROM generate_series(1, %(n)s)",
            {"t": table, "n": n},
        ).scalar_one()
        return [int(i) for i in ids or ()]
    start = int(conn.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table}").scalar_one())
    return list(range(start + 1, start + n + 1))


def _bulk_insert(
    session: Session, model: type[Base], columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    from peerlens.study.integrity import note_rows

    table = cast(Table, model.__table__)
    # Text with a NUL is refused before the database sees it (PostgreSQL's error would quote it).
    text_at = [j for j, name in enumerate(columns) if _is_text(table.c[name].type)]
    if text_at:
        rows = nul_checked(table.name, columns, text_at, rows)
    rows = note_rows(session, table, columns, rows)
    conn = session.connection()
    driver = conn.connection.driver_connection
    assert driver is not None
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        with driver.cursor() as cur, cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    convert: list[tuple[int, Callable[[Any], Any]]] = []
    for j, name in enumerate(columns):
        kind = table.c[name].type
        process = kind.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        if process is not None and not _native(kind):
            convert.append((j, process))
    _insert_sqlite(
        driver, table.name, names, len(columns), _converted(rows, convert) if convert else rows
    )


def _insert_sqlite(
    driver: Any, table: str, names: str, width: int, rows: Iterable[Sequence[Any]]
) -> None:
    """Insert ``rows`` with multi-row ``INSERT ... VALUES (...), (...)`` statements: a third
    faster than ``executemany`` of one row per statement (each statement's fixed cost is shared
    by its rows). A statement takes at most 999 values (SQLite's oldest limit on parameters).

    NULLs are written into the statement rather than bound (see :func:`_row_shape`)."""
    per = max(1, _MAX_PARAMETERS // width)
    head = f"INSERT INTO {table} ({names}) VALUES "
    statements: dict[tuple[tuple[str, ...], int], str] = {}
    cursor = driver.cursor()
    try:
        it = iter(rows)
        while chunk := list(islice(it, per)):
            shape, columns = _row_shape(chunk)
            sql = statements.get((shape, len(chunk)))
            if sql is None:
                one = "(" + ", ".join(shape) + ")"
                sql = statements[shape, len(chunk)] = head + ", ".join([one] * len(chunk))
            cursor.execute(sql, _row_major(columns, len(chunk)))
    finally:
        cursor.close()


def _row_shape(chunk: Sequence[Sequence[Any]]) -> tuple[tuple[str, ...], list[Sequence[Any]]]:
    """How each column of ``chunk`` is written in a row of its statement, and the columns whose
    values are bound (NULLs replaced as that says).

    The sqlite3 module binds ``None`` through its adapter look-up, several times slower than a
    number or text: binding the NULLs of item rows (most have no text and no missing code) cost
    as much as the rest of their insert. So a column that is NULL in every row of the chunk is
    written as ``NULL``; one mixing values and NULLs binds :data:`_NULL_STAND_IN` for them,
    which ``nullif`` turns back into NULL (compared without type conversion, so it matches only
    that integer), unless a value of the chunk equals it (then ``None`` is bound as it is)."""
    shape: list[str] = []
    columns: list[Sequence[Any]] = []
    for values in zip(*chunk, strict=True):
        nulls = values.count(None)
        if nulls == 0 or _NULL_STAND_IN in values:
            shape.append("?")
            columns.append(values)
        elif nulls == len(values):
            shape.append("NULL")
        else:
            shape.append(_NULLIF)
            columns.append([_NULL_STAND_IN if v is None else v for v in values])
    return tuple(shape), columns


def _row_major(columns: Sequence[Sequence[Any]], rows: int) -> list[Any]:
    """The values of ``columns`` (each ``rows`` long) row after row, as a statement binds them
    (each column put in place with one slice assignment, no tuple per row)."""
    width = len(columns)
    out: list[Any] = [None] * (width * rows)
    for j, values in enumerate(columns):
        out[j::width] = values
    return out


_MAX_PARAMETERS = 999
#: What a NULL is bound as in a column mixing values and NULLs (see :func:`_row_shape`): an
#: integer, bound fast; not a float's value (floats this large are multiples of 1024), so no
#: float equals it either.
_NULL_STAND_IN = -(2**63) + 1
_NULLIF = f"nullif(?, {_NULL_STAND_IN})"


def _is_text(kind: Any) -> bool:
    try:
        return kind.python_type is str
    except NotImplementedError:
        return False


def _native(kind: Any) -> bool:
    try:
        return kind.python_type in _NATIVE
    except NotImplementedError:
        return False


def _converted(
    rows: Iterable[Sequence[Any]], convert: Sequence[tuple[int, Callable[[Any], Any]]]
) -> Iterable[Sequence[Any]]:
    # Bulk rows often share one value down a column (the time of the write): convert it once.
    last: list[tuple[Any, Any]] = [(_UNSET, None) for _ in convert]
    for row in rows:
        out = list(row)
        for k, (j, process) in enumerate(convert):
            value = out[j]
            seen, done = last[k]
            if value is not seen:
                done = process(value)
                last[k] = (value, done)
            out[j] = done
        yield out


_UNSET = object()

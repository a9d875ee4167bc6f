"""Refusing text with a NUL character before it reaches the database.

PostgreSQL text cannot hold ``\\x00`` (the statement fails, and the failure would name the whole
text in its message), SQLite stores it; neither is meant to hold it. Every ORM flush and every
INSERT/UPDATE run through a session is checked here, and every row the bulk writer
(:func:`peerlens.study._bulk.bulk_insert`) sends (:func:`nul_checked`), so that such text is
refused the same way on both backends with an error naming the table and column, before the
database sees it. Import files are checked where they are read, naming file, row and column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from peerlens.study.errors import StudyError

__all__ = ["NulInText", "nul_checked", "refuse_nul"]


class NulInText(StudyError):
    """Text given to store holds a NUL character."""


def refuse_nul(table: str, values: Mapping[str, Any]) -> None:
    """Raise :class:`NulInText` naming ``table`` and the column when a text value of
    ``values`` (column name -> value) holds a NUL character.

    Examples
    --------
    >>> refuse_nul("transcript", {"text": "fine", "id": 1})
    >>> try:
    ...     refuse_nul("transcript", {"text": "a\\x00b"})
    ... except NulInText as exc:
    ...     print(str(exc).split(" (")[0])
    transcript.text: text must not contain a NUL character
    """
    for column, value in values.items():
        if value.__class__ is str and "\x00" in value:
            raise NulInText(_refusal(f"{table}.{column}"))


def _refusal(where: str) -> str:
    return (
        f"{where}: text must not contain a NUL character (\\x00, e.g. from a binary file or a "
        "pasted control character); nothing was stored"
    )


def nul_checked(
    table: str, columns: Sequence[str], text_at: Sequence[int], rows: Iterable[Sequence[Any]]
) -> list[Sequence[Any]]:
    """``rows`` (tuples of ``columns``' values) as a list, once none of their text columns
    (positions ``text_at``) holds a NUL character; else raise :class:`NulInText` naming the
    table, the column and the first such row's 1-based place in the write (the bulk writer's
    rows carry no file row; imports name that when they read the file).

    Each column's distinct values are checked (a bulk write's text columns repeat a few values
    down hundreds of thousands of rows); the rows are walked one by one only to name the first
    row with a NUL.

    Examples
    --------
    >>> rows = [(1, "fine"), (2, "a\\x00b")]
    >>> try:
    ...     nul_checked("response_item", ("id", "text"), [1], rows)
    ... except NulInText as exc:
    ...     print(str(exc).split(": text")[0])
    response_item.text (row 2 of the write)
    """
    rows = rows if isinstance(rows, list) else list(rows)
    if any(_has_nul(list(map(itemgetter(j), rows))) for j in text_at):
        for n, row in enumerate(rows, start=1):
            for j in text_at:
                value = row[j]
                if value.__class__ is str and "\x00" in value:
                    raise NulInText(_refusal(f"{table}.{columns[j]} (row {n} of the write)"))
    return rows


def _has_nul(values: list[Any]) -> bool:
    """Whether a text value of ``values`` holds a NUL character."""
    try:
        distinct: Iterable[Any] = set(values)
    except TypeError:  # an unhashable value (not text): look at every value
        distinct = values
    return any(v.__class__ is str and "\x00" in v for v in distinct)


@event.listens_for(Session, "before_flush")
def _check_flush(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    for obj in (*session.new, *session.dirty):
        table = getattr(getattr(obj, "__table__", None), "name", None)
        if table is None:
            continue
        attrs = inspect(obj).mapper.column_attrs
        refuse_nul(table, {a.key: getattr(obj, a.key, None) for a in attrs})


@event.listens_for(Session, "do_orm_execute")
def _check_execute(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update):
        return
    table = getattr(getattr(state.statement, "table", None), "name", "?")
    params: Any = state.parameters
    rows: Iterable[Any] = params if isinstance(params, list) else [params or {}]
    for row in rows:
        if isinstance(row, Mapping):
            refuse_nul(str(table), row)

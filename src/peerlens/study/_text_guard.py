"""Refusing text with a NUL character before it reaches the database.

PostgreSQL text cannot hold ``\\x00`` (the statement fails, and the failure would name the whole
text in its message), SQLite stores it; neither is meant to hold it. Every ORM flush and every
INSERT/UPDATE run through a session is checked here, so that such text is refused the same way on
both backends with an error naming the table and column, before anything is stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from peerlens.study.errors import StudyError

__all__ = ["NulInText", "refuse_nul"]


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
            raise NulInText(
                f"{table}.{column}: text must not contain a NUL character (\\x00, e.g. from "
                "a binary file or a pasted control character); nothing was stored"
            )


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

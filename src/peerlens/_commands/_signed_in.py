"""The shape of every command that works on a study database: open the store named by
``--db``, sign in as ``--user``, call the public :mod:`peerlens.study` API as that caller,
print, close; a :class:`peerlens.PeerlensError` anywhere becomes a message and exit 2."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from peerlens._commands._common import user_errors

if TYPE_CHECKING:
    import pandas as pd

    from peerlens.study.policy import Caller
    from peerlens.study.storage import Store


@contextmanager
def signed_in(db: str | None, user: str | None) -> Iterator[tuple[Store, Caller]]:
    """The store at ``db`` and ``user`` signed in to it (password from $PEERLENS_PASSWORD or a
    hidden prompt), closed afterwards; errors inside are reported as by
    :func:`~peerlens._commands._common.user_errors`.

    Input that can be checked without the database is checked before this block, so that a
    mistyped option is reported before anyone is asked for a password.
    """
    with user_errors():
        from peerlens.study.storage import Store

        store = Store.open(db)
        try:
            yield store, _sign_in(store, user)
        finally:
            store.close()


def _sign_in(store: Store, user: str | None) -> Caller:
    """Authenticate ``--user`` (password from $PEERLENS_PASSWORD or a hidden prompt)."""
    from peerlens.study.errors import PermissionDenied
    from peerlens.study.users import authenticate

    if not user:
        raise PermissionDenied(
            "give your peerlens user name with --user (or PEERLENS_USER); a new database gets "
            "its first admin from peerlens init"
        )
    password = os.environ.get("PEERLENS_PASSWORD") or typer.prompt(
        f"password for {user}", hide_input=True
    )
    return authenticate(store, user, password)


def echo_table(frame: pd.DataFrame) -> None:
    """Print ``frame`` as tab-separated text with a header row (what list commands show)."""
    typer.echo(frame.to_csv(index=False, sep="\t").rstrip())

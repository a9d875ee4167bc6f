"""Alembic environment for the study database.

Migrations run programmatically from :func:`peerlens.study.storage.upgrade`, which passes an open
connection in ``config.attributes["connection"]``. Importing this module outside Alembic (pytest's
doctest collection does) does nothing.
"""

from __future__ import annotations

from alembic import context

from peerlens.study.models import Base


def _run() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("peerlens study migrations run only through peerlens.study.storage")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if hasattr(context, "config"):
    _run()

"""Item values and row seals stored by their keys: one B-tree each instead of two

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 12:30:00

``response_item`` loses its surrogate ``id`` (nothing refers to it; a value is found by its
response and item name) and takes ``(response_id, item)`` as its primary key; on SQLite it and
``row_seal`` become ``WITHOUT ROWID`` tables clustered by that key. Each insert then writes one
B-tree, not a table and a unique index: the store benchmark's imports are the bulk of it
(benchmarks/bench_store.py). Row seals are unaffected: a response's items were sealed without
their ``id`` (see ``peerlens.study._seal_units``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_ITEM_COLUMNS = "response_id, item, value, text, missing_code"


def upgrade() -> None:
    """Apply this revision."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TABLE response_item_new ("
            "response_id INTEGER NOT NULL REFERENCES response (id), "
            "item VARCHAR(120) NOT NULL, value FLOAT, text TEXT, missing_code VARCHAR(20), "
            "PRIMARY KEY (response_id, item)) WITHOUT ROWID"
        )
        op.execute(
            f"INSERT INTO response_item_new ({_ITEM_COLUMNS}) "
            f"SELECT {_ITEM_COLUMNS} FROM response_item"
        )
        op.execute("DROP TABLE response_item")
        op.execute("ALTER TABLE response_item_new RENAME TO response_item")
        op.execute(
            "CREATE TABLE row_seal_new (kind VARCHAR(40) NOT NULL, unit VARCHAR(100) NOT NULL, "
            "mac BLOB NOT NULL, PRIMARY KEY (kind, unit)) WITHOUT ROWID"
        )
        op.execute(
            "INSERT INTO row_seal_new (kind, unit, mac) SELECT kind, unit, mac FROM row_seal"
        )
        op.execute("DROP TABLE row_seal")
        op.execute("ALTER TABLE row_seal_new RENAME TO row_seal")
        return
    op.drop_constraint("response_item_response_id_item_key", "response_item", type_="unique")
    op.drop_constraint("response_item_pkey", "response_item", type_="primary")
    op.drop_column("response_item", "id")
    op.create_primary_key("response_item_pkey", "response_item", ["response_id", "item"])


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TABLE response_item_old (id INTEGER NOT NULL, "
            "response_id INTEGER NOT NULL, item VARCHAR(120) NOT NULL, value FLOAT, text TEXT, "
            "missing_code VARCHAR(20), PRIMARY KEY (id), "
            "FOREIGN KEY(response_id) REFERENCES response (id), UNIQUE (response_id, item))"
        )
        op.execute(
            f"INSERT INTO response_item_old ({_ITEM_COLUMNS}) "
            f"SELECT {_ITEM_COLUMNS} FROM response_item ORDER BY response_id, item"
        )
        op.execute("DROP TABLE response_item")
        op.execute("ALTER TABLE response_item_old RENAME TO response_item")
        op.execute(
            "CREATE TABLE row_seal_old (kind VARCHAR(40) NOT NULL, unit VARCHAR(100) NOT NULL, "
            "mac BLOB NOT NULL, PRIMARY KEY (kind, unit))"
        )
        op.execute(
            "INSERT INTO row_seal_old (kind, unit, mac) SELECT kind, unit, mac FROM row_seal"
        )
        op.execute("DROP TABLE row_seal")
        op.execute("ALTER TABLE row_seal_old RENAME TO row_seal")
        return
    op.drop_constraint("response_item_pkey", "response_item", type_="primary")
    op.add_column("response_item", sa.Column("id", sa.Integer(), sa.Identity(), nullable=False))
    op.create_primary_key("response_item_pkey", "response_item", ["id"])
    op.create_unique_constraint(
        "response_item_response_id_item_key", "response_item", ["response_id", "item"]
    )

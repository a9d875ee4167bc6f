"""identity vault encrypted at rest

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 07:00:00

The vault's fields move from clear JSON (``fields_json``) to AES-256-GCM ``ciphertext`` under a
key kept outside the database (see ``peerlens.study.vault``). Rows written before this revision
keep their clear JSON until the database is next opened with the key, which encrypts them and
empties ``fields_json`` (SQLite's secure_delete overwrites the old bytes).
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("identity_vault") as batch_op:
        batch_op.alter_column("fields_json", existing_type=sa.Text(), nullable=True)
        batch_op.add_column(sa.Column("ciphertext", sa.LargeBinary(), nullable=True))
        batch_op.add_column(
            sa.Column("field_names", sa.Text(), nullable=False, server_default="[]")
        )
        batch_op.add_column(sa.Column("salt", sa.LargeBinary(length=16), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT participant_id, fields_json FROM identity_vault"))
    for pid, fields in rows.fetchall():
        names = json.dumps(sorted(json.loads(fields or "{}")))
        conn.execute(
            sa.text("UPDATE identity_vault SET field_names = :n WHERE participant_id = :p"),
            {"n": names, "p": pid},
        )
    with op.batch_alter_table("identity_vault") as batch_op:
        batch_op.alter_column("field_names", server_default=None, existing_type=sa.Text())


def downgrade() -> None:
    """Revert this revision (encrypted rows cannot be turned back into clear text here)."""
    with op.batch_alter_table("identity_vault") as batch_op:
        batch_op.drop_column("salt")
        batch_op.drop_column("field_names")
        batch_op.drop_column("ciphertext")

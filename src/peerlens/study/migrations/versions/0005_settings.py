"""database settings: the database id and the absolute recordings folder

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 06:00:00

The folder holding recording files used to be worked out at every open (beside a SQLite file,
else relative to the current directory), so a PostgreSQL study opened from another directory
lost its recordings. It is now stored once, absolute, in ``setting``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "setting",
        sa.Column("key", sa.String(length=50), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("setting")

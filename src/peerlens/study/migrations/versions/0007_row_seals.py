"""row seals: keyed MACs over every data row, for tamper evidence beyond the audit log

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:00:00

``row_seal`` holds one HMAC-SHA256 per sealed unit (a row of a data table, or a response with its
items, or a derived story with its sentences) under a key derived from the vault key, so that
``audit verify`` names rows changed, added or removed behind peerlens's back (see
``peerlens.study.integrity``). Existing rows are sealed by the first write made with the key
after this revision. ``recording.stored_sha256`` is the digest of a recording as stored (a WFDB
record is stored renamed, so it differs from the original's), re-hashed by ``audit verify``;
recordings stored earlier have none and are reported as unchecked.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "row_seal",
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("unit", sa.String(length=100), nullable=False),
        sa.Column("mac", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("kind", "unit"),
    )
    with op.batch_alter_table("recording") as batch_op:
        batch_op.add_column(sa.Column("stored_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("recording") as batch_op:
        batch_op.drop_column("stored_sha256")
    op.drop_table("row_seal")

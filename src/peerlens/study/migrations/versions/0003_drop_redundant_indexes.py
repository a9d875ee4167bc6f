"""drop indexes duplicated by composite unique constraints

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 20:20:00

``response_item(response_id)`` and ``response(participant_id)`` are the leading columns of the
tables' unique constraints, whose indexes already serve those look-ups; the extra indexes only
slowed bulk imports.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("response_item") as batch_op:
        batch_op.drop_index("ix_response_item_response_id")
    with op.batch_alter_table("response") as batch_op:
        batch_op.drop_index("ix_response_participant_id")


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("response") as batch_op:
        batch_op.create_index("ix_response_participant_id", ["participant_id"])
    with op.batch_alter_table("response_item") as batch_op:
        batch_op.create_index("ix_response_item_response_id", ["response_id"])

"""Recordings name the timepoint they were recorded at

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 21:20:00

``recording`` gains ``timepoint_id``: the study timepoint (lab visit) of an ECG or RR
recording, so that its HRV can be analysed by arm and timepoint (the report's HRV section,
issue 13). The column is nullable: recordings stored before this revision, or without a
timepoint, hold ``NULL`` and are left out of the per-timepoint HRV models (counted as such).
Their row seals stay valid: the column enters a recording's sealed content only when it holds a
value (:data:`peerlens.study._seal_units.KINDS`, ``late``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("recording") as batch_op:
        batch_op.add_column(sa.Column("timepoint_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_recording_timepoint_id", ["timepoint_id"])
        batch_op.create_foreign_key(
            "fk_recording_timepoint_id_timepoint", "timepoint", ["timepoint_id"], ["id"]
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("recording") as batch_op:
        batch_op.drop_constraint("fk_recording_timepoint_id_timepoint", type_="foreignkey")
        batch_op.drop_index("ix_recording_timepoint_id")
        batch_op.drop_column("timepoint_id")

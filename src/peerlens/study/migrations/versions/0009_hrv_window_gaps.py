"""HRV window gaps: the recording's gaps within each derived HRV window

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 12:00:00

``derived_hrv`` gains ``n_gaps``, ``gap_s`` and ``gaps_json``: the gaps of the recording (null or
absent segments, EDF+D discontinuities, missing samples) that fall in each window, so that a
window's HRV is stored and exported with the stretches it was computed around (issue 11). The
columns are nullable: rows derived before this revision hold ``NULL`` until the next
derivation. Their row seals and run digests stay valid: these columns enter a row's sealed
content and its run's digest only when they hold a value
(:data:`peerlens.study._seal_units.KINDS`, ``late``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("derived_hrv") as batch_op:
        batch_op.add_column(sa.Column("n_gaps", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("gap_s", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("gaps_json", sa.Text(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("derived_hrv") as batch_op:
        batch_op.drop_column("gaps_json")
        batch_op.drop_column("gap_s")
        batch_op.drop_column("n_gaps")

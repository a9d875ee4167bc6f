"""REDCap layout: the row and column order and the cell texts of imported REDCap record files

Revision ID: 0008
Revises: 0007
Create Date: 2027-01-10 09:00:00

``redcap_layout`` holds, per study, the header and row order of its REDCap record file and the
cells the file wrote otherwise than peerlens writes the stored values (``.34``, ``1,54``, blank
unticked checkboxes), so that a REDCap export gives each cell back as it came in (issue 11).
A new table: no existing row changes, so no seal changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "redcap_layout",
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("columns_json", sa.Text(), nullable=False),
        sa.Column("rows_json", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"]),
        sa.PrimaryKeyConstraint("study_id"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("redcap_layout")

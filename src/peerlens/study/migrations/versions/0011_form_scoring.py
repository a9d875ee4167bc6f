"""Form scoring: a data-dictionary form scored as a bundled instrument through a field map

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 13:00:00

``form_scoring`` holds, per study and form, the bundled instrument the form is scored as and
the field -> item map (the study config's ``scoring``). A new table, sealed like the others
(one ``UnitKind`` in ``_seal_units``); no existing row changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "form_scoring",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("form", sa.String(length=100), nullable=False),
        sa.Column("instrument", sa.String(length=100), nullable=False),
        sa.Column("items_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("study_id", "form"),
    )
    op.create_index("ix_form_scoring_study_id", "form_scoring", ["study_id"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_form_scoring_study_id", table_name="form_scoring")
    op.drop_table("form_scoring")

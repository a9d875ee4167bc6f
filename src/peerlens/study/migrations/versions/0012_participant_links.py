"""Participant links and consent texts: personal links for the web questionnaires, e-consent

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 13:00:00

``participant_link`` holds one personal link per participant and timepoint (the sha256 of its
token only, its expiry and revocation); ``consent_text`` the versions of a study's consent text
shown before the first questionnaire. Two new tables, sealed like the others (one ``UnitKind``
each in ``_seal_units``); no existing row changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "consent_text",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=50), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("study_id", "version"),
    )
    op.create_table(
        "participant_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("timepoint_id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["participant_id"], ["participant.id"]),
        sa.ForeignKeyConstraint(["timepoint_id"], ["timepoint.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_index("ix_participant_link_participant_id", "participant_link", ["participant_id"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_participant_link_participant_id", table_name="participant_link")
    op.drop_table("participant_link")
    op.drop_table("consent_text")

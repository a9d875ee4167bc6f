"""Story studio: PS workers' practice stories, their sentence labels, "I disagree" marks, and
user accounts' access to a worker's studio (as the worker or a trainer)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 15:00:00

Four new tables, sealed like the others (``practice_sentence`` belongs to its story's unit);
no existing row changes. The ``trainer`` user role needs no schema change (roles are text).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "worker_access",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("relation", sa.String(length=10), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"]),
        sa.ForeignKeyConstraint(["participant_id"], ["participant.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("participant_id", "user_id"),
    )
    op.create_index("ix_worker_access_participant_id", "worker_access", ["participant_id"])
    op.create_index("ix_worker_access_user_id", "worker_access", ["user_id"])
    op.create_table(
        "practice_story",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("revises_id", sa.Integer(), nullable=True),
        sa.Column("told_on", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("speaker", sa.String(length=100), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_sentences", sa.Integer(), nullable=False),
        sa.Column("connection_index", sa.Float(), nullable=True),
        sa.Column("ci_low", sa.Float(), nullable=True),
        sa.Column("ci_high", sa.Float(), nullable=True),
        sa.Column("ci_method", sa.String(length=10), nullable=False),
        sa.Column("counts_json", sa.Text(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("model_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"]),
        sa.ForeignKeyConstraint(["participant_id"], ["participant.id"]),
        sa.ForeignKeyConstraint(["revises_id"], ["practice_story.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_practice_story_participant_id", "practice_story", ["participant_id"])
    op.create_table(
        "practice_sentence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("speaker", sa.String(length=100), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("label", sa.String(length=20), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("cues_json", sa.Text(), nullable=False),
        sa.Column("hint", sa.Text(), nullable=True),
        sa.Column("mixed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["story_id"], ["practice_story.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("story_id", "position"),
    )
    op.create_table(
        "story_disagreement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("sentence", sa.Text(), nullable=False),
        sa.Column("model_label", sa.String(length=20), nullable=False),
        sa.Column("proposed_label", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["story_id"], ["practice_story.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("story_id", "position", "user_id"),
    )
    op.create_index("ix_story_disagreement_story_id", "story_disagreement", ["story_id"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_story_disagreement_story_id", table_name="story_disagreement")
    op.drop_table("story_disagreement")
    op.drop_table("practice_sentence")
    op.drop_index("ix_practice_story_participant_id", table_name="practice_story")
    op.drop_table("practice_story")
    op.drop_index("ix_worker_access_user_id", table_name="worker_access")
    op.drop_index("ix_worker_access_participant_id", table_name="worker_access")
    op.drop_table("worker_access")

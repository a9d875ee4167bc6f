"""derived results: scores, HRV metrics, story labels; transcript speaker

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 23:40:00

Derived rows are written only by ``peerlens.study.derived`` (delete-and-insert in one
transaction); UPDATE on them fails (SQLite BEFORE UPDATE triggers, a PostgreSQL row trigger), so
a stored result cannot be edited in place. Rows inserted or deleted by hand are caught by
``verify_derived``, which compares each run's rows with the digest kept in the audit log.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TABLES = ("derivation", "derived_score", "derived_hrv", "derived_story", "derived_sentence")
_MESSAGE = "derived results are recomputed, never edited: run peerlens study derive"


def _fk(col: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([col], [target])


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("transcript") as batch_op:
        batch_op.add_column(sa.Column("speaker", sa.String(length=100), nullable=True))
    op.create_table(
        "derivation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("what", sa.String(length=10), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("derived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("versions_json", sa.Text(), nullable=False),
        sa.Column("n_inputs", sa.Integer(), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("n_errors", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        _fk("study_id", "study.id"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_derivation_study_id", "derivation", ["study_id"])
    op.create_table(
        "derived_score",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("derivation_id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("instrument", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("text", sa.String(length=100), nullable=True),
        sa.Column("spec_version", sa.String(length=50), nullable=False),
        sa.Column("spec_sha256", sa.String(length=64), nullable=False),
        sa.Column("engine_version", sa.String(length=50), nullable=False),
        sa.Column("source_updated_at", sa.DateTime(timezone=True), nullable=False),
        _fk("derivation_id", "derivation.id"),
        _fk("response_id", "response.id"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("response_id", "name"),
    )
    op.create_index("ix_derived_score_derivation_id", "derived_score", ["derivation_id"])
    op.create_table(
        "derived_hrv",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("derivation_id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("start_s", sa.Float(), nullable=True),
        sa.Column("end_s", sa.Float(), nullable=True),
        sa.Column("n_beats", sa.Integer(), nullable=True),
        sa.Column("artifact_rate", sa.Float(), nullable=True),
        sa.Column("valid", sa.Boolean(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("metrics_json", sa.Text(), nullable=False),
        sa.Column("pipeline_version", sa.String(length=50), nullable=False),
        sa.Column("provenance_json", sa.Text(), nullable=False),
        sa.Column("windows_sha256", sa.String(length=64), nullable=False),
        _fk("derivation_id", "derivation.id"),
        _fk("recording_id", "recording.id"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("recording_id", "label"),
    )
    op.create_index("ix_derived_hrv_derivation_id", "derived_hrv", ["derivation_id"])
    op.create_table(
        "derived_story",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("derivation_id", sa.Integer(), nullable=False),
        sa.Column("transcript_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("n_sentences", sa.Integer(), nullable=True),
        sa.Column("connection_index", sa.Float(), nullable=True),
        sa.Column("ci_low", sa.Float(), nullable=True),
        sa.Column("ci_high", sa.Float(), nullable=True),
        sa.Column("counts_json", sa.Text(), nullable=False),
        sa.Column("model_sha256", sa.String(length=64), nullable=False),
        sa.Column("model_json", sa.Text(), nullable=False),
        _fk("derivation_id", "derivation.id"),
        _fk("transcript_id", "transcript.id"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("transcript_id"),
    )
    op.create_index("ix_derived_story_derivation_id", "derived_story", ["derivation_id"])
    op.create_table(
        "derived_sentence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=20), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("speaker_turn", sa.Integer(), nullable=True),
        sa.Column("n_chars", sa.Integer(), nullable=False),
        _fk("story_id", "derived_story.id"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("story_id", "position"),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in _TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION peerlens_derived_no_update() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            f"RAISE EXCEPTION '{_MESSAGE}' USING ERRCODE = 'insufficient_privilege'; "
            "END $$"
        )
        for table in _TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION peerlens_derived_no_update()"
            )
            op.execute(f"REVOKE UPDATE ON {table} FROM PUBLIC")
    else:  # pragma: no cover - storage refuses other backends
        raise NotImplementedError(dialect)


def downgrade() -> None:
    """Revert this revision."""
    for table in reversed(_TABLES):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS peerlens_derived_no_update()")
    with op.batch_alter_table("transcript") as batch_op:
        batch_op.drop_column("speaker")

"""An index on the audit log by entity

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01 21:40:00

Completing a form through a personal link scores it at once and looks up the newest
amendment of the current scores run in the audit log (``derive.amend`` entries of that
``derivation``). Without an index that read every entry of the log, which grows with every
request, on every completed form. The index on (entity, entity_id, action) makes it a
look-up; the log's rows and hashes are unchanged.
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_index("ix_audit_log_entity", "audit_log", ["entity", "entity_id", "action"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_audit_log_entity", table_name="audit_log")

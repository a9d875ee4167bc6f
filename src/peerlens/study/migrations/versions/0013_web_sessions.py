"""Web sessions and failed sign-ins: staff sign-in to the web app

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 15:00:00

``web_session`` holds one row per signed-in browser (the sha256 of its session id only, with
when it was created and last used, for the idle and absolute expiry); ``login_failure`` one row
per failed sign-in (user name and client address as sha256 digests), counted for the rate limit
and lockout. Two new tables, left unsealed (they change on every request); no existing row
changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "web_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_index("ix_web_session_user_id", "web_session", ["user_id"])
    op.create_table(
        "login_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username_sha256", sa.String(length=64), nullable=False),
        sa.Column("address_sha256", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_failure_username_sha256", "login_failure", ["username_sha256"])
    op.create_index("ix_login_failure_address_sha256", "login_failure", ["address_sha256"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_login_failure_address_sha256", table_name="login_failure")
    op.drop_index("ix_login_failure_username_sha256", table_name="login_failure")
    op.drop_table("login_failure")
    op.drop_index("ix_web_session_user_id", table_name="web_session")
    op.drop_table("web_session")

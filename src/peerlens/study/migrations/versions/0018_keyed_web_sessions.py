"""Web sessions carry a MAC under a key derived from the vault key

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 18:40:00

``web_session`` stored only the sha256 of each session id, so a row inserted with SQL for a
token of one's choosing was a working session of any account. Each row now also holds
``token_mac``, an HMAC of the session id, its user and its start time under a key derived from
the vault key (see :func:`peerlens.study.keys.token_mac`), which the database never holds; a
session whose MAC does not verify is refused. Sessions started before this revision have none
and end: everyone signs in again once. Personal access tokens (``api_token``, revision 0017)
get the same column, their MAC binding the token to its user, scopes and expiry; tokens made
before it are deleted.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("web_session") as batch:
        batch.add_column(sa.Column("token_mac", sa.String(64), nullable=True))
    op.execute("DELETE FROM web_session")
    with op.batch_alter_table("api_token") as batch:
        batch.add_column(sa.Column("token_mac", sa.String(64), nullable=True))
    op.execute("DELETE FROM api_token")


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("api_token") as batch:
        batch.drop_column("token_mac")
    with op.batch_alter_table("web_session") as batch:
        batch.drop_column("token_mac")
